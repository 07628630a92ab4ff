"""The per-environment lock: two tffix runs on one environment cannot interleave.

An advisory ``fcntl.flock`` on ``<env>/.tffix/lock``, held for the whole run and released by
the kernel when the process ends in any way (kill -9 included), so a stale lock cannot exist.

``.tffix`` and the lock are opened through ``tffix.effects.safepath``: a ``.tffix`` (or a
``lock``) that is a link leading out of the environment is refused (exit 2), so a prepared
venv cannot make tffix create or truncate files elsewhere.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from tffix.effects import safepath
from tffix.errors import UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover  # Windows: msvcrt below
    fcntl = None  # type: ignore[assignment]


STATE_DIR = ".tffix"


def state_dir(prefix: Path) -> Path:
    """``<env>/.tffix``: the journal and the lock; ``PathEscape`` when it links out of *prefix*."""
    safepath.inside(prefix, STATE_DIR)
    return prefix / STATE_DIR


def checked_state_dir(prefix: Path) -> Path:
    """``<env>/.tffix``, refused (``UsageError``, exit 2) when it is a symbolic link or not a
    folder: a link would put the lock, the journal and the kept files somewhere else."""
    folder = state_dir(prefix)
    if folder.is_symlink():
        raise UsageError(
            f"{folder} is a symbolic link; tffix keeps its lock and journal inside the "
            "environment only: remove the link and run tffix again"
        )
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is not a folder: remove it and run tffix again")
    return folder


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@contextlib.contextmanager
def hold(prefix: Path) -> Iterator[Path]:
    """Hold the environment's lock; ``UsageError`` when another tffix run holds it."""
    folder = checked_state_dir(prefix)
    try:
        safepath.folder_inside(prefix, STATE_DIR)
    except OSError as exc:
        raise UsageError(f"cannot create {folder}: {exc.strerror or exc}") from exc
    folder = checked_state_dir(prefix)  # not swapped for a link meanwhile
    path = folder / "lock"
    try:
        fd = safepath.open_inside(prefix, f"{STATE_DIR}/lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # ELOOP: a link put in place of the lock file
        raise UsageError(f"cannot open {path}: {exc.strerror or exc}") from exc
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise UsageError(
                    f"another tffix run holds {path} (process {holder}); "
                    "wait for it to finish, then run tffix again"
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)
