"""The repair transaction with fakes: a world of named problems that steps fix or break.

The fake world is a set of finding ids; each fake action adds and removes ids, and can fail
or be interrupted. ``observe`` diagnoses the world as it is; revert restores the world as it
was before the step, so every test can check "repaired or exactly as before".
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from tffix import stepdeps
from tffix import transaction as core
from tffix.errors import ApplyError
from tffix.model import Diagnosis, Finding, FixSide, PlanStep, Safety, Severity, StepKind

TITLES = {
    "cpu-only-wheel": FixSide.VENV,
    "cuda-visible-devices-hidden": FixSide.VENV,
    "ld-library-path-shadowing": FixSide.VENV,
    "driver-too-old": FixSide.OUTSIDE,
    "new-breakage": FixSide.VENV,
}


def finding(fid: str, severity: Severity = Severity.ERROR) -> Finding:
    return Finding(id=fid, severity=severity, fix=TITLES.get(fid, FixSide.VENV), title=fid)


@dataclass
class World:
    problems: set[str]
    plan: tuple[PlanStep, ...] = ()
    journal: list[tuple[Any, ...]] = field(default_factory=list)
    observations: int = 0

    def diagnose(self) -> Diagnosis:
        self.observations += 1
        errors = sorted(self.problems)
        return Diagnosis(
            gpu_visible=not errors,
            findings=tuple(finding(f) for f in errors),
            plan=stepdeps.with_needs(self.plan),
        )


@dataclass
class FakeAction:
    world: World
    step: PlanStep
    adds: frozenset[str] = frozenset()
    removes: frozenset[str] = frozenset()
    fail: bool = False
    interrupt: bool = False
    revert_fails: bool = False
    problem: str | None = None
    saved: set[str] | None = None

    def check(self) -> str | None:
        return self.problem

    def apply(self) -> None:
        self.saved = set(self.world.problems)
        self.world.problems -= self.removes
        self.world.problems |= self.adds
        self.world.journal.append(("apply", self.step.summary))
        if self.interrupt:
            raise KeyboardInterrupt
        if self.fail:
            raise ApplyError(f"{self.step.summary}: pip failed")

    def revert(self) -> list[str]:
        self.world.journal.append(("revert", self.step.summary))
        if self.revert_fails:
            return [f"{self.step.summary}: still changed"]
        assert self.saved is not None
        self.world.problems = set(self.saved)
        return []


@dataclass
class FakeRecorder:
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def start_run(self, state: Mapping[str, Any]) -> None:
        self.events.append(("run-start", dict(state)))

    def step_start(self, number: int, step: PlanStep, state: Mapping[str, Any]) -> None:
        self.events.append(("step-start", number))

    def step_done(self, number: int, findings: Sequence[core.FindingResult]) -> None:
        self.events.append(("step-done", number, tuple((f.id, str(f.status)) for f in findings)))

    def step_reverted(self, number: int, reason: str, problems: Sequence[str]) -> None:
        self.events.append(("step-reverted", number, reason, tuple(problems)))

    def end_run(self, status: str, exit_code: int) -> None:
        self.events.append(("run-end", status, exit_code))


@dataclass(frozen=True)
class FakeVerify:
    gpus: tuple[str, ...]
    op_device: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.gpus)


@dataclass
class Script:
    """Answers a Confirm would give."""

    selection: core.Selection | None = None
    stepwise_answers: dict[int, bool] = field(default_factory=dict)
    asked: list[int] = field(default_factory=list)
    together: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def select(self, diagnosis: Diagnosis, offered: tuple[int, ...]) -> core.Selection:
        return self.selection or core.Selection(core.Mode.ALL, offered)

    def step(
        self, number: int, step: PlanStep, together: Sequence[tuple[int, PlanStep]] = ()
    ) -> bool:
        self.asked.append(number)
        self.together[number] = tuple(n for n, _ in together)
        return self.stepwise_answers.get(number, True)


def step(
    summary: str, safety: Safety = Safety.SAFE, kind: StepKind = StepKind.ENV_UNSET
) -> PlanStep:
    return PlanStep(kind=kind, summary=summary, safety=safety, variable="X")


def run(world: World, behaviours: dict[str, dict[str, Any]], **kw: Any) -> tuple[Any, ...]:
    recorder = FakeRecorder()
    actions: dict[str, FakeAction] = {}

    def make(s: PlanStep) -> FakeAction:
        actions[s.summary] = FakeAction(world, s, **behaviours.get(s.summary, {}))
        return actions[s.summary]

    outcome = core.repair(
        world.diagnose(),
        confirm=kw.pop("confirm", core.AutoConfirm()),
        actions=make,
        observe=core.observer(
            world.diagnose,
            lambda: FakeVerify(() if world.problems else ("/physical_device:GPU:0",)),
        ),
        recorder=recorder,
        capture=lambda: {"problems": sorted(world.problems)},
        **kw,
    )
    return outcome, recorder.events


def test_all_safe_steps_applied_and_verified() -> None:
    world = World({"cuda-visible-devices-hidden", "ld-library-path-shadowing"})
    world.plan = (step("unset CVD"), step("fix LDLP"))
    outcome, events = run(
        world,
        {
            "unset CVD": {"removes": frozenset({"cuda-visible-devices-hidden"})},
            "fix LDLP": {"removes": frozenset({"ld-library-path-shadowing"})},
        },
    )
    assert outcome.exit_code == 0
    assert [s.status for s in outcome.steps] == [core.StepStatus.APPLIED] * 2
    assert {f.status for f in outcome.findings} == {core.FindingStatus.RESOLVED}
    assert events[0][0] == "run-start"
    assert events[-1] == ("run-end", "done", 0)
    assert (
        "step-done",
        1,
        (
            ("cuda-visible-devices-hidden", "resolved"),
            ("ld-library-path-shadowing", "still present"),
        ),
    ) in events


def test_failed_step_is_rolled_back_and_the_rest_continue() -> None:
    world = World({"cpu-only-wheel", "cuda-visible-devices-hidden"})
    world.plan = (step("install tf", kind=StepKind.PIP_INSTALL), step("unset CVD"))
    outcome, events = run(
        world,
        {
            "install tf": {"removes": frozenset({"cpu-only-wheel"}), "fail": True},
            "unset CVD": {"removes": frozenset({"cuda-visible-devices-hidden"})},
        },
    )
    assert [s.status for s in outcome.steps] == [core.StepStatus.FAILED, core.StepStatus.APPLIED]
    assert world.problems == {"cpu-only-wheel"}  # the failed step left nothing behind
    assert outcome.exit_code == 1
    assert ("step-reverted", 1, "failed: install tf: pip failed", ()) in events


def test_step_that_makes_things_worse_is_rolled_back() -> None:
    world = World({"cuda-visible-devices-hidden"})
    world.plan = (step("bad step"), step("good step"))
    outcome, _ = run(
        world,
        {
            "bad step": {"adds": frozenset({"new-breakage", "ld-library-path-shadowing"})},
            "good step": {"removes": frozenset({"cuda-visible-devices-hidden"})},
        },
    )
    assert outcome.steps[0].status is core.StepStatus.REVERTED
    assert "new problems: ld-library-path-shadowing, new-breakage" in outcome.steps[0].message
    regressed = {
        f.id for f in outcome.steps[0].findings if f.status is core.FindingStatus.REGRESSED
    }
    assert regressed == {"new-breakage", "ld-library-path-shadowing"}
    assert outcome.steps[1].status is core.StepStatus.APPLIED
    assert world.problems == set()
    assert outcome.exit_code == 0


def test_rollback_failure_stops_the_run_with_exit_4() -> None:
    world = World({"cpu-only-wheel", "cuda-visible-devices-hidden"})
    world.plan = (step("install tf"), step("unset CVD"))
    outcome, _ = run(world, {"install tf": {"fail": True, "revert_fails": True}})
    assert outcome.exit_code == 4
    assert outcome.left_changed == ("install tf: still changed",)
    assert outcome.steps[1].status is core.StepStatus.SKIPPED


def test_ctrl_c_reverts_the_step_in_progress_and_reraises() -> None:
    world = World({"cpu-only-wheel", "cuda-visible-devices-hidden"})
    world.plan = (step("unset CVD"), step("install tf"))
    recorder_events: list[Any] = []
    with pytest.raises(core.Interrupted) as info:
        recorder = FakeRecorder(recorder_events)
        core.repair(
            world.diagnose(),
            confirm=core.AutoConfirm(),
            actions=lambda s: FakeAction(
                world,
                s,
                removes=frozenset(
                    {"cuda-visible-devices-hidden"}
                    if s.summary == "unset CVD"
                    else {"cpu-only-wheel"}
                ),
                interrupt=s.summary == "install tf",
            ),
            observe=core.observer(world.diagnose),
            recorder=recorder,
            capture=dict,
        )
    assert isinstance(info.value, KeyboardInterrupt)
    assert world.problems == {"cpu-only-wheel"}  # step 1 kept, step 2 rolled back
    assert info.value.outcome.steps[1].status is core.StepStatus.INTERRUPTED
    assert recorder_events[-2][:3] == ("step-reverted", 2, "interrupted")
    assert recorder_events[-1] == ("run-end", "interrupted", 130)


def test_unsafe_and_manual_steps_are_never_applied_without_flags() -> None:
    world = World({"driver-too-old", "cpu-only-wheel"})
    world.plan = (
        step("upgrade tf", Safety.UNSAFE, StepKind.PIP_INSTALL),
        PlanStep(
            StepKind.MANUAL,
            "install a newer driver",
            Safety.MANUAL,
            commands=("sudo apt install nvidia-driver-550",),
        ),
    )
    outcome, events = run(world, {"upgrade tf": {"removes": frozenset({"cpu-only-wheel"})}})
    assert [s.status for s in outcome.steps] == [core.StepStatus.HIDDEN, core.StepStatus.MANUAL]
    assert events == []  # nothing journalled: nothing changed
    assert world.journal == []
    assert outcome.exit_code == 1
    text = core.render_outcome(outcome)
    assert "$ sudo apt install nvidia-driver-550" in text
    assert "add --unsafe" in text
    outcome, _ = run(world, {"upgrade tf": {"removes": frozenset({"cpu-only-wheel"})}}, unsafe=True)
    assert outcome.steps[0].status is core.StepStatus.APPLIED
    assert outcome.exit_code == 3  # only the driver is left: outside


def test_outside_only_touches_nothing_and_exits_3() -> None:
    world = World({"driver-too-old"})
    world.plan = (
        PlanStep(
            StepKind.MANUAL,
            "upgrade the driver",
            Safety.MANUAL,
            commands=("sudo ubuntu-drivers install",),
        ),
    )
    outcome, events = run(world, {})
    assert outcome.exit_code == 3 and events == [] and world.journal == []


def test_declined_steps_in_stepwise_mode() -> None:
    world = World({"cuda-visible-devices-hidden", "ld-library-path-shadowing"})
    world.plan = (step("unset CVD"), step("fix LDLP"))
    script = Script(core.Selection(core.Mode.STEPWISE, (1, 2)), {1: False})
    outcome, _ = run(
        world,
        {"fix LDLP": {"removes": frozenset({"ld-library-path-shadowing"})}},
        confirm=script,
    )
    assert script.asked == [1, 2]
    assert [s.status for s in outcome.steps] == [core.StepStatus.DECLINED, core.StepStatus.APPLIED]
    assert outcome.exit_code == 1


def test_quit_changes_nothing() -> None:
    world = World({"cuda-visible-devices-hidden"})
    world.plan = (step("unset CVD"),)
    outcome, events = run(world, {}, confirm=Script(core.Selection(core.Mode.QUIT)))
    assert events == [] and outcome.steps[0].status is core.StepStatus.DECLINED
    assert outcome.exit_code == 1


def test_check_problem_skips_without_journal() -> None:
    world = World({"cuda-visible-devices-hidden"})
    world.plan = (step("unset CVD"),)
    outcome, events = run(world, {"unset CVD": {"problem": "already set"}})
    assert outcome.steps[0].status is core.StepStatus.SKIPPED and events == []


def test_stops_once_healthy() -> None:
    world = World({"cpu-only-wheel"})
    world.plan = (step("install tf"), step("belt and braces"))
    outcome, _ = run(world, {"install tf": {"removes": frozenset({"cpu-only-wheel"})}})
    assert outcome.steps[1].status is core.StepStatus.SKIPPED
    assert world.journal == [("apply", "install tf")]


@pytest.mark.parametrize(
    ("before", "after", "worse"),
    [
        ({"a"}, {"a", "b"}, True),
        ({"a"}, {"b"}, False),
        ({"a", "b"}, {"a"}, False),
        (set(), {"a"}, True),  # GPU lost
        ({"cuda-visible-devices-hidden"}, {"driver-too-old"}, True),  # swapped for an outside one
        ({"driver-too-old", "new-breakage"}, {"driver-too-old"}, False),
    ],
)
def test_worse_because(before: set[str], after: set[str], worse: bool) -> None:
    b, a = World(before).diagnose(), World(after).diagnose()
    assert (core.worse_because(b, a) is not None) is worse


def test_outcome_json_document() -> None:
    world = World({"cuda-visible-devices-hidden"})
    world.plan = (step("unset CVD"),)
    outcome, _ = run(world, {"unset CVD": {"removes": frozenset({"cuda-visible-devices-hidden"})}})
    doc = core.outcome_to_dict(outcome)
    assert doc["schema"] == "tffix.outcome/1"
    assert doc["exit_code"] == 0 and doc["changed"] is True
    assert doc["steps"][0]["status"] == "applied"
    assert doc["verification"]["ok"] is True
    assert set(doc) >= {"findings", "left_changed", "reactivate", "timings"}


def test_step_whose_findings_are_already_resolved_is_skipped() -> None:
    world = World({"cuda-visible-devices-hidden", "ld-library-path-shadowing"})
    world.plan = (
        PlanStep(
            StepKind.ENV_UNSET,
            "fix both",
            Safety.SAFE,
            ("cuda-visible-devices-hidden", "ld-library-path-shadowing"),
        ),
        PlanStep(
            StepKind.ENV_UNSET, "fix cvd again", Safety.SAFE, ("cuda-visible-devices-hidden",)
        ),
        PlanStep(StepKind.ENV_UNSET, "fix ldlp", Safety.SAFE, ("ld-library-path-shadowing",)),
    )
    outcome, _ = run(
        world,
        {
            "fix both": {"removes": frozenset({"cuda-visible-devices-hidden"})},
            "fix ldlp": {"removes": frozenset({"ld-library-path-shadowing"})},
        },
    )
    assert [s.status for s in outcome.steps] == [
        core.StepStatus.APPLIED,
        core.StepStatus.SKIPPED,
        core.StepStatus.APPLIED,
    ]
    assert "not needed any more" in outcome.steps[1].message


def test_stops_as_soon_as_an_op_runs_on_the_gpu() -> None:
    """A finding the diagnosis keeps reporting does not outweigh an op that ran on the GPU."""
    world = World({"cuda-visible-devices-hidden", "ld-library-path-shadowing"})
    world.plan = (step("unset CVD"), step("prepend a lib folder"))
    recorder = FakeRecorder()
    outcome = core.repair(
        world.diagnose(),
        confirm=core.AutoConfirm(),
        actions=lambda s: FakeAction(world, s, removes=frozenset({"cuda-visible-devices-hidden"})),
        observe=core.observer(
            world.diagnose,
            lambda: FakeVerify(
                ()
                if "cuda-visible-devices-hidden" in world.problems
                else ("/physical_device:GPU:0",)
            ),
        ),
        recorder=recorder,
        capture=dict,
    )
    assert [s.status for s in outcome.steps] == [core.StepStatus.APPLIED, core.StepStatus.SKIPPED]
    assert outcome.exit_code == 0
    assert world.journal == [("apply", "unset CVD")]


def test_nothing_is_applied_when_the_op_already_runs_on_the_gpu() -> None:
    """An error finding contradicted by a working GPU op: a second run changes nothing."""
    world = World({"ld-library-path-shadowing"})
    world.plan = (step("prepend a lib folder"),)
    diagnosis = Diagnosis(
        gpu_visible=True, findings=(finding("ld-library-path-shadowing"),), plan=world.plan
    )
    recorder = FakeRecorder()
    outcome = core.repair(
        diagnosis,
        confirm=core.AutoConfirm(),
        actions=lambda s: FakeAction(world, s),
        observe=core.observer(
            world.diagnose,
            lambda: FakeVerify(("/physical_device:GPU:0",), "/device:GPU:0"),
        ),
        recorder=recorder,
        capture=dict,
    )
    assert recorder.events == [] and world.journal == []
    assert outcome.steps[0].status is core.StepStatus.SKIPPED
    assert outcome.exit_code == 0 and not outcome.changed


def test_a_warning_fix_is_still_offered_when_the_gpu_works() -> None:
    world = World(set())
    world.plan = (PlanStep(StepKind.PIP_INSTALL, "install ptxas", Safety.SAFE, ("xla",)),)
    diagnosis = Diagnosis(
        gpu_visible=True, findings=(finding("xla", Severity.WARNING),), plan=world.plan
    )
    outcome = core.repair(
        diagnosis,
        confirm=core.AutoConfirm(),
        actions=lambda s: FakeAction(world, s),
        observe=core.observer(
            lambda: Diagnosis(gpu_visible=True, plan=world.plan),
            lambda: FakeVerify(("/physical_device:GPU:0",), "/device:GPU:0"),
        ),
        recorder=FakeRecorder(),
        capture=dict,
    )
    assert outcome.steps[0].status is core.StepStatus.APPLIED and outcome.exit_code == 0


def test_a_bug_while_observing_reverts_the_step_and_closes_the_run() -> None:
    world = World({"cuda-visible-devices-hidden"})
    world.plan = (step("unset CVD"),)
    recorder = FakeRecorder()

    def broken_observe() -> Diagnosis:
        raise RuntimeError("bug in a rule")

    with pytest.raises(RuntimeError, match="bug in a rule"):
        core.repair(
            world.diagnose(),
            confirm=core.AutoConfirm(),
            actions=lambda s: FakeAction(world, s, removes=frozenset(world.problems)),
            observe=core.observer(broken_observe),
            recorder=recorder,
            capture=dict,
        )
    assert world.problems == {"cuda-visible-devices-hidden"}
    assert [e[0] for e in recorder.events] == [
        "run-start",
        "step-start",
        "step-reverted",
        "run-end",
    ]
    assert recorder.events[-1] == ("run-end", "error", 5)


def test_a_bug_between_steps_keeps_whole_steps_and_closes_the_run() -> None:
    world = World({"cuda-visible-devices-hidden", "ld-library-path-shadowing"})
    world.plan = (step("unset CVD"), step("fix LDLP"))
    recorder = FakeRecorder()

    def actions(s: PlanStep) -> FakeAction:
        if s.summary == "fix LDLP":
            raise RuntimeError("bug in an effect")
        return FakeAction(world, s, removes=frozenset({"cuda-visible-devices-hidden"}))

    with pytest.raises(RuntimeError):
        core.repair(
            world.diagnose(),
            confirm=core.AutoConfirm(),
            actions=actions,
            observe=core.observer(world.diagnose),
            recorder=recorder,
            capture=dict,
        )
    assert world.problems == {"ld-library-path-shadowing"}  # step 1 is whole and kept
    assert recorder.events[-1] == ("run-end", "error", 5)
    assert recorder.events[-2][:2] == ("step-done", 1)


def test_a_bug_in_the_op_check_after_a_step_rolls_the_step_back() -> None:
    """The op check is part of judging a step: a step that could not be judged does not stay."""
    world = World({"cuda-visible-devices-hidden", "ld-library-path-shadowing"})
    world.plan = (step("unset CVD"), step("fix LDLP"))
    recorder = FakeRecorder()

    def broken_verify() -> None:
        raise RuntimeError("bug in verify")

    with pytest.raises(RuntimeError):
        core.repair(
            world.diagnose(),
            confirm=core.AutoConfirm(),
            actions=lambda s: FakeAction(
                world, s, removes=frozenset({"cuda-visible-devices-hidden"})
            ),
            observe=core.observer(
                world.diagnose,
                broken_verify,
            ),
            recorder=recorder,
            capture=dict,
        )
    assert world.problems == {"cuda-visible-devices-hidden", "ld-library-path-shadowing"}
    assert recorder.events[-1] == ("run-end", "error", 5)
    assert recorder.events[-2][:2] == ("step-reverted", 1)


def test_a_group_of_steps_that_resolves_nothing_is_rolled_back() -> None:
    """Eleven LD_LIBRARY_PATH steps for one finding that stays: all undone, venv as before."""
    world = World({"driver-too-old", "ld-library-path-shadowing"})
    libs = tuple(
        PlanStep(
            StepKind.ENV_PATH_PREPEND,
            f"prepend lib {i}",
            Safety.SAFE,
            ("ld-library-path-shadowing",),
            variable="LD_LIBRARY_PATH",
            entry=f"/l{i}",
        )
        for i in range(3)
    )
    world.plan = (
        PlanStep(
            StepKind.MANUAL,
            "upgrade the driver",
            Safety.MANUAL,
            ("driver-too-old",),
            commands=("sudo apt install nvidia-driver-550",),
        ),
        *libs,
    )
    recorder = FakeRecorder()
    outcome = core.repair(
        world.diagnose(),
        confirm=core.AutoConfirm(),
        actions=lambda s: FakeAction(world, s),
        observe=core.observer(
            world.diagnose,
            lambda: FakeVerify(()),
        ),
        recorder=recorder,
        capture=dict,
    )
    assert [s.status for s in outcome.steps] == [core.StepStatus.MANUAL] + [
        core.StepStatus.REVERTED
    ] * 3
    assert "resolved nothing" in outcome.steps[1].message
    reverted = [e[1] for e in recorder.events if e[0] == "step-reverted"]
    assert reverted == [4, 3, 2]  # newest first
    assert world.journal[-3:] == [
        ("revert", "prepend lib 2"),
        ("revert", "prepend lib 1"),
        ("revert", "prepend lib 0"),
    ]
    assert outcome.exit_code == 1


@pytest.mark.parametrize(("gpu_after", "kept"), [(False, False), (True, True)])
def test_with_an_outside_problem_only_progress_on_the_gpu_check_is_kept(
    gpu_after: bool, kept: bool
) -> None:
    world = World({"driver-too-old", "cuda-visible-devices-hidden"})
    world.plan = (
        PlanStep(StepKind.ENV_UNSET, "unset CVD", Safety.SAFE, ("cuda-visible-devices-hidden",)),
    )
    outcome = core.repair(
        world.diagnose(),
        confirm=core.AutoConfirm(),
        actions=lambda s: FakeAction(world, s, removes=frozenset({"cuda-visible-devices-hidden"})),
        observe=core.observer(
            world.diagnose,
            lambda: FakeVerify(
                ("/physical_device:GPU:0",)
                if gpu_after and "cuda-visible-devices-hidden" not in world.problems
                else ()
            ),
        ),
        recorder=FakeRecorder(),
        capture=dict,
    )
    status = outcome.steps[0].status
    assert status is (core.StepStatus.APPLIED if kept else core.StepStatus.REVERTED)
    assert ("cuda-visible-devices-hidden" in world.problems) is not kept
    if not kept:
        assert (
            "no progress on the GPU check while driver-too-old remains" in outcome.steps[0].message
        )
        assert outcome.exit_code == 3  # what is left waits for the outside fix


def test_gpu_score() -> None:
    @dataclass(frozen=True)
    class V:
        gpus: tuple[str, ...] = ()
        op_device: str | None = None
        dnn_device: str | None = None
        ok: bool = False

    assert core.gpu_score(None) == 0
    assert core.gpu_score(V()) == 0
    assert core.gpu_score(V(("g",))) == 1
    assert core.gpu_score(V(("g",), "/device:GPU:0")) == 2
    assert core.gpu_score(V(("g",), "/device:GPU:0", "/device:GPU:0")) == 3
    assert core.gpu_score(V(("g",), None, "/device:GPU:0")) == 1
    assert core.gpu_score(V(("g",), ok=True)) == 4


def test_steps_of_one_group_go_on_together() -> None:
    """Uninstall tensorflow-cpu "resolves" tf-cpu-only-package; the install must still run."""
    world = World({"tf-cpu-only-package"})
    world.plan = (
        PlanStep(
            StepKind.PIP_UNINSTALL, "remove tensorflow-cpu", Safety.SAFE, ("tf-cpu-only-package",)
        ),
        PlanStep(StepKind.PIP_INSTALL, "install tensorflow", Safety.SAFE, ("tf-cpu-only-package",)),
    )
    outcome, _ = run(
        world,
        {
            "remove tensorflow-cpu": {
                "removes": frozenset({"tf-cpu-only-package"}),
                "adds": frozenset({"tf-not-installed"}),
            },
            "install tensorflow": {"removes": frozenset({"tf-not-installed"})},
        },
    )
    assert [s.status for s in outcome.steps] == [core.StepStatus.APPLIED] * 2
    assert outcome.exit_code == 0


def test_a_group_is_judged_as_a_whole() -> None:
    """Uninstalling one of two overlapping distributions breaks TensorFlow until the reinstall."""
    world = World({"tf-multiple-distributions"})
    world.plan = (
        PlanStep(
            StepKind.PIP_UNINSTALL, "remove tf-nightly", Safety.SAFE, ("tf-multiple-distributions",)
        ),
        PlanStep(
            StepKind.PIP_INSTALL,
            "reinstall tensorflow",
            Safety.SAFE,
            ("tf-multiple-distributions",),
        ),
    )
    outcome, _ = run(
        world,
        {
            "remove tf-nightly": {"adds": frozenset({"tf-import-error", "new-breakage"})},
            "reinstall tensorflow": {
                "removes": frozenset(
                    {"tf-multiple-distributions", "tf-import-error", "new-breakage"}
                )
            },
        },
    )
    assert [s.status for s in outcome.steps] == [core.StepStatus.APPLIED] * 2
    assert outcome.exit_code == 0


def test_a_group_that_ends_worse_is_rolled_back_whole() -> None:
    world = World({"tf-multiple-distributions"})
    world.plan = (
        PlanStep(
            StepKind.PIP_UNINSTALL, "remove tf-nightly", Safety.SAFE, ("tf-multiple-distributions",)
        ),
        PlanStep(
            StepKind.PIP_INSTALL,
            "reinstall tensorflow",
            Safety.SAFE,
            ("tf-multiple-distributions",),
        ),
    )
    outcome, events = run(
        world,
        {
            "remove tf-nightly": {"adds": frozenset({"tf-import-error"})},
            "reinstall tensorflow": {"adds": frozenset({"new-breakage"})},
        },
    )
    assert [s.status for s in outcome.steps] == [core.StepStatus.REVERTED] * 2
    assert world.problems == {"tf-multiple-distributions"}
    assert [e[1] for e in events if e[0] == "step-reverted"] == [2, 1]


def test_a_failed_step_takes_its_whole_group_back() -> None:
    """The CPU build is removed, then the GPU build cannot be installed: the venv must not be
    left without TensorFlow, so the removal goes back too, and the rest of the group is not
    tried."""
    world = World({"tf-cpu-only-build", "cuda-visible-devices-hidden"})
    group = ("tf-cpu-only-build",)
    world.plan = (
        PlanStep(StepKind.PIP_UNINSTALL, "remove the CPU build", Safety.SAFE, group),
        PlanStep(StepKind.PIP_INSTALL, "install the GPU build", Safety.SAFE, group),
        PlanStep(StepKind.PIP_INSTALL, "install its extras", Safety.SAFE, group),
        step("unset CVD"),
    )
    outcome, events = run(
        world,
        {
            "remove the CPU build": {
                "removes": frozenset({"tf-cpu-only-build"}),
                "adds": frozenset({"tf-not-installed"}),
            },
            "install the GPU build": {"fail": True},
            "unset CVD": {"removes": frozenset({"cuda-visible-devices-hidden"})},
        },
    )
    assert [s.status for s in outcome.steps] == [
        core.StepStatus.REVERTED,
        core.StepStatus.FAILED,
        core.StepStatus.SKIPPED,
        core.StepStatus.APPLIED,
    ]
    assert world.problems == {"tf-cpu-only-build"}  # as before the group, nothing half-done
    assert "which failed" in outcome.steps[0].message
    assert [e[1] for e in events if e[0] == "step-reverted"] == [2, 1]
    assert outcome.exit_code == 1


# --------------------------------------------------------------------------- usability order


def swap_plan() -> tuple[PlanStep, ...]:
    return (
        PlanStep(
            StepKind.PIP_UNINSTALL,
            "remove tensorflow-cpu",
            Safety.SAFE,
            ("tf-cpu-only-package",),
            packages=("tensorflow-cpu",),
        ),
        PlanStep(
            StepKind.PIP_INSTALL,
            "install tensorflow",
            Safety.SAFE,
            ("tf-cpu-only-package", "cudnn-version-mismatch"),
            requirements=("tensorflow[and-cuda]==2.18.1",),
        ),
        PlanStep(
            StepKind.ENV_PATH_REMOVE,
            "remove the system CUDA folder",
            Safety.SAFE,
            ("ld-library-path-shadowing",),
            variable="LD_LIBRARY_PATH",
            entry="/usr/local/cuda-12.4/lib64",
        ),
    )


SEEN_WITH_TF = frozenset({"ld-library-path-shadowing", "cudnn-version-mismatch"})


def test_a_step_that_removes_tensorflow_cannot_resolve_what_it_hides() -> None:
    """tensorflow-cpu and a shadowing system cuDNN: removing tensorflow-cpu hides every finding
    about TensorFlow; they are unknown, not resolved, and the rest of the plan still runs."""
    world = World({"tf-cpu-only-package", *SEEN_WITH_TF})
    world.plan = swap_plan()
    outcome, _ = run(
        world,
        {
            "remove tensorflow-cpu": {
                "removes": frozenset({"tf-cpu-only-package", *SEEN_WITH_TF}),
                "adds": frozenset({"tf-not-installed"}),
            },
            "install tensorflow": {
                "removes": frozenset({"tf-not-installed"}),
                "adds": SEEN_WITH_TF,
            },
            "remove the system CUDA folder": {"removes": SEEN_WITH_TF},
        },
    )
    assert [s.status for s in outcome.steps] == [core.StepStatus.APPLIED] * 3
    assert outcome.exit_code == 0 and not world.problems
    assert not any("not needed" in s.message for s in outcome.steps)


def test_removing_tensorflow_is_rolled_back_whatever_the_error_count() -> None:
    """Three errors before, one after (tf-not-installed): fewer errors, but no TensorFlow."""
    world = World({"tf-cpu-only-package", *SEEN_WITH_TF})
    world.plan = (swap_plan()[0],)
    outcome, _ = run(
        world,
        {
            "remove tensorflow-cpu": {
                "removes": frozenset({"tf-cpu-only-package", *SEEN_WITH_TF}),
                "adds": frozenset({"tf-not-installed"}),
            }
        },
    )
    step1 = outcome.steps[0]
    assert step1.status is core.StepStatus.REVERTED
    assert "less usable" in step1.message and "no TensorFlow installed" in step1.message
    statuses = {f.id: f.status for f in step1.findings}
    assert statuses["cudnn-version-mismatch"] is core.FindingStatus.UNKNOWN
    assert statuses["ld-library-path-shadowing"] is core.FindingStatus.UNKNOWN
    assert world.problems == {"tf-cpu-only-package", *SEEN_WITH_TF}


@pytest.mark.parametrize(
    ("findings", "verification", "level"),
    [
        ({"tf-not-installed"}, None, core.Usability.ABSENT),
        ({"tf-import-error"}, None, core.Usability.BROKEN),
        ({"x"}, None, core.Usability.IMPORTS),
        (set(), FakeVerify(("g",)), core.Usability.XLA_OP),
        ({"x"}, FakeVerify(()), core.Usability.IMPORTS),
    ],
)
def test_usability(findings: set[str], verification: Any, level: core.Usability) -> None:
    assert core.usability(World(findings).diagnose(), verification) is level


def test_the_usability_order_decides_before_the_error_count() -> None:
    absent = core.Observation(World({"tf-not-installed"}).diagnose())
    broken_three = core.Observation(World({"tf-cpu-only-package", *SEEN_WITH_TF}).diagnose())
    assert core.judge(broken_three, absent) is not None  # fewer errors, but worse
    assert core.judge(absent, broken_three) is None  # more errors, but better


# --------------------------------------------------------------------------- closed loop


def test_a_problem_a_step_reveals_is_planned_and_applied_in_the_same_run() -> None:
    world = World({"cuda-libs-missing"})
    install = PlanStep(
        StepKind.PIP_INSTALL,
        "install the CUDA wheels",
        Safety.SAFE,
        ("cuda-libs-missing",),
        requirements=("tensorflow[and-cuda]==2.21.0",),
    )
    prepend = PlanStep(
        StepKind.ENV_PATH_PREPEND,
        "put cusolver first",
        Safety.SAFE,
        ("cuda-libs-not-found",),
        variable="LD_LIBRARY_PATH",
        entry="/v/site-packages/nvidia/cusolver/lib",
    )

    def diagnose() -> Diagnosis:
        world.plan = (prepend,) if "cuda-libs-not-found" in world.problems else (install,)
        return World.diagnose(world)

    world.plan = (install,)
    outcome = core.repair(
        diagnose(),
        confirm=core.AutoConfirm(),
        actions=lambda s: FakeAction(
            world,
            s,
            removes=frozenset(
                {"cuda-libs-missing"} if s.summary == install.summary else {"cuda-libs-not-found"}
            ),
            adds=frozenset({"cuda-libs-not-found"} if s.summary == install.summary else set()),
        ),
        observe=core.observer(
            diagnose,
            lambda: FakeVerify(() if world.problems else ("/physical_device:GPU:0",)),
        ),
        recorder=FakeRecorder(),
        capture=dict,
    )
    assert [s.status for s in outcome.steps] == [core.StepStatus.APPLIED] * 2
    later = outcome.steps[1]
    assert later.planned_after == 1 and "revealed cuda-libs-not-found" in later.planned_because
    assert outcome.exit_code == 0
    assert "planned after step 1" in core.render_outcome(outcome)
    assert core.outcome_to_dict(outcome)["steps"][1]["planned_after"] == 1


def test_the_loop_stops_at_its_bound() -> None:
    """Each step fixes one problem and reveals another: at most MAX_ROUNDS plans."""
    world = World({"p0"})
    counter = itertools.count(1)

    def diagnose() -> Diagnosis:
        current = sorted(world.problems)[0]
        world.plan = (
            PlanStep(
                StepKind.ENV_SET,
                f"fix {current}",
                Safety.SAFE,
                (current,),
                variable=current,
                value="1",
            ),
        )
        return World.diagnose(world)

    def act(s: PlanStep) -> FakeAction:
        return FakeAction(
            world, s, removes=frozenset(s.resolves), adds=frozenset({f"p{next(counter)}"})
        )

    outcome = core.repair(
        diagnose(),
        confirm=core.AutoConfirm(),
        actions=act,
        observe=core.observer(
            diagnose,
            lambda: FakeVerify(()),
        ),
        recorder=FakeRecorder(),
        capture=dict,
    )
    assert len(outcome.steps) == core.MAX_ROUNDS
    assert all(s.status is core.StepStatus.APPLIED for s in outcome.steps)
    assert outcome.exit_code == 1


# --------------------------------------------------------------------------- step edges


def test_stepwise_asks_once_for_a_group_and_declining_drops_its_dependants() -> None:
    world = World({"tf-cpu-only-package", *SEEN_WITH_TF})
    world.plan = swap_plan()[:2]
    script = Script(core.Selection(core.Mode.STEPWISE, (1, 2)), {1: False})
    outcome, events = run(world, {}, confirm=script)
    assert script.asked == [1] and script.together[1] == (2,)
    assert [s.status for s in outcome.steps] == [core.StepStatus.DECLINED] * 2
    assert "needs step 1" in outcome.steps[1].message
    assert events == [] and world.journal == []


def test_choosing_a_dependant_brings_its_prerequisite() -> None:
    world = World({"tf-cpu-only-package"})
    world.plan = swap_plan()[:2]
    said: list[str] = []
    outcome, _ = run(
        world,
        {
            "remove tensorflow-cpu": {
                "removes": frozenset({"tf-cpu-only-package"}),
                "adds": frozenset({"tf-not-installed"}),
            },
            "install tensorflow": {"removes": frozenset({"tf-not-installed"})},
        },
        confirm=Script(core.Selection(core.Mode.CHOSEN, (2,))),
        say=said.append,
    )
    assert [s.status for s in outcome.steps] == [core.StepStatus.APPLIED] * 2
    assert "step 1: applied too: step 2 needs it" in said


def test_a_dependant_of_a_step_not_offered_is_refused_with_the_reason() -> None:
    world = World({"tf-cpu-only-package"})
    first, second = swap_plan()[:2]
    world.plan = (replace(first, safety=Safety.UNSAFE), second)
    said: list[str] = []
    outcome, events = run(
        world, {}, confirm=Script(core.Selection(core.Mode.CHOSEN, (2,))), say=said.append
    )
    assert outcome.steps[0].status is core.StepStatus.HIDDEN
    assert outcome.steps[1].status is core.StepStatus.DECLINED
    assert any("step 2: not applied: it needs step 1, not offered" in s for s in said)
    assert events == []
