"""Children of the target interpreter do not import code from the folder tffix runs in.

``python -c`` and ``python -m`` put the working folder first on ``sys.path``: a ``json.py``
(or ``pip.py``) in the user's project would run inside tffix's probes. Each test runs a real
child from a folder holding such a module, which records that it ran.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import SimEnv
from tffix.effects.pip import PackageManager
from tffix.errors import ApplyError
from tffix.probes.packages import list_with_pip_api
from tffix.probes.target import resolve_target
from tffix.probes.tensorflow import probe_tensorflow, verify_gpu
from tffix.probes.verify import deep_verify

PLANTED = ("json", "tensorflow", "pip", "traceback", "venv")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current folder whose modules shadow the stdlib, tensorflow and pip, and tell on it."""
    folder = tmp_path / "project"
    folder.mkdir()
    for name in PLANTED:
        (folder / f"{name}.py").write_text(
            f"open({str(tmp_path / ('ran-' + name))!r}, 'w').write('ran')\n"
        )
    monkeypatch.chdir(folder)
    return tmp_path


def ran(where: Path) -> list[str]:
    return sorted(p.name for p in where.glob("ran-*"))


def _env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "")}


def test_tensorflow_probe_ignores_the_current_folder(project: Path) -> None:
    probe_tensorflow(Path(sys.executable), _env(), timeout=60)
    assert ran(project) == []


def test_verification_ignores_the_current_folder(project: Path) -> None:
    verify_gpu(Path(sys.executable), _env(), timeout=60)
    deep_verify(Path(sys.executable), _env(), timeout=60)
    assert ran(project) == []


def test_target_query_ignores_the_current_folder(project: Path) -> None:
    resolve_target(python=sys.executable, environ=_env())
    assert ran(project) == []


def test_pip_api_ignores_the_current_folder(project: Path) -> None:
    list_with_pip_api(Path(sys.executable))
    assert ran(project) == []


def test_pip_runs_ignore_the_current_folder(project: Path) -> None:
    manager = PackageManager(
        Path(sys.executable), Path(sys.prefix), _env(), allow_uv=False, say=lambda _: None
    )
    with contextlib.suppress(ApplyError):
        manager.install(["--version"])  # `pip install --version`: prints, changes nothing
    assert ran(project) == []


@pytest.mark.slow
def test_live_diagnosis_runs_no_code_from_the_project(
    sim_scenarios: Callable[[str], SimEnv], tmp_path: Path
) -> None:
    """The audit's reproducer: `tffix --dry-run` in a project folder holding a json.py."""
    import subprocess

    env = sim_scenarios("healthy-tf218-andcuda")
    folder = tmp_path / "project"
    folder.mkdir()
    marker = tmp_path / "ran"
    (folder / "json.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (folder / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    tffix = Path(sys.executable).parent / "tffix"  # the console script: tffix's own sys.path
    proc = subprocess.run(  # is not the project's, as for a user
        [str(tffix), "--dry-run", "--venv", str(env.venv)],
        env={**env.env, "TFFIX_SYSROOT": str(env.root)},
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1), proc.stderr
    assert not marker.exists()
