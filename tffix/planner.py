"""Findings -> the ranked plan: the fewest, smallest, safest steps that get TF onto the GPU.

Pure. Each cause's fix (``tffix.causes``) proposes alternative step lists from what its
detection found ("fixed by" edges); the best alternative per finding is chosen with
``alternative_rank``; the chosen steps are merged (identical steps resolve several findings;
a ``tensorflow[and-cuda]==V`` install subsumes installs of V's own pins), and ordered with
``step_rank``.

Versions in pip steps are exact and come from the release matrix for the target's Python, so
a plan never names a wheel that does not exist for it. Outside causes get ``manual`` steps
with the exact commands a person runs; tffix never runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tffix import stepdeps
from tffix.causes import CAUSES, Alternative
from tffix.facts import Facts
from tffix.graph import Graph
from tffix.model import Finding, FixSide, PlanStep, Safety, Severity, StepKind

SAFETY_ORDER = {Safety.SAFE: 0, Safety.UNSAFE: 1, Safety.MANUAL: 2}
KIND_PHASE = {
    StepKind.MANUAL: 0,
    StepKind.PIP_UNINSTALL: 1,
    StepKind.PIP_INSTALL: 2,
    StepKind.ENV_UNSET: 3,
    StepKind.ENV_SET: 3,
    StepKind.ENV_PATH_REMOVE: 3,
    StepKind.ENV_PATH_PREPEND: 4,
    StepKind.KERNELSPEC_ENV: 5,
    StepKind.IMPORT_HOOK: 5,
    StepKind.STARTUP_EDIT: 6,
}


# --------------------------------------------------------------------------- step builders


# --------------------------------------------------------------------------- release choice


# --------------------------------------------------------------------------- fixers


# --------------------------------------------------------------------------- ranking


def _step_size(step: PlanStep) -> int:
    return max(1, len(step.requirements) + len(step.packages) + len(step.commands))


def alternative_rank(steps: Alternative, finding: Finding) -> tuple[int, int, int, str]:
    """The key that picks one fix per finding (lower is better).

    Safest first: safe, then unsafe, then manual for a finding tffix can fix in the venv; for a
    finding only an outside action fixes, the manual fix is the real one and a venv workaround
    (an older TensorFlow) comes after it. Then the fewest steps, the smallest change, and the
    text, so that the choice is total.
    """
    worst = max((SAFETY_ORDER[s.safety] for s in steps), default=0)
    if finding.fix == FixSide.OUTSIDE:
        worst = {2: 0, 0: 1, 1: 2}[worst]
    size = sum(_step_size(s) for s in steps)
    return (worst, len(steps), size, repr([s.summary for s in steps]))


def step_rank(step: PlanStep, order: dict[str, int]) -> tuple[int, int, str]:
    """The key that orders the plan (lower runs first).

    By phase: manual steps (shown first: they unblock the rest), then uninstalls, installs and
    environment edits, so that applying in order never installs before removing; within a
    phase, by the rank of the first finding the step resolves; then the summary.
    """
    first = min((order.get(r, len(order)) for r in step.resolves), default=len(order))
    return (KIND_PHASE[step.kind], first, step.summary)


def _add_resolves(step: PlanStep, more: Sequence[str]) -> PlanStep:
    return replace(step, resolves=tuple(dict.fromkeys(step.resolves + tuple(more))))


def _merge(steps: Sequence[PlanStep], facts: Facts) -> list[PlanStep]:
    """Identical steps become one; a later install of a package already installed by an
    earlier step is folded into it (when the earlier one pins the same version, or installs a
    TensorFlow release whose [and-cuda] pins include it)."""
    out: list[PlanStep] = []
    index: dict[tuple[object, ...], int] = {}
    for step in steps:
        key = step.identity()
        if key in index:
            out[index[key]] = _add_resolves(out[index[key]], step.resolves)
            continue
        if step.kind == StepKind.PIP_INSTALL:
            target = _covering_install(out, step, facts)
            if target is not None:
                out[target] = _add_resolves(out[target], step.resolves)
                continue
        if step.kind == StepKind.PIP_UNINSTALL:
            # uninstalling what an earlier uninstall already removes is one step
            for i, prior in enumerate(out):
                if prior.kind == StepKind.PIP_UNINSTALL and set(step.packages) <= set(
                    prior.packages
                ):
                    out[i] = _add_resolves(prior, step.resolves)
                    break
            else:
                index[key] = len(out)
                out.append(step)
            continue
        index[key] = len(out)
        out.append(step)
    return out


def _covering_install(out: Sequence[PlanStep], step: PlanStep, facts: Facts) -> int | None:
    from packaging.requirements import Requirement  # not at start-up: it imports packaging.tags

    names = {Requirement(r).name for r in step.requirements}
    for i, prior in enumerate(out):
        if prior.kind != StepKind.PIP_INSTALL:
            continue
        prior_reqs = [Requirement(r) for r in prior.requirements]
        prior_names = {r.name for r in prior_reqs}
        if names & prior_names:
            return i  # the earlier (higher-ranked) install of the same package wins
        for req in prior_reqs:
            if req.name != "tensorflow":
                continue
            version = next((s.version for s in req.specifier if s.operator == "=="), None)
            release = facts.rules.release(version)
            if release is None:
                continue
            pins = release.pins()
            if all(
                Requirement(r).name in pins
                and all(
                    pins[Requirement(r).name].contains(s.version, prereleases=True)
                    for s in Requirement(r).specifier
                )
                for r in step.requirements
            ):
                return i
    return None


def make_plan(graph: Graph) -> tuple[PlanStep, ...]:
    """The ranked plan for the error and warning findings of *graph*.

    A warning is a GPU that works but is degraded or fragile (XLA without ptxas/libdevice):
    its fix is offered too, ranked after every error's.
    """
    facts = graph.facts
    order = {f.id: i for i, f in enumerate(graph.findings)}
    chosen: list[PlanStep] = []
    for detected in graph.detections:
        finding = detected.finding
        if finding.severity == Severity.INFO:
            continue
        cause = CAUSES.get(finding.id)
        if cause is None or cause.fix is None:
            continue
        alternatives = [a for a in cause.fix(facts, detected) if a]
        if not alternatives:
            continue
        best = min(alternatives, key=lambda a: alternative_rank(a, finding))
        chosen.extend(best)
    ordered = sorted(_merge(chosen, facts), key=lambda s: step_rank(s, order))
    return stepdeps.with_needs(ordered)
