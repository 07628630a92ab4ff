"""The interactive flow in a real pseudo-terminal (pexpect) on the simulated machine.

``tffix`` shows the diagnosis and the plan, asks with questionary; the test picks "Go step by
step", declines the first offered step and accepts the next, then reads the outcome. Without a
terminal the same command prints the plan and refuses, naming ``--yes``.
"""

from __future__ import annotations

import sys

import pytest

from tests.harness.sim import pip_env

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.slow

SCENARIO = "cuda-visible-devices-minus-one"
DOWN, ENTER = "\x1b[B", "\r"


def test_step_by_step_decline_one_apply_the_rest(make_scenario) -> None:  # type: ignore[no-untyped-def]
    sim = make_scenario(SCENARIO)
    scripts_before = (sim.venv / "bin" / "activate").read_bytes()
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
    answered: list[str] = []
    try:
        child.expect("Plan:")
        child.expect(r"Unset CUDA_VISIBLE_DEVICES")
        child.expect(r"Apply the (\d+) steps tffix can make\?")
        offered = int(child.match.group(1))
        child.send(DOWN)
        child.send(ENTER)  # "Go step by step"
        child.expect(r"Step 2: Unset CUDA_VISIBLE_DEVICES in the venv's activate scripts\?")
        child.send("n")
        answered.append("n")
        seen = {"2"}
        while (
            child.expect([r"Step (\d+): Put [^?]* first on LD_LIBRARY_PATH[^?]*\?", "Steps:"]) == 0
        ):
            number = child.match.group(1)
            if number in seen:  # questionary redraws an answered question
                continue
            seen.add(number)
            child.send("y")
            answered.append("y")
        child.expect(pexpect.EOF)
        transcript = child.before
    finally:
        child.close()
    assert answered == ["n"] + ["y"] * (offered - 1)
    assert "step 2: declined: Unset CUDA_VISIBLE_DEVICES" in transcript
    assert transcript.count(": applied: Put ") == offered - 1
    assert "Findings:" in transcript and "still present" in transcript
    assert child.exitstatus == 1  # CUDA_VISIBLE_DEVICES=-1 still hides the GPU
    after = (sim.venv / "bin" / "activate").read_bytes()
    assert after != scripts_before and b"unset CUDA_VISIBLE_DEVICES" not in after


def test_without_a_terminal_it_prints_the_plan_and_refuses(make_scenario) -> None:  # type: ignore[no-untyped-def]
    sim = make_scenario(SCENARIO)
    before = sim.pip("freeze", "--all").stdout
    activate = (sim.venv / "bin" / "activate").read_bytes()
    done = sim.run_tffix()
    assert done.returncode == 2
    assert "Unset CUDA_VISIBLE_DEVICES" in done.stdout
    assert "tffix --yes" in done.stderr
    assert sim.pip("freeze", "--all").stdout == before
    assert (sim.venv / "bin" / "activate").read_bytes() == activate
