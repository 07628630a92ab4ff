"""`tffix explain` at a terminal: it says how to end the paste (on stderr, so a redirected
report stays clean), and a fixable cause in the text comes with what to run."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

LOG = (
    "W tensorflow/core/common_runtime/gpu/gpu_device.cc:2251] Cannot dlopen some GPU "
    "libraries. Please make sure the missing libraries mentioned above are installed properly\n"
    "Skipping registering GPU devices...\n"
)
TFFIX = [sys.executable, "-m", "tffix"]


def test_terminal_is_told_to_paste_then_ctrl_d(tmp_path: Path) -> None:
    out = tmp_path / "report.txt"
    # stdout to a file, stdin and stderr the terminal: the prompt must still reach the person
    cmd = f"{shlex.join([*TFFIX, 'explain'])} > {shlex.quote(str(out))}"
    child = pexpect.spawn("sh", ["-c", cmd], encoding="utf-8", timeout=60, env=dict(os.environ))
    child.expect("paste the log, then press Ctrl-D")
    for line in LOG.splitlines():
        child.sendline(line)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    report = out.read_text()
    assert "paste the log" not in report
    assert "[cuda-libs-missing]" in report
    assert "run `tffix --dry-run` with its venv active" in report


def test_piped_input_gets_no_prompt() -> None:
    proc = subprocess.run(
        [*TFFIX, "explain"], input=LOG, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1
    assert "paste the log" not in proc.stderr + proc.stdout
    assert "tffix --dry-run" in proc.stdout


def test_no_hint_when_nothing_is_fixable_in_the_venv() -> None:
    proc = subprocess.run(
        [*TFFIX, "explain"],
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "tffix --dry-run" not in proc.stdout
