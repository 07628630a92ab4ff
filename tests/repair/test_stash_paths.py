"""The kept-files helpers read paths as the standard library does, only faster: ``_inside`` as
``os.path.relpath`` would, ``_walk`` as ``os.walk`` without following links, over generated
paths and a real tree with links, folders that cannot be read and a ``.tffix`` folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tffix.effects import stash
from tffix.errors import ApplyError


def _reference_inside(prefix: Path, path: str) -> str | None:
    rel = os.path.relpath(path, prefix)
    if rel == "." or rel.startswith("..") or os.path.isabs(rel):
        return None
    if rel.split(os.sep, 1)[0] == ".tffix":
        return None
    return rel


def _reference_walk(root: Path) -> list[str]:
    out = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            if os.path.isfile(full) and not os.path.islink(full):
                out.append(os.path.relpath(full, root))
    return out


PART = st.sampled_from(["a", "b", "..", ".", ".tffix", "venv", "venvx", "lib", "x.py", ""])


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.lists(PART, min_size=1, max_size=3),
    path=st.lists(PART, min_size=0, max_size=6),
)
def test_inside_reads_a_path_as_relpath_does(prefix: list[str], path: list[str]) -> None:
    root = Path("/", *[p for p in prefix if p not in {"", ".", ".."}] or ["venv"])
    full = os.path.join("/", *prefix, *path) if path else str(root)
    assert stash._inside(root, full) == _reference_inside(root, full)


def test_walk_lists_what_os_walk_lists(tmp_path: Path) -> None:
    root = tmp_path / "kept"
    for rel in ("b/z.py", "b/a.py", "a.txt", "c/d/e/f.so", "c/d/g", ".hidden/x", "Z/y"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / "link-to-file").symlink_to(root / "a.txt")
    (root / "link-to-dir").symlink_to(root / "c")
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    (root / "empty").mkdir()
    locked = root / "locked"
    locked.mkdir()
    (locked / "secret").write_text("x")
    locked.chmod(0)
    try:
        got = list(stash._walk(root))
        assert got == _reference_walk(root)
        assert "c/d/e/f.so" in got and "link-to-file" not in got
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("name", ["missing", "a-file"])
def test_walk_of_what_is_no_folder_is_empty(tmp_path: Path, name: str) -> None:
    (tmp_path / "a-file").write_text("x")
    assert list(stash._walk(tmp_path / name)) == _reference_walk(tmp_path / name) == []


SIX = ("pkg/__init__.py", "pkg/a.py", "pkg/sub/b.py", "pkg/c.py", "pkg/d.py", "pkg/e.py")


def _env_with_one_distribution(tmp_path: Path, files: Sequence[str] = SIX) -> tuple[Path, Path]:
    prefix = tmp_path / "env"
    site = prefix / "lib" / "python3.11" / "site-packages"
    for rel in files:
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(rel)
    info = site / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text(
        "".join(f"{r},,\n" for r in files) + "pkg-1.0.dist-info/RECORD,,\n"
    )
    return prefix, site


def test_prune_keeps_exactly_the_files_a_step_replaced_or_removed(tmp_path: Path) -> None:
    files = ["pkg/__init__.py", "pkg/a.py", "pkg/sub/b.py", "pkg/sub/deep/c.so", "other/x.py"]
    prefix, site = _env_with_one_distribution(tmp_path, files)
    kept = stash.keep(prefix)
    replaced, removed = site / "pkg" / "a.py", site / "pkg" / "sub" / "deep" / "c.so"
    replaced.unlink()
    replaced.write_text("new bytes")
    removed.unlink()
    stash.prune(prefix, kept)
    root = stash.kept_dir(prefix, kept)
    left = sorted(stash._walk(root))
    base = "lib/python3.11/site-packages/"
    assert left == [base + "pkg/a.py", base + "pkg/sub/deep/c.so"]
    assert (root / base / "pkg" / "a.py").read_text() == "pkg/a.py"  # the old bytes
    assert not (root / base / "other").exists()  # emptied folders go
    assert root.is_dir()


def test_a_prune_cut_off_between_its_renames_leaves_the_pruned_snapshot_under_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix, site = _env_with_one_distribution(tmp_path)
    kept = stash.keep(prefix)
    (site / "pkg" / "a.py").unlink()
    real_rename = os.rename

    def cut_off(src: str | Path, dst: str | Path) -> None:
        if str(src).endswith(stash.PRUNED):  # the last rename, and the one putting it back
            raise OSError(5, "cut off")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", cut_off)
    with pytest.raises(ApplyError, match="cannot prune"):
        stash.prune(prefix, kept)
    monkeypatch.setattr(os, "rename", real_rename)
    assert not (stash.kept_root(prefix) / kept).exists()  # only the .pruned one holds it now
    assert stash.snapshots(prefix) == [kept]
    root = stash.kept_dir(prefix, kept)
    assert list(stash._walk(root)) == ["lib/python3.11/site-packages/pkg/a.py"]
    assert stash.restore_kept(prefix, kept) == []
    assert (site / "pkg" / "a.py").read_text() == "pkg/a.py"


def test_drop_and_prune_leave_only_trash_that_sweep_deletes(tmp_path: Path) -> None:
    prefix, site = _env_with_one_distribution(tmp_path)
    first, second = stash.keep(prefix), stash.keep(prefix)
    (site / "pkg" / "a.py").unlink()
    stash.prune(prefix, first)
    stash.drop(prefix, second)  # still links the a.py the first one holds
    assert stash.snapshots(prefix) == [first]
    trash = stash.kept_root(prefix) / stash.TRASH
    assert len(list(trash.iterdir())) == 2  # the first one's links to files in place, the second
    size = (stash.kept_dir(prefix, first) / "lib/python3.11/site-packages/pkg/a.py").stat()
    assert stash.held_bytes(prefix, [first]) == size.st_blocks * 512  # swept, then counted
    assert not trash.exists()
    stash.drop(prefix, stash.keep(prefix))
    stash.sweeping(prefix).join()
    assert not trash.exists()
    assert stash.snapshots(prefix) == [first]


def test_a_snapshot_made_ahead_is_used_only_while_no_distribution_changed(tmp_path: Path) -> None:
    prefix, site = _env_with_one_distribution(tmp_path)
    ahead = stash.Ahead(prefix)
    kept = ahead.take()
    assert kept is not None
    assert sorted(stash._walk(stash.kept_dir(prefix, kept))) == sorted(
        stash.all_record_files(prefix)
    )
    stale = stash.Ahead(prefix)
    stale.thread.join()
    record = site / "pkg-1.0.dist-info" / "RECORD"
    text = record.read_text()
    record.unlink()
    record.write_text(text)  # what a reinstall of the same version does
    assert stale.take() is None
    assert stash.snapshots(prefix) == [kept]  # the stale one was dropped
    unused = stash.Ahead(prefix)
    unused.discard()
    assert stash.snapshots(prefix) == [kept]


def test_a_prune_cut_off_while_moving_files_puts_them_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix, site = _env_with_one_distribution(tmp_path)
    kept = stash.keep(prefix)
    whole = sorted(stash._walk(stash.kept_dir(prefix, kept)))
    (site / "pkg" / "a.py").unlink()
    (site / "pkg" / "sub" / "b.py").unlink()
    real_rename = os.rename
    moved: list[str] = []

    def cut_off(src: str | Path, dst: str | Path) -> None:
        if stash.PRUNED in str(dst) and moved:  # the second file to move
            raise OSError(28, "No space left on device")
        moved.append(str(src))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", cut_off)
    with pytest.raises(ApplyError, match="No space left"):
        stash.prune(prefix, kept)
    monkeypatch.setattr(os, "rename", real_rename)
    assert moved  # one file was moved before the cut
    assert sorted(stash._walk(stash.kept_dir(prefix, kept))) == whole
    assert stash.snapshots(prefix) == [kept]
    assert stash.restore_kept(prefix, kept) == []
    assert (site / "pkg" / "sub" / "b.py").read_text() == "pkg/sub/b.py"


def test_a_prune_where_most_files_changed_removes_the_others_in_place(tmp_path: Path) -> None:
    prefix, site = _env_with_one_distribution(tmp_path)
    kept = stash.keep(prefix)
    for rel in ("pkg/a.py", "pkg/sub/b.py", "pkg/c.py", "pkg/d.py", "pkg/e.py"):
        (site / rel).unlink()
    stash.prune(prefix, kept)
    base = "lib/python3.11/site-packages/pkg/"
    assert sorted(stash._walk(stash.kept_dir(prefix, kept))) == sorted(
        base + n for n in ("a.py", "sub/b.py", "c.py", "d.py", "e.py")
    )
    assert not (stash.kept_root(prefix) / stash.TRASH).exists()  # nothing was moved aside


def test_a_trash_that_is_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    prefix, _site = _env_with_one_distribution(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    kept = stash.keep(prefix)
    (stash.kept_root(prefix) / stash.TRASH).symlink_to(elsewhere)
    stash.drop(prefix, kept)
    assert stash.snapshots(prefix) == []
    assert list(elsewhere.iterdir()) == []  # deleted in place, never moved out of the venv
    stash.sweep(prefix)
    assert elsewhere.is_dir()
