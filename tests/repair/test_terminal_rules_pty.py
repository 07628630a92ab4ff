"""Who is asked is decided by stdin and the controlling terminal, not by stdout.

In a real pseudo-terminal (pexpect) on the simulated machine: with stdout sent to a file
(``tffix > out``, ``tffix --json > out``) the person at the terminal is still asked, there,
with the plan in view; the answer is honoured, and the file holds the report (or the one JSON
document) and none of the conversation. ``undo`` asks the same way.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from tests.harness.sim import pip_env

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.slow

SCENARIO = "cuda-visible-devices-minus-one"  # one safe step: unset the variable in activate
DOWN, ENTER = "\x1b[B", "\r"


def _spawn(sim, args: list[str], out: Path):  # type: ignore[no-untyped-def]
    """``tffix ARGS > OUT`` through a real shell, stdin and the terminal a pty."""
    env = {**sim.env, **pip_env(sim.index), "TERM": "xterm", "COLUMNS": "200", "LINES": "50"}
    env["TFFIX_SYSROOT"] = str(sim.root)
    argv = [sys.executable, "-m", "tffix", *args, "--venv", str(sim.venv)]
    return pexpect.spawn(
        "sh",
        ["-c", f"exec {shlex.join(argv)} > {shlex.quote(str(out))}"],
        env=env,
        cwd=str(sim.root / "home"),
        encoding="utf-8",
        timeout=180,
        dimensions=(50, 200),
    )


def _finish(child) -> str:  # type: ignore[no-untyped-def]
    child.expect(pexpect.EOF)
    return str(child.before)


def test_redirected_report_still_asks_on_the_terminal_and_applies(make_scenario, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim = make_scenario(SCENARIO)
    activate = (sim.venv / "bin" / "activate").read_bytes()
    out = tmp_path / "report.txt"
    child = _spawn(sim, [], out)
    try:
        child.expect("Plan:")  # shown on the terminal, since the report goes to the file
        child.expect(r"Apply the 1 step tffix can make\?")
        child.send(ENTER)  # "Apply all (1)"
        # the re-observation after step 1 reveals an entry point still masked: apply that too
        while child.expect([r"Apply the \d+ steps? tffix can make\?", pexpect.EOF]) == 0:
            child.send(ENTER)
        screen = str(child.before)
    finally:
        child.close()
    report = out.read_text()
    assert child.exitstatus == 0, screen + report
    assert "no terminal to ask" not in screen + report
    assert "Apply the" not in report  # the conversation stays off stdout
    assert "Plan:" in report and "Steps:" in report
    assert "step 1: applied: " in report
    assert (sim.venv / "bin" / "activate").read_bytes() != activate  # the answer was honoured

    # undo asks on the terminal too; "no" changes nothing and says so in the JSON document
    changed = (sim.venv / "bin" / "activate").read_bytes()
    undo_out = tmp_path / "undo.json"
    child = _spawn(sim, ["undo", "--json"], undo_out)
    try:
        child.expect(r"Undo run \S+\? \[y/N\]")
        child.sendline("n")
        screen = _finish(child)
    finally:
        child.close()
    doc = json.loads(undo_out.read_text())  # the whole of stdout is one JSON document
    assert doc["undone"] is False, screen
    assert child.exitstatus == 1
    assert (sim.venv / "bin" / "activate").read_bytes() == changed


def test_json_on_a_terminal_asks_there_and_stdout_is_only_json(make_scenario, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim = make_scenario(SCENARIO)
    activate = (sim.venv / "bin" / "activate").read_bytes()
    out = tmp_path / "outcome.json"
    child = _spawn(sim, ["--json"], out)
    try:
        child.expect("Plan:")
        child.expect(r"Apply the 1 step tffix can make\?")
        child.send(DOWN + DOWN + DOWN + ENTER)  # "Quit"
        screen = _finish(child)
    finally:
        child.close()
    text = out.read_text()
    doc = json.loads(text)  # nothing but the one document: json.loads refuses anything more
    assert doc["schema"] == "tffix.outcome/1", screen
    assert "refused" not in doc
    assert [s["status"] for s in doc["steps"] if s["step"] == 1] == ["declined"], doc
    assert child.exitstatus == 1
    assert (sim.venv / "bin" / "activate").read_bytes() == activate


def test_the_download_size_is_said_before_asking(make_scenario, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """tensorflow-cpu: the reinstall fetches tensorflow and its nvidia-* wheels; the figure
    comes before the question (the files of the local index are small; real ones are not)."""
    sim = make_scenario("tf-cpu-only-package")
    out = tmp_path / "report.txt"
    child = _spawn(sim, [], out)
    try:
        child.expect(r"About \d+(\.\d)? [kMG]B to download for step (\d+) \((\d+) files\)\.")
        step, files = child.match.group(2), int(child.match.group(3))
        child.expect(r"Apply the 2 steps tffix can make\?")
        child.send(DOWN + DOWN + DOWN + ENTER)  # "Quit"
        screen = _finish(child)
    finally:
        child.close()
    assert files > 1, screen  # tensorflow and the CUDA wheels it pins
    assert f"{step}. [safe] Reinstall TensorFlow" in screen + out.read_text()
