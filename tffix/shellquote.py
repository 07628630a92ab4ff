"""Commands for a person to paste, built from argument lists and quoted for their shell.

Pure. Every command tffix prints for someone to run is made here from a list of arguments
(never by pasting a path into a string), so a path with a space, a quote, ``$(…)``, a
backtick or a newline is one argument when pasted, and nothing in it runs:

- POSIX shells (sh, dash, bash, zsh, ksh): single quotes, ``'`` written as ``'\\''``;
- fish: single quotes, with ``\\`` and ``'`` escaped by a backslash;
- csh/tcsh: single quotes; ``!`` (history, special even inside quotes) as ``\\!`` and a
  newline as backslash-newline;
- PowerShell: single quotes, each quote doubled (typographic quotes too, which PowerShell
  also treats as quotes); a quoted program is run through ``&``.

Words made only of characters no shell treats specially (letters, digits, ``_ - . / : @ +
= ,`` …) are printed bare, so ordinary commands read as a person would type them.
:func:`for_shell` maps the name of the user's shell (``bash``, ``fish``, ``pwsh`` …, as the
platform probe records it) to one of the four dialects; an unknown shell gets POSIX quoting.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Sequence


class Dialect(str, enum.Enum):
    """The quoting rules of a family of shells."""

    POSIX = "posix"
    FISH = "fish"
    CSH = "csh"
    POWERSHELL = "powershell"

    def __str__(self) -> str:
        return self.value


_SHELL_NAMES = {
    "fish": Dialect.FISH,
    "csh": Dialect.CSH,
    "tcsh": Dialect.CSH,
    "pwsh": Dialect.POWERSHELL,
    "powershell": Dialect.POWERSHELL,
}

_SAFE = {
    Dialect.POSIX: re.compile(r"[A-Za-z0-9_@%+=:,./-]+\Z"),
    Dialect.FISH: re.compile(r"[A-Za-z0-9_@+=:,./-]+\Z"),
    Dialect.CSH: re.compile(r"[A-Za-z0-9_@+=:,./-]+\Z"),
    Dialect.POWERSHELL: re.compile(r"[A-Za-z0-9_+=:./\\-]+\Z"),
}
"""Words printed without quotes, per dialect (`%` is fish's old process expansion and csh's
job syntax; `,` `@` build arrays in PowerShell)."""

_PS_QUOTES = ("'", "\u2018", "\u2019", "\u201a", "\u201b")


def for_shell(name: str | None) -> Dialect:
    """The dialect of the shell called *name* (``bash``, ``/usr/bin/fish``, ``pwsh.exe`` …)."""
    if not name:
        return Dialect.POSIX
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    base = base.removesuffix(".exe").lstrip("-")  # "-bash": a login shell
    return _SHELL_NAMES.get(base, Dialect.POSIX)


def _control(char: str) -> bool:
    """A control character other than newline (C0, DEL, C1): not pasteable as it is."""
    return char != "\n" and unicodedata.category(char) == "Cc"


def _runs(word: str) -> list[tuple[bool, str]]:
    """*word* cut into (is_control, text) runs."""
    out: list[tuple[bool, str]] = []
    for char in word:
        kind = _control(char)
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + char)
        else:
            out.append((kind, char))
    return out


def _quote_plain(word: str, dialect: Dialect) -> str:
    if dialect is Dialect.POSIX:
        return "'" + word.replace("'", "'\\''") + "'"
    if dialect is Dialect.FISH:
        return "'" + word.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if dialect is Dialect.CSH:
        inner = word.replace("'", "'\\''").replace("!", "\\!").replace("\n", "\\\n")
        return "'" + inner + "'"
    out = word
    for q in _PS_QUOTES:
        out = out.replace(q, q + q)
    return "'" + out + "'"


def _quote_control(chars: str, dialect: Dialect) -> str:
    """Control characters, written as escapes the shell turns back into them."""
    if dialect is Dialect.POSIX:
        # `printf` with octal escapes is in every POSIX shell (dash has no $'…'); the run
        # holds no newline, so command substitution strips nothing.
        octal = "".join(f"\\{b:03o}" for b in chars.encode("utf-8"))
        return f"\"$(printf '{octal}')\""
    if dialect is Dialect.FISH:
        return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x80 else f"\\u{ord(c):04x}" for c in chars)
    if dialect is Dialect.POWERSHELL:
        return "+".join(f"[char]{ord(c)}" for c in chars)
    return _quote_plain(chars, dialect)  # csh/tcsh have no escape for them: kept as they are


def quote(word: str, dialect: Dialect = Dialect.POSIX) -> str:
    """*word* as one argument of *dialect*, with nothing in it expanded.

    Control characters other than newline (tab, ESC, …) are written as escapes where the
    shell has them (POSIX sh via ``printf``, fish, PowerShell), so the printed text holds
    none and pasting it gives back the same word; csh and tcsh have none, and get them raw.
    """
    # A leading `=` is zsh's command-path expansion (`=python`), so it is always quoted.
    if word and _SAFE[dialect].match(word) and not word.startswith("="):
        return word
    runs = _runs(word)
    if not any(kind for kind, _ in runs) or dialect is Dialect.CSH:
        return _quote_plain(word, dialect)
    parts = [_quote_control(t, dialect) if kind else _quote_plain(t, dialect) for kind, t in runs]
    if dialect is Dialect.POWERSHELL:
        return "(" + "+".join(parts) + ")"
    return "".join(parts)


def join(argv: Sequence[str], dialect: Dialect = Dialect.POSIX) -> str:
    """The command line that runs *argv* when pasted into *dialect*."""
    if not argv:
        raise ValueError("an empty command")
    words = [quote(word, dialect) for word in argv]
    if dialect is Dialect.POWERSHELL and words[0] != argv[0]:
        words.insert(0, "&")  # a quoted string alone is an expression, not a command
    return " ".join(words)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _name(variable: str) -> str:
    if not _NAME.match(variable):
        raise ValueError(f"not a variable name: {variable!r}")
    return variable


def set_variable(variable: str, value: str, dialect: Dialect = Dialect.POSIX) -> str:
    """Export *variable* = *value* in the current shell."""
    name, text = _name(variable), quote(value, dialect)
    if dialect is Dialect.FISH:
        return f"set -gx {name} {text}"
    if dialect is Dialect.CSH:
        return f"setenv {name} {text}"
    if dialect is Dialect.POWERSHELL:
        return f"$env:{name} = {text}"
    return f"export {name}={text}"


def unset_variable(variable: str, dialect: Dialect = Dialect.POSIX) -> str:
    """Remove *variable* from the current shell's environment."""
    name = _name(variable)
    if dialect is Dialect.FISH:
        return f"set -e {name}"
    if dialect is Dialect.CSH:
        return f"unsetenv {name}"
    if dialect is Dialect.POWERSHELL:
        return f"Remove-Item Env:{name} -ErrorAction SilentlyContinue"
    return f"unset {name}"


def prepend_path(
    variable: str, entry: str, dialect: Dialect = Dialect.POSIX, *, separator: str = ":"
) -> str:
    """Put *entry* first in the list variable *variable* (``PATH``, ``LD_LIBRARY_PATH``).

    The result may span lines (csh has no one-line if/else that survives an unset variable).
    """
    name = _name(variable)
    if separator not in (":", ";"):
        raise ValueError(f"not a path separator: {separator!r}")
    first = quote(entry, dialect)
    if dialect is Dialect.FISH:
        # fish keeps *PATH variables as lists and joins them with ':' when exporting.
        return f"set -gx {name} {first} ${name}"
    if dialect is Dialect.CSH:
        # csh substitutes a whole line before running it, so `$X` must be on its own line.
        return (
            f"if ($?{name}) then\n  setenv {name} {first}'{separator}'\"${{{name}}}\"\n"
            f"else\n  setenv {name} {first}\nendif"
        )
    if dialect is Dialect.POWERSHELL:
        return f"$env:{name} = {first} + $(if ($env:{name}) {{ '{separator}' + $env:{name} }})"
    return f'export {name}={first}"${{{name}:+{separator}${name}}}"'


def remove_path(
    variable: str, entry: str, dialect: Dialect = Dialect.POSIX, *, separator: str = ":"
) -> str:
    """Drop every occurrence of *entry* from the list variable *variable*.

    POSIX: split on the separator with globbing off, keep the other entries in order (an unset
    variable stays unset). The result may span lines (csh).
    """
    name = _name(variable)
    if separator not in (":", ";"):
        raise ValueError(f"not a path separator: {separator!r}")
    gone = quote(entry, dialect)
    if dialect is Dialect.FISH:
        return f"set -q {name}; and set -gx {name} (string match -v -- {gone} ${name})"
    if dialect is Dialect.CSH:
        return (
            f"if ($?{name}) then\n  setenv {name} \"`printf '%s' \"${name}\" | tr '{separator}' "
            f"'\\n' | grep -vxF -- {gone} | paste -sd '{separator}' -`\"\nendif"
        )
    if dialect is Dialect.POWERSHELL:
        return (
            f"if ($env:{name}) {{ $env:{name} = ($env:{name} -split '{separator}' | "
            f"Where-Object {{ $_ -ne {gone} }}) -join '{separator}' }}"
        )
    return (
        f'if [ -n "${{{name}+x}}" ]; then _v=; _o=$IFS; IFS={separator}; set -f; '
        f'for _e in ${name}; do [ "$_e" = {gone} ] || _v="${{_v:+$_v{separator}}}$_e"; done; '
        f'set +f; IFS=$_o; export {name}="$_v"; unset _v _o _e; fi'
    )


def source(script: str, dialect: Dialect = Dialect.POSIX) -> str:
    """Run the script *script* in the current shell (``source``, or ``&`` in PowerShell)."""
    if dialect is Dialect.POWERSHELL:
        return f"& {quote(script, dialect)}"
    if dialect is Dialect.POSIX:
        return f". {quote(script, dialect)}"  # `.` is in every POSIX shell, `source` is not
    return f"source {quote(script, dialect)}"


def activate_script(bin_dir: str, dialect: Dialect = Dialect.POSIX) -> str:
    """The activate script of a venv's ``bin`` folder for *dialect*."""
    name = {
        Dialect.POSIX: "activate",
        Dialect.FISH: "activate.fish",
        Dialect.CSH: "activate.csh",
        Dialect.POWERSHELL: "Activate.ps1",
    }[dialect]
    return f"{bin_dir.rstrip('/')}/{name}"
