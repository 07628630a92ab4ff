"""The repair transaction: confirm, apply each step, re-verify, roll back what made it worse.

``repair`` takes every collaborator as a parameter (a ``Confirm``, a factory of step actions,
an ``observe`` callable that re-collects and re-diagnoses in a fresh process, a ``verify``
callable that runs one op on the GPU, a ``Recorder`` that journals, a ``capture`` callable
that snapshots the state to journal), so it runs in-process with fakes in tests and for real
from ``tffix.commands.repair``. It does no I/O of its own apart from calling those, and the
``say`` callable for progress lines.

Rules (STYLE.md 6–12): only offered steps run (safe ones; unsafe ones with ``--unsafe``;
manual ones never); each step is checked first, journalled with the state before it, applied,
and followed by a fresh observation; a step that fails is reverted, and so is one whose
result is worse (more error findings, or the GPU lost); Ctrl-C reverts the step in progress
and re-raises. The ``Outcome`` carries its exit code and renders as text or as a JSON
document.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tffix.model import Diagnosis, Finding, FixSide, PlanStep, Safety, Severity, StepKind

OUTCOME_SCHEMA = "tffix.outcome/1"


# --------------------------------------------------------------------------- findings


class FindingStatus(str, enum.Enum):
    """What became of a finding after a step (or the whole run)."""

    RESOLVED = "resolved"
    STILL_PRESENT = "still present"
    REGRESSED = "regressed"
    """A new error finding that was not there before."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class FindingResult:
    """One finding, compared between two diagnoses."""

    id: str
    title: str
    severity: Severity
    fix: FixSide
    status: FindingStatus


def _errors(diagnosis: Diagnosis) -> list[Finding]:
    return [f for f in diagnosis.findings if f.severity is Severity.ERROR]


def classify(before: Diagnosis, after: Diagnosis) -> tuple[FindingResult, ...]:
    """Each finding of *before* as resolved or still present; new errors as regressed."""
    after_ids = {f.id for f in after.findings}
    before_ids = {f.id for f in before.findings}
    out = [
        FindingResult(
            f.id,
            f.title,
            f.severity,
            f.fix,
            FindingStatus.STILL_PRESENT if f.id in after_ids else FindingStatus.RESOLVED,
        )
        for f in before.findings
    ]
    out += [
        FindingResult(f.id, f.title, f.severity, f.fix, FindingStatus.REGRESSED)
        for f in _errors(after)
        if f.id not in before_ids
    ]
    return tuple(out)


def worse_because(before: Diagnosis, after: Diagnosis) -> str | None:
    """Why *after* is worse than *before* (more error findings, GPU lost), or None."""
    if before.gpu_visible is True and after.gpu_visible is not True:
        return "TensorFlow no longer lists the GPU"
    # a change inside the venv cannot fix the machine, but it can hide it (the driver's
    # folder dropped from LD_LIBRARY_PATH reads as "no driver"): a new outside error is worse
    outside_before = {f.id for f in _errors(before) if f.fix is FixSide.OUTSIDE}
    new_outside = sorted(
        f.id for f in _errors(after) if f.fix is FixSide.OUTSIDE and f.id not in outside_before
    )
    if new_outside:
        return "new problems outside the venv: " + ", ".join(new_outside)
    if len(_errors(after)) > len(_errors(before)):
        new = sorted({f.id for f in _errors(after)} - {f.id for f in _errors(before)})
        return "new problems: " + ", ".join(new) if new else "more problems than before"
    return None


def healthy(diagnosis: Diagnosis) -> bool:
    """True when TensorFlow lists the GPU and no error finding remains."""
    return diagnosis.gpu_visible is True and not _errors(diagnosis)


# --------------------------------------------------------------------------- collaborators


class Mode(str, enum.Enum):
    """What the user chose to do with the plan."""

    ALL = "all"
    STEPWISE = "step by step"
    CHOSEN = "chosen"
    QUIT = "quit"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Selection:
    """The user's answer: a mode and the step numbers (1-based, as the plan shows them)."""

    mode: Mode
    steps: tuple[int, ...] = ()


class Confirm(Protocol):
    """The confirmation seam (``tffix.prompt`` implements it with questionary)."""

    def select(self, diagnosis: Diagnosis, offered: tuple[int, ...]) -> Selection:
        """Choose among the offered steps."""
        ...

    def step(self, number: int, step: PlanStep) -> bool:
        """In step-by-step mode: apply this one?"""
        ...


@dataclass(frozen=True, slots=True)
class AutoConfirm:
    """``--yes``: every offered step, no questions."""

    def select(self, diagnosis: Diagnosis, offered: tuple[int, ...]) -> Selection:
        return Selection(Mode.ALL, offered)

    def step(self, number: int, step: PlanStep) -> bool:
        return True


class Action(Protocol):
    """A step's effect (``tffix.effects.steps``)."""

    step: PlanStep

    def check(self) -> str | None: ...

    def apply(self) -> None: ...

    def revert(self) -> list[str]: ...


class Recorder(Protocol):
    """The journal as the transaction sees it."""

    def start_run(self, state: Mapping[str, Any]) -> None: ...

    def step_start(self, number: int, step: PlanStep, state: Mapping[str, Any]) -> None: ...

    def step_done(self, number: int, findings: Sequence[FindingResult]) -> None: ...

    def step_reverted(self, number: int, reason: str, problems: Sequence[str]) -> None: ...

    def end_run(self, status: str, exit_code: int) -> None: ...


class Verification(Protocol):
    """What the final op check saw (``tffix.probes.tensorflow.VerifyResult``)."""

    gpus: tuple[str, ...]
    op_device: str | None
    error: str | None

    @property
    def ok(self) -> bool: ...


# --------------------------------------------------------------------------- outcome


class StepStatus(str, enum.Enum):
    """What happened to one plan step."""

    APPLIED = "applied"
    """Applied and kept: the re-verification found nothing worse."""
    REVERTED = "rolled back"
    """Applied, found to make things worse, and rolled back."""
    FAILED = "failed"
    """Could not be applied; rolled back."""
    INCOMPLETE = "rollback incomplete"
    SKIPPED = "skipped"
    DECLINED = "declined"
    HIDDEN = "not offered"
    """Unsafe, and ``--unsafe`` was not given."""
    MANUAL = "manual"
    INTERRUPTED = "interrupted"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class StepResult:
    """One plan step's fate."""

    number: int
    step: PlanStep
    status: StepStatus
    message: str = ""
    findings: tuple[FindingResult, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of a repair run; carries its exit code."""

    before: Diagnosis
    after: Diagnosis
    steps: tuple[StepResult, ...]
    findings: tuple[FindingResult, ...]
    exit_code: int
    verification: Any = None
    left_changed: tuple[str, ...] = ()
    reactivate: tuple[str, ...] = ()
    """Lines telling the user how to pick up environment changes in their shell."""
    notes: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """True when any step was applied and kept."""
        return any(s.status is StepStatus.APPLIED for s in self.steps)


class ExitCodes:
    """The exit codes ``Outcome`` uses (mirrors ``tffix.errors.ExitCode``, kept import-free)."""

    OK, FIXABLE, OUTSIDE, ROLLBACK_INCOMPLETE = 0, 1, 3, 4


def _fixes_a_warning(step: PlanStep, diagnosis: Diagnosis) -> bool:
    """True when *step* resolves a warning (or info) finding that is still present."""
    return any(
        f.id in step.resolves and f.severity is not Severity.ERROR for f in diagnosis.findings
    )


def _outside_errors(diagnosis: Diagnosis) -> list[Finding]:
    return [f for f in _errors(diagnosis) if f.fix is FixSide.OUTSIDE]


def gpu_score(verification: Any) -> int:
    """How far the GPU check got: 0 no GPU (or unknown), 1 listed, 2 an op ran on it,
    3 a cuDNN op too, 4 an XLA op too (``ok``)."""
    if verification is None or not getattr(verification, "gpus", ()):
        return 0
    if getattr(verification, "ok", False):
        return 4
    on_gpu = [
        d and "GPU" in str(d).upper()
        for d in (
            getattr(verification, "op_device", None),
            getattr(verification, "dnn_device", None),
        )
    ]
    return 1 + sum(1 for _ in itertools.takewhile(bool, on_gpu))


def offered_steps(diagnosis: Diagnosis, *, unsafe: bool) -> tuple[int, ...]:
    """The plan step numbers tffix may apply: safe ones, and unsafe ones with ``--unsafe``."""
    allowed = {Safety.SAFE, Safety.UNSAFE} if unsafe else {Safety.SAFE}
    return tuple(
        n
        for n, step in enumerate(diagnosis.plan, start=1)
        if step.safety in allowed and step.kind is not StepKind.MANUAL
    )


def blocked_by_outside(diagnosis: Diagnosis) -> dict[str, str]:
    """Finding id -> the outside error finding that blocks it (it cannot be judged until then)."""
    return {
        blocked: f.id
        for f in diagnosis.findings
        if f.fix is FixSide.OUTSIDE and f.severity is Severity.ERROR
        for blocked in f.blocks
    }


def exit_code_for(
    diagnosis: Diagnosis, verification: Any = None, deferred: frozenset[str] = frozenset()
) -> int:
    """0 when the GPU works; 1 when venv-fixable errors remain; 3 when only outside ones do
    (or the venv-side ones wait for an outside one)."""
    if verification is not None and verification.ok:
        return ExitCodes.OK
    if verification is None and healthy(diagnosis):
        return ExitCodes.OK
    errors = _errors(diagnosis)
    waiting = set(blocked_by_outside(diagnosis)) | deferred
    if errors and all(f.fix is FixSide.OUTSIDE or f.id in waiting for f in errors):
        return ExitCodes.OUTSIDE
    return ExitCodes.FIXABLE


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a step, after the step was rolled back (carries the partial outcome)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__("interrupted")
        self.outcome = outcome


def repair(
    diagnosis: Diagnosis,
    *,
    confirm: Confirm,
    actions: Callable[[PlanStep], Action],
    observe: Callable[[], Diagnosis],
    verify: Callable[[], Any],
    recorder: Recorder,
    capture: Callable[[], Mapping[str, Any]],
    unsafe: bool = False,
    say: Callable[[str], None] = lambda text: None,
) -> Outcome:
    """Apply the plan of *diagnosis* as a transaction and return what happened."""
    offered = offered_steps(diagnosis, unsafe=unsafe)
    results: dict[int, StepResult] = {}
    for n, step in enumerate(diagnosis.plan, start=1):
        if step.safety is Safety.MANUAL or step.kind is StepKind.MANUAL:
            results[n] = StepResult(n, step, StepStatus.MANUAL)
        elif n not in offered:
            results[n] = StepResult(n, step, StepStatus.HIDDEN, "unsafe: add --unsafe to apply")
    verification: Any = None
    gpu_works = False
    timings = {"steps": 0.0, "observe": 0.0, "verify": 0.0}
    if offered and (diagnosis.gpu_visible is True or _outside_errors(diagnosis)):
        # An error finding means "keeps the GPU from TensorFlow": an op that runs on the GPU
        # contradicts it, so only steps that fix warnings are still worth making.
        t = time.monotonic()
        verification = verify()
        timings["verify"] += time.monotonic() - t
        gpu_works = verification is not None and bool(verification.ok)
        if gpu_works and not any(
            _fixes_a_warning(diagnosis.plan[n - 1], diagnosis) for n in offered
        ):
            offered = ()
    selection = confirm.select(diagnosis, offered) if offered else Selection(Mode.QUIT)
    current = diagnosis
    started = False
    left: list[str] = []
    journal_error: str | None = None

    def result(n: int, status: StepStatus, message: str = "", **kw: Any) -> None:
        results[n] = StepResult(n, diagnosis.plan[n - 1], status, message, **kw)

    # Steps that resolve the same findings form a group (eleven LD_LIBRARY_PATH entries for
    # one cuda-libs-not-found); a group is judged once it is over, and one that resolved none
    # of its findings, while the GPU still does not work, is rolled back: "fixed" means
    # re-verified, not "the command returned 0".
    group_key: tuple[str, ...] = ()
    group_before = diagnosis
    group_verification = verification
    group_kept: list[tuple[int, Action]] = []
    failed_group: tuple[str, ...] = ()
    deferred: set[str] = set()
    """Findings whose steps were undone because an outside problem must be fixed first."""

    def more_in_group(n: int) -> bool:
        later = [m for m in offered if m > n]
        return (
            bool(later)
            and tuple(sorted(diagnosis.plan[later[0] - 1].resolves)) == (group_key) != ()
        )

    def roll_back_group(why: str) -> None:
        nonlocal current, verification
        for m, kept_action in reversed(group_kept):
            problems = kept_action.revert()
            recorder.step_reverted(m, why, problems)
            left.extend(problems)
            old = results[m]
            status = StepStatus.INCOMPLETE if problems else StepStatus.REVERTED
            results[m] = StepResult(m, old.step, status, why, old.findings, old.seconds)
            say(f"step {m}: {why}")
        if group_kept:
            current, verification = group_before, group_verification
        group_kept.clear()

    def settle_group() -> None:
        nonlocal current, verification
        kept = list(group_kept)
        group_kept.clear()
        if not kept or gpu_works or not group_key:
            return
        resolved = {
            f.id for f in classify(group_before, current) if f.status is FindingStatus.RESOLVED
        }
        outside = sorted(f.id for f in _errors(current) if f.fix is FixSide.OUTSIDE)
        worse = worse_because(group_before, current)
        if worse is not None:
            why = f"made things worse: {worse}"
        elif not resolved & set(group_key):
            why = "resolved nothing: " + ", ".join(group_key) + " still present"
        elif outside and gpu_score(verification) <= gpu_score(group_verification):
            # with a problem outside the venv left, a finding that "resolved" without any
            # progress on the GPU check is a guess that cannot be verified: leave the venv be
            why = f"no progress on the GPU check while {', '.join(outside)} remains (outside)"
            deferred.update(group_key)
        else:
            return
        for n, action in reversed(kept):
            problems = action.revert()
            recorder.step_reverted(n, why, problems)
            left.extend(problems)
            old = results[n]
            status = StepStatus.INCOMPLETE if problems else StepStatus.REVERTED
            results[n] = StepResult(n, old.step, status, why, old.findings, old.seconds)
            say(f"step {n}: rolled back: {why}")
        current, verification = group_before, group_verification

    try:
        for n in offered:
            step = diagnosis.plan[n - 1]
            key = tuple(sorted(step.resolves))
            new_group = key != group_key
            if new_group:
                settle_group()
                group_key, group_before, group_verification = key, current, verification
            if left:  # a rollback failed: change nothing more
                result(n, StepStatus.SKIPPED, "not applied: an earlier rollback was incomplete")
                continue
            if failed_group and key == failed_group:
                result(n, StepStatus.SKIPPED, "not applied: an earlier step of its group failed")
                continue
            if selection.mode is Mode.QUIT or n not in selection.steps:
                result(n, StepStatus.DECLINED)
                continue
            if (gpu_works and not _fixes_a_warning(step, current)) or (
                healthy(current) and current is not diagnosis
            ):
                result(n, StepStatus.SKIPPED, "not needed: TensorFlow already runs ops on the GPU")
                continue
            # a later group whose findings an earlier one fixed is not needed; within a group
            # (uninstall tensorflow-cpu, then install tensorflow) the steps go on together
            present = {f.id for f in current.findings}
            if (
                new_group
                and current is not diagnosis
                and step.resolves
                and not present & set(step.resolves)
            ):
                result(
                    n,
                    StepStatus.SKIPPED,
                    "not needed any more: " + ", ".join(step.resolves) + " resolved",
                )
                continue
            if selection.mode is Mode.STEPWISE and not confirm.step(n, step):
                result(n, StepStatus.DECLINED)
                continue
            action = actions(step)
            why = action.check()
            if why is not None:
                result(n, StepStatus.SKIPPED, why)
                say(f"step {n}: skipped: {why}")
                continue
            try:
                state = capture()
                if not started:
                    recorder.start_run(state)
                    started = True
                recorder.step_start(n, step, state)
            except Exception as exc:  # no record of the state before it: the step must not run
                result(n, StepStatus.FAILED, f"not applied: {exc}")
                say(f"step {n}: not applied: {exc}")
                journal_error = str(exc)
                break
            say(f"step {n}: {step.summary}")
            t0 = time.monotonic()
            try:
                try:
                    action.apply()
                except Exception as exc:  # ApplyError, or an OSError the effect did not wrap
                    problems = action.revert()
                    recorder.step_reverted(n, f"failed: {exc}", problems)
                    left += problems
                    status = StepStatus.INCOMPLETE if problems else StepStatus.FAILED
                    result(n, status, f"{exc}", seconds=time.monotonic() - t0)
                    say(f"step {n}: failed and rolled back: {str(exc).splitlines()[0]}")
                    # a group is one change (uninstall the CPU build, install the GPU one):
                    # half of it must not stay, so its earlier steps go back too
                    roll_back_group(f"rolled back with step {n}, which failed")
                    failed_group = group_key
                    continue
                timings["steps"] += time.monotonic() - t0
                t1 = time.monotonic()
                after = observe()
                timings["observe"] += time.monotonic() - t1
            except BaseException as exc:  # Ctrl-C, or a bug while observing: undo the step first
                interrupted = isinstance(exc, KeyboardInterrupt)
                problems = action.revert()
                recorder.step_reverted(n, "interrupted" if interrupted else repr(exc), problems)
                left += problems
                result(n, StepStatus.INTERRUPTED, "rolled back")
                if not interrupted:
                    raise  # the outer handler closes the run
                code = ExitCodes.ROLLBACK_INCOMPLETE if problems else 130
                recorder.end_run("interrupted", code)
                outcome = _finish(diagnosis, current, results, None, left, code, timings)
                raise Interrupted(outcome) from None
            worse = worse_because(current, after)
            findings = classify(current, after)
            # inside a group the state between steps may be broken on purpose (uninstall
            # tf-nightly, then reinstall tensorflow): the group is judged when it is over
            if worse is not None and more_in_group(n):
                worse = None
            if worse is not None:
                problems = action.revert()
                recorder.step_reverted(n, f"made things worse: {worse}", problems)
                left += problems
                status = StepStatus.INCOMPLETE if problems else StepStatus.REVERTED
                result(n, status, worse, findings=findings, seconds=time.monotonic() - t0)
                say(f"step {n}: rolled back: {worse}")
                continue
            recorder.step_done(n, findings)
            result(n, StepStatus.APPLIED, findings=findings, seconds=time.monotonic() - t0)
            resolved = [f.id for f in findings if f.status is FindingStatus.RESOLVED]
            say(f"step {n}: done" + (f" (resolved: {', '.join(resolved)})" if resolved else ""))
            current = after
            group_kept.append((n, action))
            # the op check after every kept step: once TensorFlow runs an op on the GPU, stop
            t2 = time.monotonic()
            verification = verify()
            timings["verify"] += time.monotonic() - t2
            gpu_works = verification is not None and bool(verification.ok)
        settle_group()
    except Interrupted:
        raise
    except KeyboardInterrupt:  # between steps: nothing half-done; close the run
        code = ExitCodes.ROLLBACK_INCOMPLETE if left else 130
        if started:
            recorder.end_run("interrupted", code)
        raise Interrupted(_finish(diagnosis, current, results, None, left, code, timings)) from None
    except BaseException:  # a bug between steps: the steps done are whole; close the run
        if started:
            with contextlib.suppress(Exception):
                recorder.end_run("error", 5)
        raise
    for n in offered_steps(diagnosis, unsafe=unsafe):
        if n not in results:
            why = "not applied: the run stopped early"
            if gpu_works:
                why = "not needed: TensorFlow already runs ops on the GPU"
            result(n, StepStatus.SKIPPED, why)
    code = (
        ExitCodes.ROLLBACK_INCOMPLETE
        if left
        else exit_code_for(current, verification, frozenset(deferred))
    )
    if journal_error is not None and code == ExitCodes.OK:
        code = ExitCodes.FIXABLE
    if started:
        try:
            recorder.end_run("done", code)
        except Exception as exc:  # the changes are made; say the journal could not close
            say(f"warning: {exc}")
    return _finish(diagnosis, current, results, verification, left, code, timings)


def _finish(
    before: Diagnosis,
    after: Diagnosis,
    results: Mapping[int, StepResult],
    verification: Any,
    left: Sequence[str],
    code: int,
    timings: Mapping[str, float],
) -> Outcome:
    return Outcome(
        before=before,
        after=after,
        steps=tuple(results[n] for n in sorted(results)),
        findings=classify(before, after),
        exit_code=code,
        verification=verification,
        left_changed=tuple(left),
        timings=dict(timings),
    )


# --------------------------------------------------------------------------- rendering


def render_plan(diagnosis: Diagnosis, *, unsafe: bool) -> str:
    """The findings and the numbered plan, as shown before asking."""
    lines = []
    if diagnosis.findings:
        lines.append("Problems found:")
        lines.extend(
            f"  [{f.severity}] {f.title} ({f.id}; fix: {f.fix})" for f in diagnosis.findings
        )
    else:
        lines.append("No problems found.")
    if diagnosis.plan:
        lines.append("")
        lines.append("Plan:")
        for n, step in enumerate(diagnosis.plan, start=1):
            hidden = step.safety is Safety.UNSAFE and not unsafe
            tag = f"{step.safety}" + (", needs --unsafe" if hidden else "")
            lines.append(f"  {n}. {step.summary} [{tag}]")
            lines.extend(f"       $ {c}" for c in step.commands)
    return "\n".join(lines)


def render_outcome(outcome: Outcome) -> str:
    """The outcome for a person: what changed, what was verified, what is left."""
    lines: list[str] = []
    for s in outcome.steps:
        if s.status in (StepStatus.MANUAL, StepStatus.HIDDEN):
            continue
        text = f"  step {s.number}: {s.status}: {s.step.summary}"
        if s.message:
            text += f" — {s.message.splitlines()[0]}"
        lines.append(text)
    if lines:
        lines.insert(0, "Steps:")
    if outcome.findings:
        lines.append("Findings:")
        lines.extend(f"  {f.status}: {f.title} ({f.id})" for f in outcome.findings)
    v = outcome.verification
    if v is not None:
        if v.ok:
            lines.append(
                f"Verified: TensorFlow lists {', '.join(v.gpus)}; a test op ran on {v.op_device}"
                + (" (a cuDNN op and an XLA op too)" if getattr(v, "xla_ok", False) else "")
                + "."
            )
        else:
            lines.append(
                "Verified: TensorFlow does NOT use the GPU"
                + (f" ({v.error})" if v.error else "")
                + "."
            )
    manual = [s for s in outcome.steps if s.status is StepStatus.MANUAL]
    hidden = [s for s in outcome.steps if s.status is StepStatus.HIDDEN]
    if manual:
        lines.append("Left for you to do (outside the venv):")
        for s in manual:
            lines.append(f"  {s.number}. {s.step.summary}")
            lines.extend(f"       $ {c}" for c in s.step.commands)
    if hidden:
        numbers = ", ".join(str(s.number) for s in hidden)
        lines.append(f"Unsafe steps not applied ({numbers}): add --unsafe to apply them.")
    if outcome.left_changed:
        lines.append("Rollback incomplete; still changed:")
        lines.extend(f"  {p}" for p in outcome.left_changed)
    lines.extend(outcome.notes)
    lines.extend(outcome.reactivate)
    return "\n".join(lines)


def _finding_dict(f: FindingResult) -> dict[str, Any]:
    return {
        "id": f.id,
        "title": f.title,
        "severity": str(f.severity),
        "fix": str(f.fix),
        "status": str(f.status),
    }


def outcome_to_dict(outcome: Outcome) -> dict[str, Any]:
    """The outcome as a ``tffix.outcome/1`` JSON document."""
    v = outcome.verification
    return {
        "schema": OUTCOME_SCHEMA,
        "exit_code": outcome.exit_code,
        "changed": outcome.changed,
        "gpu_visible": outcome.after.gpu_visible,
        "steps": [
            {
                "step": s.number,
                "kind": str(s.step.kind),
                "summary": s.step.summary,
                "safety": str(s.step.safety),
                "status": str(s.status),
                "message": s.message,
                "findings": [_finding_dict(f) for f in s.findings],
                "seconds": round(s.seconds, 3),
                **({"commands": list(s.step.commands)} if s.step.commands else {}),
            }
            for s in outcome.steps
        ],
        "findings": [_finding_dict(f) for f in outcome.findings],
        "verification": None
        if v is None
        else {"ok": bool(v.ok), "gpus": list(v.gpus), "op_device": v.op_device, "error": v.error},
        "left_changed": list(outcome.left_changed),
        "reactivate": list(outcome.reactivate),
        "notes": list(outcome.notes),
        "timings": {k: round(t, 3) for k, t in outcome.timings.items()},
    }
