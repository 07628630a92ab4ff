"""Comment out one line of a user's own start-up file (``~/.bashrc`` …) or of a project's
``.env`` (VS Code's ``python.envFile``): an unsafe edit.

A ``CUDA_VISIBLE_DEVICES=-1`` exported by ``~/.bashrc`` reaches every shell and everything
started from one; removing it at its source is the only fix that sticks, but the file is the
user's, and the line may be there on purpose. So tffix offers this edit only as an *unsafe*
step, shows it exactly (the line number, the line, what it becomes), applies it only with
``--unsafe``, keeps a backup beside the file (``.bashrc.tffix-backup``) and records the bytes
it replaced so undo restores the file exactly.

The edit is refused when the line no longer reads as it did when diagnosed (the file changed
since), and when the file is a link out of its folder (a dotfiles checkout: edit it there).
"""

from __future__ import annotations

from pathlib import Path

from tffix.effects import saved
from tffix.effects.saved import Saved
from tffix.errors import ApplyError
from tffix.model import frozen_map

COMMENT = "# disabled by tffix (`tffix undo` restores it): "
BACKUP_SUFFIX = ".tffix-backup"


def is_env_file_name(name: str, folder: Path | None = None) -> bool:
    """Whether *name* (in *folder*) is an environment file this edit may change (and undo
    write back): a project's ``.env``, ``.env.<name>`` or ``<name>.env`` (the ``#`` comment
    it adds is a comment in every reader of them: VS Code's, python-dotenv, docker compose),
    or a ``*.conf`` of an ``environment.d`` folder (environment.d(5) skips ``#`` lines)."""
    if name.startswith(".env.") or name.endswith(".env"):
        return True
    return folder is not None and folder.name == "environment.d" and name.endswith(".conf")


def render(text: str, line: int, expected: str) -> str:
    """*text* with line *line* (1-based) commented out; ``ApplyError`` when it is not
    *expected* (pure)."""
    lines = text.splitlines(keepends=True)
    if not 1 <= line <= len(lines):
        raise ApplyError(f"the file has {len(lines)} lines, not {line}")
    body = lines[line - 1]
    stripped = body.rstrip("\r\n")
    if stripped.rstrip() != expected.rstrip():
        raise ApplyError(
            f"line {line} now reads {stripped!r}, not {expected!r}: the file changed since "
            "the diagnosis"
        )
    ending = body[len(stripped) :]
    lines[line - 1] = COMMENT + stripped + ending
    return "".join(lines)


def comment_out(path: Path, line: int, expected: str) -> Saved:
    """Comment out *line* of *path*, keep a backup beside it; returns the bytes replaced."""
    folder, name = path.parent, path.name
    before = saved.read(folder, name)
    if before is None:
        raise ApplyError(f"{path} does not exist")
    after = render(before.decode("utf-8", errors="surrogateescape"), line, expected)
    backup = name + BACKUP_SUFFIX
    record = Saved(str(folder), frozen_map({name: before, backup: saved.read(folder, backup)}))
    try:
        saved.write(folder, backup, before)
        saved.write(folder, name, after.encode("utf-8", errors="surrogateescape"))
    except OSError as exc:
        problems = record.restore()
        raise ApplyError(
            f"cannot edit {path}: {exc.strerror}"
            + (f" (and could not restore: {'; '.join(problems)})" if problems else "")
        ) from exc
    return record
