"""The ranking keys, tested with tables: findings, alternative fixes, plan steps."""

from __future__ import annotations

import pytest

from tests.diagnosis.conftest import SNAPSHOTS, load
from tffix.diagnosis import diagnose, exit_code
from tffix.errors import ExitCode
from tffix.graph import finding_rank
from tffix.model import Diagnosis, Finding, FixSide, PlanStep, Safety, Severity, StepKind
from tffix.planner import alternative_rank, step_rank
from tffix.ruleset import Ruleset


def finding(cause: str, severity=Severity.ERROR, fix=FixSide.VENV, blocks=()) -> Finding:
    return Finding(id=cause, severity=severity, fix=fix, title=cause, blocks=tuple(blocks))


def step(kind=StepKind.PIP_INSTALL, safety=Safety.SAFE, resolves=("x",), n=1, summary="s"):
    return PlanStep(
        kind=kind,
        summary=summary,
        safety=safety,
        resolves=tuple(resolves),
        requirements=tuple(f"p{i}==1" for i in range(n)) if kind == StepKind.PIP_INSTALL else (),
        commands=("true",) if kind == StepKind.MANUAL else (),
    )


@pytest.mark.parametrize(
    ("first", "second", "why"),
    [
        ((finding("xla-cuda-tools-missing"), 0), (finding("healthy", Severity.INFO), 0), "error"),
        (
            (finding("cuda-libs-missing"), 0),
            (finding("gpu-arch-unsupported", Severity.WARNING), 0),
            "errors before warnings",
        ),
        ((finding("cudnn-version-mismatch"), 3), (finding("no-nvidia-gpu"), 1), "blocks more"),
        ((finding("driver-not-loaded"), 2), (finding("cuda-libs-missing"), 2), "layer rank"),
        ((finding("container-no-gpu"), 0), (finding("driver-too-old"), 0), "layer rank"),
        ((finding("aaa-unknown-code-id"), 0), (finding("zzz-unknown-code-id"), 0), "id"),
    ],
)
def test_finding_rank(first, second, why, rules: Ruleset):
    assert finding_rank(first[0], first[1], rules) < finding_rank(second[0], second[1], rules), why


@pytest.mark.parametrize(
    ("better", "worse", "fix", "why"),
    [
        ((step(),), (step(safety=Safety.UNSAFE),), FixSide.VENV, "safe before unsafe"),
        (
            (step(safety=Safety.UNSAFE),),
            (step(StepKind.MANUAL, Safety.MANUAL),),
            FixSide.VENV,
            "a venv finding prefers what tffix can apply",
        ),
        (
            (step(StepKind.MANUAL, Safety.MANUAL),),
            (step(safety=Safety.UNSAFE),),
            FixSide.OUTSIDE,
            "an outside finding's real fix is the manual one",
        ),
        ((step(),), (step(), step()), FixSide.VENV, "fewer steps"),
        ((step(n=1),), (step(n=3),), FixSide.VENV, "smaller change"),
        ((step(summary="a"),), (step(summary="b"),), FixSide.VENV, "total order"),
    ],
)
def test_alternative_rank(better, worse, fix, why):
    f = finding("x", fix=fix)
    assert alternative_rank(better, f) < alternative_rank(worse, f), why


@pytest.mark.parametrize(
    ("first", "second", "why"),
    [
        (step(StepKind.MANUAL, Safety.MANUAL, ("b",)), step(resolves=("a",)), "manual shown first"),
        (
            PlanStep(StepKind.PIP_UNINSTALL, "u", Safety.SAFE, ("b",), packages=("p",)),
            step(resolves=("a",)),
            "uninstall before install",
        ),
        (step(resolves=("a",)), step(resolves=("b",)), "the higher-ranked finding's step"),
        (
            step(resolves=("b",)),
            PlanStep(StepKind.ENV_UNSET, "e", Safety.SAFE, ("a",), variable="V"),
            "pip before environment edits",
        ),
    ],
)
def test_step_rank(first, second, why):
    order = {"a": 0, "b": 1}
    assert step_rank(first, order) < step_rank(second, order), why


@pytest.mark.parametrize(
    ("findings", "code"),
    [
        ((), ExitCode.OK),
        ((finding("healthy", Severity.INFO),), ExitCode.OK),
        ((finding("xla-cuda-tools-missing", Severity.WARNING),), ExitCode.OK),
        ((finding("cuda-libs-missing"),), ExitCode.FIXABLE),
        ((finding("driver-too-old", fix=FixSide.OUTSIDE),), ExitCode.OUTSIDE),
        (
            (
                finding("driver-not-loaded", fix=FixSide.OUTSIDE, blocks=["cuda-libs-not-found"]),
                finding("cuda-libs-not-found"),
            ),
            ExitCode.OUTSIDE,
        ),
        (
            (finding("cuda-libs-missing"), finding("gpu-arch-unsupported", fix=FixSide.OUTSIDE)),
            ExitCode.FIXABLE,
        ),
    ],
)
def test_exit_code(findings, code):
    assert exit_code(Diagnosis(gpu_visible=False, findings=findings)) == code


def test_a_known_bad_release_is_not_reinstalled(rules: Ruleset):
    # cudatoolkit 11 under TF 2.16.1: reinstalling 2.16.1 [and-cuda] would hit its RUNPATH bug
    diag = diagnose(
        load(SNAPSHOTS / "cuda-version-mismatch" / "pos-conda-cudatoolkit-11-under-tf216.json"),
        rules,
    )
    assert [s.requirements for s in diag.plan] == [("tensorflow[and-cuda]==2.16.2",)]
    assert diag.plan[0].safety == Safety.UNSAFE


def test_the_smallest_safe_fix_wins_for_the_216_regression(rules: Ruleset):
    diag = diagnose(
        load(SNAPSHOTS / "cuda-libs-not-found" / "pos-tf2161-runpath-regression.json"), rules
    )
    kinds = {s.kind for s in diag.plan}
    assert kinds == {StepKind.ENV_PATH_PREPEND}
    assert all(s.safety == Safety.SAFE for s in diag.plan)
    assert len(diag.plan) == 1  # one step, one edit, however many folders
    assert any(e.endswith("/nvidia/cudnn/lib") for s in diag.plan for e in s.entries)


def test_an_and_cuda_install_absorbs_its_own_pins(rules: Ruleset):
    diag = diagnose(
        load(SNAPSHOTS / "tf-multiple-distributions" / "pos-tensorflow-and-tensorflow-cpu.json"),
        rules,
    )
    installs = [s for s in diag.plan if s.kind == StepKind.PIP_INSTALL]
    assert len(installs) == 1
    assert set(installs[0].resolves) == {"tf-multiple-distributions", "tf-cpu-only-package"}
    uninstall = diag.plan[0]
    assert uninstall.kind == StepKind.PIP_UNINSTALL


def test_a_scheduler_mask_is_explained_not_fixed(rules: Ruleset):
    diag = diagnose(
        load(SNAPSHOTS / "cuda-visible-devices-masked" / "pos-slurm-no-gpu-allocated.json"), rules
    )
    masked = diag.findings[0]
    assert masked.id == "cuda-visible-devices-masked" and masked.fix == FixSide.OUTSIDE
    assert "slurm" in masked.title
    assert [s.kind for s in diag.plan] == [StepKind.MANUAL]


def test_extra_findings_are_merged_and_ranked(rules: Ruleset):
    code = Finding(
        id="cuda-visible-devices-masked",
        severity=Severity.ERROR,
        fix=FixSide.VENV,
        title="train.py sets CUDA_VISIBLE_DEVICES=-1",
        evidence=("train.py:3",),
        location="train.py:3",
    )
    diag = diagnose(load(SNAPSHOTS / "healthy.json"), rules, extra_findings=(code,))
    assert diag.findings[0].id == "cuda-visible-devices-masked"
    assert diag.findings[0].location == "train.py:3"
    assert "healthy" not in [f.id for f in diag.findings]
