"""`tffix explain` and `tffix scan` bound their work and say what they skipped, and why.

No test here times anything (figures come from benchmarks/explain_bounds.py); each checks
the bound itself: how many lines are read, how often a file is opened, what is skipped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tffix import cli, logparse
from tffix.logparse import snapshot_from_text
from tffix.ruleset import load_rules
from tffix.scan import scan_paths

CUDNN_FAILURE = (
    "W0000 00:00:1 dso_loader.cc:78] Could not load dynamic library 'libcudnn.so.8'; "
    "dlerror: libcudnn.so.8: cannot open shared object file: No such file or directory"
)

_OPENED: list[str] | None = None


def _hook(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and args and isinstance(args[0], (str, Path)):
        _OPENED.append(str(args[0]))


sys.addaudithook(_hook)


def _explain(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[int, str, str]:
    code = cli.main(["explain", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_two_million_empty_lines_are_skipped_not_spent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The audit's reproducer: 2 M empty lines took ~17 s."""
    log = tmp_path / "empty.log"
    log.write_text("\n" * 2_000_000)
    code, _, err = _explain(capsys, log)
    assert code == 0
    assert "skipped 1900000 of 2000000 lines, because" in err
    snap = snapshot_from_text(log.read_text(), load_rules())
    assert len(snap.log) <= logparse.MAX_LINES + 1


@pytest.mark.parametrize("where", ["start", "end"])
def test_both_ends_of_a_long_log_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    filler = ["I0000 some unrelated line"] * (logparse.MAX_LINES * 3)
    lines = [CUDNN_FAILURE, *filler] if where == "start" else [*filler, CUDNN_FAILURE]
    log = tmp_path / "tf.log"
    log.write_text("\n".join(lines) + "\n")
    _, out, err = _explain(capsys, log, "--json")
    assert "because" in err
    ids = {f["id"] for f in json.loads(out)["findings"]}
    assert ids & {"cuda-libs-missing", "cuda-libs-not-found", "cudnn-version-mismatch"}, ids


def test_long_lines_count_against_the_character_bound(tmp_path: Path) -> None:
    text = "\n".join(["x" * (10 * logparse.MATCH_WINDOW)] * 5000)  # 200 MB of text, 5000 lines
    snap = snapshot_from_text(text, load_rules())
    assert len(snap.log) < 5000 and "skipped" in str(snap.extra.get("skipped"))


def _notebook(path: Path, cells: int, source: list[str]) -> None:
    cell = {"cell_type": "code", "source": source, "metadata": {}, "outputs": []}
    path.write_text(json.dumps({"cells": [cell] * cells, "nbformat": 4, "metadata": {}}))


def test_a_notebook_of_broken_cells_is_read_once(tmp_path: Path) -> None:
    """The audit's reproducer: 5,000 broken cells took 4-10 s (the file was re-read per cell)."""
    global _OPENED
    nb = tmp_path / "broken.ipynb"
    _notebook(nb, 5000, ["import tensorflow as tf\n", "def f(:\n", "  x = (\n"])
    _OPENED = []
    try:
        result = scan_paths([nb])
    finally:
        opened, _OPENED = _OPENED, None
    assert result.files == 1
    assert opened.count(str(nb)) <= 2, f"{opened.count(str(nb))} opens"


def test_a_notebook_with_too_many_cells_is_skipped_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tffix.scan import MAX_NOTEBOOK_CELLS

    nb = tmp_path / "huge.ipynb"
    _notebook(
        nb, MAX_NOTEBOOK_CELLS + 1, ['import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "-1"\n']
    )
    assert cli.main(["scan", str(nb)]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 file, because a notebook of more than" in out


def test_the_time_bound_skips_the_remaining_files(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"m{i}.py").write_text('import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "-1"\n')
    result = scan_paths([tmp_path], max_seconds=0)
    assert result.files == 0 and result.skipped == {"over the time limit": 3}
    assert result.findings == ()
