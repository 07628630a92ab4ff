"""Paths inside an environment, resolved and opened without following links out of it.

A venv can come from anywhere (a shared folder, a tarball, a colleague's home), so every
file tffix reads or writes in it — the state folder ``.tffix``, its lock and journal, the
activate scripts — is named *relative to the environment* and checked here first:

- the name must be relative, non-empty, and hold no ``..`` part;
- after resolving every symlink on the way (``os.path.realpath``), the file must still be
  inside the environment's own real folder. A link that stays inside (``lib64 -> lib``) is
  fine; one that leads out (``bin/activate -> /home/me/.bashrc``, ``.tffix -> /tmp/x``) is
  refused with :class:`PathEscape`, a usage error (exit 2) that names both ends;
- files are then opened by their resolved name with ``O_NOFOLLOW``, so a link swapped in
  for the last component after the check makes the open fail instead of being followed.

Folders above the last component could still be swapped between the check and the open by
someone writing to the environment *while* tffix runs; that is outside what tffix defends
(such a person can change the environment's Python itself).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from tffix.errors import UsageError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
"""``O_NOFOLLOW`` where the platform has it (every POSIX system; not Windows)."""


class PathEscape(UsageError):
    """A path tffix was about to use leads outside the environment it belongs to."""


def _relative_parts(relative: str | os.PathLike[str]) -> tuple[str, ...]:
    text = os.fspath(relative)
    if not text or "\0" in text:
        raise PathEscape(f"{text!r} is not a usable file name")
    pure = PurePosixPath(text.replace("\\", "/"))
    if pure.is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise PathEscape(f"{text!r} is an absolute path; tffix only uses paths inside the venv")
    parts = tuple(p for p in pure.parts if p != ".")
    if not parts or ".." in parts:
        raise PathEscape(f"{text!r} leads outside the venv ('..')")
    return parts


def is_within(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """True when the real *path* is the real *root* or below it (both are resolved)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def inside(root: Path, relative: str | os.PathLike[str]) -> Path:
    """The real path of ``root/relative``; :class:`PathEscape` when it leads outside *root*.

    The file itself need not exist; every link on the way that does exist is followed and
    must end inside *root*.
    """
    parts = _relative_parts(relative)
    real_root = os.path.realpath(root)
    joined = os.path.join(real_root, *parts)
    real = os.path.realpath(joined)
    if not (real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)):
        shown = Path(root, *parts)
        raise PathEscape(
            f"{shown} is a link to {real}, outside the environment {root}; tffix does not "
            "follow links out of it (replace the link with a file, or remove it)"
        )
    return Path(real)


def open_inside(root: Path, relative: str | os.PathLike[str], flags: int, mode: int = 0o644) -> int:
    """``os.open`` of :func:`inside` ``(root, relative)`` with ``O_NOFOLLOW`` added."""
    path = inside(root, relative)
    return os.open(path, flags | NOFOLLOW, mode)


def read_inside(root: Path, relative: str | os.PathLike[str]) -> bytes | None:
    """The bytes of ``root/relative`` (None when absent); ``OSError`` when unreadable."""
    try:
        fd = open_inside(root, relative, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def folder_inside(root: Path, relative: str | os.PathLike[str]) -> Path:
    """Make sure the folder ``root/relative`` exists inside *root* and return its real path.

    An existing link to a folder outside is refused, as is a file in its place; a missing
    folder is created (its parents must already be inside) and checked again.
    """
    path = inside(root, relative)
    if not path.is_dir():
        if path.exists():
            raise PathEscape(f"{Path(root, relative)} is not a folder")
        path.mkdir(exist_ok=True)
    return inside(root, relative)
