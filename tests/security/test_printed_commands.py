"""The commands tffix prints for a person, pasted into bash with hostile paths and names
from an untrusted snapshot, do exactly what they say and run nothing planted in them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tffix.model import PlanStep, Safety, StepKind
from tffix.report import step_commands

HOSTILE_DIR = 'my proj $(touch PWNED) `touch PWNED` it\'s "q"'


def bash(lines: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-i"],
        input="\n".join(lines) + "\nexit\n",
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), "TERM": "dumb", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert not (cwd / "PWNED").exists(), "\n".join(lines)
    return proc.stdout


def _step(kind: StepKind, **fields: object) -> PlanStep:
    return PlanStep(kind, "a step", Safety.SAFE, ("x",), **fields)  # type: ignore[arg-type]


def test_plan_step_commands_quote_untrusted_values(tmp_path: Path) -> None:
    entry = f"/opt/{HOSTILE_DIR}/lib"
    lines = [
        "LD_LIBRARY_PATH=/old; export LD_LIBRARY_PATH",
        *step_commands(
            _step(StepKind.ENV_PATH_PREPEND, variable="LD_LIBRARY_PATH", entry=entry), None
        ),
        *step_commands(_step(StepKind.ENV_SET, variable="XLA_FLAGS", value=HOSTILE_DIR), None),
        'printf "<%s>\\n" "$LD_LIBRARY_PATH" "$XLA_FLAGS"',
    ]
    out = bash(lines, tmp_path)
    assert f"<{entry}:/old>" in out and f"<{HOSTILE_DIR}>" in out


def test_package_names_from_a_snapshot_are_quoted(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    python = fake_bin / "python"  # stands in for the interpreter: prints its arguments
    python.write_text('#!/bin/sh\nprintf "<%s>\\n" "$@"\n')
    python.chmod(0o755)
    step = _step(StepKind.PIP_UNINSTALL, packages=("tensorflow-gpu;touch PWNED", "$(id)"))
    out = bash(step_commands(step, str(python)), tmp_path)
    assert "<tensorflow-gpu;touch PWNED>" in out and "<$(id)>" in out


@pytest.mark.parametrize("active", [False, True])
def test_activate_command_sources_the_hostile_venv(tmp_path: Path, active: bool) -> None:
    from tffix.commands.repair import activate_command
    from tffix.shellquote import Dialect

    prefix = tmp_path / HOSTILE_DIR / "venv"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "activate").write_text("TFFIX_SOURCED=yes\n")
    command = activate_command(prefix, conda=False, active=active, shell=Dialect.POSIX)
    lines = ["deactivate() { :; }", command, 'printf "<%s>\\n" "$TFFIX_SOURCED"']
    assert "<yes>" in bash(lines, tmp_path)


def test_conda_activate_command_names_the_whole_prefix(tmp_path: Path) -> None:
    from tffix.commands.repair import activate_command
    from tffix.shellquote import Dialect

    prefix = tmp_path / HOSTILE_DIR / "env"
    command = activate_command(prefix, conda=True, active=False, shell=Dialect.POSIX)
    lines = ['conda() { printf "<%s>" "$@"; echo; }', command]
    assert f"<deactivate>\n<activate><{prefix}>" in bash(lines, tmp_path)


@pytest.mark.slow
def test_create_venv_failure_hint_removes_only_the_new_venv(tmp_path: Path) -> None:
    """The audit's reproducer: `remove it with rm -rf /srv/my proj/new` deleted other things."""
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    work = tmp_path / "work"
    (work / "proj" / "new").mkdir(parents=True)  # what the unquoted hint would delete
    (tmp_path / "my").mkdir()
    dest = tmp_path / "my proj" / "new"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "SHELL")}
    env.update({"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path), "SHELL": "/bin/bash"})
    proc = subprocess.run(
        [sys.executable, "-m", "tffix", "--python", sys.executable, "--create-venv", str(dest)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode != 0 and dest.is_dir(), proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("tffix: error: ") and "remove it with " in error, proc.stderr
    hint = error.split("remove it with ", 1)[1].removesuffix(")")
    bash([hint], work)
    assert not dest.exists()
    assert (work / "proj" / "new").is_dir() and (tmp_path / "my").is_dir()
