"""Measure the worst inputs `tffix explain` and `tffix scan` are given, against their bounds.

Usage:
    python benchmarks/explain_bounds.py

For each hostile shape (2 M empty lines; as many 4 KiB lines as the 32 MiB input cap
allows; one 32 MiB line; 1 M ordinary TensorFlow log lines; a 5,000-cell notebook of broken
cells) it builds the input in memory (or a temporary file), runs the same code the command
runs (``snapshot_from_text`` + ``diagnose``, or ``scan_paths``) and prints the CPU seconds
of this process, how many lines were read and what was skipped. Nothing is asserted.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from tffix.diagnosis import diagnose
from tffix.logparse import snapshot_from_text
from tffix.ruleset import load_rules
from tffix.scan import scan_paths

CAP = 32 * 1024 * 1024
TF_LINE = (
    "2024-01-01 12:00:00.000000: I tensorflow/core/platform/cpu_feature_guard.cc:182] "
    "This TensorFlow binary is optimized to use available CPU instructions"
)


def _logs() -> dict[str, str]:
    return {
        "2 M empty lines": "\n" * 2_000_000,
        "4 KiB lines up to 32 MiB": "\n".join(["ab " * 1365] * (CAP // 4096)),
        "one 32 MiB line": "x" * (CAP - 1),
        "1 M TensorFlow log lines": "\n".join([TF_LINE] * 1_000_000),
    }


def main() -> None:
    rules = load_rules()
    print(f"{'input':<28} {'cpu s':>7} {'lines read':>11}  skipped")
    for name, text in _logs().items():
        t0 = time.process_time()
        snap = snapshot_from_text(text, rules)
        diagnose(snap, rules)
        seconds = time.process_time() - t0
        print(f"{name:<28} {seconds:7.2f} {len(snap.log):>11}  {snap.extra.get('skipped', '-')}")
    with tempfile.TemporaryDirectory() as folder:
        nb = Path(folder) / "broken.ipynb"
        cell = {"cell_type": "code", "source": ["def f(:\n", "  x = (\n"], "outputs": []}
        nb.write_text(json.dumps({"cells": [cell] * 5000, "nbformat": 4, "metadata": {}}))
        t0 = time.process_time()
        result = scan_paths([nb])
        seconds = time.process_time() - t0
        print(f"{'5,000 broken cells (scan)':<28} {seconds:7.2f} {'-':>11}  {dict(result.skipped)}")


if __name__ == "__main__":
    main()
