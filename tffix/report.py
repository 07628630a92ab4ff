"""Rendering a diagnosis: human text (one line per check, verdict, plan) or the JSON document.

Pure: ``Diagnosis`` (+ the snapshot, for the list of checks and what each saw) -> ``str``.
Marks read without colour (``[ok]``, ``[!!]``, ``[! ]``, ``[??]``, ``[--]``); colour comes only
from the ``Style`` the caller passes (see ``tffix.term``). Unsafe steps are hidden unless asked
for, with a hint, as ruff hides unsafe fixes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from tffix import evidence
from tffix import shellquote as sq
from tffix.causes import CAUSES, Section, entrypoints
from tffix.diagnosis import exit_code
from tffix.document import diagnosis_to_dict
from tffix.errors import ExitCode
from tffix.model import (
    UNKNOWN,
    Diagnosis,
    Driver,
    Finding,
    FixSide,
    GpuUse,
    PlanStep,
    Safety,
    Severity,
    Snapshot,
    StepKind,
    TensorFlowInfo,
)
from tffix.record import record
from tffix.ruleset import Ruleset
from tffix.term import Style, clean_fields, clean_json, clean_output


def _tf(snap: Snapshot) -> TensorFlowInfo | None:
    return snap.tensorflow if isinstance(snap.tensorflow, TensorFlowInfo) else None


def _seen_platform(snap: Snapshot) -> str | None:
    p = snap.platform
    parts = [x for x in (p.os, p.arch, p.libc) if x]
    return " ".join(parts) + (" (WSL2)" if p.wsl else "") if parts else None


def _seen_python(snap: Snapshot) -> str | None:
    return snap.python.version


def _seen_container(snap: Snapshot) -> str | None:
    p = snap.platform
    if p.container is UNKNOWN:
        return None
    return "not in a container" if p.container is None else f"{p.container}, GPU passed in"


def _seen_driver(snap: Snapshot) -> str | None:
    if isinstance(snap.driver, Driver) and snap.driver.version:
        cuda = f" (CUDA {snap.driver.cuda})" if snap.driver.cuda else ""
        return f"{snap.driver.version}{cuda}"
    return None


def _seen_package(snap: Snapshot) -> str | None:
    tf = _tf(snap)
    if snap.packages and "tensorflow" in snap.packages:
        return f"tensorflow {snap.packages['tensorflow']}"
    return f"tensorflow {tf.version}" if tf and tf.version else None


def _seen_build(snap: Snapshot) -> str | tuple[str, str] | None:
    tf = _tf(snap)
    if tf and tf.build and tf.build.is_cuda_build:
        return f"CUDA {tf.build.cuda_version or '?'} build"
    if tf and tf.build and tf.build.is_cuda_build is False:
        return ("warning", "CPU-only build (no CUDA support)")
    if tf and tf.import_error is None:
        return ("unknown", "imports; whether it is a CUDA build is unknown")
    return None


def _seen_devices(snap: Snapshot) -> str | None:
    if snap.gpus:
        return ", ".join(
            f"{g.name or 'GPU'}" + (f" ({g.compute_capability})" if g.compute_capability else "")
            for g in snap.gpus
        )
    return None


def _seen_libraries(snap: Snapshot) -> str | None:
    found = [s for s, lib in snap.libraries.items() if isinstance(lib.path, str)]
    return f"{len(found)} resolved" if found else None


def _seen_cudnn(snap: Snapshot) -> str | None:
    for soname, lib in snap.libraries.items():
        if soname.startswith("libcudnn") and isinstance(lib.path, str):
            return f"{soname} {lib.version or ''}".strip()
    return None


def _seen_xla(snap: Snapshot) -> str | None:
    nvcc = next((n for n in snap.packages or {} if n.startswith("nvidia-cuda-nvcc")), None)
    ptxas = snap.extra.get("ptxas")
    if nvcc:
        return f"{nvcc} {(snap.packages or {})[nvcc]}"
    if isinstance(ptxas, dict) and (ptxas.get("on_path") or ptxas.get("in_wheels")):
        return "ptxas found"
    return None


def _seen_log(snap: Snapshot) -> str | None:
    return f"{len(snap.log)} line(s), every error recognised" if snap.log else None


@record
class CheckSpec:
    """One line of the report: a section, its label, and what the snapshot says when none of
    its causes was found (None: not observed)."""

    section: Section
    label: str
    seen: Callable[[Snapshot], str | tuple[str, str] | None]
    """The text (shown as ``[ok]``), or (mark, text) when what was seen is not all right."""

    @property
    def key(self) -> str:
        return self.section.value

    @property
    def causes(self) -> tuple[str, ...]:
        """The ids of the causes shown on this line (from ``tffix.causes.CAUSES``)."""
        return tuple(c.id for c in CAUSES.values() if c.section is self.section)


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec(Section.PLATFORM, "Platform", _seen_platform),
    CheckSpec(Section.PYTHON, "Python", _seen_python),
    CheckSpec(Section.CONTAINER, "Container GPU access", _seen_container),
    CheckSpec(Section.DRIVER, "NVIDIA driver", _seen_driver),
    CheckSpec(Section.PACKAGE, "TensorFlow package", _seen_package),
    CheckSpec(Section.BUILD, "TensorFlow build", _seen_build),
    CheckSpec(Section.DEVICES, "GPU devices", _seen_devices),
    CheckSpec(Section.LIBRARIES, "CUDA libraries", _seen_libraries),
    CheckSpec(Section.CUDNN, "cuDNN", _seen_cudnn),
    CheckSpec(Section.XLA, "XLA tools", _seen_xla),
    # where the user runs TensorFlow (tffix.causes.entrypoints)
    CheckSpec(Section.ENTRY_POINTS, "Where TensorFlow runs", entrypoints.seen),
    CheckSpec(Section.LOG, "TensorFlow log", _seen_log),
)
"""Every line of the report, in order (one per ``Section``)."""
_PLAIN = Style()
_COVERED = {c for spec in CHECKS for c in spec.causes} | {"healthy"}
_STATE = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "info"}


def _blocker(spec: CheckSpec, findings: Sequence[Finding], rules: Ruleset | None) -> str | None:
    for f in findings:
        if f.severity != Severity.ERROR:
            continue
        declared = rules.causes[f.id].blocks if rules and f.id in rules.causes else f.blocks
        if set(declared) & set(spec.causes):
            return f.id
    return None


def _finding_lines(
    f: Finding,
    label: str,
    style: Style,
    verbose: int,
    snap: Snapshot | None = None,
    rules: Ruleset | None = None,
) -> list[str]:
    state = _STATE[f.severity]
    where = f" ({f.location})" if f.location else ""
    lines = [f"  {style.mark(state)} {label}: {f.title}{where}  {style.paint('dim', f'[{f.id}]')}"]
    if verbose:
        lines.extend(f"       {t}" for t in evidence.show(f.evidence, snap, rules, verbose=verbose))
        if f.blocks:
            lines.append(f"       blocks: {', '.join(f.blocks)}")
        if f.detail:
            lines.append(f"       {f.detail}")
    return lines


def step_commands(
    step: PlanStep, python: str | None, shell: sq.Dialect = sq.Dialect.POSIX
) -> list[str]:
    """What a step amounts to, as commands a person could type into *shell*."""
    py = python or "python"
    if step.kind == StepKind.PIP_INSTALL:
        return [sq.join([py, "-m", "pip", "install", *step.requirements], shell)]
    if step.kind == StepKind.PIP_UNINSTALL:
        return [sq.join([py, "-m", "pip", "uninstall", "-y", *step.packages], shell)]
    if step.kind == StepKind.ENV_SET:
        return [sq.set_variable(step.variable or "", step.value or "", shell)]
    if step.kind == StepKind.ENV_UNSET:
        return [sq.unset_variable(step.variable or "", shell)]
    if step.kind == StepKind.ENV_PATH_PREPEND:
        return sq.prepend_path(step.variable or "", step.entry or "", shell).splitlines()
    if step.kind == StepKind.ENV_PATH_REMOVE:
        return sq.remove_path(step.variable or "", step.entry or "", shell).splitlines()
    return list(step.commands)


def verdict(diag: Diagnosis) -> str:
    """The one-line verdict."""
    code = exit_code(diag)
    errors = [f for f in diag.findings if f.severity == Severity.ERROR]
    n = len(errors)
    problems = f"{n} problem{'s' if n != 1 else ''}"
    if code == ExitCode.OK:
        if diag.gpu_visible:
            return "TensorFlow sees the GPU."
        return "No problem found in what was given (whether TensorFlow sees the GPU is unknown)."
    outside = [f for f in errors if f.fix == FixSide.OUTSIDE]
    if code == ExitCode.FIXABLE and outside:
        return (
            f"TensorFlow cannot use the GPU: {problems}; tffix can fix {n - len(outside)} in "
            f"the venv, {len(outside)} need{'s' if len(outside) == 1 else ''} action outside it "
            "(the manual steps)."
        )
    planned = {cause for step in diag.plan for cause in step.resolves}
    if code == ExitCode.FIXABLE and not any(f.id in planned for f in errors):
        # venv-side causes, but nothing in the report to build a step from
        return (
            f"TensorFlow cannot use the GPU: {problems}, fixable in the venv, but this report "
            "does not show enough to plan the steps: run tffix in the environment itself."
        )
    if code == ExitCode.FIXABLE:
        return f"TensorFlow cannot use the GPU: {problems}, which tffix can fix in the venv."
    first = next(f for f in errors if f.fix == FixSide.OUTSIDE)
    return (
        f"TensorFlow cannot use the GPU: {problems}; {first.id} needs action outside the venv "
        "first."
    )


def _check_lines(
    diag: Diagnosis, snap: Snapshot, rules: Ruleset | None, style: Style, verbose: int
) -> list[str]:
    out: list[str] = []
    by_id = {f.id: f for f in diag.findings}
    for spec in CHECKS:
        mine = [by_id[c] for c in spec.causes if c in by_id]
        mine.sort(key=lambda f: diag.findings.index(f))
        if mine:
            for f in mine:
                out.extend(_finding_lines(f, spec.label, style, verbose, snap, rules))
            continue
        blocker = _blocker(spec, diag.findings, rules)
        if blocker:
            out.append(
                f"  {style.mark('skipped')} {spec.label}: not checked (blocked by {blocker})"
            )
            continue
        seen = spec.seen(snap)
        if seen is None:
            out.append(f"  {style.mark('unknown')} {spec.label}: unknown")
        else:
            mark, text = seen if isinstance(seen, tuple) else ("ok", seen)
            out.append(f"  {style.mark(mark)} {spec.label}: {text}")
    for f in diag.findings:
        if f.id not in _COVERED:
            label = "Code" if f.location else "Other"
            out.extend(_finding_lines(f, label, style, verbose, snap, rules))
    return out + gpu_lines(diag, style)


_YES_NO = {True: "yes", False: "no", None: "unknown"}


def gpu_lines(diag: Diagnosis, style: Style = _PLAIN) -> list[str]:
    """Two facts: whether TensorFlow lists a GPU, and whether work runs on it."""
    use = diag.gpu_use or GpuUse(listed=diag.gpu_visible)
    listed = {True: "ok", False: "error", None: "unknown"}[use.listed]
    lines = [f"  {style.mark(listed)} TensorFlow lists a GPU: {_YES_NO[use.listed]}"]
    if use.listed is False:
        return lines
    usable = use.usable
    if usable is False:
        kind = (
            "cuDNN ops"
            if use.cudnn is False and use.op is None
            else "XLA"
            if use.xla is False and use.op is None
            else "ops"
        )
        why = f" ({kind} fail: {use.why})" if use.why else ""
        lines.append(f"  {style.mark('error')} TensorFlow can use it: no{why}")
    elif usable is True:
        lines.append(f"  {style.mark('ok')} TensorFlow can use it: yes (an op ran on it)")
    else:
        lines.append(
            f"  {style.mark('unknown')} TensorFlow can use it: unknown (a diagnosis lists "
            "devices but runs no op on them)"
        )
    return lines


_UNSAFE_WHY = {
    StepKind.PIP_INSTALL: "changes the TensorFlow release or overrides another framework's pins",
    StepKind.PIP_UNINSTALL: "removes a package other packages may need",
    StepKind.STARTUP_EDIT: "comments out a line of your own start-up file",
}
"""Why a hidden unsafe step is unsafe, by what it does (the step kinds the fixes mark unsafe)."""


def _hidden_sentence(hidden: list[tuple[int, PlanStep]]) -> str:
    """One sentence for the unsafe steps not shown, each named by its plan number."""
    reasons: dict[str, list[int]] = {}
    for number, step in hidden:
        why = _UNSAFE_WHY.get(step.kind, "changes more than this fix needs")
        reasons.setdefault(why, []).append(number)
    numbers = [n for n, _s in hidden]
    listed = ", ".join(map(str, numbers))
    which = (
        f"One more step is possible but not shown (step {listed})"
        if len(numbers) == 1
        else f"{len(numbers)} more steps are possible but not shown ({listed})"
    )
    if len(reasons) == 1:
        why = f"because {'it' if len(numbers) == 1 else 'each'} {next(iter(reasons))}"
    else:
        why = "because " + "; ".join(
            f"{'step' if len(ns) == 1 else 'steps'} {', '.join(map(str, ns))} {text}"
            for text, ns in reasons.items()
        )
    them = "it" if len(numbers) == 1 else "them"
    return f"  {which}, {why}: add --unsafe to see {them}"


def _plan_lines(diag: Diagnosis, snap: Snapshot | None, show_unsafe: bool) -> list[str]:
    """The plan, numbered as the transaction numbers its steps (its questions, its outcome, the
    journal): a hidden unsafe step keeps its number, on a line that says it is not shown."""
    python = snap.python.executable if snap else None
    shell = sq.for_shell(snap.platform.shell if snap else None)
    shown = {f.id for f in diag.findings}
    hidden: list[tuple[int, PlanStep]] = []
    out = ["", "Plan:"]
    for number, step in enumerate(diag.plan, start=1):
        if step.safety == Safety.UNSAFE and not show_unsafe:
            hidden.append((number, step))
            out.append(f"  {number}. [unsafe, not shown]")
            continue
        tag = {Safety.SAFE: "safe", Safety.UNSAFE: "unsafe", Safety.MANUAL: "manual"}[step.safety]
        who = " (run it yourself)" if step.safety == Safety.MANUAL else ""
        who += f" (needs {', '.join(map(str, step.needs))})" if step.needs else ""
        fixes = [r for r in step.resolves if r in shown]
        arrow = f"  → fixes {', '.join(fixes)}" if fixes else ""
        out.append(f"  {number}. [{tag}] {step.summary}{who}{arrow}")
        out.extend(f"       {command}" for command in step_commands(step, python, shell))
    if hidden:
        out.append(_hidden_sentence(hidden))
    return out


def render_text(
    diag: Diagnosis,
    snap: Snapshot | None = None,
    *,
    rules: Ruleset | None = None,
    verbose: int = 0,
    show_unsafe: bool = False,
    style: Style = _PLAIN,
    heading: str | None = None,
    checks: bool = True,
) -> str:
    """The human report: checks (or just findings), verdict, plan."""
    diag, snap = clean_fields(diag), clean_fields(snap)  # no line from outside splits or escapes
    out: list[str] = []
    if heading:
        out.append(style.paint("bold", heading))
    if checks and snap is not None:
        out.extend(_check_lines(diag, snap, rules, style, verbose))
        out.extend(entrypoints.usable_lines(diag.entry_points, style.mark))  # entry points
    else:
        labels = {c: spec.label for spec in CHECKS for c in spec.causes}
        for f in diag.findings:
            if f.id == "healthy":
                continue
            out.extend(_finding_lines(f, labels.get(f.id, "Code"), style, verbose, snap, rules))
        if all(f.id == "healthy" for f in diag.findings):
            out.append("  no known cause in this text")
            out.extend(f"  {f.title}" for f in diag.findings if diag.gpu_visible is None)
    out.append("")
    out.append(style.paint("bold", verdict(diag)))
    if diag.plan:
        out.extend(_plan_lines(diag, snap, show_unsafe))
    return clean_output("\n".join(out) + "\n", colour=style.colour)  # untrusted text inside


def render_json(diag: Diagnosis) -> str:
    """The ``tffix.diagnosis/1`` document as indented JSON text."""
    return clean_json(json.dumps(diagnosis_to_dict(diag), indent=2, ensure_ascii=False)) + "\n"
