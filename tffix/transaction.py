"""The repair transaction: confirm, apply each change, re-verify, roll back what made it worse.

``repair`` takes every collaborator as a parameter (a ``Confirm``, a factory of step actions,
an ``observe`` callable that looks again in a fresh process and returns an ``Observation``: the
re-collected diagnosis and the op check on the GPU, from one TensorFlow import; a ``Recorder``
that journals, a ``capture`` callable that snapshots the state to journal), so it runs
in-process with fakes in tests and for real from ``tffix.commands.repair``. It does no I/O of
its own apart from calling those, and the ``say`` callable for progress lines.

A run of *n* steps observes at most once per group of steps, and once more before the first
step only when the first observation came without the op check: with the first diagnosis's
own import that is at most *n* + 1 TensorFlow imports, however many times the loop re-plans
(re-planning reads the last observation; it never looks again).

Invariants it enforces (not only tests):

- only offered steps run (safe ones; unsafe ones with ``--unsafe``; manual ones never), and a
  step runs only with the steps it needs (``PlanStep.needs``): steps that need each other are
  one group, applied together and judged when the group is over;
- a group that leaves TensorFlow less usable than before is rolled back. Usability is an order
  (installed → imports → lists the GPU → runs an op → a cuDNN op → an XLA op), judged before
  any count of findings; a TensorFlow that was installed must still be installed;
- findings that cannot be judged after a change (TensorFlow gone, or not importing) are
  *unknown*, never *resolved*, and no later step is skipped because of them;
- the loop is closed: after each round the current diagnosis is planned again, and steps it
  reveals (not tried yet in this run) are offered in the same run, until TensorFlow works, a
  round keeps nothing, or ``MAX_ROUNDS`` is reached;
- a step that fails is reverted with its group; Ctrl-C reverts the group in progress and
  re-raises. The ``Outcome`` carries its exit code and renders as text or as JSON.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from tffix import stepdeps
from tffix.errors import ExitCode
from tffix.model import Diagnosis, Finding, FixSide, PlanStep, Safety, Severity, StepKind
from tffix.record import record

OUTCOME_SCHEMA = "tffix.outcome/1"
MAX_ROUNDS = 4
"""Plans per run: the first, and up to three re-plans of what the steps revealed."""

# --------------------------------------------------------------------------- usability


class Usability(enum.IntEnum):
    """How far TensorFlow gets, in order; a change may never lower it."""

    ABSENT = 0
    """No TensorFlow distribution is installed."""
    BROKEN = 1
    """Installed, but ``import tensorflow`` fails."""
    IMPORTS = 2
    LISTS_GPU = 3
    RUNS_OP = 4
    CUDNN_OP = 5
    XLA_OP = 6

    def __str__(self) -> str:
        return _USABILITY_TEXT[self]


_USABILITY_TEXT = {
    Usability.ABSENT: "no TensorFlow installed",
    Usability.BROKEN: "TensorFlow installed but not importing",
    Usability.IMPORTS: "TensorFlow imports",
    Usability.LISTS_GPU: "TensorFlow lists the GPU",
    Usability.RUNS_OP: "an op runs on the GPU",
    Usability.CUDNN_OP: "a cuDNN op runs on the GPU",
    Usability.XLA_OP: "an XLA op runs on the GPU",
}
NOT_INSTALLED = "tf-not-installed"
IMPORT_ERROR = "tf-import-error"


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


def usability(diagnosis: Diagnosis, verification: Any = None) -> Usability:
    """Where *diagnosis* (and the op check, when it ran) puts TensorFlow on the order."""
    ids = {f.id for f in diagnosis.findings}
    if NOT_INSTALLED in ids:
        return Usability.ABSENT
    if IMPORT_ERROR in ids or getattr(verification, "imported", None) is False:
        return Usability.BROKEN
    if verification is None:
        return Usability.LISTS_GPU if diagnosis.gpu_visible is True else Usability.IMPORTS
    return Usability(Usability.IMPORTS + gpu_score(verification))


@record
class Observation:
    """One look at the environment: the diagnosis, and the op check when it ran."""

    diagnosis: Diagnosis
    verification: Any = None

    @property
    def level(self) -> Usability:
        """Where TensorFlow stands on the usability order."""
        return usability(self.diagnosis, self.verification)

    @property
    def judgeable(self) -> bool:
        """True when TensorFlow imports, so findings about it can be judged."""
        return self.level >= Usability.IMPORTS

    @property
    def works(self) -> bool:
        """True when the op check passed (every op on the GPU) and TensorFlow was usable at
        every entry point checked (a Jupyter kernel, a plain run): healthy where the user
        runs, not only in a freshly activated shell."""
        return (
            self.verification is not None
            and bool(getattr(self.verification, "ok", False))
            and all(e.usable is not False for e in self.diagnosis.entry_points or ())
        )


def observer(
    diagnose: Callable[[], Diagnosis], verify: Callable[[], Any] = lambda: None
) -> Callable[[], Observation]:
    """An ``observe`` collaborator from a diagnosis and an op check that come apart (fakes,
    scripted runs): each call diagnoses, then verifies."""
    return lambda: Observation(diagnose(), verify())


# --------------------------------------------------------------------------- findings


class FindingStatus(str, enum.Enum):
    """What became of a finding after a step (or the whole run)."""

    RESOLVED = "resolved"
    STILL_PRESENT = "still present"
    REGRESSED = "regressed"
    """A new error finding that was not there before."""
    UNKNOWN = "unknown"
    """No longer reported, but it cannot be judged: TensorFlow is gone or does not import."""

    def __str__(self) -> str:
        return self.value


@record
class FindingResult:
    """One finding, compared between two diagnoses."""

    id: str
    title: str
    severity: Severity
    fix: FixSide
    status: FindingStatus


def _errors(diagnosis: Diagnosis) -> list[Finding]:
    return [f for f in diagnosis.findings if f.severity is Severity.ERROR]


def _absent_status(finding: Finding, after: Observation | None) -> FindingStatus:
    if after is None or after.judgeable:
        return FindingStatus.RESOLVED
    if finding.id == NOT_INSTALLED and after.level >= Usability.BROKEN:
        return FindingStatus.RESOLVED
    return FindingStatus.UNKNOWN


def classify(
    before: Diagnosis, after: Diagnosis, seen: Observation | None = None
) -> tuple[FindingResult, ...]:
    """Each finding of *before* as resolved, still present or unknown; new errors as regressed.

    *seen* is the observation *after* came from: when TensorFlow does not import there, a
    finding that is no longer reported is unknown, not resolved.
    """
    after_ids = {f.id for f in after.findings}
    before_ids = {f.id for f in before.findings}
    out = [
        FindingResult(
            f.id,
            f.title,
            f.severity,
            f.fix,
            FindingStatus.STILL_PRESENT if f.id in after_ids else _absent_status(f, seen),
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
    """Why *after* is worse than *before* by its findings (GPU lost, new outside errors, more
    errors), or None. ``judge`` asks the usability order first."""
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


def judge(before: Observation, after: Observation) -> str | None:
    """Why *after* is worse than *before*, or None: the usability order first (a TensorFlow
    that was installed must still be), then the findings, only where usability is equal."""
    if after.level < before.level:
        return f"TensorFlow is less usable: {before.level} before, {after.level} after"
    if after.level > before.level:
        return None
    return worse_because(before.diagnosis, after.diagnosis)


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


@record
class Selection:
    """The user's answer: a mode and the step numbers (1-based, as the plan shows them)."""

    mode: Mode
    steps: tuple[int, ...] = ()


class Confirm(Protocol):
    """The confirmation seam (``tffix.prompt`` implements it with questionary)."""

    def select(self, diagnosis: Diagnosis, offered: tuple[int, ...]) -> Selection:
        """Choose among the offered steps."""
        ...

    def step(
        self, number: int, step: PlanStep, together: Sequence[tuple[int, PlanStep]] = ()
    ) -> bool:
        """In step-by-step mode: apply this one (with the steps *together* it needs)?"""
        ...


@record
class AutoConfirm:
    """``--yes``: every offered step, no questions."""

    def select(self, diagnosis: Diagnosis, offered: tuple[int, ...]) -> Selection:
        return Selection(Mode.ALL, offered)

    def step(
        self, number: int, step: PlanStep, together: Sequence[tuple[int, PlanStep]] = ()
    ) -> bool:
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
    """What the final op check saw (``tffix.probes.verify.DeepVerification``)."""

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


@record
class StepResult:
    """One plan step's fate."""

    number: int
    step: PlanStep
    status: StepStatus
    message: str = ""
    findings: tuple[FindingResult, ...] = ()
    seconds: float = 0.0
    planned_after: int | None = None
    """For a step planned during the run: the step after which it was planned."""
    planned_because: str = ""
    """Why it was planned then (what the earlier steps revealed)."""


@record
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


def _fixes_a_warning(step: PlanStep, diagnosis: Diagnosis) -> bool:
    """True when *step* resolves a warning (or info) finding that is still present."""
    return any(
        f.id in step.resolves and f.severity is not Severity.ERROR for f in diagnosis.findings
    )


def _outside_errors(diagnosis: Diagnosis) -> list[Finding]:
    return [f for f in _errors(diagnosis) if f.fix is FixSide.OUTSIDE]


def _applicable(step: PlanStep, *, unsafe: bool) -> bool:
    allowed = {Safety.SAFE, Safety.UNSAFE} if unsafe else {Safety.SAFE}
    return step.safety in allowed and step.kind is not StepKind.MANUAL


def offered_steps(diagnosis: Diagnosis, *, unsafe: bool) -> tuple[int, ...]:
    """The plan step numbers tffix may apply: safe ones, and unsafe ones with ``--unsafe``."""
    return tuple(
        n for n, step in enumerate(diagnosis.plan, start=1) if _applicable(step, unsafe=unsafe)
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
        return int(ExitCode.OK)
    if verification is None and healthy(diagnosis):
        return int(ExitCode.OK)
    errors = _errors(diagnosis)
    waiting = set(blocked_by_outside(diagnosis)) | deferred
    if errors and all(f.fix is FixSide.OUTSIDE or f.id in waiting for f in errors):
        return int(ExitCode.OUTSIDE)
    return int(ExitCode.FIXABLE)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a step, after the step was rolled back (carries the partial outcome)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__("interrupted")
        self.outcome = outcome


# --------------------------------------------------------------------------- the run


_TRIED = {
    StepStatus.APPLIED,
    StepStatus.REVERTED,
    StepStatus.FAILED,
    StepStatus.INCOMPLETE,
    StepStatus.DECLINED,
    StepStatus.INTERRUPTED,
}
"""A step with one of these fates is not offered again in the same run."""


RUN_TIMINGS = ("steps", "observe", "state", "journal", "confirm", "other")
"""The outcome's ``timings`` from the run itself, in seconds: the steps' effects (the package
manager's runs among them), the looks after them (a fresh child each: the diagnosis and the op
checks), capturing the state the journal records, writing the journal, waiting for the user's
answers, and the rest of the run (rollbacks, judging, planning again)."""


class Laps:
    """The wall time of one tffix process, split into named laps (``tffix.commands.repair``).

    *started* is when the process started, on the ``time.monotonic`` clock: the time before
    the first lap is ``startup`` (the interpreter and tffix's imports).
    """

    def __init__(self, started: float) -> None:
        self.started = started
        self.last = time.monotonic()
        self.laps: dict[str, float] = {"startup": max(0.0, self.last - started)}

    def lap(self, name: str) -> None:
        """The time since the last lap was spent on *name*."""
        now = time.monotonic()
        self.laps[name] = self.laps.get(name, 0.0) + now - self.last
        self.last = now

    def account(self, run: Mapping[str, float]) -> dict[str, float]:
        """Every lap but ``run`` (the repair run, which *run* splits by ``RUN_TIMINGS``),
        *run*'s own, ``total`` (the wall time until now) and ``unexplained``: what no lap
        accounts for, the time between the laps' clocks."""
        total = time.monotonic() - self.started
        out = {k: v for k, v in self.laps.items() if k != "run"}
        out.update({k: v for k, v in run.items() if k not in out})
        out["unexplained"] = max(0.0, total - sum(out.values()))
        out["total"] = total
        return out


class _TimedRecorder:
    """A ``Recorder`` that adds the time it takes to ``timings["journal"]``."""

    def __init__(self, inner: Recorder, timings: dict[str, float]) -> None:
        self.inner = inner
        self.timings = timings

    def _timed(self, name: str, *args: Any) -> None:
        t = time.monotonic()
        try:
            getattr(self.inner, name)(*args)
        finally:
            self.timings["journal"] += time.monotonic() - t

    def start_run(self, state: Mapping[str, Any]) -> None:
        self._timed("start_run", state)

    def step_start(self, number: int, step: PlanStep, state: Mapping[str, Any]) -> None:
        self._timed("step_start", number, step, state)

    def step_done(self, number: int, findings: Sequence[FindingResult]) -> None:
        self._timed("step_done", number, findings)

    def step_reverted(self, number: int, reason: str, problems: Sequence[str]) -> None:
        self._timed("step_reverted", number, reason, problems)

    def end_run(self, status: str, exit_code: int) -> None:
        self._timed("end_run", status, exit_code)


class _TimedConfirm:
    """A ``Confirm`` that adds the time the user takes to answer to ``timings["confirm"]``."""

    def __init__(self, inner: Confirm, timings: dict[str, float]) -> None:
        self.inner = inner
        self.timings = timings

    def select(self, diagnosis: Diagnosis, offered: tuple[int, ...]) -> Selection:
        t = time.monotonic()
        try:
            return self.inner.select(diagnosis, offered)
        finally:
            self.timings["confirm"] += time.monotonic() - t

    def step(
        self, number: int, step: PlanStep, together: Sequence[tuple[int, PlanStep]] = ()
    ) -> bool:
        t = time.monotonic()
        try:
            return self.inner.step(number, step, together)
        finally:
            self.timings["confirm"] += time.monotonic() - t


class _GroupFailed(Exception):
    """A step of a group failed to apply; the group is already rolled back."""


@dataclass
class _Collaborators:
    confirm: Confirm
    actions: Callable[[PlanStep], Action]
    observe: Callable[[], Observation]
    recorder: Recorder
    capture: Callable[[], Mapping[str, Any]]
    unsafe: bool
    say: Callable[[str], None]


class _Run:
    """The state of one repair run; each method is one rule of the docstring above."""

    def __init__(self, first: Observation, io: _Collaborators) -> None:
        self.io = io
        diagnosis = first.diagnosis
        self.first = diagnosis
        self.plan: list[PlanStep] = list(diagnosis.plan)
        self.needs: dict[int, tuple[int, ...]] = stepdeps.needs_of(diagnosis.plan)
        self.results: dict[int, StepResult] = {}
        self.origin: dict[int, tuple[int, str]] = {}
        self.current = first
        self.selection = Selection(Mode.QUIT)
        self.left: list[str] = []
        self.started = False
        self.journal_error: str | None = None
        self.deferred: set[str] = set()
        self.timings = dict.fromkeys(RUN_TIMINGS, 0.0)
        """Seconds spent, by ``RUN_TIMINGS``; ``tffix.commands.repair`` adds its own."""
        self.t0 = time.monotonic()
        io.recorder = _TimedRecorder(io.recorder, self.timings)
        io.confirm = _TimedConfirm(io.confirm, self.timings)
        self.last_kept: int | None = None
        self.no_progress_at: dict[tuple[object, ...], int] = {}
        """Steps rolled back for making no progress -> how many steps were kept then."""
        self.retried: set[tuple[object, ...]] = set()

    # ----------------------------------------------------------------- small helpers

    def result(self, n: int, status: StepStatus, message: str = "", **kw: Any) -> None:
        planned_after, because = self.origin.get(n, (None, ""))
        self.results[n] = StepResult(
            n,
            self.plan[n - 1],
            status,
            message,
            planned_after=planned_after,
            planned_because=because,
            **kw,
        )

    def observe(self) -> Observation:
        """A fresh look: the diagnosis and the op check, from one child."""
        t = time.monotonic()
        try:
            return self.io.observe()
        finally:
            self.timings["observe"] += time.monotonic() - t

    def offered(self, numbers: Sequence[int]) -> tuple[int, ...]:
        return tuple(n for n in numbers if _applicable(self.plan[n - 1], unsafe=self.io.unsafe))

    def kept(self, n: int) -> bool:
        return n in self.results and self.results[n].status is StepStatus.APPLIED

    # ----------------------------------------------------------------- the rounds

    def mark_unoffered(self, numbers: Sequence[int]) -> None:
        for n in numbers:
            step = self.plan[n - 1]
            if step.safety is Safety.MANUAL or step.kind is StepKind.MANUAL:
                self.result(n, StepStatus.MANUAL)
            elif not _applicable(step, unsafe=self.io.unsafe):
                self.result(n, StepStatus.HIDDEN, "unsafe: add --unsafe to apply")

    def first_round(self) -> tuple[int, ...]:
        numbers = tuple(range(1, len(self.plan) + 1))
        self.mark_unoffered(numbers)
        offered = self.offered(numbers)
        diagnosis = self.first
        if offered and (diagnosis.gpu_visible is True or _outside_errors(diagnosis)):
            # An error finding means "keeps the GPU from TensorFlow": an op that runs on the
            # GPU contradicts it, so only steps that fix warnings are still worth making.
            if self.current.verification is None:  # the first look came without the op check
                self.current = Observation(diagnosis, self.observe().verification)
            if self.current.works and not any(
                _fixes_a_warning(self.plan[n - 1], diagnosis) for n in offered
            ):
                offered = ()
        return offered

    def ask(self, offered: tuple[int, ...]) -> None:
        shown = replace(self.current.diagnosis, plan=tuple(self.plan))
        selection = self.io.confirm.select(shown, offered) if offered else Selection(Mode.QUIT)
        if selection.mode is Mode.CHOSEN:
            chosen = self.bring_prerequisites(selection.steps, offered)
            selection = Selection(Mode.CHOSEN, chosen)
        self.selection = selection

    def bring_prerequisites(self, chosen: Sequence[int], offered: Sequence[int]) -> tuple[int, ...]:
        """Chosen steps with the steps they need; a step whose prerequisite is not offered is
        refused, with the reason."""
        out = set(chosen)
        for n in sorted(chosen):
            wanted = set(stepdeps.closure(self.needs, [n]))
            missing = sorted(wanted - set(offered))
            if missing:
                out.discard(n)
                self.io.say(f"step {n}: not applied: it needs step {missing[0]}, not offered")
                continue
            for m in sorted(wanted - set(chosen)):
                self.io.say(f"step {m}: applied too: step {n} needs it")
            out |= wanted
        return tuple(sorted(out))

    def replan(self, after: int | None) -> tuple[int, ...]:
        """Append the current diagnosis's steps not tried yet; returns the offered ones."""
        tried = {r.step.identity() for r in self.results.values() if r.status in _TRIED}
        fresh = self.current.diagnosis.plan
        numbers: dict[int, int] = {}
        for i, step in enumerate(fresh, start=1):
            key = step.identity()
            if (key not in tried or self.may_retry(key)) and _applicable(
                step, unsafe=self.io.unsafe
            ):
                self.retried.add(key)
                numbers[i] = len(self.plan) + 1
                self.plan.append(step)
        if not numbers:
            return ()
        why = self.replan_reason()
        for i, n in numbers.items():
            self.needs[n] = tuple(numbers[m] for m in fresh[i - 1].needs if m in numbers)
            self.origin[n] = (after or 0, why)
        self.io.say(f"re-planned after step {after}: {why}")
        return tuple(numbers.values())

    def kept_count(self) -> int:
        return sum(1 for r in self.results.values() if r.status is StepStatus.APPLIED)

    def may_retry(self, key: tuple[object, ...]) -> bool:
        """A step rolled back for making no progress is tried once more when steps were kept
        since (a problem it waited on may be fixed now); one that made things worse is not."""
        return (
            key in self.no_progress_at
            and key not in self.retried
            and self.kept_count() > self.no_progress_at[key]
        )

    def replan_reason(self) -> str:
        """What the steps so far revealed (errors the first diagnosis did not have)."""
        first = {f.id for f in self.first.findings}
        now = sorted(f.id for f in _errors(self.current.diagnosis)) or sorted(
            f.id for f in self.current.diagnosis.findings if f.severity is not Severity.INFO
        )
        revealed = [i for i in now if i not in first]
        return "revealed " + ", ".join(revealed) if revealed else "still present: " + ", ".join(now)

    def run(self) -> Outcome:
        offered = self.first_round()
        self.ask(offered)
        for round_number in range(1, MAX_ROUNDS + 1):
            kept_before = sum(1 for r in self.results.values() if r.status is StepStatus.APPLIED)
            self.run_round(offered)
            kept_now = sum(1 for r in self.results.values() if r.status is StepStatus.APPLIED)
            if round_number == MAX_ROUNDS or self.stop_after_round(kept_now > kept_before):
                break
            offered = self.replan(self.last_kept)
            if not offered:
                break
            self.ask(offered)
        return self.finish()

    def stop_after_round(self, progress: bool) -> bool:
        if self.left or self.journal_error is not None or self.selection.mode is Mode.QUIT:
            return True
        return not progress or self.current.works

    # ----------------------------------------------------------------- one round

    def run_round(self, offered: tuple[int, ...]) -> None:
        for group in stepdeps.groups(self.needs, offered):
            if self.journal_error is not None:
                break
            self.run_group(group)

    def blocked(self, group: tuple[int, ...]) -> tuple[StepStatus, str] | None:
        """Why *group* does not run (declined, a prerequisite not kept, ...), or None."""
        if self.left:
            return StepStatus.SKIPPED, "not applied: an earlier rollback was incomplete"
        if self.selection.mode is Mode.QUIT or not set(group) <= set(self.selection.steps):
            return StepStatus.DECLINED, ""
        outside = sorted(
            m for n in group for m in self.needs.get(n, ()) if m not in group and not self.kept(m)
        )
        if outside:
            m = outside[0]
            fate = self.results[m].status if m in self.results else StepStatus.SKIPPED
            status = StepStatus.DECLINED if fate is StepStatus.DECLINED else StepStatus.SKIPPED
            return status, f"not applied: it needs step {m} ({fate})"
        return None

    def not_needed(self, group: tuple[int, ...]) -> str | None:
        """Why *group* is not needed any more, or None."""
        current = self.current
        steps = [self.plan[n - 1] for n in group]
        if current.verification is not None:  # the op check decides, not the findings
            works = current.works
        else:
            works = healthy(current.diagnosis) and current.diagnosis is not self.first
        if works and not any(_fixes_a_warning(s, current.diagnosis) for s in steps):
            return "not needed: TensorFlow already runs ops on the GPU"
        if current.diagnosis is self.first or not current.judgeable:
            return None  # nothing was judged resolved yet, or it cannot be judged
        resolves = {r for s in steps for r in s.resolves}
        present = {f.id for f in current.diagnosis.findings}
        if resolves and not present & resolves:
            return "not needed any more: " + ", ".join(sorted(resolves)) + " resolved"
        return None

    def declined_interactively(self, group: tuple[int, ...]) -> bool:
        if self.selection.mode is not Mode.STEPWISE:
            return False
        first, rest = group[0], group[1:]
        together = [(m, self.plan[m - 1]) for m in rest]
        return not self.io.confirm.step(first, self.plan[first - 1], together)

    def run_group(self, group: tuple[int, ...]) -> None:
        why = self.blocked(group)
        if why is None:
            reason = self.not_needed(group)
            why = None if reason is None else (StepStatus.SKIPPED, reason)
        if why is None and self.declined_interactively(group):
            why = StepStatus.DECLINED, ""
        if why is not None:
            for n in group:
                self.result(n, why[0], why[1])
            self.explain_dependants_declined(group, why)
            return
        actions = self.checked(group)
        if actions:
            self.apply_group(actions)

    def explain_dependants_declined(
        self, group: tuple[int, ...], why: tuple[StepStatus, str]
    ) -> None:
        if why[0] is StepStatus.DECLINED and len(group) > 1:
            for n in group[1:]:
                self.result(n, StepStatus.DECLINED, f"it needs step {group[0]} (declined)")

    def checked(self, group: tuple[int, ...]) -> list[tuple[int, Action]]:
        out = []
        for n in group:
            action = self.io.actions(self.plan[n - 1])
            problem = action.check()
            if problem is not None:
                self.result(n, StepStatus.SKIPPED, problem)
                self.io.say(f"step {n}: skipped: {problem}")
                continue
            out.append((n, action))
        return out

    # ----------------------------------------------------------------- applying

    def journal_start(self, n: int) -> bool:
        """Record the state before step *n*; False (and the run stops) when that fails."""
        try:
            t = time.monotonic()
            try:
                state = self.io.capture()
            finally:  # the recorder's own time counts as "journal"
                self.timings["state"] += time.monotonic() - t
            if not self.started:
                self.io.recorder.start_run(state)
                self.started = True
            self.io.recorder.step_start(n, self.plan[n - 1], state)
        except Exception as exc:  # no record of the state before it: the step must not run
            self.result(n, StepStatus.FAILED, f"not applied: {exc}")
            self.io.say(f"step {n}: not applied: {exc}")
            self.journal_error = str(exc)
            return False
        return True

    def revert(self, done: Sequence[tuple[int, Action]], why: str, status: StepStatus) -> None:
        """Undo *done* (newest first), recording *why*."""
        for n, action in reversed(done):
            problems = action.revert()
            self.io.recorder.step_reverted(n, why, problems)
            self.left.extend(problems)
            old = self.results.get(n)
            final = StepStatus.INCOMPLETE if problems else status
            self.result(
                n,
                final,
                why,
                findings=old.findings if old else (),
                seconds=old.seconds if old else 0.0,
            )
            self.io.say(f"step {n}: {final}: {why}")

    def apply_one(self, n: int, action: Action, done: list[tuple[int, Action]]) -> None:
        t0 = time.monotonic()
        self.io.say(f"step {n}: {self.plan[n - 1].summary}")
        try:
            action.apply()
        except Exception as exc:  # ApplyError, or an OSError the effect did not wrap
            self.timings["steps"] += time.monotonic() - t0
            problems = action.revert()
            self.io.recorder.step_reverted(n, f"failed: {exc}", problems)
            self.left.extend(problems)
            status = StepStatus.INCOMPLETE if problems else StepStatus.FAILED
            self.result(n, status, f"{exc}", seconds=time.monotonic() - t0)
            self.io.say(f"step {n}: failed and rolled back: {str(exc).splitlines()[0]}")
            # a group is one change (uninstall the CPU build, install the GPU one): half of
            # it must not stay, so its earlier steps go back too
            self.revert(done, f"rolled back with step {n}, which failed", StepStatus.REVERTED)
            raise _GroupFailed from exc
        self.timings["steps"] += time.monotonic() - t0
        self.result(n, StepStatus.APPLIED, seconds=time.monotonic() - t0)
        done.append((n, action))

    def apply_group(self, actions: list[tuple[int, Action]]) -> None:
        before = self.current
        done: list[tuple[int, Action]] = []
        try:
            for n, action in actions:
                if not self.journal_start(n):
                    self.revert(
                        done, "rolled back: the journal could not record", StepStatus.REVERTED
                    )
                    return
                self.apply_one(n, action, done)
            after = self.observe()
        except _GroupFailed:
            self.skip_rest(actions, done)
            return
        except BaseException as exc:  # Ctrl-C, or a bug while observing: undo the group first
            self.interrupted(actions, done, exc)
            raise
        self.settle(before, after, done)

    def skip_rest(self, actions: list[tuple[int, Action]], done: list[tuple[int, Action]]) -> None:
        for n, _ in actions:
            if n not in self.results:
                self.result(
                    n, StepStatus.SKIPPED, "not applied: an earlier step of its group failed"
                )

    def interrupted(
        self, actions: list[tuple[int, Action]], done: list[tuple[int, Action]], exc: BaseException
    ) -> None:
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else repr(exc)
        in_progress = [(n, a) for n, a in actions if n not in self.results]
        ran = [*done, *in_progress[:1]]
        for n, action in reversed(ran):
            problems = action.revert()
            self.io.recorder.step_reverted(n, why, problems)
            self.left.extend(problems)
            self.result(n, StepStatus.INTERRUPTED, "rolled back")

    def settle(
        self, before: Observation, after: Observation, done: list[tuple[int, Action]]
    ) -> None:
        """Keep the group, or roll it back when it made things worse or no progress."""
        findings = classify(before.diagnosis, after.diagnosis, after)
        why = self.rollback_reason(before, after, findings, done)
        if why is not None:
            for n, _ in done:
                old = self.results[n]
                self.results[n] = replace(old, findings=findings)
            self.revert(done, why, StepStatus.REVERTED)
            if not why.startswith("made things worse"):
                for n, _ in done:
                    self.no_progress_at[self.plan[n - 1].identity()] = self.kept_count()
            return
        for n, _ in done:
            self.results[n] = replace(self.results[n], findings=findings)
            self.io.recorder.step_done(n, findings)
        resolved = [f.id for f in findings if f.status is FindingStatus.RESOLVED]
        unknown = [f.id for f in findings if f.status is FindingStatus.UNKNOWN]
        text = f" (resolved: {', '.join(resolved)})" if resolved else ""
        text += f" (unknown: {', '.join(unknown)})" if unknown else ""
        self.io.say(f"step {done[-1][0]}: done{text}")
        self.current = after
        self.last_kept = done[-1][0]

    def rollback_reason(
        self,
        before: Observation,
        after: Observation,
        findings: Sequence[FindingResult],
        done: Sequence[tuple[int, Action]],
    ) -> str | None:
        worse = judge(before, after)
        if worse is not None:
            return f"made things worse: {worse}"
        if after.works or after.level > before.level:
            return None
        resolves = {r for n, _ in done for r in self.plan[n - 1].resolves}
        if not resolves:  # a step that names no finding is judged by "worse" alone
            return None
        resolved = {f.id for f in findings if f.status is FindingStatus.RESOLVED}
        if not resolved & resolves:
            return "resolved nothing: " + ", ".join(sorted(resolves)) + " still present"
        outside = sorted(f.id for f in _outside_errors(after.diagnosis))
        if outside and gpu_score(after.verification) <= gpu_score(before.verification):
            # with a problem outside the venv left, a finding that "resolved" without any
            # progress on the GPU check is a guess that cannot be verified: leave the venv be
            self.deferred.update(resolves)
            return f"no progress on the GPU check while {', '.join(outside)} remains (outside)"
        return None

    # ----------------------------------------------------------------- the end

    def exit_code(self) -> int:
        if self.left:
            return int(ExitCode.ROLLBACK_INCOMPLETE)
        code = exit_code_for(
            self.current.diagnosis, self.current.verification, frozenset(self.deferred)
        )
        if self.journal_error is not None and code == ExitCode.OK:
            return int(ExitCode.FIXABLE)
        return code

    def finish(self) -> Outcome:
        for n in self.offered(range(1, len(self.plan) + 1)):
            if n not in self.results:
                why = "not applied: the run stopped early"
                if self.current.works:
                    why = "not needed: TensorFlow already runs ops on the GPU"
                self.result(n, StepStatus.SKIPPED, why)
        code = self.exit_code()
        if self.started:
            try:
                self.io.recorder.end_run("done", code)
            except Exception as exc:  # the changes are made; say the journal could not close
                self.io.say(f"warning: {exc}")
        return self.outcome(code, self.current.verification)

    def outcome(self, code: int, verification: Any) -> Outcome:
        timed = sum(v for k, v in self.timings.items() if k != "other")
        self.timings["other"] = max(0.0, time.monotonic() - self.t0 - timed)
        after = self.current.diagnosis
        return Outcome(
            before=self.first,
            after=after,
            steps=tuple(self.results[n] for n in sorted(self.results)),
            findings=classify(self.first, after, self.current),
            exit_code=code,
            verification=verification,
            left_changed=tuple(self.left),
            timings=dict(self.timings),
        )

    def close_interrupted(self) -> Interrupted:
        code = int(ExitCode.ROLLBACK_INCOMPLETE) if self.left else int(ExitCode.INTERRUPTED)
        if self.started:
            self.io.recorder.end_run("interrupted", code)
        return Interrupted(self.outcome(code, None))

    def close_on_bug(self) -> None:
        if self.started:
            with contextlib.suppress(Exception):
                self.io.recorder.end_run("error", int(ExitCode.INTERNAL))


def repair(
    first: Diagnosis | Observation,
    *,
    confirm: Confirm,
    actions: Callable[[PlanStep], Action],
    observe: Callable[[], Observation],
    recorder: Recorder,
    capture: Callable[[], Mapping[str, Any]],
    unsafe: bool = False,
    say: Callable[[str], None] = lambda text: None,
) -> Outcome:
    """Apply the plan of *first* (the first diagnosis, or the first observation with its op
    check) as a transaction and return what happened."""
    if isinstance(first, Diagnosis):
        first = Observation(first)
    run = _Run(first, _Collaborators(confirm, actions, observe, recorder, capture, unsafe, say))
    try:
        return run.run()
    except KeyboardInterrupt:  # the group in progress is rolled back already; close the run
        raise run.close_interrupted() from None
    except BaseException:  # a bug: the steps kept are whole; close the run
        run.close_on_bug()
        raise


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
            needs = f" (needs {', '.join(map(str, step.needs))})" if step.needs else ""
            lines.append(f"  {n}. {step.summary} [{tag}]{needs}")
            lines.extend(f"       $ {c}" for c in step.commands)
    return "\n".join(lines)


def _step_lines(outcome: Outcome) -> list[str]:
    lines = []
    for s in outcome.steps:
        if s.status in (StepStatus.MANUAL, StepStatus.HIDDEN):
            continue
        text = f"  step {s.number}: {s.status}: {s.step.summary}"
        if s.message:
            text += f" — {s.message.splitlines()[0]}"
        if s.planned_after is not None:
            text += f" [planned after step {s.planned_after}: {s.planned_because}]"
        lines.append(text)
    return ["Steps:", *lines] if lines else []


def _finding_lines(outcome: Outcome) -> list[str]:
    if not outcome.findings:
        return []
    lines = ["Findings:"]
    lines.extend(f"  {f.status}: {f.title} ({f.id})" for f in outcome.findings)
    if any(f.status is FindingStatus.UNKNOWN for f in outcome.findings):
        lines.append(
            "  (unknown: it cannot be judged while TensorFlow is missing or fails to import)"
        )
    return lines


def _entry_point_lines(after: Diagnosis) -> list[str]:
    """Each way the interpreter is run, usable or not, as the last observation saw it."""
    words = {True: "usable", False: "NOT usable", None: "not checked"}
    return [
        f"  where TensorFlow runs: {e.kind} {e.name}: {words[e.usable]}"
        + (f" ({e.error})" if e.error and not e.usable else "")
        for e in after.entry_points or ()
    ]


def _verification_lines(v: Any) -> list[str]:
    if v is None:
        return []
    if v.ok:
        extra = " (a cuDNN op and an XLA op too)" if getattr(v, "xla_ok", False) else ""
        gpus = ", ".join(v.gpus)
        return [f"Verified: TensorFlow lists {gpus}; a test op ran on {v.op_device}{extra}."]
    return [
        "Verified: TensorFlow does NOT use the GPU" + (f" ({v.error})" if v.error else "") + "."
    ]


def _left_lines(outcome: Outcome) -> list[str]:
    lines = []
    manual = [s for s in outcome.steps if s.status is StepStatus.MANUAL]
    hidden = [s for s in outcome.steps if s.status is StepStatus.HIDDEN]
    if manual:
        lines.append("Left for you to do (outside the venv):")
        for s in manual:
            lines.append(f"  {s.number}. {s.step.summary}")
            lines.extend(f"       $ {c}" for c in s.step.commands)
    if hidden:
        numbers = ", ".join(str(s.number) for s in hidden)
        which = f"step {numbers} is" if len(hidden) == 1 else f"steps {numbers} are"
        lines.append(f"Not applied: {which} unsafe (add --unsafe to apply).")
    if outcome.left_changed:
        lines.append("Rollback incomplete; still changed:")
        lines.extend(f"  {p}" for p in outcome.left_changed)
    return lines


def render_outcome(outcome: Outcome) -> str:
    """The outcome for a person: what changed, what was verified, what is left."""
    lines = [
        *_step_lines(outcome),
        *_finding_lines(outcome),
        *_verification_lines(outcome.verification),
        *_entry_point_lines(outcome.after),
        *_left_lines(outcome),
        *outcome.notes,
        *outcome.reactivate,
    ]
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
        "entry_points": [
            {"kind": e.kind, "name": e.name, "usable": e.usable}
            for e in outcome.after.entry_points or ()
        ],
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
                **({"needs": list(s.step.needs)} if s.step.needs else {}),
                **(
                    {"planned_after": s.planned_after, "planned_because": s.planned_because}
                    if s.planned_after is not None
                    else {}
                ),
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
