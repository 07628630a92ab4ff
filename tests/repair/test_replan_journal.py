"""A step planned during the run that edits a file outside the first plan: undo restores it.

The first plan only unsets a variable in the activate script; that step reveals a kernelspec
whose ``env`` still sets it, and the re-plan adds a kernelspec edit. The run's base state was
journaled before the first step, when the kernelspec was not yet a file the run might change;
``tffix undo`` must still put the kernelspec back byte for byte, and its own check must see it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.repair.conftest import DemoVenv
from tffix import cli
from tffix import transaction as core
from tffix.effects.journal import Journal, RunRecorder, journal_path, runs
from tffix.effects.pip import PackageManager
from tffix.effects.steps import Workspace
from tffix.model import Diagnosis, Finding, FixSide, PlanStep, Safety, Severity, StepKind

pytestmark = pytest.mark.slow

UNSET = PlanStep(
    StepKind.ENV_UNSET,
    "unset CUDA_VISIBLE_DEVICES in the activate script",
    Safety.SAFE,
    ("cvd-activate",),
    variable="CUDA_VISIBLE_DEVICES",
)


def kernel_step(spec: Path) -> PlanStep:
    return PlanStep(
        StepKind.KERNELSPEC_ENV,
        "unset CUDA_VISIBLE_DEVICES in the kernelspec",
        Safety.SAFE,
        ("cvd-kernel",),
        path=str(spec),
        op="unset",
        variable="CUDA_VISIBLE_DEVICES",
    )


def replanning_repair(demo: DemoVenv, spec: Path) -> core.Outcome:
    """The first diagnosis plans the activate edit; once it is kept, the kernelspec's
    setting is what remains, and the re-plan adds the kernelspec edit."""
    ws = Workspace(
        demo.venv, False, PackageManager(demo.python, demo.venv, demo.env, say=lambda _t: None)
    )
    left = ["cvd-activate"]
    kernel = kernel_step(spec)

    def diagnosis() -> Diagnosis:
        plan = (UNSET,) if "cvd-activate" in left else ((kernel,) if left else ())
        return Diagnosis(
            gpu_visible=not left,
            findings=tuple(Finding(i, Severity.ERROR, FixSide.VENV, i) for i in left),
            plan=plan,
        )

    applied: list[PlanStep] = []

    def action(step: PlanStep) -> Any:
        applied.append(step)
        return ws.action(step)

    def observe() -> core.Observation:
        left.remove(applied[-1].resolves[0])
        if applied[-1] is UNSET:
            left.append("cvd-kernel")  # revealed: the kernel still hides the GPU
        return core.Observation(diagnosis())

    first = diagnosis()
    ws.reach(first.plan)  # as the repair command does with the first plan
    return core.repair(
        first,
        confirm=core.AutoConfirm(),
        actions=action,
        observe=observe,
        recorder=RunRecorder(Journal(journal_path(demo.venv))),
        capture=ws.capture,
    )


def test_undo_restores_a_file_only_a_replanned_step_touched(
    demo_venv: DemoVenv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_dir = tmp_path / "jupyter" / "kernels" / "demo"
    spec_dir.mkdir(parents=True)
    spec = spec_dir / "kernel.json"
    original = json.dumps(
        {"argv": [str(demo_venv.python)], "env": {"CUDA_VISIBLE_DEVICES": "-1"}}, indent=1
    ).encode()
    spec.write_bytes(original)

    outcome = replanning_repair(demo_venv, spec)
    assert [(s.status, s.planned_after) for s in outcome.steps] == [
        (core.StepStatus.APPLIED, None),
        (core.StepStatus.APPLIED, 1),
    ]
    assert spec.read_bytes() != original
    story = runs(Journal(journal_path(demo_venv.venv)).records())[-1]
    recorded = {(r["root"], n) for r in story.base_state.get("outside", []) for n in r["files"]}
    assert (str(spec_dir), "kernel.json") in recorded

    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in demo_venv.env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["undo", "--venv", str(demo_venv.venv), "--yes"]) == 0
    assert spec.read_bytes() == original
