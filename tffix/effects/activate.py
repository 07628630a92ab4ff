"""Reads and writes the files that carry tffix's environment edits, atomically.

For a virtualenv these are its activate scripts (``bin/activate``, ``activate.fish``,
``activate.csh``, ``Activate.ps1``; ``Scripts/`` on Windows); for a conda environment
``etc/conda/activate.d/tffix.sh`` and ``deactivate.d/tffix.sh``. The text itself comes from
the pure ``tffix.activate_text``; this module only reads bytes, writes them (temporary file in
the same folder, fsync, ``os.replace``, mode and owner kept) and restores recorded bytes.

Every file is named relative to the environment and resolved through
``tffix.effects.safepath``: an activate script that is a link leading out of the environment
(``bin/activate -> ~/.bashrc``) is never read or rewritten; :func:`check_files` refuses such a
venv before a run changes anything.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from tffix import activate_text
from tffix.activate_text import SCRIPT_NAMES, Shell
from tffix.effects import safepath
from tffix.envedit import EnvEdit, parse_block
from tffix.errors import ApplyError

CONDA_ACTIVATE = "etc/conda/activate.d/tffix.sh"
CONDA_DEACTIVATE = "etc/conda/deactivate.d/tffix.sh"


def _bin_dir(prefix: Path) -> str:
    return "Scripts" if (prefix / "Scripts").is_dir() and not (prefix / "bin").is_dir() else "bin"


def managed_files(prefix: Path, *, conda: bool) -> dict[str, Shell | str]:
    """Relative path -> what it is, for every file tffix may write in the environment.

    For a virtualenv only the activate scripts that exist are listed (tffix never creates one
    for a shell the venv was made without).
    """
    if conda:
        return {CONDA_ACTIVATE: "conda-activate", CONDA_DEACTIVATE: "conda-deactivate"}
    folder = _bin_dir(prefix)
    out: dict[str, Shell | str] = {}
    for shell, name in SCRIPT_NAMES.items():
        # virtualenv writes activate.ps1, the stdlib venv Activate.ps1
        for candidate in dict.fromkeys((name, name.lower())):
            path = prefix / folder / candidate
            if path.exists() or path.is_symlink():
                out[f"{folder}/{candidate}"] = shell
                break
    return out


def primary_file(prefix: Path, *, conda: bool) -> str:
    """The file whose tffix block is read back as the environment's current edits."""
    return CONDA_ACTIVATE if conda else f"{_bin_dir(prefix)}/activate"


def check_files(prefix: Path, *, conda: bool) -> None:
    """``PathEscape`` (exit 2) when a file tffix may write here leads outside *prefix*."""
    for name in managed_files(prefix, conda=conda):
        safepath.inside(prefix, name)


def read_bytes(prefix: Path, names: Iterable[str]) -> dict[str, bytes | None]:
    """The bytes of each file (None when absent); ``PathEscape`` for a link leading out."""
    return {name: _read(prefix, name) for name in names}


def _read(prefix: Path, name: str) -> bytes | None:
    try:
        return safepath.read_inside(prefix, name)
    except OSError as exc:
        raise ApplyError(f"cannot read {prefix / name}: {exc.strerror or exc}") from exc


def _write(prefix: Path, name: str, data: bytes | None) -> str | None:
    try:
        write_atomic(safepath.inside(prefix, name), data)
    except safepath.PathEscape as exc:
        return f"{prefix / name}: not written: {exc}"
    except OSError as exc:
        return f"{prefix / name}: {exc.strerror or exc}"
    return None


def current_edits(prefix: Path, *, conda: bool) -> tuple[EnvEdit, ...]:
    """The edits recorded in the environment's tffix block (empty when none)."""
    data = read_bytes(prefix, [primary_file(prefix, conda=conda)])
    raw = next(iter(data.values()))
    return parse_block(raw.decode("utf-8", errors="replace")) if raw else ()


def write_atomic(path: Path, data: bytes | None) -> None:
    """Make *path* hold exactly *data* (None: remove it), never leaving a half-written file.

    The file is written beside *path*, fsynced and renamed over it, so a crash leaves either
    the old or the new bytes. Mode (and owner, where allowed) of the old file are kept.
    *path* is a resolved path (``safepath.inside``): a link at *path* is replaced by the new
    file, never followed.
    """
    if data is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    try:
        st: os.stat_result | None = path.stat()
    except FileNotFoundError:
        st = None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tffix-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if st is not None:
            os.chmod(tmp, st.st_mode & 0o7777)
            with contextlib.suppress(OSError):
                os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def restore_bytes(prefix: Path, files: Mapping[str, bytes | None]) -> list[str]:
    """Write recorded bytes back where they differ; returns what could not be restored."""
    problems = []
    for name, data in files.items():
        try:
            same = _read(prefix, name) == data
        except (ApplyError, safepath.PathEscape):
            same = False
        problem = None if same else _write(prefix, name, data)
        if problem:
            problems.append(problem)
    return problems


def render_files(prefix: Path, edits: Iterable[EnvEdit], *, conda: bool) -> dict[str, bytes | None]:
    """The new bytes of every managed file for *edits* (pure apart from reading the files)."""
    edits = tuple(edits)
    names = managed_files(prefix, conda=conda)
    if conda:
        if not edits:
            return {CONDA_ACTIVATE: None, CONDA_DEACTIVATE: None}
        act, deact = activate_text.render_conda(edits)
        return {CONDA_ACTIVATE: act.encode(), CONDA_DEACTIVATE: deact.encode()}
    old = read_bytes(prefix, names)
    out: dict[str, bytes | None] = {}
    for name, shell in names.items():
        raw = old[name]
        if raw is None:
            continue
        text = raw.decode("utf-8", errors="surrogateescape")
        assert isinstance(shell, Shell)
        out[name] = activate_text.render(shell, text, edits).encode("utf-8", "surrogateescape")
    return out


def write_edits(prefix: Path, edits: Iterable[EnvEdit], *, conda: bool) -> None:
    """Render *edits* into every managed file; ``ApplyError`` when a file cannot be written.

    On failure some files may already hold the new text: the caller restores the bytes it
    recorded before (the transaction does).
    """
    for name, data in render_files(prefix, edits, conda=conda).items():
        problem = _write(prefix, name, data)
        if problem:
            raise ApplyError(f"cannot write {problem}")
