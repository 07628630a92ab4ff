"""Links inside a venv that lead out of it are never followed: not for the lock and journal
folder ``.tffix``, not for the activate scripts tffix edits. The run is refused (exit 2, one
line) and the file outside stays as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tffix.effects import activate, safepath
from tffix.effects.lock import hold
from tffix.envedit import EditOp, EnvEdit


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    return folder


@pytest.fixture
def venv(base_venv: Path, tmp_path: Path) -> Path:
    """A venv of this test's own (a copy: links inside it are what the tests change)."""
    import shutil

    dest = tmp_path / "venv"
    shutil.copytree(base_venv, dest, symlinks=True)
    # the copy's scripts name the copy (they are only read, never run, here)
    return dest


def _tffix(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    return subprocess.run(
        [sys.executable, "-m", "tffix", *args],
        cwd=cwd,
        env={**env, "CUDA_VISIBLE_DEVICES": "-1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _refused(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tffix: error: "), proc.stderr
    return lines[0]


def test_state_folder_linked_out_of_the_venv_is_refused(venv: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (venv / ".tffix").symlink_to(outside)
    with pytest.raises(safepath.PathEscape, match="outside the environment"), hold(venv):
        pass
    assert list(outside.iterdir()) == []
    for command in (["--yes"], ["undo"]):
        line = _refused(_tffix(*command, "--venv", str(venv), cwd=tmp_path))
        assert ".tffix" in line and "outside" in line
        assert list(outside.iterdir()) == [], command


def test_lock_file_linked_out_of_the_venv_is_refused(venv: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (venv / ".tffix").mkdir()
    (venv / ".tffix" / "lock").symlink_to(victim)
    with pytest.raises(safepath.PathEscape), hold(venv):
        pass
    assert victim.read_text() == "keep me\n"  # not truncated, no pid written


def test_activate_script_linked_out_of_the_venv_is_not_rewritten(
    venv: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "bashrc"
    victim.write_text("# my shell settings\n")
    activate_script = venv / "bin" / "activate"
    activate_script.unlink()
    activate_script.symlink_to(victim)
    edit = EnvEdit(EditOp.SET, "TF_CPP_MIN_LOG_LEVEL", "0")
    with pytest.raises(safepath.PathEscape):
        activate.write_edits(venv, [edit], conda=False)
    with pytest.raises(safepath.PathEscape):
        activate.check_files(venv, conda=False)
    assert activate.restore_bytes(venv, {"bin/activate": b"x"})  # reported, not written
    assert victim.read_text() == "# my shell settings\n"
    line = _refused(_tffix("--yes", "--venv", str(venv), cwd=tmp_path))
    assert "bin/activate" in line and str(victim) in line
    assert victim.read_text() == "# my shell settings\n"


def test_links_that_stay_inside_the_venv_are_fine(venv: Path) -> None:
    real = venv / "bin" / "activate.real"
    (venv / "bin" / "activate").rename(real)
    (venv / "bin" / "activate").symlink_to("activate.real")
    edit = EnvEdit(EditOp.SET, "TF_CPP_MIN_LOG_LEVEL", "0")
    activate.check_files(venv, conda=False)
    activate.write_edits(venv, [edit], conda=False)
    assert "TF_CPP_MIN_LOG_LEVEL" in real.read_text()
    with hold(venv) as lock:
        assert lock.parent == venv / ".tffix"


@pytest.mark.parametrize(
    "name", ["../x", "/etc/passwd", "bin/../../x", "", "C:\\x", "a/\0b", "..", "."]
)
def test_names_that_cannot_be_inside_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(safepath.PathEscape):
        safepath.inside(tmp_path, name)
