"""Scanning real folders: what is skipped and counted, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tffix.errors import UsageError
from tffix.probes import project
from tffix.scan import looks_like_project, scan_paths, scan_project

HIDE = 'import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "-1"\n'


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few hundred ordinary files, the places never scanned, and broken files."""
    root = tmp_path_factory.mktemp("project")
    for i in range(300):
        body = f"import os\n\ndef f{i}(x):\n    return os.path.join(x, 'device_{i}')\n"
        write(root / "pkg" / f"sub{i % 7}" / f"mod{i}.py", body)
    write(root / "train.py", HIDE)
    # Places that are never entered: each holds a hiding line that must not be reported.
    for folder in (
        ".git/hooks",
        ".venv/lib",
        "venv/lib",
        "lib/python3.11/site-packages/keras",
        "node_modules/x",
        "build/lib/pkg",
        "dist",
        "pkg/__pycache__",
        ".tox/py311",
        ".ipynb_checkpoints",
        "pkg.egg-info",
    ):
        write(root / folder / "hide.py", HIDE)
    write(root / "env" / "pyvenv.cfg", "home = /usr/bin\n")
    write(root / "env" / "lib" / "hide.py", HIDE)
    write(root / "condaenv" / "conda-meta" / "history", "")
    write(root / "condaenv" / "hide.py", HIDE)
    write(root / "env_tools" / "ok.py", HIDE)  # named env, but not an environment: scanned
    # Test code.
    write(root / "tests" / "test_a.py", HIDE)
    write(root / "pkg" / "thing_test.py", HIDE)
    # Broken files: counted, never raised.
    write(root / "broken" / "syntax.py", "import os\nos.environ['CUDA_VISIBLE_DEVICES'] = (\n")
    write(root / "broken" / "binary.py", b"\x7fELF\x00\x01\x02CUDA_VISIBLE_DEVICES")
    write(root / "broken" / "latin1.py", b"# no cookie\nx = '\xe9'  # CUDA_VISIBLE_DEVICES\n")
    write(
        root / "broken" / "cookie.py",
        b"# -*- coding: latin-1 -*-\nx = '\xe9'  # CUDA_VISIBLE_DEVICES\n",
    )
    write(root / "broken" / "big.py", "# CUDA_VISIBLE_DEVICES\n" + "x = 1\n" * 400_000)  # > 2 MiB
    write(root / "broken" / "notjson.ipynb", "{not json")
    write(
        root / "broken" / "nested.py",
        "x = " + "(" * 5000 + ")" * 5000 + "\n# CUDA_VISIBLE_DEVICES\n",
    )
    write(
        root / "broken" / "deep.py",
        "x = " + "+".join(["a"] * 200_000) + "\n# CUDA_VISIBLE_DEVICES\n",
    )
    os.symlink(root, root / "broken" / "loop")  # a link back up: not followed
    os.symlink(root / "missing.py", root / "broken" / "dangling.py")
    return root


def test_synthetic_tree(tree: Path) -> None:
    result = scan_project(tree)
    assert [(f.id, f.location) for f in result.findings] == [
        ("cuda-visible-devices-masked", "train.py:2"),  # a folder's files before its folders
        ("cuda-visible-devices-masked", "env_tools/ok.py:2"),
    ]
    assert dict(result.skipped) == {
        "not a notebook": 1,
        "not text": 2,  # NUL bytes; invalid UTF-8 without a coding cookie
        "syntax error": 2,  # an unclosed bracket; too many nested parentheses
        "test file": 2,
        "too complex": 1,
        "too large": 1,
    }
    # 300 modules, train.py, env_tools/ok.py, cookie.py (decoded by its coding cookie)
    assert result.files == 303
    assert result.seconds > 0


def test_max_files_counts_the_rest(tree: Path) -> None:
    result = scan_project(tree, max_files=10)
    assert result.files == 10
    assert result.skipped["over the file limit"] == 303 - 10


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_and_folder(tmp_path: Path) -> None:
    write(tmp_path / "locked.py", HIDE)
    write(tmp_path / "closed" / "inner.py", HIDE)
    (tmp_path / "locked.py").chmod(0)
    (tmp_path / "closed").chmod(0)
    try:
        result = scan_project(tmp_path)
    finally:
        (tmp_path / "closed").chmod(0o755)
    assert result.findings == ()
    assert dict(result.skipped) == {"unreadable": 2}


def test_read_reports_vanished_and_unreadable(tmp_path: Path) -> None:
    assert project.read(tmp_path / "gone.py", max_bytes=10) == project.VANISHED
    assert project.read(tmp_path, max_bytes=10) == project.UNREADABLE  # a folder
    write(tmp_path / "a.py", "x = 1\n")
    assert project.read(tmp_path / "a.py", max_bytes=3) == project.TOO_LARGE
    assert project.read(tmp_path / "a.py", max_bytes=10) == b"x = 1\n"


def test_scan_paths_names_files_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "proj" / "src" / "train.py", HIDE)
    write(tmp_path / "proj" / "tests" / "test_x.py", HIDE)
    write(tmp_path / "script", HIDE)  # no .py suffix: named explicitly, so read as Python
    monkeypatch.chdir(tmp_path)
    result = scan_paths([Path("proj"), Path("script"), Path("proj/tests/test_x.py")])
    assert [f.location for f in result.findings] == [
        "proj/src/train.py:2",
        "script:2",
        "proj/tests/test_x.py:2",  # a test file named explicitly is judged
    ]
    assert result.skipped == {"test file": 1}
    with pytest.raises(UsageError, match="no such file or folder: nope"):
        scan_paths([Path("nope")])


def test_findings_are_ranked_errors_first(tmp_path: Path) -> None:
    write(tmp_path / "a.py", 'import os\nos.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"\n')
    write(tmp_path / "b.py", 'import os\nos.environ["KERAS_BACKEND"] = "jax"\n')
    write(tmp_path / "c.py", HIDE)
    result = scan_project(tmp_path)
    assert [str(f.severity) for f in result.findings] == ["error", "warning", "info"]


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("pyproject.toml", True),
        ("requirements.txt", True),
        (".git", True),
        ("analysis.ipynb", True),
        ("setup.py", True),
        ("notes.txt", False),
        ("train.py", False),
    ],
)
def test_looks_like_project(tmp_path: Path, marker: str, expected: bool) -> None:
    if marker == ".git":
        (tmp_path / marker).mkdir()
    else:
        write(tmp_path / marker, "")
    assert looks_like_project(tmp_path) is expected
    assert looks_like_project(tmp_path / "missing") is False


def test_huge_notebook_is_skipped_not_loaded(tmp_path: Path) -> None:
    cell = {"cell_type": "code", "source": ["x = 1\n"], "outputs": [{"data": "A" * 1024}]}
    doc = {"cells": [cell] * 21_000, "nbformat": 4}
    write(tmp_path / "huge.ipynb", json.dumps(doc))
    assert (tmp_path / "huge.ipynb").stat().st_size > 20 * 1024 * 1024
    result = scan_project(tmp_path)
    assert result.skipped == {"too large": 1}
    assert result.files == 0
