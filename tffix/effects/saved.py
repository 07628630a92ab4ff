"""The bytes a file edit replaced, kept so that undo puts them back exactly.

Every effect that edits a file outside the venv's activate scripts (a kernelspec, the import
hook's two files, a user's start-up file) returns a ``Saved``: the folder it worked in and,
for each file it touched, the bytes the file held before (None: it did not exist). Restoring
writes those bytes back through ``safepath`` (no link out of the folder is followed) and
removes what did not exist; it is idempotent, so a repeated undo changes nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from tffix.effects import safepath
from tffix.effects.activate import write_atomic
from tffix.errors import InputError
from tffix.model import frozen_map
from tffix.record import record


@record
class Saved:
    """What one edit replaced: file name (relative to *root*) -> bytes before (None: absent)."""

    root: str
    files: Mapping[str, bytes | None] = field(default_factory=frozen_map)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe record for the journal (bytes as base64)."""
        return {
            "root": self.root,
            "files": {
                k: None if v is None else base64.b64encode(v).decode("ascii")
                for k, v in self.files.items()
            },
        }

    @classmethod
    def from_json(cls, data: object) -> Saved:
        """The inverse of :meth:`to_json`; ``InputError`` for a record of another shape."""
        if not isinstance(data, dict) or not isinstance(data.get("root"), str):
            raise InputError("a saved-files record needs a string `root`")
        files = data.get("files")
        if not isinstance(files, dict):
            raise InputError("a saved-files record needs an object `files`")
        out: dict[str, bytes | None] = {}
        for name, value in files.items():
            if value is not None and not isinstance(value, str):
                raise InputError(f"saved file {name!r} is neither base64 text nor null")
            try:
                out[str(name)] = None if value is None else base64.b64decode(value, validate=True)
            except ValueError as exc:
                raise InputError(f"saved file {name!r} is not valid base64") from exc
        return cls(data["root"], frozen_map(out))

    def restore(self) -> list[str]:
        """Put every file back as it was; returns what could not be restored (never raises)."""
        problems: list[str] = []
        root = Path(self.root)
        for name, data in self.files.items():
            try:
                path = safepath.inside(root, name)
                if read(root, name) == data:
                    continue
                write_atomic(path, data)
            except (OSError, safepath.PathEscape) as exc:
                problems.append(f"{root / name}: {exc}")
        return problems


def read(root: Path, name: str) -> bytes | None:
    """The bytes of ``root/name`` (None when absent), never following a link out of *root*."""
    return safepath.read_inside(root, name)


def write(root: Path, name: str, data: bytes | None) -> None:
    """Make ``root/name`` hold *data* (None: remove it), atomically, inside *root* only."""
    write_atomic(safepath.inside(root, name), data)
