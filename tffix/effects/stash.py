"""Kept files: what undo puts back, held without copying (hard links on the same filesystem).

Before a step changes the environment, ``keep`` links every file that an installed
distribution's ``RECORD`` lists (its ``.dist-info`` included, and files it shares with another
distribution, such as the ``tensorflow/`` folder of ``tensorflow`` and ``tensorflow-cpu``) into
``<env>/.tffix/kept/<id>/`` under the same relative path. A hard link costs a directory entry,
not a copy: the bytes are shared with the environment until pip or uv removes or replaces the
file there (both unlink before writing, never writing into an installed file), after which the
kept link is what still holds them, just as pip's own uninstall stash holds a removed file.
``restore`` links kept files back where the environment's file is no longer the same one;
``prune`` drops the links of files that are still in place, so a finished run holds only what
it removed or replaced; ``held_bytes`` is the disk that costs.

Deleting tens of thousands of links is the slow part of both, so neither waits for it:
``drop`` and ``prune`` move what goes into ``kept/.trash`` with one rename (a pruned snapshot
is built beside the old one by moving its changed files there, then takes its name), and
``sweep`` deletes the trash later (a repair does it in a thread while its first look runs).
A pruned snapshot's trash holds only links to files still in the environment; a dropped one's
may link what another snapshot holds, so ``held_bytes`` sweeps before it counts.

``remove`` uninstalls distributions by their ``RECORD`` (what ``pip uninstall`` deletes), so
undo needs neither the network nor a working pip. Every path is checked to stay inside the
environment and outside ``.tffix``; anything else is skipped and reported.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import io
import os
import re
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from packaging.utils import canonicalize_name

from tffix.effects.lock import checked_state_dir
from tffix.errors import ApplyError

KEPT = "kept"
TRASH = ".trash"
PRUNED = ".pruned"
"""The suffix of a pruned snapshot being built; it takes the snapshot's name when complete."""
_DIST_INFO = re.compile(r"(?P<name>[^-]+)-(?P<version>[^-]+)\.dist-info")


# --------------------------------------------------------------------------- where


def site_dirs(prefix: Path) -> list[Path]:
    """The environment's own ``site-packages`` folders (one per real folder)."""
    found: dict[str, Path] = {}
    patterns = ("lib/python*/site-packages", "lib64/python*/site-packages", "Lib/site-packages")
    for pattern in patterns:
        for folder in sorted(prefix.glob(pattern)):
            if folder.is_dir():
                found.setdefault(os.path.realpath(folder), folder)
    return list(found.values())


def _inside(prefix: Path, path: str) -> str | None:
    """*path* (absolute, normalised) relative to *prefix*, or None when it leaves it or is
    under ``.tffix``. Lexical, as ``os.path.relpath`` is, without its cost per call: a
    venv's RECORDs list tens of thousands of files."""
    root = _absolute(prefix)
    if os.name == "nt":  # pragma: no cover - drive letters and case: relpath decides
        rel = os.path.relpath(path, root)
        inside = rel != "." and not rel.startswith("..") and not os.path.isabs(rel)
    else:
        path = os.path.abspath(path)  # as relpath takes it: "a/../b" is "b"
        lead = root if root.endswith(os.sep) else root + os.sep
        inside = path.startswith(lead) and len(path) > len(lead)
        rel = path[len(lead) :]
    if not inside or rel.split(os.sep, 1)[0] == ".tffix":
        return None
    return rel


@functools.lru_cache(maxsize=64)
def _absolute(prefix: Path) -> str:
    """*prefix* absolute and normalised, as ``os.path.relpath`` would take it."""
    return os.path.abspath(prefix)


def dist_infos(prefix: Path) -> dict[str, Path]:
    """Canonical name -> ``.dist-info`` folder, first one per name (pip's ``~`` stashes skipped)."""
    out: dict[str, Path] = {}
    for site in site_dirs(prefix):
        with contextlib.suppress(OSError):
            for entry in sorted(os.listdir(site)):
                match = _DIST_INFO.fullmatch(entry)
                if match and not entry.startswith("~") and (site / entry).is_dir():
                    out.setdefault(str(canonicalize_name(match["name"])), site / entry)
    return out


def record_files(prefix: Path, dist_info: Path) -> list[str]:
    """Paths (relative to *prefix*) a distribution's ``RECORD`` lists, inside the prefix."""
    try:
        text = (dist_info / "RECORD").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    site = str(dist_info.parent)
    out = []
    for row in csv.reader(io.StringIO(text)):
        if not row or not row[0] or os.path.isabs(row[0]):
            continue
        rel = _inside(prefix, os.path.normpath(os.path.join(site, row[0])))
        if rel is not None:
            out.append(rel)
    return out


def tilde_entries(prefix: Path) -> list[str]:
    """Names of pip's ``~`` stash entries in ``site-packages`` (left when pip is killed)."""
    names: set[str] = set()
    for site in site_dirs(prefix):
        with contextlib.suppress(OSError):
            names.update(n for n in os.listdir(site) if n.startswith("~"))
    return sorted(names)


def kept_root(prefix: Path) -> Path:
    """``<env>/.tffix/kept`` (refused when it, or ``.tffix``, is a symbolic link)."""
    root = checked_state_dir(prefix) / KEPT
    if root.is_symlink():
        raise ApplyError(f"{root} is a symbolic link; refusing to use it")
    return root


def kept_dir(prefix: Path, kept: str) -> Path:
    """The folder of one snapshot."""
    if not kept or "/" in kept or kept.startswith("."):
        raise ApplyError(f"not a snapshot name: {kept!r}")
    folder = kept_root(prefix) / kept
    with contextlib.suppress(OSError):
        _reclaim(folder)
    return folder


def _reclaim(folder: Path) -> bool:
    """A prune cut off between its two renames left only ``<name>.pruned``: it takes the
    name. True when *folder* is missing and a whole ``.pruned`` one was there."""
    pruned = folder.with_name(folder.name + PRUNED)
    if os.path.lexists(folder) or not pruned.is_dir() or pruned.is_symlink():
        return False
    os.rename(pruned, folder)
    return True


# --------------------------------------------------------------------------- keep


def _link(src: str, dst: str) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(src, dst, follow_symlinks=False)  # another filesystem: a real copy


def all_record_files(prefix: Path) -> Iterator[str]:
    """Every file any installed distribution's ``RECORD`` lists (relative, deduplicated)."""
    seen: set[str] = set()
    for dist_info in dist_infos(prefix).values():
        for rel in record_files(prefix, dist_info):
            if rel not in seen:
                seen.add(rel)
                yield rel


def keep(prefix: Path) -> str:
    """Link every installed distribution's files into a new snapshot; returns its name.

    Written under a ``.part`` name and renamed when complete, so a snapshot cut off by a kill
    is never mistaken for a whole one.
    """
    kept = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    final = kept_dir(prefix, kept)
    part = final.with_name(kept + ".part")
    made: set[str] = set()
    try:
        part.mkdir(parents=True)
        for rel in all_record_files(prefix):
            src = os.path.join(prefix, rel)
            try:
                if not stat.S_ISREG(os.lstat(src).st_mode):  # a symbolic link, a folder
                    continue
            except OSError:  # listed, but not there
                continue
            dst = os.path.join(part, rel)
            parent = os.path.dirname(dst)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            _link(src, dst)
        os.rename(part, final)
    except OSError as exc:
        shutil.rmtree(part, ignore_errors=True)
        raise ApplyError(f"cannot keep the files of {prefix}: {exc.strerror or exc}") from exc
    return kept


def marks(prefix: Path) -> dict[str, tuple[str, int, int, int]]:
    """Each installed distribution's ``.dist-info`` name and its ``RECORD``'s inode, size and
    mtime: pip and uv write a new ``RECORD`` whenever they install a distribution, so these
    change whenever the files a snapshot links could have."""
    return {name: (info.name, *_record_mark(info)) for name, info in dist_infos(prefix).items()}


def _record_mark(info: Path) -> tuple[int, int, int]:
    try:
        st = os.stat(info / "RECORD")
    except OSError:
        return (0, 0, 0)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Ahead:
    """A snapshot made before the step that needs it, in a thread: a repair starts one before
    its first look, whose TensorFlow import takes longer than the links (``os.link`` lets go
    of the interpreter lock). :meth:`take` gives it to the step only when no distribution was
    installed or removed since it started (:func:`marks`); otherwise it is dropped."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.marks = marks(prefix)
        self.kept: str | None = None
        self.thread = threading.Thread(target=self._keep, name="tffix-keep", daemon=True)
        self.thread.start()

    def _keep(self) -> None:
        with contextlib.suppress(ApplyError):  # the step's own keep says why
            self.kept = keep(self.prefix)

    def take(self) -> str | None:
        """The snapshot's name if it still holds the environment's files, else None."""
        self.thread.join()
        if self.kept is not None and marks(self.prefix) != self.marks:
            self.discard()
        return self.kept

    def discard(self) -> None:
        """Drop the snapshot (no step needed it)."""
        self.thread.join()
        if self.kept is not None:
            drop(self.prefix, self.kept)
            self.kept = None


def _walk(root: Path) -> Iterator[str]:
    """Relative paths of the regular files under *root*, each folder's in name order before
    its subfolders' (links are not followed; a folder that cannot be read is skipped, as
    ``os.walk`` does). The kinds come from the directory entries, one stat at most each."""
    for rel, _entry in _walk_in(os.fspath(root), ""):
        yield rel


def _walk_in(folder: str, rel: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    try:
        with os.scandir(folder) as found:
            entries = sorted(found, key=lambda e: e.name)
    except OSError:
        return
    subfolders = []
    for entry in entries:
        kind = _kind(entry)
        if kind == "file":
            yield rel + entry.name, entry
        elif kind == "folder":
            subfolders.append(entry)
    for entry in subfolders:
        yield from _walk_in(entry.path, f"{rel}{entry.name}{os.sep}")


def _changed(root: Path, prefix: Path) -> tuple[list[str], int]:
    """The kept files under *root* that are no longer the environment's file at their path,
    and how many files *root* holds. A kept file's inode comes with its directory entry (no
    stat), its device is the snapshot's: one ``lstat`` a file, of the environment's copy.
    Raises ``OSError`` when *root* cannot be read: no answer is better than "none changed"."""
    device = os.lstat(root).st_dev
    changed, total = [], 0
    for rel, entry in _walk_in(os.fspath(root), ""):
        total += 1
        try:
            st = os.lstat(os.path.join(prefix, rel))
        except OSError:
            changed.append(rel)
            continue
        if (st.st_ino, st.st_dev) != (entry.inode(), device):
            changed.append(rel)
    return changed, total


def _kind(entry: os.DirEntry[str]) -> str:
    """``file`` (regular), ``folder`` (not a link to one), or ``other``."""
    try:
        if entry.is_file(follow_symlinks=False):
            return "file"
        return "folder" if entry.is_dir(follow_symlinks=False) else "other"
    except OSError:  # gone since the listing
        return "other"


def prune(prefix: Path, kept: str) -> None:
    """Keep only the links of files no longer in place, by whichever of two ways touches fewer:
    when most files changed, the others' links are removed in place (and the folders that
    leaves empty); when few did, they are moved into a new snapshot beside the old
    (``.pruned``), which then takes its name, and the old one, now only links to files still in
    the environment, goes to the trash. A prune cut off is put right by the next one or by a
    restore (:func:`_settle`)."""
    root = kept_dir(prefix, kept)
    if not root.is_dir():
        return
    pruned = root.with_name(kept + PRUNED)
    made: set[str] = set()
    try:
        _settle(root)
        changed, total = _changed(root, prefix)
        if 2 * len(changed) >= total:
            _prune_in(os.fspath(root), "", set(changed), top=True)
            return
        os.mkdir(pruned)
        for rel in changed:
            dst = os.path.join(pruned, rel)
            parent = os.path.dirname(dst)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            os.rename(os.path.join(root, rel), dst)
        _retire(root)
        os.rename(pruned, root)
    except OSError as exc:
        with contextlib.suppress(OSError):
            _settle(root)
        raise ApplyError(f"cannot prune the kept files {root}: {exc.strerror or exc}") from exc


def _prune_in(folder: str, rel: str, changed: Collection[str], *, top: bool) -> None:
    """Unlink the files under *folder* (at *rel* in the snapshot) that are not *changed*, and
    the folders that leaves empty."""
    try:
        with os.scandir(folder) as found:
            entries = list(found)
    except OSError:
        return
    for entry in entries:
        kind = _kind(entry)
        if kind == "file" and rel + entry.name not in changed:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
        elif kind == "folder":
            _prune_in(entry.path, f"{rel}{entry.name}{os.sep}", changed, top=False)
    if not top:
        with contextlib.suppress(OSError):  # not empty: a changed file is kept in it
            os.rmdir(folder)


def _settle(root: Path) -> None:
    """Put right a prune of *root* that was cut off: a ``.pruned`` one alone takes the name;
    beside the snapshot, the files moved into it go back (the snapshot is then whole again)."""
    pruned = root.with_name(root.name + PRUNED)
    if _reclaim(root) or not pruned.is_dir() or pruned.is_symlink():
        return
    for rel in list(_walk(pruned)):
        dst = os.path.join(root, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(os.path.join(pruned, rel), dst)
    _retire(pruned)


def drop(prefix: Path, kept: str) -> None:
    """Remove a snapshot (and a ``.part`` or ``.pruned`` one of that name): into the trash."""
    with contextlib.suppress(ApplyError):
        root = kept_dir(prefix, kept)
        for folder in (root, root.with_name(kept + ".part"), root.with_name(kept + PRUNED)):
            _retire(folder)


def _retire(folder: Path) -> None:
    """Move *folder* into the trash, which :func:`sweep` empties (deleted now if it cannot)."""
    if not os.path.lexists(folder):
        return
    trash = folder.parent / TRASH
    try:
        trash.mkdir(exist_ok=True)
        if trash.is_symlink():  # a trash leading elsewhere is not followed
            raise OSError(errno.ELOOP, "the trash is a symbolic link")
        os.rename(folder, trash / f"{folder.name}-{uuid.uuid4().hex[:8]}")
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)


def sweep(prefix: Path) -> None:
    """Delete the trash of dropped and pruned snapshots."""
    with contextlib.suppress(ApplyError):
        trash = kept_root(prefix) / TRASH
        if trash.is_dir() and not trash.is_symlink():
            shutil.rmtree(trash, ignore_errors=True)


def sweeping(prefix: Path) -> threading.Thread:
    """:func:`sweep` in a thread, started (join it before anything is dropped again)."""
    thread = threading.Thread(target=sweep, args=(prefix,), name="tffix-sweep", daemon=True)
    thread.start()
    return thread


def held_bytes(prefix: Path, kept: Iterable[str]) -> int:
    """Disk held only by these snapshots (files no longer in the environment). The trash is
    swept first: a dropped snapshot there may still link the same files."""
    sweep(prefix)
    total = 0
    for name in kept:
        with contextlib.suppress(ApplyError):
            root = kept_dir(prefix, name)
            for rel in _walk(root):
                with contextlib.suppress(OSError):
                    st = os.lstat(os.path.join(root, rel))
                    if st.st_nlink == 1:
                        total += st.st_blocks * 512
    return total


def snapshots(prefix: Path) -> list[str]:
    """Every snapshot folder name present (``.part`` and ``.pruned`` leftovers included; a
    ``.pruned`` one whose snapshot is gone, a prune cut off between its renames, first takes
    the snapshot's name)."""
    try:
        root = kept_root(prefix)
        names = {p.name for p in root.iterdir() if p.is_dir() and not p.is_symlink()}
    except (ApplyError, OSError):
        return []
    for name in sorted(n for n in names if n.endswith(PRUNED)):
        whole = name.removesuffix(PRUNED)
        with contextlib.suppress(OSError):
            if whole and _reclaim(root / whole):
                names = (names - {name}) | {whole}
    return sorted(n for n in names if not n.startswith("."))


# --------------------------------------------------------------------------- restore


class _Parents:
    """Checks (once per folder) that a folder is, or would be created, inside the prefix."""

    def __init__(self, prefix: Path) -> None:
        self.real = os.path.realpath(prefix)
        self.ok: dict[str, bool] = {}

    def __call__(self, folder: str) -> bool:
        if folder not in self.ok:
            probe = folder
            while not os.path.lexists(probe):
                probe = os.path.dirname(probe)
            real = os.path.realpath(probe)
            self.ok[folder] = real == self.real or real.startswith(self.real + os.sep)
        return self.ok[folder]


def leading_outside(prefix: Path, names: Iterable[str]) -> list[str]:
    """Those of *names* (relative) whose path, through any symbolic link, leaves *prefix*."""
    real = os.path.realpath(prefix)
    out = []
    for name in names:
        target = os.path.realpath(os.path.join(prefix, name))
        if os.path.isabs(name) or not target.startswith(real + os.sep):
            out.append(name)
    return out


def _put_back(src: str, dst: str) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = f"{dst}.tffix-{uuid.uuid4().hex[:8]}"
    _link(src, tmp)
    try:
        os.replace(tmp, dst)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def restore_kept(prefix: Path, kept: str) -> list[str]:
    """Link every kept file back where the environment's file is not that file; returns
    what could not be put back."""
    try:
        root = kept_dir(prefix, kept)
    except ApplyError as exc:
        return [str(exc)]
    with contextlib.suppress(OSError):
        _settle(root)
    if not root.is_dir():
        return [f"the kept files {root} are missing"]
    inside = _Parents(prefix)
    problems: list[str] = []
    try:
        device = os.lstat(root).st_dev
    except OSError as exc:
        return [f"the kept files {root}: {exc.strerror or exc}"]
    for rel, entry in _walk_in(os.fspath(root), ""):
        src, dst = entry.path, os.path.join(prefix, rel)
        if _inside(prefix, os.path.normpath(dst)) is None or not inside(os.path.dirname(dst)):
            problems.append(f"{rel}: leads outside {prefix}; not restored")
            continue
        try:
            st: os.stat_result | None = os.lstat(dst)
        except OSError:
            st = None
        if st is not None and (st.st_ino, st.st_dev) == (entry.inode(), device):
            continue  # still the kept file itself
        if st is not None and stat.S_ISDIR(st.st_mode):
            problems.append(f"{dst}: a folder is in the way")
            continue
        try:
            _put_back(src, dst)
        except OSError as exc:
            problems.append(f"{dst}: {exc.strerror or exc}")
    return problems


def remove_tilde(prefix: Path, keep_names: Iterable[str]) -> list[str]:
    """Remove pip's ``~`` stash entries that were not there when *keep_names* was recorded."""
    allowed = set(keep_names)
    problems = []
    for site in site_dirs(prefix):
        for name in tilde_entries(prefix):
            path = site / name
            if name in allowed or not os.path.lexists(path):
                continue
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror or exc}")
    return problems


def _remove_file(prefix: Path, rel: str, touched: set[str]) -> None:
    path = os.path.join(prefix, rel)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    touched.add(os.path.dirname(path))
    if rel.endswith(".py"):
        cache = os.path.join(os.path.dirname(path), "__pycache__")
        stem = os.path.basename(rel)[:-3]
        with contextlib.suppress(OSError):
            for name in os.listdir(cache):
                if name.startswith(stem + ".") and name.endswith(".pyc"):
                    os.unlink(os.path.join(cache, name))
            touched.add(cache)


def _prune_dirs(prefix: Path, folders: Iterable[str]) -> None:
    stop = {str(prefix), *(str(s) for s in site_dirs(prefix))}
    for folder in sorted(set(folders), key=len, reverse=True):
        current = folder
        while current not in stop and _inside(prefix, current) is not None:
            try:
                os.rmdir(current)
            except OSError:
                break
            current = os.path.dirname(current)


def remove(prefix: Path, names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Uninstall *names* by their ``RECORD``; returns (names without one, problems)."""
    infos = dist_infos(prefix)
    inside = _Parents(prefix)
    without: list[str] = []
    problems: list[str] = []
    touched: set[str] = set()
    for name in names:
        dist_info = infos.get(name)
        files = record_files(prefix, dist_info) if dist_info is not None else []
        if not files:
            without.append(name)
            continue
        if dist_info is not None:  # first: from here on it is no longer an installed one
            with contextlib.suppress(OSError):
                (dist_info / "METADATA").unlink()
        for rel in files:
            if not inside(os.path.dirname(os.path.join(prefix, rel))):
                problems.append(f"{rel}: leads outside {prefix}; not removed")
                continue
            try:
                _remove_file(prefix, rel, touched)
            except OSError as exc:
                problems.append(f"{os.path.join(prefix, rel)}: {exc.strerror or exc}")
        if dist_info is not None:
            shutil.rmtree(dist_info, ignore_errors=True)
    _prune_dirs(prefix, touched)
    return without, problems


def owners_of_kept(prefix: Path, kept: str) -> set[str]:
    """Installed distributions that own any file of snapshot *kept*."""
    try:
        root = kept_dir(prefix, kept)
    except ApplyError:
        return set()
    files = set(_walk(root)) if root.is_dir() else set()
    if not files:
        return set()
    return {
        name
        for name, info in dist_infos(prefix).items()
        if not files.isdisjoint(record_files(prefix, info))
    }


def half_removed(prefix: Path) -> list[str]:
    """Distributions whose ``.dist-info`` lost its METADATA (a removal cut off by a kill)."""
    return sorted(n for n, info in dist_infos(prefix).items() if not (info / "METADATA").exists())


def top_level_modules(prefix: Path, name: str, limit: int = 4) -> list[str]:
    """Importable top-level names a distribution installs (from its ``RECORD``)."""
    dist_info = dist_infos(prefix).get(name)
    if dist_info is None:
        return []
    site = dist_info.parent
    found: list[str] = []
    for rel in record_files(prefix, dist_info):
        parts = Path(os.path.relpath(os.path.join(prefix, rel), site)).parts
        if not parts or parts[0].startswith("..") or parts[0].endswith((".dist-info", ".data")):
            continue
        if len(parts) == 1 and parts[0].endswith(".py"):
            top = parts[0][:-3]
        elif len(parts) == 2 and parts[1] == "__init__.py":
            top = parts[0]
        else:
            continue
        if top.isidentifier() and top not in found:
            found.append(top)
    return found[:limit]


# --------------------------------------------------------------------------- distributions


class Lister(Protocol):
    """What :func:`restore_packages` needs of ``tffix.effects.pip.PackageManager``."""

    def installed(self) -> dict[str, str]: ...

    def uninstall(self, packages: Sequence[str]) -> float: ...

    def install(self, requirements: Sequence[str], *, no_deps: bool = False) -> float: ...


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def restore_packages(
    pm: Lister, prefix: Path, state: Mapping[str, Any], *, touch: Collection[str] | None = None
) -> list[str]:
    """Bring the distributions in *touch* back to *state*; returns what still differs.

    Distributions added or changed since are removed by their ``RECORD``; the kept files then
    go back (byte for byte, no network); pip ``~`` stash entries made since are removed; only
    a distribution still missing after that is installed again from the index (``--no-deps``).
    *touch* defaults to every distribution that differs, except pip itself.
    """
    before: Mapping[str, str] = state["packages"]
    try:
        now = pm.installed()
    except ApplyError as exc:
        return [str(exc)]
    if touch is None:
        names = {n for n in set(now) | set(before) if now.get(n) != before.get(n)} - {"pip"}
    else:
        names = set(touch)
    changed = sorted(n for n in names if n in now and now[n] != before.get(n))
    changed += [n for n in half_removed(prefix) if n in names and n not in changed]
    without, problems = remove(prefix, changed)
    if without:
        try:
            pm.uninstall(without)
        except ApplyError as exc:
            problems.append(_first_line(exc))
    if isinstance(state.get("kept"), str):
        problems += restore_kept(prefix, state["kept"])
    if isinstance(state.get("tilde"), list):
        problems += remove_tilde(prefix, state["tilde"])
    try:
        now = pm.installed()
        missing = [
            f"{n}=={before[n]}" for n in sorted(names) if n in before and now.get(n) != before[n]
        ]
        if missing:
            pm.install(missing, no_deps=True)
        after = pm.installed()
    except ApplyError as exc:
        return [*problems, _first_line(exc)]
    diff = [
        f"{n}: {after.get(n, 'absent')} (was {before.get(n, 'absent')})"
        for n in sorted(names)
        if after.get(n) != before.get(n)
    ]
    return [*problems, *diff] if diff else []
