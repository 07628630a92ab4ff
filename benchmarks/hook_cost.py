#!/usr/bin/env python3
"""What the import hook costs a Python process that never imports TensorFlow.

Makes two throwaway venvs, one with the hook's two files in site-packages, then times
``python -c pass`` whole-process runs in each, interleaved (so drift in machine load hits both sides
alike), and prints the medians, their difference and the spread of the no-hook runs (the
noise the difference must be read against).

Usage: python benchmarks/hook_cost.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tffix.hook import MODULE_NAME, PTH_NAME, PTH_TEXT, render_module  # noqa: E402


def once(python: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(python), "-c", "pass"], check=True)
    return (time.perf_counter() - start) * 1000


def site_packages(root: Path) -> Path:
    paths = sysconfig.get_paths(vars={"base": str(root), "platbase": str(root)})
    return Path(paths["purelib"])


def make_venv(root: Path) -> Path:
    venv.EnvBuilder(with_pip=False).create(root)
    return root / "bin" / "python"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain, hooked = make_venv(Path(tmp) / "plain"), make_venv(Path(tmp) / "hooked")
        site = site_packages(hooked.parent.parent)
        hook = render_module(unset_vars=["CUDA_VISIBLE_DEVICES"], preload=["/nonexistent.so"])
        (site / MODULE_NAME).write_text(hook)
        (site / PTH_NAME).write_text(PTH_TEXT)
        once(plain), once(hooked)  # warm the page cache; the hook's bytecode is written here
        without: list[float] = []
        with_hook: list[float] = []
        for _ in range(opts.runs):
            without.append(once(plain))
            with_hook.append(once(hooked))
    a, b = statistics.median(without), statistics.median(with_hook)
    spread = statistics.quantiles(without, n=4)
    print(f"python -c pass, {opts.runs} paired runs")
    print(f"  without the hook: median {a:6.2f} ms  (quartiles {spread[0]:.2f}-{spread[2]:.2f})")
    print(f"  with the hook:    median {b:6.2f} ms")
    print(f"  difference:              {b - a:+6.2f} ms ({100 * (b - a) / a:+.1f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
