"""Fault injection over compound repairs: whatever breaks, undo (or --resume, then undo)
brings the venv back exactly.

Each case is drawn from a seeded generator (``TFFIX_FAULT_SEED``, default 10): a plan of two
to four steps from a pool (activate-script edits, installs that replace or add
distributions, an install over a folder another distribution shares, uninstalls), and one
fault: ``kill -9`` of the run at a random moment, ``kill -9`` aimed inside a pip step, a
failing pip step, a full disk, an immutable activate script, or ``kill -9`` of undo itself.
The run goes on a copy of one template venv (``demo 1.0`` and ``sharedpkg-cpu 1.0``); after
the fault, ``tffix undo`` (for some kills ``tffix --resume`` first) must leave
``pip freeze --all``, the activate scripts and every byte a ``RECORD`` lists as they were.
Every case is counted in the fault report at the end of the run.

CI runs ``TFFIX_FAULTS`` cases (default 8); ``TFFIX_FAULTS=60`` is the full run (README).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import ROOT
from tests.repair.conftest import DemoVenv, make_demo_venv, record_fault
from tffix import cli
from tffix.effects import stash
from tffix.effects.journal import Journal, journal_path, runs

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("TFFIX_FAULT_SEED", "10"))
CASES = int(os.environ.get("TFFIX_FAULTS", "8"))

POOL: list[dict[str, Any]] = [
    {"kind": "env-unset", "summary": "unset CVD", "variable": "CUDA_VISIBLE_DEVICES"},
    {
        "kind": "env-set",
        "summary": "set TF_X",
        "variable": "TF_FORCE_GPU_ALLOW_GROWTH",
        "value": "true",
    },
    {"kind": "pip-install", "summary": "demo 2.0", "requirements": ["demo==2.0"]},
    {"kind": "pip-install", "summary": "extra", "requirements": ["extra==1.0"]},
    {"kind": "pip-install", "summary": "bigdemo", "requirements": ["bigdemo==1.0"]},
    {"kind": "pip-install", "summary": "sharedpkg", "requirements": ["sharedpkg==1.0"]},
    {"kind": "pip-uninstall", "summary": "no demo", "packages": ["demo"]},
    {"kind": "pip-uninstall", "summary": "no sharedpkg-cpu", "packages": ["sharedpkg-cpu"]},
]
FAILING = {"kind": "pip-install", "summary": "demo 9.9", "requirements": ["demo==9.9"]}
FAULTS = [
    "kill",
    "kill",
    "kill-in-pip",
    "kill-in-pip",
    "pip-fails",
    "disk-full",
    "read-only",
    "kill-undo",
]


@dataclass(frozen=True)
class Case:
    number: int
    fault: str
    plan: list[dict[str, Any]]
    delay: float
    resume: bool
    free_mb: int
    script: str

    def __str__(self) -> str:
        steps = ", ".join(s["summary"] for s in self.plan)
        extra = f" after {self.delay:.2f}s" if "kill" in self.fault else ""
        then = "--resume, then undo" if self.resume else "undo"
        return f"#{self.number} {self.fault}{extra} during [{steps}], then {then}"


def cases(seed: int, count: int) -> list[Case]:
    rng = random.Random(seed)
    out = []
    for number in range(count):
        fault = FAULTS[number % len(FAULTS)] if number < len(FAULTS) else rng.choice(FAULTS)
        plan = [dict(s) for s in rng.sample(POOL, rng.randint(2, 4))]
        if fault == "pip-fails":
            plan.insert(rng.randint(0, len(plan)), dict(FAILING))
        if fault in ("kill-in-pip", "disk-full") and not any(
            s["summary"] == "bigdemo" for s in plan
        ):
            plan.insert(rng.randint(0, len(plan)), dict(POOL[4]))
        if fault == "read-only" and not any(s["kind"].startswith("env") for s in plan):
            plan.insert(rng.randint(0, len(plan)), dict(POOL[0]))
        for i, step in enumerate(plan):
            step["resolves"] = f"problem-{i}"
        out.append(
            Case(
                number,
                fault,
                plan,
                delay=rng.uniform(0.0, 6.0) if fault == "kill" else rng.uniform(0.0, 0.6),
                resume=fault.startswith("kill") and fault != "kill-undo" and rng.random() < 0.3,
                free_mb=rng.randint(2, 10),
                script=rng.choice(["activate", "activate.fish", "activate.csh", "activate.ps1"]),
            )
        )
    return out


# --------------------------------------------------------------------------- the venv


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> DemoVenv:
    demo = make_demo_venv(tmp_path_factory.mktemp("template"), wheelhouse)
    assert demo.pip("install", "sharedpkg-cpu==1.0").returncode == 0
    return demo


def clone(template: DemoVenv, where: Path) -> DemoVenv:
    """A copy of the template venv (virtualenv's python is a link; pip runs as ``-m pip``)."""
    venv = where / "venv"
    shutil.copytree(template.venv, venv, symlinks=True)
    return DemoVenv(venv, venv / "bin" / "python", dict(template.env))


def installed_bytes(demo: DemoVenv) -> dict[str, bytes]:
    out = {}
    for rel in stash.all_record_files(demo.venv):
        path = demo.venv / rel
        if path.is_file():
            out[rel] = path.read_bytes()
    return out


def state(demo: DemoVenv) -> tuple[str, dict[str, bytes], dict[str, bytes], list[str]]:
    return demo.freeze(), demo.scripts(), installed_bytes(demo), stash.tilde_entries(demo.venv)


# --------------------------------------------------------------------------- processes


def _driver(demo: DemoVenv, plan: list[dict[str, Any]]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.repair.driver", str(demo.venv), json.dumps(plan)],
        cwd=ROOT,
        env={**demo.env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _children_with(pid: int, word: str) -> bool:
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return False
    return any(word in " ".join(_cmdline(child)) for child in kids)


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def _wait_for_pip(proc: subprocess.Popen[str], timeout: float = 60) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if _children_with(proc.pid, "pip install"):
            return True
        time.sleep(0.002)
    return False


def _settle(venv: Path, timeout: float = 120) -> None:
    """A kill -9 leaves the pip child running (its own session): wait until it ends."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        busy = False
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info.get("cmdline") or []
            if any(str(venv) in part for part in cmd) and any("pip" in c for c in cmd):
                busy = True
                break
        if not busy:
            return
        time.sleep(0.05)


def _kill(proc: subprocess.Popen[str], venv: Path) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    _settle(venv)


def _main(argv: list[str], demo: DemoVenv, monkeypatch: pytest.MonkeyPatch) -> int:
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in demo.env.items():
        monkeypatch.setenv(key, value)
    return cli.main([*argv, "--venv", str(demo.venv)])


def _undo_all(demo: DemoVenv, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> list[str]:
    """``tffix undo`` until nothing is left; returns what it printed on error."""
    errors = []
    for _ in range(4):
        code = _main(["undo", "--yes"], demo, monkeypatch)
        out, err = capsys.readouterr()
        if code != 0:
            errors.append(f"undo exit {code}: {err.strip()[-300:]}")
            break
        if "Nothing to undo" in out:
            break
    return errors


# --------------------------------------------------------------------------- faults


def _chattr(path: Path, flag: str) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    return done.returncode == 0


def _inject(case: Case, demo: DemoVenv, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """Run the case's repair with its fault; leave the venv as the fault left it."""
    if case.fault == "kill":
        proc = _driver(demo, case.plan)
        time.sleep(case.delay)
        _kill(proc, demo.venv)
    elif case.fault == "kill-in-pip":
        proc = _driver(demo, case.plan)
        if _wait_for_pip(proc):
            time.sleep(case.delay)
        _kill(proc, demo.venv)
    elif case.fault in ("pip-fails", "read-only", "disk-full"):
        proc = _driver(demo, case.plan)
        proc.communicate(timeout=300)
    elif case.fault == "kill-undo":
        proc = _driver(demo, case.plan)
        proc.communicate(timeout=300)
        undo = subprocess.Popen(
            [sys.executable, "-m", "tffix", "undo", "--yes", "--venv", str(demo.venv)],
            env=demo.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.3 + case.delay * 2)
        if undo.poll() is None:
            os.kill(undo.pid, signal.SIGKILL)
        undo.wait()


def _recover(case: Case, demo: DemoVenv, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> list[str]:
    errors = []
    interrupted = any(s.interrupted for s in runs(Journal(journal_path(demo.venv)).records()))
    if case.resume and interrupted:
        code = _main(["--yes", "--resume", "--no-scan"], demo, monkeypatch)
        _out, err = capsys.readouterr()
        if code in (4, 5):
            errors.append(f"--resume exit {code}: {err.strip()[-300:]}")
    return errors + _undo_all(demo, monkeypatch, capsys)


@pytest.mark.parametrize("case", cases(SEED, CASES), ids=str)
def test_fault_then_undo_restores_exactly(
    case: Case,
    template: DemoVenv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    where = tmp_path
    mounted = False
    if case.fault == "disk-full":
        where = tmp_path / "small"
        if os.geteuid() != 0 or not _mount_tmpfs(where, "96m"):
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounted = True
    locked: Path | None = None
    try:
        demo = clone(template, where)
        before = state(demo)
        if case.fault == "disk-full":
            free = shutil.disk_usage(where).free
            with open(where / "filler", "wb") as fh:
                fh.write(b"\0" * max(0, free - (case.free_mb << 20)))
        if case.fault == "read-only":
            locked = demo.venv / "bin" / case.script
            if not _chattr(locked, "+i"):
                pytest.skip("chattr +i is not available here")
        _inject(case, demo, monkeypatch, capsys)
        if locked is not None:
            _chattr(locked, "-i")
            locked = None
        if case.fault == "disk-full":
            (where / "filler").unlink()
        errors = _recover(case, demo, monkeypatch, capsys)
        lost = state(demo) != before
        record_fault(str(case), lost or bool(errors))
        assert not errors, errors
        assert not lost, _explain(before, state(demo))
    finally:
        if locked is not None:
            _chattr(locked, "-i")
        if mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _explain(before: tuple[Any, ...], after: tuple[Any, ...]) -> str:
    freeze = f"freeze {before[0]!r} -> {after[0]!r}" if before[0] != after[0] else ""
    scripts = [n for n in set(before[1]) | set(after[1]) if before[1].get(n) != after[1].get(n)]
    files = [n for n in set(before[2]) | set(after[2]) if before[2].get(n) != after[2].get(n)]
    return f"{freeze}; scripts {scripts}; files {sorted(files)[:8]}; tilde {after[3]}"
