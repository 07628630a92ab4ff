"""``--create-venv`` with an interpreter that has no ``ensurepip`` (a fresh Ubuntu without
``python3.X-venv``): tffix names the exact package, or makes the venv with uv when it is there.

The interpreter is real: a venv of this Python whose ``sitecustomize`` hides ``ensurepip``
(it runs under ``-I`` too, as Debian's missing module would be missing everywhere).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tffix.commands.repair import venv_support

pytestmark = pytest.mark.slow

_HIDE = """\
import sys
class _NoEnsurepip:
    def find_spec(self, name, path=None, target=None):
        if name == "ensurepip" or name.startswith("ensurepip."):
            raise ModuleNotFoundError("No module named 'ensurepip'", name=name)
        return None
sys.meta_path.insert(0, _NoEnsurepip())
"""


def _without_ensurepip(tmp_path: Path) -> Path:
    base = tmp_path / "debianish"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base)], check=True)
    (site,) = base.glob("lib/python*/site-packages")
    (site / "sitecustomize.py").write_text(_HIDE)
    return base / "bin" / "python"


def _env(tmp_path: Path, path: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    env.update({"PATH": path, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path)})
    env.update({"SHELL": "/bin/bash", "HOME": str(tmp_path)})
    return env


def _tffix(python: Path, dest: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tffix", "--python", str(python), "--create-venv", str(dest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_probe_tells_a_hidden_ensurepip_from_a_present_one(tmp_path: Path) -> None:
    python = _without_ensurepip(tmp_path)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert venv_support(python, os.environ) == (version, False)
    assert venv_support(Path(sys.executable), os.environ) == (version, True)


def test_no_ensurepip_and_no_uv_names_the_package_and_changes_nothing(tmp_path: Path) -> None:
    python = _without_ensurepip(tmp_path)
    dest = tmp_path / "fresh"
    done = _tffix(python, dest, _env(tmp_path, "/usr/bin:/bin"))  # no uv on this PATH
    assert done.returncode == 2, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert "ensurepip module is missing" in error
    if Path("/etc/debian_version").exists():
        package = f"python{sys.version_info.major}.{sys.version_info.minor}-venv"
        assert f"`sudo apt install {package}`" in error, error
    assert "install uv" in error and f"--create-venv {dest}" in error
    assert not dest.exists()


def test_no_ensurepip_with_uv_makes_the_venv_with_uv(tmp_path: Path) -> None:
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        pytest.skip("uv is not installed")
    python = _without_ensurepip(tmp_path)
    dest = tmp_path / "fresh"
    done = _tffix(python, dest, _env(tmp_path, f"{Path(uv).parent}:/usr/bin:/bin"))
    assert "creating " + str(dest) + " with uv venv" in done.stderr, done.stderr
    assert "uv = " in (dest / "pyvenv.cfg").read_text()  # made by uv, not by python -m venv
    # nothing to install from (an empty find-links folder): the install step fails after
    assert done.returncode != 0 and "the new venv" in done.stderr
