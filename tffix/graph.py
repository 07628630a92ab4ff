"""The cause graph engine: a snapshot and the rules -> ranked findings with "blocks" edges.

Pure. ``Facts`` derives what the detectors need from a (possibly very partial) snapshot;
every detector of ``tffix.causes.DETECTORS`` returns detections; ``build_graph`` merges them,
drops the ones another finding fully explains (``hides`` in the rules), computes the
``blocks`` edges from the rules among the findings present, and ranks them with
``finding_rank``.

A check that depends on a fact nobody observed does not fire: unknown is never "false".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from tffix.causes import DETECTORS, Detection
from tffix.causes.entrypoints import annotate
from tffix.causes.healthy import healthy, only_noise
from tffix.causes.libraries import best_guess
from tffix.causes.log import without_cited
from tffix.facts import Facts
from tffix.logparse import scan_log
from tffix.model import Finding, Severity, Snapshot
from tffix.record import record
from tffix.ruleset import Ruleset

# --------------------------------------------------------------------------- the graph


@record
class Graph:
    """The ranked findings, whether a GPU is visible, and the facts they came from."""

    findings: tuple[Finding, ...]
    gpu_visible: bool | None
    facts: Facts
    detections: tuple[Detection, ...]
    """The findings with what their detectors found, in the same order."""


def _merge(detections: Iterable[Detection]) -> dict[str, Detection]:
    """One finding per id: the first (most specific) title and payload, evidence of all, worst
    severity."""
    out: dict[str, Detection] = {}
    for detection in detections:
        finding = detection.finding
        have = out.get(finding.id)
        if have is None:
            out[finding.id] = detection
            continue
        first = have.finding
        severity = min(first.severity, finding.severity, key=lambda s: s.order)
        out[finding.id] = replace(
            have,
            finding=replace(
                first,
                severity=severity,
                evidence=tuple(dict.fromkeys(first.evidence + finding.evidence)),
                detail=first.detail or finding.detail,
                location=first.location or finding.location,
            ),
        )
    return out


def blocked_by(present: Mapping[str, object], rules: Ruleset) -> dict[str, tuple[str, ...]]:
    """id -> ids of present findings it blocks (direct edges from the rules)."""
    edges = {}
    for fid in present:
        meta = rules.causes.get(fid)
        declared = meta.blocks if meta else ()
        edges[fid] = tuple(sorted(b for b in declared if b in present and b != fid))
    return edges


def _reach(edges: Mapping[str, tuple[str, ...]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    seen.discard(start)
    return seen


OBSERVATION = re.compile(
    r"^(log\[|tensorflow\.(import_error|gpus|file)|libraries\.|driver\.error|extra\.|gpus\b)"
)
"""Evidence that is something observed going wrong or being seen (a log line, the import
error, what the loader resolved), as opposed to a static fact (the OS, a version)."""


UNRECOGNIZED = "unrecognized-error"


def observations(finding: Finding) -> tuple[str, ...]:
    """The observed evidence a finding explains (none for ``unrecognized-error``, which only
    quotes what no cause explains and so never competes with one)."""
    if finding.id == UNRECOGNIZED:
        return ()
    return tuple(e for e in finding.evidence if OBSERVATION.match(e))


def finding_rank(finding: Finding, blocked: int, rules: Ruleset) -> tuple[int, int, int, int, str]:
    """The ranking key of a finding (lower ranks first).

    Errors before warnings before info; then the finding that blocks the most other present
    findings (transitively); then the one that explains more of what was observed (log lines,
    the import error, the loader's answers), so that a cause resting on the report's own
    evidence ranks before one resting only on static facts; then the cause's layer rank from
    the rules (platform, driver, distribution, devices, libraries, tools); then the id, so the
    order is total.
    """
    meta = rules.causes.get(finding.id)
    return (
        finding.severity.order,
        -blocked,
        -len(observations(finding)),
        meta.rank if meta else 90,
        finding.id,
    )


def _explain_ranking(ranked: list[Detection]) -> list[Detection]:
    """Say in each competing error finding how much of the observed evidence it explains."""
    errors = [d for d in ranked if d.finding.severity == Severity.ERROR]
    seen = {e for d in errors for e in observations(d.finding)}
    if len(errors) < 2 or not seen:
        return ranked
    out = []
    for d in ranked:
        if d.finding.severity != Severity.ERROR:
            out.append(d)
            continue
        mine = observations(d.finding)
        note = (
            f"Ranked by evidence: it explains {len(mine)} of the {len(seen)} observations "
            f"behind the {len(errors)} error findings"
            + (f" ({', '.join(mine[:6])})." if mine else ".")
        )
        detail = f"{d.finding.detail}\n{note}" if d.finding.detail else note
        out.append(replace(d, finding=replace(d.finding, detail=detail)))
    return out


def build_graph(
    snapshot: Snapshot, rules: Ruleset, *, extra_findings: Sequence[Finding] = ()
) -> Graph:
    """Run every detector over *snapshot*, merge, hide what is explained, link and rank."""
    facts = Facts(snapshot, rules, scan_log(snapshot.log, rules))
    raw: list[Detection] = [d for detect in DETECTORS for d in detect(facts)]
    raw = without_cited(facts, raw)
    raw.extend(Detection(f) for f in extra_findings)
    present = _merge(raw)
    hidden: set[str] = set()
    for fid in present:
        meta = rules.causes.get(fid)
        if meta and present[fid].finding.severity == Severity.ERROR:
            hidden.update(h for h in meta.hides if h != fid)
    present = {k: v for k, v in present.items() if k not in hidden}
    problems = [d for d in present.values() if d.finding.severity != Severity.INFO]
    gpu_visible = facts.gpu_visible
    if gpu_visible and not problems:
        present["healthy"] = healthy(facts)
    elif not any(d.finding.severity == Severity.ERROR for d in present.values()):
        # a partial report: rank the likeliest cause rather than say nothing, or name the noise
        guess = best_guess(facts) if not gpu_visible else None
        if guess is None and not problems:
            guess = only_noise(facts)
        if guess is not None:
            present[guess.id] = guess
    edges = blocked_by(present, rules)
    linked = {
        fid: replace(d, finding=replace(d.finding, blocks=edges[fid])) for fid, d in present.items()
    }
    ranked = _explain_ranking(
        sorted(
            linked.values(),
            key=lambda d: finding_rank(d.finding, len(_reach(edges, d.id)), rules),
        )
    )
    # where a cited variable's value comes from (``~/.bashrc`` line 12), or where tffix looked
    named = annotate([d.finding for d in ranked], snapshot)
    ranked = [replace(d, finding=n) for d, n in zip(ranked, named, strict=True)]
    return Graph(tuple(d.finding for d in ranked), gpu_visible, facts, tuple(ranked))
