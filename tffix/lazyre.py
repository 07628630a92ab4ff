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

    _BOUND: tuple[str, ...] = _METHODS
    """The compiled pattern's methods that replace this object's own after compiling."""

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
            found = self._compile()
            # Instance attributes shadow the methods below: from now on a call goes
            # straight to the compiled pattern's method.
            self.__dict__.update({name: getattr(found, name) for name in self._BOUND})
            self.__dict__["_compiled"] = found
        return found

    def _compile(self) -> re.Pattern[str]:
        return re.compile(*self._args)

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

    def __eq__(self, other: object) -> bool:
        """Equal to a lazy pattern of the same text and flags (as compiled patterns are)."""
        if isinstance(other, LazyPattern):
            return self._args == other._args
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._args)

    def __repr__(self) -> str:
        return f"lazy({self._args[0]!r}, {self._args[1]!r})"


class GuardedPattern(LazyPattern):
    """A lazy pattern whose ``search`` first looks for a text every match contains.

    Most lines of a log match none of the few hundred patterns of the rules, and for most
    patterns one or two plain substring tests say so (``"cuInit" not in line``) at a fraction
    of a search's cost, and without compiling the pattern at all. The texts are read by
    ``required_texts`` from the pattern itself, never written by hand.
    """

    __slots__ = ("_folded", "_required", "_where")
    _BOUND = tuple(name for name in _METHODS if name != "search")

    def __init__(self, pattern: str, flags: int = 0, where: str = "") -> None:
        super().__init__(pattern, flags)
        self._required = required_texts(pattern, flags)
        self._folded = bool(flags & re.IGNORECASE)
        self._where = where

    def _compile(self) -> re.Pattern[str]:
        try:
            return super()._compile()
        except re.error as exc:
            if not self._where:
                raise
            from tffix.errors import RuleError

            raise RuleError(f"{self._where}: is not a valid regular expression: {exc}") from exc

    @property
    def required(self) -> tuple[str, ...]:
        """Texts one of which every match contains (casefolded for a case-blind pattern)."""
        return self._required

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        """``re.Pattern.search``, after the substring test."""
        if self._required:
            text = string.casefold() if self._folded else string
            for required in self._required:
                if required in text:
                    break
            else:
                return None
        return self.compiled.search(string, pos, endpos)


_PLAIN_ESCAPES = frozenset(r"""\.^$*+?{}[]()|/-:'"#&~%!<>=,@ """)
r"""Escapes that stand for the character itself (``\.`` is a dot)."""


def required_texts(pattern: str, flags: int = 0) -> tuple[str, ...]:
    """Plain texts one of which every match of *pattern* contains (``()`` when none is sure).

    A conservative reading of the pattern: its top-level alternatives (those of a pattern that
    is one group, ``(A|B)``, included), and in each the longest run of literal characters at
    its own top level. A run is broken by anything that is not a literal character (a class,
    a group, ``.``, an anchor, an escape such as ``\\d``), and a character that a quantifier
    makes optional is taken out of it. An alternative without such a run, a verbose pattern
    or inline flags give ``()`` (no test: the pattern is always searched). Case-blind patterns
    (``re.IGNORECASE``) keep only ASCII runs, casefolded.
    """
    if flags & re.VERBOSE or ("(?" in pattern and _has_inline_flags(pattern)):
        return ()
    branches = _split_top(pattern)
    if len(branches) == 1 and (inner := _whole_group(pattern)) is not None:
        return required_texts(inner, flags)
    texts = tuple(_longest_run(branch, bool(flags & re.IGNORECASE)) for branch in branches)
    return texts if all(texts) else ()


def _longest_run(branch: str, folded: bool) -> str:
    """The longest run of literal characters at the top level of one alternative."""
    runs: list[str] = []
    run: list[str] = []
    for kind, char in _atoms(branch):
        if kind == "optional" and run:
            run.pop()  # the character before ``?``, ``*`` or ``{``: maybe absent
        if kind == "char" and not (folded and not char.isascii()):
            run.append(char)
        elif run:
            runs.append("".join(run))
            run.clear()
    runs.append("".join(run))
    best = max(runs, key=len)
    return best.casefold() if folded else best


def _tokens(pattern: str) -> Iterator[tuple[int, str, int]]:
    """(index, token, group depth after it) over *pattern*: an escape (``\\`` and the next
    character), a whole character class, or one character. The one place that knows which
    characters the regular-expression syntax groups together."""
    depth, i = 0, 0
    while i < len(pattern):
        if pattern[i] == "\\":
            token = pattern[i : i + 2]
        elif pattern[i] == "[":
            token = pattern[i : _class_end(pattern, i)]
        else:
            token = pattern[i]
        depth = max(depth + {"(": 1, ")": -1}.get(token, 0), 0)
        yield i, token, depth
        i += len(token)


def _split_top(pattern: str) -> list[str]:
    """*pattern* split at its top-level ``|``."""
    parts, start = [], 0
    for i, token, depth in _tokens(pattern):
        if token == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
    parts.append(pattern[start:])
    return parts


def _whole_group(pattern: str) -> str | None:
    """The inside of a pattern that is one capturing or non-capturing group, else ``None``."""
    opening = _GROUP_OPENING.match(pattern)
    if opening is None or not pattern.endswith(")"):
        return None
    for i, token, depth in _tokens(pattern):
        if depth == 0 and token == ")":  # the first group closed: the whole pattern if at the end
            return pattern[opening.end() : -1] if i == len(pattern) - 1 else None
    return None


_GROUP_OPENING = LazyPattern(r"\((?:\?:|\?P<\w+>)?(?!\?)")
"""``(``, ``(?:`` or ``(?P<name>``: not a lookaround, a flag group or a back-reference."""


def _atoms(pattern: str) -> Iterator[tuple[str, str]]:
    """The top level of *pattern* as (kind, character): ``char`` for a literal character,
    ``optional`` for a quantifier that allows zero (right after its atom), and ``other`` for
    anything else (a group, a class, ``+``, ``.``, an anchor, an escape)."""
    tokens = list(_tokens(pattern))
    k = 0
    while k < len(tokens):
        _, token, depth = tokens[k]
        k += 1
        if token in ("(", ")"):
            if depth == 0 or (token == "(" and depth == 1):
                yield "other", ""  # a top-level group starts or ends
        elif depth:
            continue  # inside a group
        elif token[0] == "\\":
            escaped = token[1:]
            yield ("char", escaped) if escaped in _PLAIN_ESCAPES and escaped else ("other", "")
        elif token[0] == "[":
            yield "other", ""
        elif token in ("*", "?", "{", "+"):
            if token == "{":  # a counted repeat, through its "}"
                while k < len(tokens) and tokens[k][1] != "}":
                    k += 1
                k += 1
            while k < len(tokens) and tokens[k][1] in ("?", "+"):  # lazy or possessive
                k += 1
            yield ("other" if token == "+" else "optional"), ""
        else:
            yield ("other", "") if token in "|.^$" else ("char", token)


def _has_inline_flags(pattern: str) -> bool:
    """Whether *pattern* sets flags inline (``(?i)``, ``(?x:…)``), which change literals."""
    return re.search(r"\(\?[aiLmsux-]+[:)]", pattern) is not None


def _class_end(pattern: str, start: int) -> int:
    """The index just after the character class opening at *start*."""
    i = start + 1
    if pattern[i : i + 1] == "^":
        i += 1
    if pattern[i : i + 1] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


Pattern = re.Pattern[str] | LazyPattern
"""What a function that takes "a compiled pattern" accepts."""


def lazy(pattern: str, flags: int = 0) -> LazyPattern:
    """``re.compile(pattern, flags)``, compiled when first used."""
    return LazyPattern(pattern, flags)
