"""The kept-files helpers read paths as the standard library does, only faster: ``_inside`` as
``os.path.relpath`` would, ``_walk`` as ``os.walk`` without following links, over generated
paths and a real tree with links, folders that cannot be read and a ``.tffix`` folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tffix.effects import stash


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


def test_prune_keeps_exactly_the_files_a_step_replaced_or_removed(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    site = prefix / "lib" / "python3.11" / "site-packages"
    files = ["pkg/__init__.py", "pkg/a.py", "pkg/sub/b.py", "pkg/sub/deep/c.so", "other/x.py"]
    for rel in files:
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(rel)
    info = site / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text(
        "".join(f"{r},,\n" for r in files) + "pkg-1.0.dist-info/RECORD,,\n"
    )
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
