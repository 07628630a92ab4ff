"""The interactive flow in a real pseudo-terminal (pexpect) on the simulated machine.

``tffix`` shows the diagnosis and the plan, asks with questionary; the test picks "Choose
steps", unticks one step and keeps the rest, then reads the outcome. Without a
terminal the same command prints the plan and refuses, naming ``--yes``.
"""

from __future__ import annotations

import re
import sys

import pytest

from tests.harness.sim import pip_env

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.slow

SCENARIO = "cudnn-version-mismatch-cudnn9-under-216"  # plan: pip install, then a prepend
DOWN, ENTER = "\x1b[B", "\r"


def test_choose_steps_decline_one_apply_the_rest(make_scenario) -> None:  # type: ignore[no-untyped-def]
    """Choose steps: untick the second offered step, keep the rest; the GPU works after."""
    sim = make_scenario(SCENARIO)
    scripts_before = (sim.venv / "bin" / "activate").read_bytes()
    freeze_before = sim.pip("freeze", "--all").stdout
    env = {**sim.env, **pip_env(sim.index), "TERM": "xterm", "COLUMNS": "200", "LINES": "50"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "tffix", "--venv", str(sim.venv)],
        env=env,
        cwd=str(sim.root / "home"),
        encoding="utf-8",
        timeout=240,
        dimensions=(50, 200),
    )
    try:
        child.expect("Plan:")
        child.expect(r"Apply the (\d+) steps tffix can make\?")
        first, second = re.findall(r"(\d+)\. \[safe\]", child.before)[:2]
        child.send(DOWN + DOWN + ENTER)  # "Choose steps"
        child.expect(r"Which steps\?")
        child.send(DOWN + " " + ENTER)  # untick the second offered step
        child.expect("Steps:")
        child.expect(pexpect.EOF)
        transcript = child.before
    finally:
        child.close()
    decided = {
        line.split(":")[0].strip(): line.strip()
        for line in transcript.splitlines()
        if line.strip().startswith("step ")
    }
    assert ": declined" in decided[f"step {second}"]
    assert ": applied: " in decided[f"step {first}"]
    others = [v for k, v in decided.items() if k not in (f"step {first}", f"step {second}")]
    assert all(": declined" not in v for v in others)
    assert "Findings:" in transcript
    assert "Verified: TensorFlow lists /physical_device:GPU:0" in transcript
    assert child.exitstatus == 0
    assert (sim.venv / "bin" / "activate").read_bytes() == scripts_before  # the prepend: declined
    assert sim.pip("freeze", "--all").stdout != freeze_before  # the pip step: applied


def test_without_a_terminal_it_prints_the_plan_and_refuses(make_scenario) -> None:  # type: ignore[no-untyped-def]
    sim = make_scenario(SCENARIO)
    before = sim.pip("freeze", "--all").stdout
    activate = (sim.venv / "bin" / "activate").read_bytes()
    done = sim.run_tffix()
    assert done.returncode == 2
    assert "Plan:" in done.stdout
    assert "tffix --yes" in done.stderr
    assert sim.pip("freeze", "--all").stdout == before
    assert (sim.venv / "bin" / "activate").read_bytes() == activate
