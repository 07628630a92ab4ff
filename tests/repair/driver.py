"""A repair run on a real venv with a scripted diagnosis, for kill -9 and full-disk tests.

``python -m tests.repair.driver VENV PLAN_JSON [--pause-after-done SECONDS]`` runs
``tffix.transaction.repair`` with the real effects and journal; the diagnosis is scripted (each
applied step resolves the findings it names), so no TensorFlow is needed. Exit code: the
outcome's.

With ``TFFIX_TEST_PIP_MARK=PATH`` every ``pip install`` (or ``uv pip install``) the run starts
touches PATH when it has finished and then lingers for a minute before its step goes on, so a
signal sent after PATH appears lands inside the pip step, with pip's changes on disk, however
fast pip was.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from tffix import _subprocess
from tffix import transaction as core
from tffix.effects.journal import Journal, RunRecorder, journal_path
from tffix.effects.lock import hold
from tffix.effects.pip import PackageManager
from tffix.effects.steps import Workspace
from tffix.model import Diagnosis, Finding, FixSide, PlanStep, Safety, Severity, StepKind


def _lingering_installs(mark: str) -> None:
    real = _subprocess.run

    def run(argv, **kw):  # type: ignore[no-untyped-def]
        if "install" in argv and "-c" not in argv:
            script = '"$@"; rc=$?; touch "$0"; sleep 60; exit $rc'
            argv = ["sh", "-c", script, mark, *argv]
        return real(argv, **kw)

    _subprocess.run = run  # type: ignore[assignment]


def main() -> int:
    if os.environ.get("TFFIX_TEST_PIP_MARK"):
        _lingering_installs(os.environ["TFFIX_TEST_PIP_MARK"])
    venv, plan_json = Path(sys.argv[1]), json.loads(sys.argv[2])
    pause = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--pause-after-done" else 0
    plan = tuple(
        PlanStep(
            kind=StepKind(s["kind"]),
            summary=s["summary"],
            safety=Safety.SAFE,
            resolves=(s["resolves"],),
            requirements=tuple(s.get("requirements", ())),
            packages=tuple(s.get("packages", ())),
            variable=s.get("variable"),
            value=s.get("value"),
            entry=s.get("entry"),
        )
        for s in plan_json
    )
    left = {s.resolves[0] for s in plan}

    def diagnosis() -> Diagnosis:
        return Diagnosis(
            gpu_visible=not left,
            findings=tuple(Finding(f, Severity.ERROR, FixSide.VENV, f) for f in sorted(left)),
            plan=plan,
        )

    ws = Workspace(venv, False, PackageManager(venv / "bin" / "python", venv, dict(os.environ)))
    applied: list[str] = []

    def observe() -> Diagnosis:
        # the step just applied resolves its finding
        step = plan[len(applied)]
        applied.append(step.summary)
        left.discard(step.resolves[0])
        return diagnosis()

    class Recorder(RunRecorder):
        def step_done(self, number: int, findings: object) -> None:
            super().step_done(number, findings)
            if pause:
                time.sleep(pause)

    def run_it() -> core.Outcome:
        return core.repair(
            diagnosis(),
            confirm=core.AutoConfirm(),
            actions=ws.action,
            observe=core.observer(observe),
            recorder=Recorder(Journal(journal_path(venv))),
            capture=ws.capture,
            say=lambda text: print(text, file=sys.stderr, flush=True),
        )

    with hold(venv):
        try:
            outcome = run_it()
        except core.Interrupted as exc:
            print(json.dumps(core.outcome_to_dict(exc.outcome)))
            return 130
    print(json.dumps(core.outcome_to_dict(outcome)))
    return outcome.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
