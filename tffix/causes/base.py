"""The shape of a cause: its section, its detection and its fix, as values.

Pure. A family module (``tffix.causes.driver`` …) defines its detectors, which read ``Facts``
and return ``Detection`` values (the finding plus a frozen, typed payload of what the check
found), and one ``Cause`` per id, whose ``fix`` reads that payload and proposes alternative
step lists. The metadata that is really data (severity, fix side, rank, blocks, hides) stays
in ``rules/causes.toml``; ``tffix.causes.CAUSES`` is the one table of every cause.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from tffix.facts import Facts
from tffix.model import Finding, FixSide, PlanStep, Severity
from tffix.record import record


class Section(str, enum.Enum):
    """The line of the text report a cause is shown on (``tffix.report.SECTIONS``)."""

    PLATFORM = "platform"
    PYTHON = "python"
    CONTAINER = "container"
    DRIVER = "driver"
    PACKAGE = "package"
    BUILD = "build"
    DEVICES = "devices"
    LIBRARIES = "libraries"
    CUDNN = "cudnn"
    XLA = "xla"
    ENTRY_POINTS = "entry-points"
    LOG = "log"


@record
class Detection:
    """A finding and what its check found, for the fix to read instead of re-deriving it."""

    finding: Finding
    payload: object = None
    """A frozen dataclass of the family (folders, versions, files), or None."""

    @property
    def id(self) -> str:
        return self.finding.id


P = TypeVar("P")


def payload(detected: Detection, kind: type[P]) -> P:
    """The payload of *detected*, which its detector sets to a *kind* (a bug otherwise)."""
    value = detected.payload
    if not isinstance(value, kind):
        raise TypeError(f"{detected.id}: payload {value!r} is not a {kind.__name__}")
    return value


Alternative = tuple[PlanStep, ...]
"""One way to fix a finding: the steps, in order."""
Detector = Callable[[Facts], Iterable[Detection]]
Fixer = Callable[[Facts, Detection], list[Alternative]]


@record
class Cause:
    """One cause id: where the report shows it and how it is fixed (None: explain only)."""

    id: str
    section: Section | None
    """None: shown as "Code" (a scan finding with a location) or "Other"."""
    fix: Fixer | None


@record
class Family:
    """The causes one module detects together (one reading of the facts can name several)."""

    name: str
    detectors: tuple[Detector, ...]
    causes: tuple[Cause, ...]


def detection(
    facts: Facts,
    cause: str,
    title: str,
    evidence: Sequence[str],
    *,
    detail: str = "",
    severity: Severity | None = None,
    fix: FixSide | None = None,
    payload: object = None,
) -> Detection:
    """A detection of *cause*, with the severity and fix side of its rules entry by default."""
    meta = facts.rules.cause(cause)
    finding = Finding(
        id=cause,
        severity=severity or meta.severity,
        fix=fix or meta.fix,
        title=title,
        evidence=tuple(dict.fromkeys(evidence)),
        detail=detail,
    )
    return Detection(finding, payload)
