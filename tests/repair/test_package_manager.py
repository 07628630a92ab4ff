"""Which tool installs: pip when the environment has it, else uv with the user's pip settings
translated, else ``ensurepip`` first. Real venvs (one made by ``uv venv``, which has no pip),
real pip configuration files, real uv, and the local wheel folder of ``conftest.py``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tffix.effects.pip import PackageManager, has_pip, pip_settings

pytestmark = pytest.mark.slow


def _uv() -> str | None:
    return shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))


def _uv_venv(tmp_path: Path) -> tuple[Path, Path, str]:
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed")
    venv = tmp_path / "uvvenv"
    subprocess.run(
        [uv, "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True
    )
    return venv, venv / "bin" / "python", uv


def _pip_conf(venv: Path, wheelhouse: Path) -> Path:
    conf = venv / "pip.conf"  # the site configuration file of that environment
    conf.write_text(
        f"[global]\nno-index = true\nfind-links = {wheelhouse}\ncert = /etc/ssl/x.pem\n"
    )
    return conf


def _installed(python: Path) -> bool:
    done = subprocess.run([str(python), "-c", "import demo"], capture_output=True, check=False)
    return done.returncode == 0


def test_a_uv_venv_with_a_pip_conf_installs_with_uv_and_its_settings(
    tmp_path: Path, wheelhouse: Path
) -> None:
    """No pip in the venv, a pip.conf naming the only index: uv installs, with the file's
    index settings as its flags, and the reason names what it could not translate."""
    venv, python, uv = _uv_venv(tmp_path)
    assert not has_pip(venv)
    _pip_conf(venv, wheelhouse)
    env = {"PATH": f"{Path(uv).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    manager = PackageManager(python, venv, env, say=lambda text: None)
    choice = manager.choice()
    assert choice.tool == "uv"
    assert "no pip" in choice.why and "cert" in choice.why
    assert ("--no-index" in choice.flags) and str(wheelhouse) in choice.flags
    manager.install(["demo==1.0"])
    assert _installed(python)
    assert manager.installed()["demo"] == "1.0"
    assert manager.restore({k: v for k, v in manager.installed().items() if k != "demo"}) == []
    assert not _installed(python)


def test_without_pip_or_uv_ensurepip_comes_first(tmp_path: Path, wheelhouse: Path) -> None:
    venv, python, _uv_path = _uv_venv(tmp_path)
    _pip_conf(venv, wheelhouse)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    manager = PackageManager(python, venv, env, allow_uv=False, say=lambda text: None)
    choice = manager.choice()
    assert choice.tool == "ensurepip" and "no pip" in choice.why
    manager.install(["demo==1.0"])
    assert has_pip(venv) and _installed(python)
    assert manager.choice().tool == "pip"


def test_pip_settings_files_then_variables(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://a.example/simple\n[install]\ntrusted-host = a.example\n"
    )
    env = {"PIP_CONFIG_FILE": str(conf), "PIP_INDEX_URL": "https://b.example/simple"}
    settings, untranslated = pip_settings(env, tmp_path)
    assert settings == {"index-url": "https://b.example/simple", "trusted-host": "a.example"}
    assert untranslated == []


def test_the_plan_says_which_tool_and_why(make_scenario) -> None:  # type: ignore[no-untyped-def]
    """A venv without pip and a pip configuration file (finding: tffix picked pip and failed
    with "No module named pip"): the repair says what installs and why, and works."""
    sim = make_scenario("tf-not-installed")
    for path in sim.site_packages.glob("pip*"):  # what `uv venv` makes: site-packages, no pip
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert not has_pip(sim.venv) and sim.site_packages.is_dir()
    (sim.venv / "pip.conf").write_text(f"[global]\nno-index = true\nfind-links = {sim.index}\n")
    done = sim.run_tffix("--yes", timeout=600)
    assert "No module named pip" not in done.stdout + done.stderr
    assert "Installs with " in done.stdout and "no pip" in done.stdout, done.stdout
    assert done.stdout.count("Installs with ") == 1, done.stdout  # said once, above the plan
    assert done.returncode == 0, done.stdout + done.stderr
    assert sim.tf_report().gpus == ["/physical_device:GPU:0"]
