"""A target that cannot be used ends with one clean line and exit 2, never exit 5."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TFFIX = [sys.executable, "-m", "tffix"]


def _unprivileged() -> list[str]:
    """A prefix that makes permission bits apply to this test's child (root bypasses them)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permission bits cannot be tested")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", "--"]


def _tffix(*args: str, cwd: Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}
    return subprocess.run(
        [*(prefix or []), *TFFIX, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tffix: error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize("how", ["--venv", "--python"])
def test_unsearchable_interpreter_folder_is_a_usage_error(tmp_path: Path, how: str) -> None:
    locked = tmp_path / "locked"
    venv = locked / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    locked.chmod(0)
    try:
        where = str(venv) if how == "--venv" else str(venv / "bin" / "python")
        proc = _tffix("--dry-run", how, where, cwd=tmp_path, prefix=_unprivileged())
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    line = _one_line_error(proc)
    assert "Permission denied" in line or "no such" in line


@pytest.mark.parametrize("program", ["/bin/ls", "/bin/echo", "/bin/true", "/etc/passwd"])
def test_a_program_that_is_not_python_is_one_clean_line(tmp_path: Path, program: str) -> None:
    if not Path(program).exists():
        pytest.skip(f"no {program}")
    proc = _tffix("--dry-run", "--python", program, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = _one_line_error(proc)
    assert program in line
    # none of tffix's own probe script ends up in the message
    assert "json.dumps" not in line and "sysconfig" not in line and "import" not in line
