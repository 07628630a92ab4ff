"""Terminal styling: whether to colour, and the marks that read without colour.

Pure apart from reading the stream's ``isatty`` and the environment mapping it is given.
Colour is used only when the stream is a TTY, ``NO_COLOR`` is unset (https://no-color.org)
and ``TERM`` is not ``dumb``; ``FORCE_COLOR`` (non-empty, not ``0``) forces it on, except
against ``NO_COLOR``, which always wins.

It is also the one sanitiser for text tffix did not write itself (snapshot keys and values,
log lines, package names, file names, a child's stderr) on its way to a terminal: every
control character — C0 (ESC, BEL, CR, backspace …), DEL, C1 (an 8-bit CSI), the line and
paragraph separators and the bidirectional overrides — is escaped visibly (``\x1b``,
``\u202e``), so such text cannot move the cursor, retitle the window, hide what follows,
reorder a line or split a one-line error. :func:`clean` is for one line (errors: a newline
becomes ``\n``), :func:`clean_output` for a whole rendered report (newlines kept, and, when
colour is on, the few colour codes :class:`Style` itself writes), :func:`clean_json` for
JSON text written with ``ensure_ascii=False``.

:func:`conversation` decides where tffix talks to a person, as pip and pipx do: by stdin and
the controlling terminal, not by stdout, so ``tffix | tee log``, ``tffix > out`` and
``tffix --json`` on a terminal still ask (on the terminal), while the report or the JSON
document alone goes to stdout.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TextIO, TypeVar

from tffix.record import record

_T = TypeVar("_T")

_TTY: list[TextIO] = []
"""The controlling terminal, opened once for writing (``/dev/tty``)."""

MARKS = {
    "ok": "[ok]",
    "error": "[!!]",
    "warning": "[! ]",
    "info": "[ i]",
    "unknown": "[??]",
    "skipped": "[--]",
}
"""One mark per check state; each reads on its own, without colour."""

_CODES = {
    "ok": "32",
    "error": "31;1",
    "warning": "33",
    "info": "36",
    "unknown": "35",
    "skipped": "2",
    "bold": "1",
    "dim": "2",
}


_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Characters a terminal acts on or that reorder text: C0, DEL, C1, line/paragraph separators,
bidirectional marks, embeddings, overrides and isolates."""

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: object) -> str:
    """*text* as one line that is safe to print: every control character escaped visibly."""
    value = text if isinstance(text, str) else str(text)
    return _UNSAFE.sub(_escape, value) if _UNSAFE.search(value) else value


def _clean_keep_newlines(text: str) -> str:
    return "\n".join(clean(line) for line in text.split("\n"))


def clean_output(text: str, *, colour: bool = False) -> str:
    """A rendered multi-line *text* made safe: newlines kept, all else escaped as by
    :func:`clean`; with *colour*, the colour codes :class:`Style` writes are kept too (text
    from outside can then at most colour itself, never move, hide or retitle anything)."""
    if not colour:
        return _clean_keep_newlines(text)
    pieces = _SGR.split(text)
    codes = _SGR.findall(text)
    out = [_clean_keep_newlines(pieces[0])]
    for code, piece in zip(codes, pieces[1:], strict=True):
        out.append(code)
        out.append(_clean_keep_newlines(piece))
    return "".join(out)


def clean_fields(value: _T) -> _T:
    """*value* with every string inside it made one line by :func:`clean`.

    Walks frozen dataclasses, tuples, lists, frozensets and mappings (keys too) and rebuilds
    only what changed; enums, numbers and sentinels pass as they are. A renderer calls it on
    the data it is given, so a newline inside a package name or a path cannot start a forged
    line of the report.
    """
    return _clean_any(value)  # type: ignore[no-any-return]


def _clean_any(value: Any) -> Any:
    if isinstance(value, enum.Enum) or value is None or isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        return clean(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            old = getattr(value, field.name)
            new = _clean_any(old)
            if new is not old:
                changes[field.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, (tuple, list, frozenset)):
        items = [_clean_any(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items)
    if isinstance(value, Mapping):
        pairs = [(_clean_any(k), _clean_any(v)) for k, v in value.items()]
        if all(k is a and v is b for (k, v), (a, b) in zip(pairs, value.items(), strict=True)):
            return value
        rebuilt = dict(pairs)
        return MappingProxyType(rebuilt) if isinstance(value, MappingProxyType) else rebuilt
    return value


def clean_json(text: str) -> str:
    """JSON text (``ensure_ascii=False``) with the characters :func:`clean` escapes written as
    ``\\uXXXX``: the same JSON value, nothing a terminal acts on. (``json.dumps`` already
    escapes C0 inside strings; C1, DEL and the bidirectional controls it leaves raw.)"""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}" if m.group() != "\n" else "\n", text)


def use_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether to colour output written to *stream*."""
    if environ.get("NO_COLOR", "") != "":
        return False  # https://no-color.org: it wins over everything, FORCE_COLOR included
    force = environ.get("FORCE_COLOR")
    if force is not None and force not in {"", "0"}:
        return True
    if environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@record
class Style:
    """Applies colour when enabled, and is the identity otherwise."""

    colour: bool = False

    def paint(self, kind: str, text: str) -> str:
        """*text* in the colour of *kind* (``ok``, ``error``, ``bold`` …)."""
        if not self.colour or kind not in _CODES:
            return text
        return f"\033[{_CODES[kind]}m{text}\033[0m"

    def mark(self, state: str) -> str:
        """The mark of a check state, coloured when enabled."""
        return self.paint(state, MARKS[state])


_SGR = re.compile("|".join(re.escape(f"\033[{code}m") for code in (*_CODES.values(), "0")))
"""Exactly the escape sequences :meth:`Style.paint` writes."""


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _controlling_terminal() -> TextIO | None:
    if _TTY:
        return _TTY[0]
    try:
        # buffering=1: line-buffered, so a question is on the screen before the answer is read
        stream = open(os.ctermid(), "w", buffering=1, encoding="utf-8")  # noqa: SIM115  # kept open for the process
    except (OSError, AttributeError):  # no controlling terminal (setsid, a service), or Windows
        return None
    _TTY.append(stream)
    return stream


def conversation(
    *,
    report_on_stdout: bool = True,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> TextIO | None:
    """Where to ask a person, or ``None`` when there is no one to ask.

    Someone can answer only when stdin is a terminal. The questions go to stdout when it is
    that terminal and carries the human report (*report_on_stdout*: not ``--json``);
    otherwise to the controlling terminal, else to stderr when it is a terminal. So a report
    redirected to a file or a pipe, or a JSON document, stays free of the conversation.
    """
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    if not _isatty(stdin):
        return None
    if report_on_stdout and _isatty(stdout):
        return stdout
    tty = _controlling_terminal()
    if tty is not None:
        return tty
    return stderr if _isatty(stderr) else None
