"""``unrecognized-error``: an error line in the log that nothing explains is quoted, never dropped.

Pure: the log lines, what ``tffix.logparse.scan_log`` made of them and the rules in; at most one
``Finding`` out, whose evidence points at every such line. It exists so that "no problem found"
can only mean that there was nothing to find.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from tffix.causes.base import Cause, Detection, Family, Section
from tffix.facts import Facts
from tffix.lazyre import lazy
from tffix.logparse import LogFacts, clean_line, unrecognized_errors
from tffix.model import Finding, Severity
from tffix.ruleset import Ruleset

CAUSE = "unrecognized-error"
QUOTE_CHARS = 200
"""How much of the first line the title quotes (the evidence points at the whole line)."""


def _quote(line: str) -> str:
    text = " ".join(clean_line(line).split())  # as printed: no terminal colour codes
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


def unrecognized_finding(
    lines: Sequence[str],
    log: LogFacts,
    rules: Ruleset,
    gpu_visible: bool | None = None,
    explained: Collection[int] = (),
) -> tuple[Finding, ...]:
    """The ``unrecognized-error`` finding for *lines*, or nothing when every error is known.

    A line another finding cites as its evidence (*explained*, indexes into *lines*) is known:
    that finding names its cause. An error while TensorFlow does list the GPU (*gpu_visible*)
    is a warning: it is not what keeps the GPU from being used.
    """
    found = tuple(i for i in unrecognized_errors(lines, log) if i not in explained)
    if not found:
        return ()
    meta = rules.cause(CAUSE)
    more = len(found) - 1
    title = f"an error tffix does not recognise: {_quote(lines[found[0]])!r}" + (
        f" (and {more} more error line{'s' if more != 1 else ''})" if more else ""
    )
    detail = (
        "These lines are errors by their form (glog level E/F, ERROR, an exception, a failed "
        "CUDA call or dlopen) but match no message catalogued from TensorFlow's and XLA's "
        "source and no signature, so tffix cannot name their cause. Read them: they may be "
        "the reason TensorFlow does not use the GPU.\n"
        + "\n".join(f"  log[{i}]: {_quote(lines[i])}" for i in found[:10])
    )
    return (
        Finding(
            id=CAUSE,
            severity=Severity.WARNING if gpu_visible else meta.severity,
            fix=meta.fix,
            title=title,
            evidence=tuple(f"log[{i}]" for i in found),
            detail=detail,
        ),
    )


_CITED = lazy(r"^log\[(\d+)\]$")


def detect(facts: Facts) -> list[Detection]:
    """The ``unrecognized-error`` detection of *facts*' log, if any line is unexplained."""
    found = unrecognized_finding(facts.snap.log, facts.log, facts.rules, facts.gpu_visible)
    return [Detection(f) for f in found]


def without_cited(facts: Facts, raw: Sequence[Detection]) -> list[Detection]:
    """*raw* with its ``unrecognized-error`` detection made again, leaving out the log lines
    the other detections cite as evidence: those name their cause, so they are not unknown."""
    cited = {
        int(m[1])
        for d in raw
        if d.finding.id != CAUSE
        for e in d.finding.evidence
        if (m := _CITED.match(e))
    }
    if not cited or not any(d.finding.id == CAUSE for d in raw):
        return list(raw)
    found = unrecognized_finding(
        facts.snap.log, facts.log, facts.rules, facts.gpu_visible, explained=cited
    )
    return [d for d in raw if d.finding.id != CAUSE] + [Detection(f) for f in found]


FAMILY = Family("log", (detect,), (Cause(CAUSE, Section.LOG, None),))
