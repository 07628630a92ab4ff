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


def test_an_interrupted_run_is_offered_for_undo(tmp_path, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    """kill -9 between steps; the next interactive run asks, and "Undo it" restores the venv."""
    import json
    import os
    import signal
    import subprocess

    from tests.conftest import ROOT
    from tests.repair.conftest import make_demo_venv
    from tffix.effects.journal import journal_path

    demo = make_demo_venv(tmp_path, wheelhouse)
    before, scripts = demo.freeze(), demo.scripts()
    plan = [
        {
            "kind": "env-unset",
            "summary": "unset CVD",
            "resolves": "cvd",
            "variable": "CUDA_VISIBLE_DEVICES",
        },
        {"kind": "env-set", "summary": "set X", "resolves": "x", "variable": "X", "value": "1"},
    ]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.repair.driver",
            str(demo.venv),
            json.dumps(plan),
            "--pause-after-done",
            "30",
        ],
        cwd=ROOT,
        env={**demo.env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    journal = journal_path(demo.venv)
    for _ in range(3000):
        if journal.exists() and '"type":"step-done"' in journal.read_text():
            break
        pexpect.run("sleep 0.01")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert demo.scripts() != scripts
    child = pexpect.spawn(
        sys.executable,
        ["-m", "tffix", "--venv", str(demo.venv)],
        env={**demo.env, "TERM": "xterm"},
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=240,
        dimensions=(50, 200),
    )
    try:
        child.expect(r"was interrupted between steps\. What now\?")
        child.send(ENTER)  # "Undo it"
        while child.expect([r"Apply the \d+ steps? tffix can make\?", pexpect.EOF]) == 0:
            child.send(DOWN + DOWN + DOWN + ENTER)  # Quit: change nothing more
    finally:
        child.close()
    assert demo.freeze() == before
    assert demo.scripts() == scripts


def _spawn(sim):  # type: ignore[no-untyped-def]
    env = {**sim.env, **pip_env(sim.index), "TERM": "xterm", "COLUMNS": "200", "LINES": "50"}
    return pexpect.spawn(
        sys.executable,
        ["-m", "tffix", "--venv", str(sim.venv)],
        env=env,
        cwd=str(sim.root / "home"),
        encoding="utf-8",
        timeout=120,
        dimensions=(50, 200),
    )


def _imports(sim) -> bool:  # type: ignore[no-untyped-def]
    return sim.run([str(sim.python), "-c", "import tensorflow"]).returncode == 0


def _numbers(plan_text: str) -> tuple[str, str]:
    """(the removal's number, the install's number) in the plan shown."""
    removal = re.search(r"(\d+)\. \[safe\] Remove tensorflow-cpu", plan_text)
    install = re.search(r"(\d+)\. \[safe\] Reinstall TensorFlow", plan_text)
    assert removal and install, plan_text
    return removal.group(1), install.group(1)


def test_step_by_step_declining_a_prerequisite_drops_its_dependant(make_scenario) -> None:  # type: ignore[no-untyped-def]
    """tensorflow-cpu: one step removes it, the next installs the GPU build into the same
    tensorflow/ folder. Declining the removal must not leave the install to be accepted on its
    own (it would share, then on rollback delete, tensorflow-cpu's files)."""
    sim = make_scenario("tf-cpu-only-package")
    freeze_before = sim.pip("freeze", "--all").stdout
    child = _spawn(sim)
    try:
        child.expect(r"Apply the 2 steps tffix can make\?")
        removal, install = _numbers(child.before)
        child.send(DOWN + ENTER)  # "Go step by step"
        child.expect(rf"Step {removal}: .*together with step {install}")  # says what comes too
        child.send("n" + ENTER)
        child.expect("Steps:")
        child.expect(pexpect.EOF)
        transcript = child.before
    finally:
        child.close()
    assert f"Step {install}:" not in transcript  # never asked about the dependant alone
    assert re.search(rf"step {install}: declined: .*it needs step {removal}", transcript)
    assert sim.pip("freeze", "--all").stdout == freeze_before
    assert _imports(sim)


def test_choosing_a_dependant_brings_its_prerequisite(make_scenario) -> None:  # type: ignore[no-untyped-def]
    """Choose steps: untick the removal, keep the install (which needs it): both are applied,
    the prompt says so, and TensorFlow works on the GPU after."""
    sim = make_scenario("tf-cpu-only-package")
    child = _spawn(sim)
    try:
        child.expect(r"Apply the 2 steps tffix can make\?")
        removal, install = _numbers(child.before)
        child.send(DOWN + DOWN + ENTER)  # "Choose steps"
        child.expect(rf"{install}\. Reinstall TensorFlow.*\(needs {removal}\)")
        child.send(" " + ENTER)  # untick the first offered step: the removal
        child.expect(rf"step {removal}: applied too: step {install} needs it")
        child.expect("Steps:")
        child.expect(pexpect.EOF)
        transcript = child.before
    finally:
        child.close()
    assert re.search(rf"step {removal}: applied: ", transcript), transcript
    assert re.search(rf"step {install}: applied: ", transcript), transcript
    assert _imports(sim)
    assert sim.tf_report().gpus == ["/physical_device:GPU:0"]


def test_ctrl_c_at_the_first_question_exits_130_and_changes_nothing(make_scenario) -> None:  # type: ignore[no-untyped-def]
    """The README's exit-code table: 130 is "interrupted", wherever Ctrl-C lands."""
    sim = make_scenario("tf-cpu-only-package")
    freeze_before = sim.pip("freeze", "--all").stdout
    scripts_before = (sim.venv / "bin" / "activate").read_bytes()
    child = _spawn(sim)
    try:
        child.expect(r"Apply the \d+ steps? tffix can make\?")
        child.sendintr()
        child.expect(pexpect.EOF)
        transcript = child.before
    finally:
        child.close()
    assert child.exitstatus == 130, transcript
    assert "interrupted" in transcript and "Cancelled by user" not in transcript
    assert sim.pip("freeze", "--all").stdout == freeze_before
    assert (sim.venv / "bin" / "activate").read_bytes() == scripts_before
