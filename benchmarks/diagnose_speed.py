#!/usr/bin/env python3
"""How long tffix's own work takes to diagnose a saved snapshot (goal: under 100 ms).

Prints the median over N runs, in process (no interpreter start-up), of:

* cold: forget the cached rules, load and validate every rules/*.toml, parse the snapshot,
  diagnose, render the text report;
* warm: the same with the rules already loaded (a long-lived process, or the second
  diagnosis in one run).

Also prints, for reference, the wall time of a whole ``python -m tffix diagnose --snapshot``
process (which adds the interpreter's own start-up and imports).

Usage: python benchmarks/diagnose_speed.py [SNAPSHOT ...] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tffix.diagnosis import diagnose  # noqa: E402
from tffix.document import parse_snapshot_text  # noqa: E402
from tffix.report import render_text  # noqa: E402
from tffix.ruleset import clear_cache, load_rules  # noqa: E402

DEFAULT = [
    ROOT / "fixtures" / "snapshots" / "healthy.json",
    ROOT / "fixtures" / "snapshots" / "cuda-libs-not-found" / "pos-tf2161-runpath-regression.json",
    ROOT
    / "fixtures"
    / "snapshots"
    / "framework-pin-conflict"
    / "pos-torch251-cudnn91-under-tf218.json",
]


def once(data: bytes, *, cold: bool) -> tuple[float, float]:
    if cold:
        clear_cache()
    wall, cpu = time.perf_counter(), time.process_time()
    rules = load_rules()
    snap = parse_snapshot_text(data)
    render_text(diagnose(snap, rules), snap, rules=rules)
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshots", nargs="*", type=Path, default=DEFAULT)
    parser.add_argument("--runs", type=int, default=30)
    opts = parser.parse_args()
    print(f"{'snapshot':58} {'cold ms (wall/cpu)':>20} {'warm ms (wall/cpu)':>20}")
    for path in opts.snapshots:
        data = path.read_bytes()
        cold = [once(data, cold=True) for _ in range(opts.runs)]
        warm = [once(data, cold=False) for _ in range(opts.runs)]
        med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
        name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        print(
            f"{name[-58:]:58} {med(cold, 0):9.1f} / {med(cold, 1):6.1f}"
            f" {med(warm, 0):11.1f} / {med(warm, 1):6.1f}"
        )
    walls = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tffix", "diagnose", "--snapshot", str(opts.snapshots[0])],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        walls.append((time.perf_counter() - start) * 1000)
    print(
        f"whole process `python -m tffix diagnose --snapshot` (median of 5, incl. interpreter "
        f"start-up): {statistics.median(walls):.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
