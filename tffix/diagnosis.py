"""The pure pipeline: snapshot (+ rules, + code-scan findings) -> ``Diagnosis``, and its exit code.

No I/O: the caller loads the rules (``tffix.ruleset.load_rules``, cached) and the snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence

from tffix.causes import CAUSES, Section
from tffix.errors import ExitCode
from tffix.graph import build_graph
from tffix.model import Diagnosis, Finding, FixSide, GpuUse, Severity, Snapshot
from tffix.planner import make_plan
from tffix.ruleset import Ruleset


def diagnose(
    snapshot: Snapshot, rules: Ruleset, *, extra_findings: tuple[Finding, ...] = ()
) -> Diagnosis:
    """Name every cause in *snapshot* (ranked, with evidence) and the plan that fixes them."""
    graph = build_graph(snapshot, rules, extra_findings=extra_findings)
    return Diagnosis(
        gpu_visible=graph.gpu_visible,
        findings=graph.findings,
        plan=make_plan(graph),
        entry_points=snapshot.entry_points,
        gpu_use=gpu_use(graph.gpu_visible, graph.findings),
    )


_OP_KIND = {Section.CUDNN: "cudnn", Section.XLA: "xla"}


def gpu_use(listed: bool | None, findings: Sequence[Finding]) -> GpuUse:
    """Listed and usable apart: an error finding while TensorFlow lists a GPU is evidence that
    work does not run there (a cuDNN or XLA finding: that kind of op; any other: ops at all).
    Nothing in a snapshot shows an op that ran, so *op* is never True here."""
    facts: dict[str, bool | None] = {"op": None, "cudnn": None, "xla": None}
    why = None
    if listed is False:
        facts["op"] = False
    for f in findings:
        if f.severity != Severity.ERROR or listed is not True:
            continue
        cause = CAUSES.get(f.id)
        kind = _OP_KIND.get(cause.section, "op") if cause and cause.section else "op"
        if facts[kind] is None:
            facts[kind] = False
            why = why or f.id
    return GpuUse(listed=listed, why=why, **facts)


def exit_code(diagnosis: Diagnosis) -> ExitCode:
    """What a diagnosing command exits with (the README's exit-code rule).

    No error finding: 0. Only venv-fixable errors: 1. Only outside errors: 3. Both: 3 when an
    outside error blocks another finding (nothing below it can be judged or fixed until a
    person acts, e.g. no driver), else 1 (tffix can still make progress).
    """
    errors: Sequence[Finding] = [f for f in diagnosis.findings if f.severity == Severity.ERROR]
    if not errors:
        return ExitCode.OK
    outside = [f for f in errors if f.fix == FixSide.OUTSIDE]
    venv = [f for f in errors if f.fix == FixSide.VENV]
    if outside and not venv:
        return ExitCode.OUTSIDE
    if venv and not outside:
        return ExitCode.FIXABLE
    return ExitCode.OUTSIDE if any(f.blocks for f in outside) else ExitCode.FIXABLE
