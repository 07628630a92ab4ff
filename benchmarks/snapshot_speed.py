"""How much longer `tffix snapshot` takes than TensorFlow's own GPU discovery.

For a venv with real TensorFlow, runs (alternately, to share any drift) the bare
``python -c "import tensorflow as tf; tf.config.list_physical_devices('GPU')"`` in that venv
and ``tffix snapshot --venv DIR`` (with the interpreter running this script), and prints the
median wall time of each and their ratio. Goal: ratio <= 1.15, since every probe runs beside
the TensorFlow child, which is the floor.

    python benchmarks/snapshot_speed.py --venv /path/to/venv [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BARE = "import tensorflow as tf; tf.config.list_physical_devices('GPU')"


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", required=True, type=Path, help="a venv with TensorFlow")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each (default 7)")
    args = parser.parse_args()
    python = args.venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    bare = [str(python), "-c", BARE]
    snap = [sys.executable, "-m", "tffix", "snapshot", "--venv", str(args.venv)]
    _time(bare, env)  # warm the page cache for both
    _time(snap, env)
    bare_times, snap_times = [], []
    for _ in range(args.runs):
        bare_times.append(_time(bare, env))
        snap_times.append(_time(snap, env))
    b, s = statistics.median(bare_times), statistics.median(snap_times)
    print(f"runs: {args.runs} each, venv: {args.venv}, cpus: {os.cpu_count()}")
    for label, median, times in (
        ("bare import + list_physical_devices", b, bare_times),
        ("tffix snapshot", s, snap_times),
    ):
        print(f"{label:36} median {median:.3f} s  all: {sorted(round(t, 3) for t in times)}")
    print(f"ratio: {s / b:.3f} (goal <= 1.15)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
