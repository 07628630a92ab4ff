"""The user's project on disk: which source files ``tffix scan`` looks at, and their bytes.

This is the scan's only I/O. It walks folders (never following symlinked folders, never
descending into virtualenvs, conda environments, ``site-packages``, VCS or build folders),
and reads files with a size limit. Every failure is a value (a ``Skipped`` with a reason),
never an exception: an unreadable folder or a file that vanished mid-scan is counted, not
raised. What the bytes mean is decided elsewhere (``tffix.scan``, which is pure).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from pathlib import Path

from tffix.projectfiles import kind_of
from tffix.record import record

PYTHON_SUFFIX = ".py"
NOTEBOOK_SUFFIX = ".ipynb"

PROJECT_MARKERS = ("pyproject.toml", "requirements.txt", "setup.py", "setup.cfg", ".git")
"""Files or folders whose presence makes a folder look like a project (besides notebooks)."""

ENV_MARKERS = ("pyvenv.cfg", "conda-meta")
"""A folder holding one of these is an environment, whatever its name: never scanned."""

# Skip reasons (the keys of ``ScanResult.skipped``).
TOO_LARGE = "too large"
UNREADABLE = "unreadable"
VANISHED = "vanished"


@record
class SourceFile:
    """A file to scan."""

    path: Path
    """Where it is on disk."""
    display: str
    """How findings name it: relative to the scanned root, or as the user gave it."""
    notebook: bool
    """True for a Jupyter notebook, False for Python source."""
    relative: str = ""
    """Its path below the folder the walk started from (``""`` for a file named directly)."""
    config: str | None = None
    """For a requirements list, Dockerfile, compose or ``.env`` file: its kind
    (``tffix.projectfiles.kind_of``); None for Python source and notebooks."""


@record
class Skipped:
    """Something the walk or the read could not use, and why."""

    display: str
    reason: str


def looks_like_project(root: Path) -> bool:
    """True when *root* holds a project marker or a notebook at its top level.

    Cheap: one directory listing, no recursion. An unreadable folder is not a project.
    """
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if entry.name in PROJECT_MARKERS or entry.name.endswith(NOTEBOOK_SUFFIX):
                    return True
    except OSError:
        return False
    return False


def _is_env(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, marker)) for marker in ENV_MARKERS)


def _join(prefix: str, name: str) -> str:
    return name if prefix in ("", ".") else f"{prefix}/{name}"


def walk(
    root: Path, *, display: str = "", skip_dirs: Collection[str] = ()
) -> Iterator[SourceFile | Skipped]:
    """Every ``.py`` and ``.ipynb`` file under *root*, in a stable (sorted) order.

    *display* is the prefix findings use for *root* ("" for paths relative to it). Folders
    named in *skip_dirs*, or holding ``pyvenv.cfg``/``conda-meta``, are not entered; *root*
    itself always is (a user who names a folder means it). Symlinked folders are not followed
    (a link back up the tree would loop); symlinked files are read.
    """
    stack: list[tuple[str, str, str]] = [(os.fspath(root), display, "")]
    while stack:
        folder, shown, below = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            yield Skipped(shown or ".", UNREADABLE)
            continue
        subfolders: list[tuple[str, str, str]] = []
        for entry in entries:
            name = entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if name in skip_dirs or name.endswith(".egg-info") or _is_env(entry.path):
                        continue
                    subfolders.append((entry.path, _join(shown, name), _join(below, name)))
                    continue
                config = None if name.endswith((PYTHON_SUFFIX, NOTEBOOK_SUFFIX)) else kind_of(name)
                if config is None and not name.endswith((PYTHON_SUFFIX, NOTEBOOK_SUFFIX)):
                    continue
                if not entry.is_file():  # a dangling link, a FIFO named x.py
                    continue
            except OSError:
                yield Skipped(_join(shown, name), UNREADABLE)
                continue
            yield SourceFile(
                Path(entry.path),
                _join(shown, name),
                notebook=name.endswith(NOTEBOOK_SUFFIX),
                relative=_join(below, name),
                config=config,
            )
        # Depth-first, in name order: push in reverse so the first name is popped first.
        stack.extend(reversed(subfolders))


def read(path: Path, *, max_bytes: int) -> bytes | str:
    """The bytes of *path*, or the skip reason (``too large``, ``unreadable``, ``vanished``)."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                return TOO_LARGE
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        return VANISHED
    except (OSError, ValueError):  # PermissionError, EISDIR, an embedded NUL in the name
        return UNREADABLE
    if len(data) > max_bytes:  # grew while we looked
        return TOO_LARGE
    return data
