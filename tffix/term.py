"""Terminal styling: whether to colour, and the marks that read without colour.

Pure apart from reading the stream's ``isatty`` and the environment mapping it is given.
Colour is used only when the stream is a TTY, ``NO_COLOR`` is unset (https://no-color.org)
and ``TERM`` is not ``dumb``; ``FORCE_COLOR`` (non-empty, not ``0``) forces it on, except
against ``NO_COLOR``, which always wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

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


@dataclass(frozen=True, slots=True)
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
