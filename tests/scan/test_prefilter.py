"""The scan's pre-filter never drops a finding: every file in which the full analysis
(``ast.parse`` and all) finds something passes the cheap text test, over the fixture
projects and over a real source tree (a sample of the standard library by default; set
``TFFIX_SCAN_DIFF_TREE=/path/to/tensorflow`` for a whole tree). Generated sources:
``test_prefilter_generated.py``."""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tffix import scan
from tffix.scan import analyze_source, decode_source, load_scan_rules

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "scan"
GPU_COUNTS = (None, 1, 4)


def _python_files(root: Path, every: int = 1) -> Iterator[Path]:
    for i, path in enumerate(sorted(root.rglob("*.py"))):
        if i % every == 0 and path.is_file():
            yield path


def _lost(path: Path) -> list[str]:
    """Findings in *path* that the pre-filter would have skipped."""
    text = decode_source(path.read_bytes())
    if text is None:
        return []
    rules = load_scan_rules()
    lost = []
    for gpus in GPU_COUNTS:
        try:
            found = analyze_source(text, str(path), gpu_count=gpus, rules=rules)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        if found and not scan._worth_parsing(text, rules):
            lost += [f"{f.id} at {f.location} (gpus={gpus})" for f in found]
    return lost


def test_no_fixture_finding_is_filtered_out() -> None:
    files = list(_python_files(FIXTURES))
    assert len(files) > 10
    lost = {str(p): _lost(p) for p in files}
    assert not {k: v for k, v in lost.items() if v}


def test_files_that_fail_the_filter_hold_no_finding_in_a_real_tree() -> None:
    given = os.environ.get("TFFIX_SCAN_DIFF_TREE")
    root = Path(given) if given else Path(sysconfig.get_paths()["stdlib"])
    every = 1 if given else 25
    checked = 0
    lost: dict[str, list[str]] = {}
    for path in _python_files(root, every):
        checked += 1
        found = _lost(path)
        if found:
            lost[str(path)] = found
    if checked == 0:
        pytest.skip(f"no Python files under {root}")
    assert not lost, lost


def test_a_masking_file_does_pass_the_filter() -> None:
    rules = load_scan_rules()
    text = 'import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "-1"\n'
    assert analyze_source(text, "x.py", rules=rules)
    assert scan._worth_parsing(text, rules)
    assert not scan._worth_parsing("import os\nprint(os.getcwd())\n", rules)


def test_device_count_triggers_only_as_a_keyword() -> None:
    rules = load_scan_rules()
    config = 'import tensorflow as tf\ncfg = tf.compat.v1.ConfigProto(device_count = {"GPU": 0})\n'
    assert analyze_source(config, "x.py", rules=rules)
    assert scan._worth_parsing(config, rules)
    split = config.replace("device_count = ", "device_count\\\n    =")
    assert analyze_source(split, "x.py", rules=rules)
    assert scan._worth_parsing(split, rules)
    torch_only = "import torch\nn = torch.cuda.device_count()\nok = n == 2\n"
    assert not analyze_source(torch_only, "x.py", rules=rules)
    assert not scan._worth_parsing(torch_only, rules)
