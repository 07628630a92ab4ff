"""Pure renderers of tffix's block in a venv's activate scripts, one per shell.

``render(shell, original_text, edits)`` returns the script with tffix's fenced block replaced
(or added, or removed when *edits* is empty); rendering twice gives the same text. The block
records each edit as a JSON comment (``tffix.envedit.EnvEdit.encode``), saves the previous
value of every variable it touches in ``_TFFIX_OLD_<VAR>`` / ``_TFFIX_SET_<VAR>`` (exported, so
tffix can reconstruct the pre-activation environment), applies the edits, and wraps the
venv's ``deactivate`` so that it restores those values first.

Values are always single-quoted for the shell at hand, so no value can run shell code; values
with a newline, carriage return or NUL are refused (no shell quotes them portably).
Nothing here reads or writes files: ``tffix.effects.activate`` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from tffix.envedit import BLOCK_BEGIN, BLOCK_END, EditOp, EnvEdit
from tffix.errors import ApplyError
from tffix.shellquote import Dialect

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FORBIDDEN = ("\n", "\r", "\0")
_HEADER = (
    "# Written by tffix: environment settings TensorFlow needs to use the GPU.",
    "# `deactivate` restores the previous values; `tffix undo` removes this block.",
)
_PS_SIGNATURE = "# SIG # Begin signature block"
_RESTORE_COMMENT = (
    "# re-sourced without deactivate (the venv redefines deactivate before calling it):"
    " restore first"
)


Shell = Dialect
"""The shells whose activate scripts tffix edits: the families whose quoting tffix knows
(``POSIX`` is ``bin/activate``, for bash and zsh)."""


SCRIPT_NAMES: dict[Shell, str] = {
    Shell.POSIX: "activate",
    Shell.FISH: "activate.fish",
    Shell.CSH: "activate.csh",
    Shell.POWERSHELL: "Activate.ps1",
}
"""The file name of each shell's activate script in ``bin/`` (``Scripts/`` on Windows)."""


class UnsafeValueError(ApplyError):
    """A variable name or value that cannot be written safely into a shell script."""


def check_edit(edit: EnvEdit) -> None:
    """Raise ``UnsafeValueError`` when *edit* cannot be rendered safely for every shell."""
    if not _NAME.match(edit.variable):
        raise UnsafeValueError(f"refusing to write variable name {edit.variable!r}")
    if edit.op is not EditOp.UNSET and edit.value is None:
        raise UnsafeValueError(f"{edit.op} {edit.variable}: a value is required")
    value = edit.value or ""
    for char in _FORBIDDEN:
        if char in value:
            raise UnsafeValueError(
                f"refusing to write {edit.variable}: its value contains {char!r}, "
                "which no shell can quote safely in an activate script"
            )


def _variables(edits: Sequence[EnvEdit]) -> list[str]:
    return list(dict.fromkeys(e.variable for e in edits))


# --------------------------------------------------------------------------- quoting


def quote_sh(value: str) -> str:
    """Single-quote *value* for sh, bash and zsh."""
    return "'" + value.replace("'", "'\\''") + "'"


def quote_fish(value: str) -> str:
    """Single-quote *value* for fish (only ``\\`` and ``'`` are special inside)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_csh(value: str) -> str:
    """Single-quote *value* for csh/tcsh (``!`` stays special even inside quotes)."""
    return "'" + value.replace("'", "'\\''").replace("!", "'\\!'") + "'"


def quote_ps(value: str) -> str:
    """Single-quote *value* for PowerShell (it also treats typographic quotes as quotes)."""
    out = value
    for q in ("'", "\u2018", "\u2019", "\u201a", "\u201b"):
        out = out.replace(q, q + q)
    return "'" + out + "'"


# --------------------------------------------------------------------------- posix


def _posix(edits: Sequence[EnvEdit]) -> list[str]:
    names = _variables(edits)
    lines = [
        "_tffix_path_drop () {",
        "    # print the list $1 without the entries equal to $2 (trailing / ignored);",
        "    # with $3 = nonempty, empty entries are dropped too",
        '    _tffix_rest="$1:"; _tffix_out=""; _tffix_sep=""',
        '    while [ -n "$_tffix_rest" ]; do',
        '        _tffix_e="${_tffix_rest%%:*}"; _tffix_rest="${_tffix_rest#*:}"',
        '        if [ "${_tffix_e%/}" = "${2%/}" ]; then continue; fi',
        '        if [ -z "$_tffix_e" ] && [ "${3:-}" = nonempty ]; then continue; fi',
        '        _tffix_out="$_tffix_out$_tffix_sep$_tffix_e"; _tffix_sep=":"',
        "    done",
        "    printf '%s' \"$_tffix_out\"",
        "    unset _tffix_rest _tffix_out _tffix_sep _tffix_e",
        "}",
        "_tffix_restore () {",
    ]
    for name in names:
        lines += [
            f'    if [ "${{_TFFIX_SET_{name}:-}}" = 1 ]; then',
            f'        {name}="${{_TFFIX_OLD_{name}:-}}"; export {name}',
            f'    elif [ "${{_TFFIX_SET_{name}:-}}" = 0 ]; then',
            f"        unset {name}",
            "    fi",
            f"    unset _TFFIX_OLD_{name} _TFFIX_SET_{name}",
        ]
    lines += [
        "}",
        "# keep the venv's deactivate, and restore tffix's variables before it runs",
        'if [ -n "${BASH_VERSION:-}" ]; then',
        '    eval "_tffix_venv_$(declare -f deactivate)"',
        'elif [ -n "${ZSH_VERSION:-}" ]; then',
        '    eval "_tffix_venv_deactivate () { ${functions[deactivate]} }"',
        "fi",
        "deactivate () {",
        "    _tffix_restore",
        '    _tffix_venv_deactivate "$@"',
        '    if [ ! "${1:-}" = "nondestructive" ]; then',
        "        unset -f _tffix_restore _tffix_venv_deactivate _tffix_path_drop",
        "    fi",
        "}",
        _RESTORE_COMMENT,
        "_tffix_restore",
    ]
    for name in names:
        lines += [
            f'if [ -n "${{{name}+x}}" ]; then',
            f'    _TFFIX_OLD_{name}="${name}"; _TFFIX_SET_{name}=1',
            "else",
            f'    _TFFIX_OLD_{name}=""; _TFFIX_SET_{name}=0',
            "fi",
            f"export _TFFIX_OLD_{name} _TFFIX_SET_{name}",
        ]
    for edit in edits:
        name = edit.variable
        if edit.op is EditOp.SET:
            lines.append(f"{name}={quote_sh(edit.value or '')}; export {name}")
        elif edit.op is EditOp.UNSET:
            lines.append(f"unset {name}")
        elif edit.op is EditOp.PREPEND:
            entry = quote_sh(edit.value or "")
            lines += [
                f'_tffix_v="$(_tffix_path_drop "${{{name}:-}}" {entry} nonempty)"',
                f'{name}={entry}"${{_tffix_v:+:$_tffix_v}}"; export {name}; unset _tffix_v',
            ]
        else:
            entry = quote_sh(edit.value or "")
            lines += [
                f'if [ -n "${{{name}+x}}" ]; then',
                f'    {name}="$(_tffix_path_drop "${name}" {entry})"; export {name}',
                "fi",
            ]
    return lines


# --------------------------------------------------------------------------- fish


def _fish(edits: Sequence[EnvEdit]) -> list[str]:
    names = _variables(edits)
    lines = ["function _tffix_restore"]
    for name in names:
        lines += [
            f'    if test "$_TFFIX_SET_{name}" = 1',
            f'        set -gx {name} "$_TFFIX_OLD_{name}"',
            f'    else if test "$_TFFIX_SET_{name}" = 0',
            f"        set -e {name}",
            "    end",
            f"    set -e _TFFIX_OLD_{name} _TFFIX_SET_{name}",
        ]
    lines += [
        "end",
        "function _tffix_path_drop -a list entry mode",
        "    set -l kept",
        "    for e in (string split -- ':' \"$list\")",
        '        test (string trim -r -c / -- "$e") = (string trim -r -c / -- "$entry")',
        "        and continue",
        '        test -z "$e" -a "$mode" = nonempty',
        "        and continue",
        "        set -a kept $e",
        "    end",
        "    string join -- ':' $kept",
        "end",
        "# keep the venv's deactivate, and restore tffix's variables before it runs",
        "functions -e _tffix_venv_deactivate",
        "functions -c deactivate _tffix_venv_deactivate",
        'function deactivate -d "Exit the virtual environment, restoring what tffix set"',
        "    _tffix_restore",
        "    _tffix_venv_deactivate $argv",
        '    if test "$argv[1]" != nondestructive',
        "        functions -e _tffix_restore _tffix_venv_deactivate _tffix_path_drop",
        "    end",
        "end",
        _RESTORE_COMMENT,
        "_tffix_restore",
    ]
    for name in names:
        lines += [
            f"if set -q {name}",
            f'    set -gx _TFFIX_OLD_{name} "${name}"',
            f"    set -gx _TFFIX_SET_{name} 1",
            "else",
            f"    set -gx _TFFIX_OLD_{name} ''",
            f"    set -gx _TFFIX_SET_{name} 0",
            "end",
        ]
    for edit in edits:
        name = edit.variable
        value = quote_fish(edit.value or "")
        if edit.op is EditOp.SET:
            lines.append(f"set -gx {name} {value}")
        elif edit.op is EditOp.UNSET:
            lines.append(f"set -e {name}")
        elif edit.op is EditOp.PREPEND:
            lines += [
                f'set -l _tffix_v (_tffix_path_drop "${name}" {value} nonempty)',
                'if test -n "$_tffix_v"',
                f'    set -gx {name} {value}":$_tffix_v"',
                "else",
                f"    set -gx {name} {value}",
                "end",
                "set -e _tffix_v",
            ]
        else:
            lines += [
                f"if set -q {name}",
                f'    set -gx {name} (_tffix_path_drop "${name}" {value})',
                "end",
            ]
    return lines


# --------------------------------------------------------------------------- csh


_CSH_PATH_EDIT = (
    "import os,sys;a=sys.argv;e=os.environ;c=chr(58);n=lambda s:s.rstrip(chr(47)) or chr(47);"
    "x=e[a[2]];p=[s for s in e.get(a[3],str()).split(c) if not n(s)==n(x)];"
    "print(c.join([x]+[s for s in p if s]) if a[1]==chr(112) else c.join(p))"
)
"""csh has no string splitting worth the name: the venv's own interpreter edits path lists."""


def _csh(edits: Sequence[EnvEdit]) -> list[str]:
    names = _variables(edits)
    restore = []
    for name in names:
        restore += [
            f'test $?_TFFIX_SET_{name} = 1 && test "$_TFFIX_SET_{name}" = 1 '
            f'&& setenv {name} "$_TFFIX_OLD_{name}:q";',
            f'test $?_TFFIX_SET_{name} = 1 && test "$_TFFIX_SET_{name}" = 0 && unsetenv {name};',
            f"unsetenv _TFFIX_OLD_{name} _TFFIX_SET_{name};",
        ]
    lines = [
        "alias _tffix_restore " + quote_csh(" ".join(restore)),
        "# keep the venv's deactivate, and restore tffix's variables before it runs",
        'alias _tffix_venv_deactivate "`alias deactivate`"',
        "alias deactivate '_tffix_restore; _tffix_venv_deactivate \\!:*; "
        'test "\\!:*" != "nondestructive" && unalias _tffix_restore _tffix_venv_deactivate\'',
        _RESTORE_COMMENT,
        "_tffix_restore",
    ]
    for name in names:
        lines += [
            f"if ($?{name}) then",
            f'    setenv _TFFIX_OLD_{name} "${name}:q"',
            f"    setenv _TFFIX_SET_{name} 1",
            "else",
            f"    setenv _TFFIX_OLD_{name} ''",
            f"    setenv _TFFIX_SET_{name} 0",
            "endif",
        ]
    for edit in edits:
        name = edit.variable
        value = quote_csh(edit.value or "")
        if edit.op is EditOp.SET:
            lines.append(f"setenv {name} {value}")
        elif edit.op is EditOp.UNSET:
            lines.append(f"unsetenv {name}")
        else:
            # The code has no quote, no `!` and no `$`, so it survives csh's "`…`" intact; the
            # entry travels in the environment, never through csh's parser a second time.
            op = "p" if edit.op is EditOp.PREPEND else "r"
            guard = "" if op == "p" else f"if ($?{name}) "
            lines += [
                f"setenv _TFFIX_ENTRY {value}",
                f"{guard}setenv {name} "
                f"\"`$VIRTUAL_ENV/bin/python -I -c '{_CSH_PATH_EDIT}' {op} _TFFIX_ENTRY {name}`\"",
                "unsetenv _TFFIX_ENTRY",
            ]
    return lines


# --------------------------------------------------------------------------- PowerShell


def _powershell(edits: Sequence[EnvEdit]) -> list[str]:
    names = _variables(edits)
    lines = ["function global:_tffix_restore {"]
    for name in names:
        lines += [
            f"    if ($env:_TFFIX_SET_{name} -eq '1') {{ $env:{name} = $env:_TFFIX_OLD_{name} }}",
            f"    elseif ($env:_TFFIX_SET_{name} -eq '0') {{ "
            f"Remove-Item env:{name} -ErrorAction SilentlyContinue }}",
            f"    Remove-Item env:_TFFIX_OLD_{name}, env:_TFFIX_SET_{name} "
            "-ErrorAction SilentlyContinue",
        ]
    lines += [
        "}",
        "function global:_tffix_path_edit([string]$List, [string]$Entry, [switch]$Prepend) {",
        "    $sep = [IO.Path]::PathSeparator",
        "    $kept = @($List -split [regex]::Escape($sep) | Where-Object {",
        "        $_.TrimEnd('/', '\\') -ne $Entry.TrimEnd('/', '\\') })",
        "    if ($Prepend) { $kept = @($Entry) + @($kept | Where-Object { $_ }) }",
        "    $kept -join $sep",
        "}",
        "# keep the venv's deactivate, and restore tffix's variables before it runs",
        "$function:global:_tffix_venv_deactivate = ${function:deactivate}",
        "function global:deactivate([switch]$NonDestructive) {",
        "    _tffix_restore",
        "    if ($NonDestructive) { _tffix_venv_deactivate -NonDestructive; return }",
        "    _tffix_venv_deactivate",
        "    Remove-Item function:_tffix_restore, function:_tffix_venv_deactivate, "
        "function:_tffix_path_edit -ErrorAction SilentlyContinue",
        "}",
        _RESTORE_COMMENT,
        "_tffix_restore",
    ]
    for name in names:
        lines += [
            f"if (Test-Path env:{name}) {{",
            f"    $env:_TFFIX_OLD_{name} = $env:{name}; $env:_TFFIX_SET_{name} = '1'",
            "} else {",
            f"    $env:_TFFIX_SET_{name} = '0'",
            "}",
        ]
    for edit in edits:
        name = edit.variable
        value = quote_ps(edit.value or "")
        if edit.op is EditOp.SET:
            lines.append(f"$env:{name} = {value}")
        elif edit.op is EditOp.UNSET:
            lines.append(f"Remove-Item env:{name} -ErrorAction SilentlyContinue")
        elif edit.op is EditOp.PREPEND:
            lines.append(f'$env:{name} = _tffix_path_edit "$env:{name}" {value} -Prepend')
        else:
            lines.append(
                f"if (Test-Path env:{name}) {{ "
                f"$env:{name} = _tffix_path_edit $env:{name} {value} }}"
            )
    return lines


_RENDERERS = {
    Shell.POSIX: _posix,
    Shell.FISH: _fish,
    Shell.CSH: _csh,
    Shell.POWERSHELL: _powershell,
}


# --------------------------------------------------------------------------- the block


def block(shell: Shell, edits: Iterable[EnvEdit]) -> str:
    """The fenced block for *shell* (with a trailing newline); empty text for no edits."""
    edits = tuple(edits)
    if not edits:
        return ""
    for edit in edits:
        check_edit(edit)
    body = [BLOCK_BEGIN, *_HEADER, *(e.encode() for e in edits), *_RENDERERS[shell](edits)]
    return "\n".join([*body, BLOCK_END]) + "\n"


def strip_block(text: str) -> str:
    """*text* without tffix's block (the lines from its begin to its end marker)."""
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == BLOCK_BEGIN:
            inside = True
        elif stripped == BLOCK_END and inside:
            inside = False
        elif not inside:
            out.append(line)
    return "".join(out)


def render(shell: Shell, original_text: str, edits: Iterable[EnvEdit]) -> str:
    """*original_text* with tffix's block for *edits* in place of any existing one.

    The block goes at the end (in ``Activate.ps1`` before a signature block). With no edits
    the block is removed; an original without a trailing newline gets one.
    """
    text = strip_block(original_text)
    new = block(shell, edits)
    if not new:
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    if shell is Shell.POWERSHELL and _PS_SIGNATURE in text:
        at = text.index(_PS_SIGNATURE)
        return text[:at] + new + text[at:]
    return text + new


def render_conda(edits: Iterable[EnvEdit]) -> tuple[str, str]:
    """``etc/conda/activate.d/tffix.sh`` and ``deactivate.d/tffix.sh`` for *edits*.

    conda sources these on ``conda activate`` / ``conda deactivate`` (POSIX shells).
    """
    edits = tuple(edits)
    for edit in edits:
        check_edit(edit)
    lines = _posix(edits)
    # conda calls deactivate.d itself: no wrapping of a deactivate function.
    start = lines.index(
        "# keep the venv's deactivate, and restore tffix's variables before it runs"
    )
    end = lines.index("}", start + 7) + 1
    activate = [BLOCK_BEGIN, *_HEADER, *(e.encode() for e in edits), *lines[:start], *lines[end:]]
    deactivate = [
        BLOCK_BEGIN,
        "# Written by tffix: restores what activate.d/tffix.sh changed.",
        *lines[lines.index("_tffix_restore () {") : start],
        "_tffix_restore",
        "unset -f _tffix_restore _tffix_path_drop 2>/dev/null",
    ]
    return "\n".join([*activate, BLOCK_END]) + "\n", "\n".join([*deactivate, BLOCK_END]) + "\n"


def merge(current: Iterable[EnvEdit], edit: EnvEdit) -> tuple[EnvEdit, ...]:
    """*current* with *edit* added last, dropping earlier edits it makes pointless.

    A set or unset replaces every earlier edit of that variable; a prepend or remove replaces
    earlier prepends/removes of the same entry. Merging an edit already in effect returns
    *current* unchanged, which is how tffix stays idempotent.
    """
    entry_ops = (EditOp.PREPEND, EditOp.REMOVE)

    def superseded(old: EnvEdit) -> bool:
        if old.variable != edit.variable:
            return False
        return edit.op not in entry_ops or (old.op in entry_ops and old.value == edit.value)

    return (*(old for old in current if not superseded(old)), edit)
