"""Effects on real venvs with real pip against a local wheel folder: apply, revert, undo, faults.

Every fault case checks the same property: afterwards the venv is either repaired or exactly
as before (``pip freeze --all`` and the activate scripts byte for byte), and it is counted in
the fault report printed at the end of the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import ROOT
from tests.repair.conftest import DemoVenv, make_demo_venv, record_fault
from tffix import cli
from tffix import transaction as core
from tffix.effects.journal import Journal, RunRecorder, journal_path, runs
from tffix.effects.lock import hold
from tffix.effects.pip import PackageManager, uv_flags
from tffix.effects.steps import Workspace
from tffix.errors import UsageError
from tffix.model import Diagnosis, Finding, FixSide, PlanStep, Safety, Severity, StepKind

pytestmark = pytest.mark.slow

INSTALL_DEMO2 = PlanStep(
    StepKind.PIP_INSTALL,
    "install demo 2.0",
    Safety.SAFE,
    ("old-demo",),
    requirements=("demo==2.0",),
)
UNSET_CVD = PlanStep(
    StepKind.ENV_UNSET,
    "unset CUDA_VISIBLE_DEVICES",
    Safety.SAFE,
    ("cvd",),
    variable="CUDA_VISIBLE_DEVICES",
)


def workspace(demo: DemoVenv) -> Workspace:
    return Workspace(
        demo.venv, False, PackageManager(demo.python, demo.venv, demo.env, say=lambda _t: None)
    )


def scripted(plan: tuple[PlanStep, ...], fixed: set[str] | None = None) -> Diagnosis:
    ids = sorted({r for s in plan for r in s.resolves} - (fixed or set()))
    return Diagnosis(
        gpu_visible=not ids,
        findings=tuple(Finding(i, Severity.ERROR, FixSide.VENV, i) for i in ids),
        plan=plan,
    )


def run_repair(demo: DemoVenv, plan: tuple[PlanStep, ...]) -> core.Outcome:
    ws = workspace(demo)
    fixed: set[str] = set()
    last: list[PlanStep] = []

    def action(step: PlanStep) -> Any:
        last.append(step)  # the step observe() sees applied (a failed one is never observed)
        return ws.action(step)

    def observe() -> Diagnosis:
        fixed.update(last[-1].resolves)
        return scripted(plan, fixed)

    return core.repair(
        scripted(plan),
        confirm=core.AutoConfirm(),
        actions=action,
        observe=core.observer(observe),
        recorder=RunRecorder(Journal(journal_path(demo.venv))),
        capture=ws.capture,
    )


def _uv() -> str | None:
    return shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))


@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_install_and_revert_restore_freeze_exactly(tool: str, demo_venv: DemoVenv) -> None:
    ws = workspace(demo_venv)
    if tool == "uv":
        uv = _uv()
        if uv is None:
            pytest.skip("uv is not installed")
        env = {
            **demo_venv.env,
            "PATH": f"{Path(uv).parent}:{demo_venv.env['PATH']}",
            "PIP_CONFIG_FILE": os.devnull,
        }
        ws = Workspace(
            demo_venv.venv,
            False,
            PackageManager(demo_venv.python, demo_venv.venv, env, say=lambda _t: None),
        )
    assert ws.pip.tool == tool
    before = demo_venv.freeze()
    action = ws.action(INSTALL_DEMO2)
    assert action.check() is None
    action.apply()
    assert "demo==2.0" in demo_venv.freeze() and "demodep==1.0" in demo_venv.freeze()
    assert action.revert() == []
    assert demo_venv.freeze() == before


def test_missing_wheel_fails_and_changes_nothing(demo_venv: DemoVenv) -> None:
    before, scripts = demo_venv.freeze(), demo_venv.scripts()
    step = PlanStep(
        StepKind.PIP_INSTALL,
        "install demo 9.9",
        Safety.SAFE,
        ("old-demo",),
        requirements=("demo==9.9",),
    )
    outcome = run_repair(demo_venv, (step, UNSET_CVD))
    assert outcome.steps[0].status is core.StepStatus.FAILED
    assert "demo==9.9" in outcome.steps[0].message
    assert outcome.steps[1].status is core.StepStatus.APPLIED
    assert demo_venv.freeze() == before
    lost = demo_venv.freeze() != before
    record_fault("pip step fails (wheel missing from the index)", lost)
    story = runs(Journal(journal_path(demo_venv.venv)).records())[-1]
    assert [r["step"] for r in story.steps_reverted] == [1]
    assert story.end is not None
    assert demo_venv.scripts() != scripts  # step 2 was applied


def test_uninstall_and_revert(demo_venv: DemoVenv) -> None:
    ws = workspace(demo_venv)
    before = demo_venv.freeze()
    step = PlanStep(StepKind.PIP_UNINSTALL, "remove demo", Safety.SAFE, ("x",), packages=("demo",))
    action = ws.action(step)
    assert action.check() is None
    action.apply()
    assert "demo==" not in demo_venv.freeze()
    assert ws.action(step).check() == "none of demo is installed"
    assert action.revert() == []
    assert demo_venv.freeze() == before


def test_env_edit_in_every_script_is_idempotent_and_reverts_bytes(demo_venv: DemoVenv) -> None:
    ws = workspace(demo_venv)
    scripts = demo_venv.scripts()
    action = ws.action(UNSET_CVD)
    assert action.check() is None
    action.apply()
    after = demo_venv.scripts()
    shells = ("activate", "activate.fish", "activate.csh", "activate.ps1")
    assert all(b"# >>> tffix >>>" in after[n] for n in shells)
    assert all(after[n] == scripts[n] for n in after if n not in shells)
    assert ws.action(UNSET_CVD).check() == "already set in the activate scripts"
    mode = (demo_venv.venv / "bin" / "activate").stat().st_mode
    assert action.revert() == []
    assert demo_venv.scripts() == scripts
    assert (demo_venv.venv / "bin" / "activate").stat().st_mode == mode


def _chattr(path: Path, flag: str) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_read_only_activate_script_rolls_back_the_others(demo_venv: DemoVenv) -> None:
    """``chattr +i`` (root ignores mode bits): the fish script cannot be replaced."""
    fish = demo_venv.venv / "bin" / "activate.fish"
    if not _chattr(fish, "+i"):
        pytest.skip("chattr +i is not available here")
    try:
        before, scripts = demo_venv.freeze(), demo_venv.scripts()
        outcome = run_repair(demo_venv, (UNSET_CVD,))
        assert outcome.steps[0].status is core.StepStatus.FAILED
        assert "activate.fish" in outcome.steps[0].message
        lost = demo_venv.scripts() != scripts or demo_venv.freeze() != before
        record_fault("read-only (immutable) activate.fish", lost)
        assert not lost
        assert not list((demo_venv.venv / "bin").glob("*.tffix-tmp"))
    finally:
        _chattr(fish, "-i")


def test_lock_excludes_a_second_run(tmp_path: Path) -> None:
    with hold(tmp_path), pytest.raises(UsageError, match="another tffix run holds"), hold(tmp_path):
        pass
    with hold(tmp_path):  # released
        pass


def test_journal_ignores_a_torn_last_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.append({"type": "run-start", "run": "r1", "state": {}})
    with open(journal.path, "a") as fh:
        fh.write('{"type": "step-st')
    assert [r["type"] for r in journal.records()] == ["run-start"]
    assert runs(journal.records())[0].interrupted


def test_uv_flags_translate_pip_variables() -> None:
    env = {
        "PIP_INDEX_URL": "https://i/simple",
        "PIP_EXTRA_INDEX_URL": "https://a https://b",
        "PIP_FIND_LINKS": "/w",
        "PIP_NO_INDEX": "1",
    }
    assert uv_flags(env) == [
        "--index-url",
        "https://i/simple",
        "--extra-index-url",
        "https://a",
        "--extra-index-url",
        "https://b",
        "--find-links",
        "/w",
        "--no-index",
    ]


def test_uv_is_not_used_when_a_pip_config_file_applies(tmp_path: Path, demo_venv: DemoVenv) -> None:
    fake_uv = tmp_path / "bin" / "uv"
    fake_uv.parent.mkdir()
    fake_uv.write_text("#!/bin/sh\nexit 1\n")
    fake_uv.chmod(0o755)
    env = {
        **demo_venv.env,
        "PATH": f"{fake_uv.parent}:{demo_venv.env['PATH']}",
        "PIP_CONFIG_FILE": os.devnull,
    }
    assert PackageManager(demo_venv.python, demo_venv.venv, env).tool == "uv"
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://example.invalid/simple\n")
    env["PIP_CONFIG_FILE"] = str(conf)
    assert PackageManager(demo_venv.python, demo_venv.venv, env).tool == "pip"
    assert PackageManager(demo_venv.python, demo_venv.venv, env, allow_uv=False).tool == "pip"


def _main(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> int:
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return cli.main(argv)


def test_undo_restores_the_last_run_exactly_and_only_once(
    demo_venv: DemoVenv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before, scripts = demo_venv.freeze(), demo_venv.scripts()
    outcome = run_repair(demo_venv, (INSTALL_DEMO2, UNSET_CVD))
    assert outcome.exit_code == 0 and outcome.changed
    assert demo_venv.freeze() != before and demo_venv.scripts() != scripts
    assert _main(["undo", "--venv", str(demo_venv.venv)], demo_venv.env, monkeypatch) == 0
    assert demo_venv.freeze() == before
    assert demo_venv.scripts() == scripts
    assert "Restored" in capsys.readouterr().out
    assert _main(["undo", "--venv", str(demo_venv.venv)], demo_venv.env, monkeypatch) == 0
    assert "Nothing to undo" in capsys.readouterr().out


# --------------------------------------------------------------------------- kill -9


def _driver(demo: DemoVenv, plan: list[dict[str, Any]], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.repair.driver", str(demo.venv), json.dumps(plan), *extra],
        cwd=ROOT,
        env={**demo.env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(journal: Path, kind: str, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if journal.exists() and f'"type":"{kind}"' in journal.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(
                f"driver ended before {kind}: {proc.stderr.read() if proc.stderr else ''}"
            )
        time.sleep(0.005)
    raise AssertionError(f"no {kind} in the journal")


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def _wait_for_pip_child(proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until the driver's pip child runs (so the kill lands inside the pip step)."""
    end = time.monotonic() + timeout
    parent = psutil.Process(proc.pid)
    while time.monotonic() < end:
        if any("pip" in _cmdline(child) for child in parent.children(recursive=True)):
            return
        time.sleep(0.002)
    raise AssertionError("pip never started")


def _wait_for_pip_children(venv: Path, timeout: float = 120) -> None:
    """kill -9 of tffix leaves its pip child running (own session): let it end."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        busy = []
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info.get("cmdline") or []
            if any(str(venv) in part for part in cmd) and "pip" in cmd:
                busy.append(proc)
        if not busy:
            return
        time.sleep(0.1)


PLAN_KILL = [
    {
        "kind": "env-unset",
        "summary": "unset CVD",
        "resolves": "cvd",
        "variable": "CUDA_VISIBLE_DEVICES",
    },
    {
        "kind": "pip-install",
        "summary": "install bigdemo",
        "resolves": "big",
        "requirements": ["bigdemo==1.0"],
    },
]


@pytest.mark.parametrize("when", ["during a pip step", "between steps"])
def test_kill_9_then_next_run_reports_and_undo_restores(
    when: str,
    tmp_path: Path,
    wheelhouse: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo = make_demo_venv(tmp_path, wheelhouse)
    before, scripts = demo.freeze(), demo.scripts()
    journal = journal_path(demo.venv)
    if when == "between steps":
        proc = _driver(demo, PLAN_KILL, "--pause-after-done", "30")
        _wait_for(journal, "step-done", proc)
    else:
        proc = _driver(demo, PLAN_KILL[1:] + PLAN_KILL[:1])
        _wait_for(journal, "step-start", proc)
        _wait_for_pip_child(proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_for_pip_children(demo.venv)
    story = runs(Journal(journal).records())[-1]
    assert story.interrupted
    # a dry run already says what the next repair will refuse over, and the ways out
    _main(["--dry-run", "--no-scan", "--venv", str(demo.venv)], demo.env, monkeypatch)
    shown = capsys.readouterr().out
    assert "was interrupted" in shown and "tffix undo" in shown and "--resume" in shown
    # the next run notices, refuses without a terminal, and names the ways out
    code = _main(["--yes", "--venv", str(demo.venv)], demo.env, monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and "was interrupted" in err and "tffix undo" in err and "--resume" in err
    assert _main(["undo", "--venv", str(demo.venv)], demo.env, monkeypatch) == 0
    lost = demo.freeze() != before or demo.scripts() != scripts
    record_fault(f"kill -9 {when}, then tffix undo", lost)
    assert not lost
    assert not runs(Journal(journal).records())[-1].interrupted


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
        ).returncode
        == 0
    )


def test_full_disk_during_pip_step(tmp_path: Path, wheelhouse: Path) -> None:
    """The venv on a small tmpfs, filled up: pip fails with ENOSPC; the venv is as before."""
    mnt = tmp_path / "small"
    if os.geteuid() != 0 or not _mount_tmpfs(mnt, "64m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        demo = make_demo_venv(mnt, wheelhouse)
        before, scripts = demo.freeze(), demo.scripts()
        # leave ~6 MB: enough for the journal and pip's own work, not for the 24 MB wheel
        free = shutil.disk_usage(mnt).free
        with open(mnt / "filler", "wb") as fh:
            fh.truncate(0)
            fh.write(b"\0" * max(0, free - (6 << 20)))
        proc = _driver(demo, PLAN_KILL[1:])
        out, err = proc.communicate(timeout=300)
        (mnt / "filler").unlink()
        doc = json.loads(out.strip().splitlines()[-1])
        assert doc["steps"][0]["status"] in ("failed", "rollback incomplete"), err
        assert "No space left" in doc["steps"][0]["message"] + err
        lost = demo.freeze() != before or demo.scripts() != scripts
        record_fault("disk full during a pip step", lost)
        assert not lost, err
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@contextlib.contextmanager
def _stalling_index(folder: Path, stall: str) -> Iterator[tuple[str, threading.Event]]:
    """An HTTP find-links page for *folder* whose file *stall* is not served until the event
    is set: a pip step that downloads it is still running, whatever the machine's speed."""
    release = threading.Event()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, directory=str(folder), **kw)

        def do_GET(self) -> None:
            if stall in self.path:
                release.wait(120)
            super().do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", release
    finally:
        release.set()
        server.shutdown()


def test_ctrl_c_during_a_pip_step_stops_pip_and_rolls_back(
    tmp_path: Path, wheelhouse: Path
) -> None:
    """pip finishes its install, then the step lingers (the driver's TFFIX_TEST_PIP_MARK):
    the SIGINT lands inside the pip step, with bigdemo on disk, however fast pip was."""
    demo = make_demo_venv(tmp_path, wheelhouse)
    before, scripts = demo.freeze(), demo.scripts()
    with _stalling_index(wheelhouse, "bigdemo") as (url, release):
        # pip waits for the big wheel until after the Ctrl-C: the step is surely in progress
        stalled = dataclasses.replace(demo, env={**demo.env, "PIP_FIND_LINKS": url})
        proc = _driver(stalled, PLAN_KILL[:1] + PLAN_KILL[1:])  # env step, then the pip step
        journal = journal_path(demo.venv)
        _wait_for(journal, "step-done", proc)
        _wait_for_pip_child(proc)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        release.set()
    assert proc.returncode == 130, err
    doc = json.loads(out.strip().splitlines()[-1])
    assert [s["status"] for s in doc["steps"]] == ["applied", "interrupted"]
    story = runs(Journal(journal).records())[-1]
    assert story.end is not None and story.end["status"] == "interrupted"
    assert [r["reason"] for r in story.steps_reverted] == ["interrupted"]
    after = demo.freeze()
    lost = after != before  # step 1 (activate scripts) is kept: a whole, verified step
    record_fault("Ctrl-C during a pip step", lost)
    assert not lost, err
    assert demo.scripts() != scripts


def test_conda_environment_gets_activate_d_scripts(tmp_path: Path) -> None:
    prefix = tmp_path / "envs" / "tf"
    (prefix / "conda-meta").mkdir(parents=True)
    ws = Workspace(prefix, True, PackageManager(prefix / "bin" / "python", prefix, {}))
    action = ws.action(UNSET_CVD)
    assert action.check() is None
    action.apply()
    act = prefix / "etc" / "conda" / "activate.d" / "tffix.sh"
    deact = prefix / "etc" / "conda" / "deactivate.d" / "tffix.sh"
    assert b"unset CUDA_VISIBLE_DEVICES" in act.read_bytes()
    assert b"_tffix_restore" in deact.read_bytes()
    assert ws.action(UNSET_CVD).check() == "already set in the activate scripts"
    assert action.revert() == []
    assert not act.exists() and not deact.exists()


def test_resume_rolls_back_the_unfinished_step_and_undo_still_reaches_the_start(
    tmp_path: Path,
    wheelhouse: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo = make_demo_venv(tmp_path, wheelhouse)
    before, scripts = demo.freeze(), demo.scripts()
    journal = journal_path(demo.venv)
    proc = _driver(demo, PLAN_KILL)  # env step done, then killed inside the pip step
    _wait_for(journal, "step-done", proc)
    _wait_for_pip_child(proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_for_pip_children(demo.venv)
    _main(["--yes", "--resume", "--venv", str(demo.venv)], demo.env, monkeypatch)
    err = capsys.readouterr().err
    assert "rolled back the unfinished step 2" in err
    assert "bigdemo" not in demo.freeze()  # the unfinished pip step is undone
    assert demo.scripts() != scripts  # the finished env step stays
    stories = runs(Journal(journal).records())
    assert stories[0].end is not None and stories[0].end["status"] == "resumed"
    assert _main(["undo", "--venv", str(demo.venv)], demo.env, monkeypatch) == 0
    lost = demo.freeze() != before or demo.scripts() != scripts
    record_fault("kill -9 during a pip step, then tffix --resume, then tffix undo", lost)
    assert not lost


def test_a_run_whose_steps_were_all_rolled_back_is_not_the_one_undo_picks(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    for rec in (
        {"type": "run-start", "run": "a", "state": {"packages": {"x": "1"}}},
        {"type": "step-start", "run": "a", "step": 1, "state": {}},
        {"type": "step-done", "run": "a", "step": 1},
        {"type": "run-end", "run": "a", "status": "done", "exit_code": 0},
        {"type": "run-start", "run": "b", "state": {"packages": {"x": "2"}}},
        {"type": "step-start", "run": "b", "step": 1, "state": {}},
        {"type": "step-done", "run": "b", "step": 1},
        {"type": "step-reverted", "run": "b", "step": 1, "reason": "resolved nothing"},
        {"type": "run-end", "run": "b", "status": "done", "exit_code": 1},
    ):
        journal.append(rec)
    stories = runs(journal.records())
    assert [s.changed for s in stories] == [True, False]
