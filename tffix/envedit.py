"""Environment edits as data: what a plan's env steps do, and how tffix marks them in files.

Pure. tffix writes its edits into a venv's activate scripts inside a fenced block; each edit is
also recorded there as a JSON comment line, so reading the block back (to know the environment
a user gets after activating, or to undo) never has to parse shell code. ``#`` starts a comment
in bash, zsh, fish, csh and PowerShell alike.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable, Mapping

from tffix.record import record

BLOCK_BEGIN = "# >>> tffix >>>"
BLOCK_END = "# <<< tffix <<<"
EDIT_PREFIX = "# tffix-edit "


class EditOp(str, enum.Enum):
    """What an edit does to its variable."""

    SET = "set"
    UNSET = "unset"
    PREPEND = "prepend"
    """Put ``value`` first in a path list (moving it there if already present)."""
    REMOVE = "remove"
    """Drop every occurrence of ``value`` from a path list."""

    def __str__(self) -> str:
        return self.value


@record
class EnvEdit:
    """One change to one environment variable."""

    op: EditOp
    variable: str
    value: str | None = None

    def encode(self) -> str:
        """The comment line that records this edit inside a tffix block."""
        data = {"op": str(self.op), "variable": self.variable}
        if self.value is not None:
            data["value"] = self.value
        return EDIT_PREFIX + json.dumps(data, sort_keys=True)


def _split(value: str) -> list[str]:
    return [entry for entry in value.split(os.pathsep) if entry]


def _norm(entry: str) -> str:
    return entry.rstrip("/") or "/"


def apply_edits(environ: Mapping[str, str], edits: Iterable[EnvEdit]) -> dict[str, str]:
    """Return a copy of *environ* with *edits* applied in order."""
    env = dict(environ)
    for edit in edits:
        current = env.get(edit.variable)
        if edit.op is EditOp.SET:
            env[edit.variable] = edit.value or ""
        elif edit.op is EditOp.UNSET:
            env.pop(edit.variable, None)
        elif edit.op is EditOp.PREPEND:
            assert edit.value is not None
            first = _split(edit.value)  # one folder, or several joined (one plan step)
            firsts = {_norm(e) for e in first}
            rest = [e for e in _split(current or "") if _norm(e) not in firsts]
            env[edit.variable] = os.pathsep.join([*first, *rest])
        else:  # REMOVE
            if current is None:
                continue
            kept = [e for e in current.split(os.pathsep) if _norm(e) != _norm(edit.value or "")]
            env[edit.variable] = os.pathsep.join(kept)
    return env


def parse_block(text: str) -> tuple[EnvEdit, ...]:
    """The edits recorded in the tffix block of an activate script (empty when none).

    Lines that do not decode are ignored: a hand-edited block must not stop tffix from running.
    """
    inside = False
    edits: list[EnvEdit] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == BLOCK_BEGIN:
            inside = True
        elif stripped == BLOCK_END:
            inside = False
        elif inside and stripped.startswith(EDIT_PREFIX):
            try:
                data = json.loads(stripped[len(EDIT_PREFIX) :])
                edits.append(EnvEdit(EditOp(data["op"]), str(data["variable"]), data.get("value")))
            except (ValueError, KeyError, TypeError):
                continue
    return tuple(edits)
