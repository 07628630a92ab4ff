"""Regular expressions compiled when first used, for modules that define many.

Compiling a pattern costs far more than matching a short line with it, and most of the
patterns a module keeps at its top are for inputs a given run never sees (an ``nvidia-smi``
table, a ``conda list``, a pasted log): compiled at import, they cost every run of tffix, even
``tffix diagnose --snapshot F``, which reads none of them. ``lazy(r"...", re.I)`` stands where
``re.compile(r"...", re.I)`` stood and is used the same way (``.search``, ``.match``, ``.sub``,
…); the first call compiles the pattern and binds the compiled pattern's own methods to the
object, so later calls cost what they cost on a ``re.Pattern``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

_METHODS = ("search", "match", "fullmatch", "sub", "subn", "split", "findall", "finditer")


class LazyPattern:
    """A ``re.Pattern[str]`` compiled on first use (see the module's docstring)."""

    __slots__ = ("__dict__", "_args")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._args = (pattern, flags)

    @property
    def pattern(self) -> str:
        """The pattern's text (as ``re.Pattern.pattern``), without compiling it."""
        return self._args[0]

    @property
    def compiled(self) -> re.Pattern[str]:
        """The compiled pattern (compiled now, the first time)."""
        found: re.Pattern[str] | None = self.__dict__.get("_compiled")
        if found is None:
            found = re.compile(*self._args)
            # Instance attributes shadow the methods below: from now on a call goes
            # straight to the compiled pattern's method.
            self.__dict__.update({name: getattr(found, name) for name in _METHODS})
            self.__dict__["_compiled"] = found
        return found

    @property
    def flags(self) -> int:
        """The flags of the compiled pattern (as ``re.Pattern.flags``)."""
        return self.compiled.flags

    @property
    def groupindex(self) -> Any:
        """Named groups -> numbers (as ``re.Pattern.groupindex``)."""
        return self.compiled.groupindex

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        """``re.Pattern.search``."""
        return self.compiled.search(string, pos, endpos)

    def match(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        """``re.Pattern.match``."""
        return self.compiled.match(string, pos, endpos)

    def fullmatch(
        self, string: str, pos: int = 0, endpos: int = sys.maxsize
    ) -> re.Match[str] | None:
        """``re.Pattern.fullmatch``."""
        return self.compiled.fullmatch(string, pos, endpos)

    def sub(self, repl: str | Callable[[re.Match[str]], str], string: str, count: int = 0) -> str:
        """``re.Pattern.sub``."""
        return self.compiled.sub(repl, string, count)

    def subn(
        self, repl: str | Callable[[re.Match[str]], str], string: str, count: int = 0
    ) -> tuple[str, int]:
        """``re.Pattern.subn``."""
        return self.compiled.subn(repl, string, count)

    def split(self, string: str, maxsplit: int = 0) -> list[str | Any]:
        """``re.Pattern.split``."""
        return self.compiled.split(string, maxsplit)

    def findall(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> list[Any]:
        """``re.Pattern.findall``."""
        return self.compiled.findall(string, pos, endpos)

    def finditer(
        self, string: str, pos: int = 0, endpos: int = sys.maxsize
    ) -> Iterator[re.Match[str]]:
        """``re.Pattern.finditer``."""
        return self.compiled.finditer(string, pos, endpos)

    def __repr__(self) -> str:
        return f"lazy({self._args[0]!r}, {self._args[1]!r})"


Pattern = re.Pattern[str] | LazyPattern
"""What a function that takes "a compiled pattern" accepts."""


def lazy(pattern: str, flags: int = 0) -> LazyPattern:
    """``re.compile(pattern, flags)``, compiled when first used."""
    return LazyPattern(pattern, flags)
