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


@contextlib.contextmanager
def hold(prefix: Path) -> Iterator[Path]:
    """Hold the environment's lock; ``UsageError`` when another tffix run holds it."""
    folder = state_dir(prefix)
    try:
        safepath.folder_inside(prefix, STATE_DIR)
    except OSError as exc:
        raise UsageError(f"cannot create {folder}: {exc.strerror or exc}") from exc
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
