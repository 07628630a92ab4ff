"""The fleet view: many hosts' ``tffix.diagnosis/1`` / ``tffix.outcome/1`` documents -> one answer.

Pure: decoded JSON documents (with the host name and where each came from) in, frozen views
and the ``tffix.fleet/1`` aggregate out; ``render_text`` for a terminal. Reading the files is
``tffix.commands.report``'s; the HTML page is ``tffix.fleet_html``'s. The documents are
untrusted: a field of the wrong type is an ``InputError`` naming the file and the field; a
missing field is unknown.

A host's state is one of ``STATES`` (so the counts add up to the number of hosts):

- ``healthy``: no error finding (an outcome that changed nothing and exited 0);
- ``repaired``: an outcome that applied steps and ended with exit 0 (GPU verified);
- ``fixable``: error findings tffix can fix in the venv remain (exit 1);
- ``outside``: an error only an outside action fixes remains (exit 3), with the exact action;
- ``rollback-incomplete``: a step failed and undoing it failed too (exit 4);
- ``unknown``: the document does not say (a refused run, an exit code tffix does not use).

The aggregate's JSON Schema ships as ``tffix/schemas/fleet-1.schema.json``
(``tffix.schemas.schema_path("fleet")``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tffix.errors import ExitCode, InputError
from tffix.record import record

FLEET_SCHEMA = "tffix.fleet/1"
DIAGNOSIS = "tffix.diagnosis/1"
OUTCOME = "tffix.outcome/1"
_SUFFIXES = (".diagnosis", ".outcome", ".health", ".tffix")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class HostState(str, enum.Enum):
    """Where a host stands (see the module docstring)."""

    HEALTHY = "healthy"
    REPAIRED = "repaired"
    FIXABLE = "fixable"
    OUTSIDE = "outside"
    ROLLBACK_INCOMPLETE = "rollback-incomplete"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


STATES: tuple[HostState, ...] = tuple(HostState)


@record
class Cause:
    """An error finding still present on a host."""

    id: str
    title: str
    fix: str
    """``venv`` or ``outside``."""


@record
class Action:
    """A step a person has to take outside the venv, with its exact commands."""

    summary: str
    commands: tuple[str, ...] = ()
    resolves: tuple[str, ...] = ()


@record
class HostView:
    """One host, as its document says."""

    host: str
    source: str
    """The file the document came from."""
    kind: str
    """``diagnosis``, ``health`` (a diagnosis without TensorFlow) or ``outcome``."""
    state: HostState
    exit_code: int | None
    gpu_visible: bool | None
    changed: bool = False
    causes: tuple[Cause, ...] = ()
    resolved: tuple[str, ...] = ()
    """Ids of the findings a repair resolved."""
    actions: tuple[Action, ...] = ()
    warnings: tuple[str, ...] = ()
    """Ids of warning findings still present."""


# --------------------------------------------------------------------------- reading


def clean(text: object) -> str:
    """*text* without control characters (documents are untrusted; terminals are not)."""
    return _CONTROL.sub("?", str(text))


def host_name(file_name: str, doc: Mapping[str, Any]) -> str:
    """The document's ``host`` field, else the file name without ``.json`` and a kind suffix
    (``gpu01.outcome.json`` -> ``gpu01``)."""
    named = doc.get("host")
    if isinstance(named, str) and named.strip():
        return clean(named.strip())
    stem = file_name.rsplit("/", 1)[-1]
    if stem.lower().endswith(".json"):
        stem = stem[:-5]
    for suffix in _SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    return clean(stem)


def _get(doc: Mapping[str, Any], key: str, kinds: tuple[type, ...], what: str, where: str) -> Any:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in kinds:
        raise InputError(f"{where}: field {key} must be {what}")
    if not isinstance(value, kinds):
        raise InputError(f"{where}: field {key} must be {what}")
    return value


def _objects(doc: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    items = _get(doc, key, (list,), "a list", where) or []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(f"{where}: {key}[{i}] must be an object")
    return items


def _text(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise InputError(f"{where}: field {key} must be a string")
    return clean(value)


def _strings(item: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = _get(item, key, (list,), "a list of strings", where) or []
    if not all(isinstance(v, str) for v in values):
        raise InputError(f"{where}: field {key} must be a list of strings")
    return tuple(clean(v) for v in values)


def _diagnosis_code(findings: Sequence[Mapping[str, Any]], where: str) -> int:
    """``tffix.diagnosis.exit_code`` over the document's findings."""
    from tffix.diagnosis import exit_code
    from tffix.model import Diagnosis, Finding, FixSide, Severity

    parsed = []
    for i, f in enumerate(findings):
        try:
            severity, fix = Severity(f.get("severity", "info")), FixSide(f.get("fix", "venv"))
        except ValueError as exc:
            raise InputError(f"{where}: findings[{i}]: {exc}") from exc
        parsed.append(
            Finding(
                id=_text(f, "id", where),
                severity=severity,
                fix=fix,
                title=_text(f, "title", where),
                blocks=_strings(f, "blocks", where),
            )
        )
    return int(exit_code(Diagnosis(gpu_visible=None, findings=tuple(parsed))))


def _state_of_code(code: int | None, changed: bool) -> HostState:
    if code == ExitCode.OK:
        return HostState.REPAIRED if changed else HostState.HEALTHY
    states: dict[int | None, HostState] = {
        ExitCode.FIXABLE: HostState.FIXABLE,
        ExitCode.OUTSIDE: HostState.OUTSIDE,
        ExitCode.ROLLBACK_INCOMPLETE: HostState.ROLLBACK_INCOMPLETE,
    }
    return states.get(code, HostState.UNKNOWN)


def _read_diagnosis(host: str, source: str, doc: Mapping[str, Any]) -> HostView:
    where = source
    findings = _objects(doc, "findings", where)
    plan = _objects(doc, "plan", where)
    gpu = _get(doc, "gpu_visible", (bool,), "true, false or null", where)
    code = _diagnosis_code(findings, where)
    causes = tuple(
        Cause(_text(f, "id", where), _text(f, "title", where), _text(f, "fix", where) or "venv")
        for f in findings
        if f.get("severity") == "error"
    )
    actions = tuple(
        Action(
            _text(s, "summary", where),
            _strings(s, "commands", where),
            _strings(s, "resolves", where),
        )
        for s in plan
        if s.get("safety") == "manual" or s.get("kind") == "manual"
    )
    return HostView(
        host=host,
        source=source,
        kind="health" if doc.get("mode") == "health" else "diagnosis",
        state=_state_of_code(code, False),
        exit_code=code,
        gpu_visible=gpu,
        causes=causes,
        actions=actions,
        warnings=tuple(_text(f, "id", where) for f in findings if f.get("severity") == "warning"),
    )


def _read_outcome(host: str, source: str, doc: Mapping[str, Any]) -> HostView:
    where = source
    code = _get(doc, "exit_code", (int,), "a whole number", where)
    changed = bool(_get(doc, "changed", (bool,), "true or false", where))
    findings = _objects(doc, "findings", where)
    steps = _objects(doc, "steps", where)
    gpu = _get(doc, "gpu_visible", (bool,), "true, false or null", where)
    present = [f for f in findings if f.get("status") in ("still present", "regressed")]
    causes = tuple(
        Cause(_text(f, "id", where), _text(f, "title", where), _text(f, "fix", where) or "venv")
        for f in present
        if f.get("severity") == "error"
    )
    actions = tuple(
        Action(_text(s, "summary", where), _strings(s, "commands", where))
        for s in steps
        if s.get("status") == "manual"
    )
    return HostView(
        host=host,
        source=source,
        kind="outcome",
        state=_state_of_code(code, changed),
        exit_code=code,
        gpu_visible=gpu,
        changed=changed,
        causes=causes,
        resolved=tuple(
            _text(f, "id", where)
            for f in findings
            if f.get("status") == "resolved" and f.get("id") != "healthy"
        ),
        actions=actions,
        warnings=tuple(_text(f, "id", where) for f in present if f.get("severity") == "warning"),
    )


def read_view(host: str, source: str, doc: object) -> HostView:
    """One host's view of a decoded document; ``InputError`` naming *source* when it is not one."""
    if not isinstance(doc, dict):
        raise InputError(f"{source}: a tffix document is a JSON object")
    schema = doc.get("schema")
    if schema == DIAGNOSIS:
        return _read_diagnosis(host, source, doc)
    if schema == OUTCOME:
        return _read_outcome(host, source, doc)
    raise InputError(f"{source}: schema {clean(schema)!r} is neither {DIAGNOSIS!r} nor {OUTCOME!r}")


_KIND_ORDER = {"outcome": 0, "diagnosis": 1, "health": 2}


def merge(views: Iterable[HostView]) -> tuple[HostView, ...]:
    """One view per host, sorted by host: an outcome (what a run left) over a diagnosis, a full
    diagnosis over a health check. Two documents of one kind for one host are an error."""
    best: dict[str, HostView] = {}
    for view in views:
        have = best.get(view.host)
        if have is None or _KIND_ORDER[view.kind] < _KIND_ORDER[have.kind]:
            best[view.host] = view
        elif have.kind == view.kind:
            raise InputError(
                f"two {view.kind} documents for host {view.host}: {have.source} and {view.source}"
            )
    return tuple(best[h] for h in sorted(best, key=_natural))


def _natural(text: str) -> list[object]:
    """``gpu2`` before ``gpu10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


# --------------------------------------------------------------------------- aggregating


def fleet_exit_code(views: Sequence[HostView]) -> int:
    """The worst host: 4 rollback incomplete, else 3 outside, else 1 fixable or unknown, else 0."""
    states = {v.state for v in views}
    if HostState.ROLLBACK_INCOMPLETE in states:
        return int(ExitCode.ROLLBACK_INCOMPLETE)
    if HostState.OUTSIDE in states:
        return int(ExitCode.OUTSIDE)
    if states & {HostState.FIXABLE, HostState.UNKNOWN}:
        return int(ExitCode.FIXABLE)
    return int(ExitCode.OK)


def _host_dict(v: HostView) -> dict[str, Any]:
    return {
        "host": v.host,
        "source": v.source,
        "kind": v.kind,
        "state": str(v.state),
        "exit_code": v.exit_code,
        "gpu_visible": v.gpu_visible,
        "changed": v.changed,
        "causes": [{"id": c.id, "title": c.title, "fix": c.fix} for c in v.causes],
        "resolved": list(v.resolved),
        "warnings": list(v.warnings),
        "actions": [_action_dict(a) for a in v.actions],
    }


def _action_dict(a: Action) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": a.summary, "commands": list(a.commands)}
    if a.resolves:
        out["resolves"] = list(a.resolves)
    return out


def aggregate(views: Sequence[HostView]) -> dict[str, Any]:
    """The ``tffix.fleet/1`` document (schema: ``schema_path("fleet")``)."""
    counts = {str(s): 0 for s in STATES}
    causes: dict[str, dict[str, Any]] = {}
    for v in views:
        counts[str(v.state)] += 1
        for c in v.causes:
            entry = causes.setdefault(
                c.id, {"id": c.id, "fix": c.fix, "title": c.title, "hosts": []}
            )
            if v.host not in entry["hosts"]:
                entry["hosts"].append(v.host)
    return {
        "schema": FLEET_SCHEMA,
        "hosts": len(views),
        "exit_code": fleet_exit_code(views),
        "counts": counts,
        "causes": sorted(causes.values(), key=lambda e: (-len(e["hosts"]), e["id"])),
        "repaired": [
            {"host": v.host, "state": str(v.state), "resolved": list(v.resolved)}
            for v in views
            if v.changed
        ],
        "outside": [
            {
                "host": v.host,
                "causes": [c.id for c in v.causes if c.fix == "outside"],
                "actions": [_action_dict(a) for a in v.actions],
            }
            for v in views
            if v.state is HostState.OUTSIDE or any(c.fix == "outside" for c in v.causes)
        ],
        "healthy": [v.host for v in views if v.state is HostState.HEALTHY],
        "per_host": [_host_dict(v) for v in views],
    }


# --------------------------------------------------------------------------- text


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()
    out = [f"  {line}", "  " + "  ".join("-" * w for w in widths)]
    out += [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    return out


def render_text(doc: Mapping[str, Any]) -> str:
    """The aggregate for a person at a terminal."""
    counts = doc["counts"]
    out = [
        f"tffix fleet report: {doc['hosts']} host{'s' if doc['hosts'] != 1 else ''}: "
        + ", ".join(f"{counts[str(s)]} {s}" for s in STATES if counts[str(s)]),
        "",
    ]
    if doc["causes"]:
        out.append("Hosts per cause:")
        out += _table(
            [
                (c["id"], c["fix"], str(len(c["hosts"])), ", ".join(c["hosts"]))
                for c in doc["causes"]
            ],
            ("cause", "fix", "hosts", "which"),
        )
        out.append("")
    if doc["repaired"]:
        out.append("Repaired by tffix:")
        out += [
            f"  {r['host']}: {', '.join(r['resolved']) or 'changed'} ({r['state']})"
            for r in doc["repaired"]
        ]
        out.append("")
    if doc["outside"]:
        out.append("Needs an outside action:")
        for o in doc["outside"]:
            out.append(f"  {o['host']}: {', '.join(o['causes']) or 'see its document'}")
            for a in o["actions"]:
                out.append(f"    {a['summary']}")
                out += [f"      $ {c}" for c in a["commands"]]
        out.append("")
    if doc["healthy"]:
        out.append(f"Healthy: {', '.join(doc['healthy'])}")
        out.append("")
    out.append("Per host:")
    out += _table(
        [
            (
                h["host"],
                h["state"],
                "?" if h["exit_code"] is None else str(h["exit_code"]),
                {True: "yes", False: "no", None: "?"}[h["gpu_visible"]],
                ", ".join(c["id"] for c in h["causes"]) or "-",
                ", ".join(h["resolved"]) or "-",
                h["kind"],
            )
            for h in doc["per_host"]
        ],
        ("host", "state", "exit", "gpu", "causes", "resolved", "from"),
    )
    return "\n".join(out) + "\n"
