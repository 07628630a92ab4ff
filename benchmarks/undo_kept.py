"""What keeping files for undo costs, on a venv with a TensorFlow-sized distribution.

    python benchmarks/undo_kept.py [--files N] [--mib M]

Builds two wheels that share one package folder, as ``tensorflow`` and ``tensorflow-cpu`` do
(``bigtf-cpu`` and ``bigtf``: N files, M MiB each; defaults 15000 files and 400 MiB, about a
TensorFlow 2.18 install), installs ``bigtf-cpu`` in a fresh virtualenv and runs the typical
repair of a CPU-only build: uninstall ``bigtf-cpu``, install ``bigtf``. It prints the seconds
tffix spends keeping files before each step (hard links), trimming them at the run's end, and
undoing (no index: the wheel folder is emptied first), the disk the kept run holds, and
whether undo restored every ``RECORD`` byte.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.probes.wheels import write_wheel  # noqa: E402
from tests.repair.conftest import make_demo_venv  # noqa: E402
from tffix import transaction as core  # noqa: E402
from tffix.effects import stash  # noqa: E402
from tffix.effects.journal import Journal, RunRecorder, journal_path, runs  # noqa: E402
from tffix.effects.pip import PackageManager  # noqa: E402
from tffix.effects.steps import Workspace  # noqa: E402
from tffix.model import Diagnosis, Finding, FixSide, PlanStep, Safety, Severity, StepKind  # noqa: E402


def wheels(folder: Path, files: int, mib: int) -> None:
    write_wheel(folder, "demo", "1.0", {"demo/__init__.py": ""})  # what the test venv starts with
    big = max(1, files // 500)
    per_big = (mib << 20) // big
    for name, tag in (("bigtf-cpu", b"c"), ("bigtf", b"g")):
        content: dict[str, bytes | str] = {}
        for i in range(files - big):
            content[f"bigtf/m{i // 200}/f{i}.py"] = f"X = {i!r}  # {tag!r}\n"
        for i in range(big):
            content[f"bigtf/lib/lib{i}.so"] = tag * per_big
        content["bigtf/__init__.py"] = f"BUILD = {tag!r}\n"
        write_wheel(folder, name, "1.0", content)


def record_bytes(prefix: Path) -> dict[str, bytes]:
    out = {}
    for rel in stash.all_record_files(prefix):
        if (prefix / rel).is_file():
            out[rel] = (prefix / rel).read_bytes()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=15000)
    parser.add_argument("--mib", type=int, default=400)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="undo-kept-"))
    try:
        return run(tmp, args.files, args.mib)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path, files: int, mib: int) -> int:
    index = tmp / "wheels"
    wheels(index, files, mib)
    demo = make_demo_venv(tmp, index)
    assert demo.pip("install", "bigtf-cpu==1.0").returncode == 0
    before = record_bytes(demo.venv)
    ws = Workspace(
        demo.venv, False, PackageManager(demo.python, demo.venv, demo.env, say=lambda _t: None)
    )
    plan = (
        PlanStep(
            StepKind.PIP_UNINSTALL,
            "remove bigtf-cpu",
            Safety.SAFE,
            ("cpu",),
            packages=("bigtf-cpu",),
        ),
        PlanStep(
            StepKind.PIP_INSTALL,
            "install bigtf",
            Safety.SAFE,
            ("cpu",),
            requirements=("bigtf==1.0",),
        ),
    )
    keeps: list[float] = []

    def capture() -> dict[str, object]:
        t = time.monotonic()
        state = ws.capture()
        keeps.append(time.monotonic() - t)
        return state

    left = {"cpu"}

    def diagnosis() -> Diagnosis:
        return Diagnosis(
            gpu_visible=not left,
            findings=tuple(Finding(i, Severity.ERROR, FixSide.VENV, i) for i in left),
            plan=plan,
        )

    applied: list[str] = []

    def observe() -> Diagnosis:
        applied.append("x")
        if len(applied) == len(plan):
            left.clear()
        return diagnosis()

    class Timed(RunRecorder):
        trim = 0.0

        def _trim(self) -> None:
            t = time.monotonic()
            super()._trim()
            Timed.trim = time.monotonic() - t

    t0 = time.monotonic()
    outcome = core.repair(
        diagnosis(),
        confirm=core.AutoConfirm(),
        actions=ws.action,
        observe=core.observer(observe),
        recorder=Timed(Journal(journal_path(demo.venv))),
        capture=capture,
    )
    run_s = time.monotonic() - t0
    assert outcome.exit_code == 0, outcome
    story = runs(Journal(journal_path(demo.venv)).records())[-1]
    held = stash.held_bytes(demo.venv, story.kept_ids())
    for wheel in index.iterdir():
        wheel.unlink()
    from tffix.commands.undo import undo_story

    t1 = time.monotonic()
    undo_story(ws, Journal(journal_path(demo.venv)), story, say=lambda _t: None)
    undo_s = time.monotonic() - t1
    after = record_bytes(demo.venv)
    print(f"venv: bigtf-cpu 1.0, {files} files, {mib} MiB; run: uninstall it, install bigtf 1.0")
    print(
        f"repair run: {run_s:.1f}s, of which keeping files: "
        + ", ".join(f"{k:.2f}s" for k in keeps)
    )
    print(f"trimming kept files at the run's end: {Timed.trim:.2f}s")
    print(f"disk held by the kept run: {held / (1 << 20):.1f} MiB")
    print(f"undo with an empty index: {undo_s:.1f}s; every RECORD byte restored: {after == before}")
    return 0 if after == before else 1


if __name__ == "__main__":
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    raise SystemExit(main())
