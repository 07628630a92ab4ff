"""The journal's schema: what a record may hold, checked on every read and every write.

The journal (``<env>/.tffix/journal.jsonl``) is data tffix reads back later, from a folder
anyone with write access to the environment can edit (a shared venv, an unpacked tarball). So
it is treated as untrusted input: every record is checked here for its type, its keys, the
types and sizes of their values and the depth of nesting, and package names and versions must
be valid PEP 508 names and PEP 440 versions. The only file paths a state may name are the
activate scripts tffix writes (a fixed list); snapshot folders are plain names. Records form a
hash chain (each ``chain`` is the SHA-256 of the previous one and the record's own canonical
JSON), so a record edited by hand, removed or reordered is recognised.

Pure: no I/O. ``JournalInvalid`` carries a one-line reason; the caller adds the file name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

SCHEMA_VERSION = 2
GENESIS = "tffix-journal/2"
"""The value the first record's chain starts from."""

MAX_LINE = 8 << 20
MAX_FILE = 64 << 20
MAX_DEPTH = 12
MAX_FILE_BYTES = 1 << 20
"""The largest activate script a state may carry (decoded)."""
MAX_PACKAGES = 20_000
MAX_TEXT = 64 << 10
MAX_LIST = 1_000
MAX_STEP = 10_000

RECORD_TYPES = ("run-start", "step-start", "step-done", "step-reverted", "run-end", "undo", "drop")
END_STATUSES = ("done", "interrupted", "error", "resumed", "undone")

_RUN_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,63}")
_KEPT_ID = _RUN_ID
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])", re.IGNORECASE)
_TILDE = re.compile(r"~[^/\\\x00]{1,254}")

_SCRIPTS = ("activate", "activate.fish", "activate.csh", "Activate.ps1", "activate.ps1")
MANAGED_FILES = frozenset(
    [f"{folder}/{name}" for folder in ("bin", "Scripts") for name in _SCRIPTS]
    + ["etc/conda/activate.d/tffix.sh", "etc/conda/deactivate.d/tffix.sh"]
)
"""Every file a state may carry bytes for: the files tffix writes, relative to the prefix."""
HOOK_FILE = re.compile(
    r"(lib/python3\.\d{1,2}|Lib|lib/pypy3\.\d{1,2})/site-packages/(tffix-hook\.pth|_tffix_hook\.py)"
)
"""The import hook's two files in the environment's site-packages (``tffix.hook``)."""


class JournalInvalid(ValueError):
    """A record breaks the schema; the message is one line, without the file name."""


# --------------------------------------------------------------------------- primitives


def _fail(where: str, what: str) -> JournalInvalid:
    return JournalInvalid(f"{where}: {what}")


def _depth_ok(value: object, limit: int = MAX_DEPTH) -> bool:
    """True when *value* nests no deeper than *limit* (iterative: no recursion to exhaust)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def _text(value: object, where: str, *, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"expected text, found {type(value).__name__}")
    if len(value) > limit:
        raise _fail(where, f"text longer than {limit} characters")
    return value


def _int(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(where, f"expected a whole number, found {type(value).__name__}")
    if not low <= value <= high:
        raise _fail(where, f"{value} is outside {low}..{high}")
    return value


def _number(value: object, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        raise _fail(where, f"expected a number, found {type(value).__name__}")
    return float(value)


def _match(pattern: re.Pattern[str], value: object, where: str, what: str) -> str:
    text = _text(value, where, limit=256)
    if not pattern.fullmatch(text):
        raise _fail(where, f"not a valid {what}: {text[:40]!r}")
    return text


def _texts(value: object, where: str) -> list[str]:
    if not isinstance(value, list):
        raise _fail(where, f"expected a list, found {type(value).__name__}")
    if len(value) > MAX_LIST:
        raise _fail(where, f"more than {MAX_LIST} items")
    return [_text(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _dict(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"expected an object, found {type(value).__name__}")
    return value


def _keys(record: Mapping[str, Any], where: str, required: set[str], optional: set[str]) -> None:
    missing = sorted(required - set(record))
    if missing:
        raise _fail(where, f"missing {', '.join(missing)}")
    unknown = sorted(set(record) - required - optional)
    if unknown:
        raise _fail(where, f"unknown key {unknown[0][:40]!r}")


# --------------------------------------------------------------------------- names


def package_name(value: object, where: str) -> str:
    """A PEP 508 distribution name, in canonical form."""
    name = _match(_NAME, value, where, "distribution name")
    if str(canonicalize_name(name)) != name:
        raise _fail(where, f"distribution name not in canonical form: {name!r}")
    return name


def package_version(value: object, where: str) -> str:
    """A PEP 440 version."""
    text = _text(value, where, limit=128)
    try:
        Version(text)
    except InvalidVersion:
        raise _fail(where, f"not a valid version: {text[:40]!r}") from None
    return text


def requirement_names(plan_step: Mapping[str, Any]) -> set[str]:
    """Canonical distribution names a recorded plan step names (requirements, packages)."""
    from packaging.requirements import InvalidRequirement, Requirement

    def name(text: str) -> str | None:
        try:
            return str(canonicalize_name(Requirement(text).name))
        except InvalidRequirement:
            return None

    names = {n for n in map(name, plan_step.get("requirements", [])) if n}
    names.update(str(canonicalize_name(p)) for p in plan_step.get("packages", []))
    return names


# --------------------------------------------------------------------------- state


def _packages(value: object, where: str) -> None:
    packages = _dict(value, where)
    if len(packages) > MAX_PACKAGES:
        raise _fail(where, f"more than {MAX_PACKAGES} distributions")
    for name, version in packages.items():
        package_name(name, f"{where} name")
        package_version(version, f"{where}[{name}]")


def _files(value: object, where: str) -> None:
    files = _dict(value, where)
    for name, data in files.items():
        if name not in MANAGED_FILES and not HOOK_FILE.fullmatch(name):
            raise _fail(where, f"{name[:60]!r} is not a file tffix writes")
        if data is None:
            continue
        encoded = _text(data, f"{where}[{name}]", limit=(MAX_FILE_BYTES * 4) // 3 + 4)
        try:
            base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _fail(f"{where}[{name}]", "not base64") from None


def _outside(value: object, where: str) -> None:
    """Kernelspecs and start-up files a step may change: only those, by absolute folder."""
    from tffix.effects.reach import check_outside  # the one rule of which files these may be
    from tffix.errors import InputError

    if not _depth_ok(value, 4) or not isinstance(value, list) or len(value) > MAX_LIST:
        raise _fail(where, "expected a short list of saved files")
    try:
        check_outside(value)
    except InputError as exc:
        raise _fail(where, str(exc)[:200]) from None


def check_state(value: object, where: str, *, packages_only: bool = False) -> None:
    """A recorded environment state: packages, activate-file bytes, snapshot, ``~`` entries."""
    state = _dict(value, where)
    optional = {"packages"} if packages_only else {"packages", "files", "kept", "tilde", "outside"}
    _keys(state, where, set(), optional)
    if "packages" in state:
        _packages(state["packages"], f"{where}.packages")
    if "files" in state:
        _files(state["files"], f"{where}.files")
    if "kept" in state:
        _match(_KEPT_ID, state["kept"], f"{where}.kept", "snapshot name")
    if "outside" in state:
        _outside(state["outside"], f"{where}.outside")
    if "tilde" in state:
        for i, item in enumerate(_texts(state["tilde"], f"{where}.tilde")):
            _match(_TILDE, item, f"{where}.tilde[{i}]", "pip stash name")


# --------------------------------------------------------------------------- records


def _plan_step(value: object, where: str) -> None:
    step = _dict(value, where)
    for key in ("requirements", "packages", "commands", "resolves"):
        if key in step:
            _texts(step[key], f"{where}.{key}")
    for key in ("kind", "summary", "safety", "variable", "value", "entry"):
        if key in step and step[key] is not None:
            _text(step[key], f"{where}.{key}")
    for i, name in enumerate(step.get("packages", [])):
        _match(_NAME, name, f"{where}.packages[{i}]", "distribution name")


def _findings(value: object, where: str) -> None:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise _fail(where, "expected a list of at most 1000 findings")
    for i, item in enumerate(value):
        finding = _dict(item, f"{where}[{i}]")
        _keys(finding, f"{where}[{i}]", {"id", "status"}, set())
        _text(finding["id"], f"{where}[{i}].id", limit=256)
        _text(finding["status"], f"{where}[{i}].status", limit=64)


def _run_start(rec: Mapping[str, Any], where: str) -> None:
    _keys(rec, where, {"state"}, {"base", "resumes", "tffix", "argv", "pid"})
    check_state(rec["state"], f"{where}.state")
    if "base" in rec:
        check_state(rec["base"], f"{where}.base")
    if "resumes" in rec:
        _match(_RUN_ID, rec["resumes"], f"{where}.resumes", "run id")
    if "tffix" in rec:
        _text(rec["tffix"], f"{where}.tffix", limit=64)
    if "argv" in rec:
        _texts(rec["argv"], f"{where}.argv")
    if "pid" in rec:
        _int(rec["pid"], f"{where}.pid", 0, 1 << 31)


def _step_start(rec: Mapping[str, Any], where: str) -> None:
    _keys(rec, where, {"step", "state"}, {"plan_step"})
    _int(rec["step"], f"{where}.step", 1, MAX_STEP)
    check_state(rec["state"], f"{where}.state")
    if "plan_step" in rec:
        _plan_step(rec["plan_step"], f"{where}.plan_step")


def _step_done(rec: Mapping[str, Any], where: str) -> None:
    _keys(rec, where, {"step"}, {"findings"})
    _int(rec["step"], f"{where}.step", 1, MAX_STEP)
    if "findings" in rec:
        _findings(rec["findings"], f"{where}.findings")


def _step_reverted(rec: Mapping[str, Any], where: str) -> None:
    _keys(rec, where, {"step"}, {"reason", "problems"})
    _int(rec["step"], f"{where}.step", 1, MAX_STEP)
    if "reason" in rec:
        _text(rec["reason"], f"{where}.reason")
    if "problems" in rec:
        _texts(rec["problems"], f"{where}.problems")


def _run_end(rec: Mapping[str, Any], where: str) -> None:
    _keys(rec, where, {"status", "exit_code"}, {"after"})
    status = _text(rec["status"], f"{where}.status", limit=32)
    if status not in END_STATUSES:
        raise _fail(f"{where}.status", f"unknown status {status!r}")
    _int(rec["exit_code"], f"{where}.exit_code", 0, 255)
    if "after" in rec:
        check_state(rec["after"], f"{where}.after", packages_only=True)


def _undo(rec: Mapping[str, Any], where: str) -> None:
    _keys(rec, where, set(), {"problems", "also"})
    if "problems" in rec:
        _texts(rec["problems"], f"{where}.problems")
    if "also" in rec:
        for i, item in enumerate(_texts(rec["also"], f"{where}.also")):
            _match(_RUN_ID, item, f"{where}.also[{i}]", "run id")


def _drop(rec: Mapping[str, Any], where: str) -> None:
    _keys(rec, where, set(), set())


_CHECKS: dict[str, Callable[[Mapping[str, Any], str], None]] = {
    "run-start": _run_start,
    "step-start": _step_start,
    "step-done": _step_done,
    "step-reverted": _step_reverted,
    "run-end": _run_end,
    "undo": _undo,
    "drop": _drop,
}
_COMMON = {"v", "type", "run", "time", "chain"}


def check_record(value: object, where: str) -> dict[str, Any]:
    """One decoded record, checked against the schema (not the chain)."""
    if not _depth_ok(value):
        raise _fail(where, f"nested deeper than {MAX_DEPTH} levels")
    rec = _dict(value, where)
    if rec.get("v") != SCHEMA_VERSION:
        raise _fail(where, f"schema version {str(rec.get('v'))[:20]!r}, expected {SCHEMA_VERSION}")
    kind = _text(rec.get("type"), f"{where}.type", limit=32)
    if kind not in _CHECKS:
        raise _fail(where, f"unknown record type {kind!r}")
    _match(_RUN_ID, rec.get("run"), f"{where}.run", "run id")
    _number(rec.get("time"), f"{where}.time")
    _match(_HEX64, rec.get("chain"), f"{where}.chain", "chain hash")
    rest = {k: v for k, v in rec.items() if k not in _COMMON}
    _CHECKS[kind](rest, f"{where} ({kind})")
    return rec


def canonical(record: Mapping[str, Any]) -> str:
    """The record's canonical JSON without its chain (what the chain hashes)."""
    body = {k: v for k, v in record.items() if k != "chain"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def chain_hash(previous: str, record: Mapping[str, Any]) -> str:
    """The chain value of *record* after the record whose chain is *previous*."""
    return hashlib.sha256((previous + "\n" + canonical(record)).encode("utf-8")).hexdigest()


def decode_line(line: str, where: str) -> dict[str, Any]:
    """One journal line decoded and checked (``JournalInvalid`` when it is not a record)."""
    if len(line) > MAX_LINE:
        raise _fail(where, f"longer than {MAX_LINE} bytes")
    try:
        value = json.loads(line)
    except RecursionError:
        raise _fail(where, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        raise _fail(where, "not JSON") from None
    return check_record(value, where)


def check_story(records: list[dict[str, Any]]) -> None:
    """Cross-record rules: every record after its run's run-start; one run-start per run."""
    started: set[str] = set()
    for number, rec in enumerate(records, start=1):
        run = rec["run"]
        if rec["type"] == "run-start":
            if run in started:
                raise JournalInvalid(f"record {number}: run {run} starts twice")
            started.add(run)
        elif run not in started:
            raise JournalInvalid(f"record {number}: run {run} has no run-start before it")
        if rec["type"] == "undo":
            missing = [r for r in rec.get("also", []) if r not in started]
            if missing:
                raise JournalInvalid(f"record {number}: undo names unknown run {missing[0]}")
