"""The message catalogue (``rules/messages.toml``): what TensorFlow and XLA print, read from source.

Each entry is one log statement or error status of TensorFlow's or XLA's GPU code, with where it
was read (tree, file, line, function), the message as printed, a regex whose named groups are
the facts it carries, the releases that print it, and the cause it points to (or ``noise``).
This module turns the TOML tables into frozen values and validates them; it reads no files
(``tffix.ruleset`` hands it the parsed tables) and looks at nothing on the machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tffix.errors import RuleError
from tffix.lazyre import GuardedPattern
from tffix.record import record

NOISE = "noise"
"""The ``cause`` of a known-harmless message: it is noise and never yields a signal."""

LEVELS = frozenset({"I", "W", "E", "F", "status"})
SEEN_LEVELS = LEVELS | {"vlog"}
ERROR_LEVELS = frozenset({"E", "F", "status"})

_MESSAGE_KEYS = {"id", "signal", "cause", "level", "template", "example", "pattern", "releases"}
_MESSAGE_OPTIONAL = {"also", "seen", "continuation", "note"}
_SEEN_KEYS = {"tree", "repo", "file", "line", "level", "function"}
_SOURCE_KEYS = {"repo", "release", "read_from", "commit", "note"}


@record
class MessageSource:
    """One source tree the catalogue was read from."""

    tree: str
    repo: str
    release: str
    read_from: str
    commit: str
    note: str


@record
class Seen:
    """Where one message was read: a statement in one tree."""

    tree: str
    repo: str
    file: str
    line: int
    level: str
    """The glog level there (``I``/``W``/``E``/``F``), ``status``, or ``vlog`` (not printed by
    default)."""
    function: str


@record
class Message:
    """One catalogued message."""

    id: str
    signal: str
    cause: str
    """A cause id, ``noise``, or ``""`` (a fact that points to no cause by itself)."""
    level: str
    template: str
    example: str
    pattern: GuardedPattern
    releases: tuple[str, ...]
    seen: tuple[Seen, ...] = ()
    also: tuple[str, ...] = ()
    continuation: bool = False
    note: str = ""

    @property
    def is_noise(self) -> bool:
        """True for a known-harmless message."""
        return self.cause == NOISE

    @property
    def examples(self) -> tuple[str, ...]:
        """Every printed form of the message."""
        return (self.example, *self.also)


def _fail(file: str, key: str, message: str) -> RuleError:
    return RuleError(f"{file}: {key}: {message}")


def _check_keys(
    file: str, obj: Mapping[str, Any], key: str, required: set[str], optional: set[str]
) -> None:
    for name in obj:
        if name not in required | optional:
            raise _fail(file, f"{key}.{name}", "unknown key")
    for name in sorted(required - set(obj)):
        raise _fail(file, f"{key}.{name}", "is required")


def _str(file: str, obj: Mapping[str, Any], name: str, key: str, default: str | None = None) -> str:
    value = obj.get(name, default)
    if not isinstance(value, str):
        raise _fail(file, f"{key}.{name}", "must be a string")
    return value


def _strs(file: str, obj: Mapping[str, Any], name: str, key: str) -> tuple[str, ...]:
    value = obj.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(file, f"{key}.{name}", "must be a list of strings")
    return tuple(value)


def parse_sources(file: str, value: object) -> dict[str, MessageSource]:
    """``[message_source.<tree>]`` tables -> tree -> source."""
    if not isinstance(value, dict):
        raise _fail(file, "message_source", "must be a table")
    out: dict[str, MessageSource] = {}
    for tree, obj in value.items():
        key = f'message_source."{tree}"'
        if not isinstance(obj, dict):
            raise _fail(file, key, "must be a table")
        _check_keys(file, obj, key, _SOURCE_KEYS, set())
        fields = {name: _str(file, obj, name, key) for name in sorted(_SOURCE_KEYS)}
        out[str(tree)] = MessageSource(tree=str(tree), **fields)
    return out


def _seen(file: str, value: object, key: str) -> tuple[Seen, ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _fail(file, key, "must be a list of tables")
    out: list[Seen] = []
    for i, obj in enumerate(value):
        where = f"{key}[{i}]"
        _check_keys(file, obj, where, _SEEN_KEYS, set())
        line = obj["line"]
        if isinstance(line, bool) or not isinstance(line, int) or line < 1:
            raise _fail(file, f"{where}.line", "must be a line number")
        level = _str(file, obj, "level", where)
        if level not in SEEN_LEVELS:
            raise _fail(file, f"{where}.level", f"must be one of {sorted(SEEN_LEVELS)}")
        out.append(
            Seen(
                tree=_str(file, obj, "tree", where),
                repo=_str(file, obj, "repo", where),
                file=_str(file, obj, "file", where),
                line=line,
                level=level,
                function=_str(file, obj, "function", where),
            )
        )
    return tuple(out)


def rule_pattern(text: str, flags: int, where: str, cached: str) -> GuardedPattern:
    """A pattern of the rules, named *where*: compiled now, so that a bad one is a
    ``RuleError`` at load, or, read from the rules cache at *cached* (which held the documents
    of these exact files when they passed these checks), when it is first used."""
    if cached:
        return GuardedPattern(text, flags, f"{where} (from the rules cache {cached})")
    pattern = GuardedPattern(text, flags, where)
    pattern.compiled  # noqa: B018 - compiling is the check
    return pattern


def _message(file: str, obj: Mapping[str, Any], key: str, cached: str) -> Message:
    _check_keys(file, obj, key, _MESSAGE_KEYS, _MESSAGE_OPTIONAL)
    level = _str(file, obj, "level", key)
    if level not in LEVELS:
        raise _fail(file, f"{key}.level", f"must be one of {sorted(LEVELS)}")
    pattern = rule_pattern(_str(file, obj, "pattern", key), 0, f"{file}: {key}.pattern", cached)
    continuation = obj.get("continuation", False)
    if not isinstance(continuation, bool):
        raise _fail(file, f"{key}.continuation", "must be true or false")
    return Message(
        id=_str(file, obj, "id", key),
        signal=_str(file, obj, "signal", key),
        cause=_str(file, obj, "cause", key),
        level=level,
        template=_str(file, obj, "template", key),
        example=_str(file, obj, "example", key),
        pattern=pattern,
        releases=_strs(file, obj, "releases", key),
        seen=_seen(file, obj.get("seen", []), f"{key}.seen"),
        also=_strs(file, obj, "also", key),
        continuation=continuation,
        note=_str(file, obj, "note", key, ""),
    )


def parse_messages(file: str, value: object, cached: str = "") -> list[Message]:
    """``[[message]]`` tables -> messages, in file order (*cached*: see ``rule_pattern``)."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _fail(file, "message", "must be an array of tables ([[message]])")
    return [_message(file, obj, f"message[{i}]", cached) for i, obj in enumerate(value)]


def check_messages(
    messages: Sequence[Message], sources: Mapping[str, MessageSource], causes: set[str]
) -> None:
    """Cross-checks: unique ids, known causes, provenance that names a known tree."""
    ids: set[str] = set()
    for msg in messages:
        where = f"rules: message {msg.id!r}"
        if msg.id in ids:
            raise RuleError(f"{where}: defined twice")
        ids.add(msg.id)
        if msg.cause not in causes | {NOISE, ""}:
            raise RuleError(f"{where}: unknown cause {msg.cause!r}")
        if msg.is_noise and msg.signal:
            raise RuleError(f"{where}: a noise message carries no signal")
        if not msg.seen:
            raise RuleError(f"{where}: no provenance (seen is empty)")
        printed = {s.tree for s in msg.seen if s.level != "vlog"}
        for tree in (*msg.releases, *(s.tree for s in msg.seen)):
            if tree not in sources:
                raise RuleError(f"{where}: unknown source tree {tree!r}")
        if not set(msg.releases) <= printed:
            raise RuleError(f"{where}: releases name a tree where it is not printed")
