"""Measure `tffix scan` on large real source trees: files per second on one core.

Usage:
    python benchmarks/scan_speed.py [PATH ...] [--download-keras] [--findings] [--runs N]

With no PATH it scans the standard library of the running Python. ``--download-keras``
adds the latest keras wheel from PyPI (``pip download --no-deps``, about 1.5 MB) unpacked
in a temporary folder. Each tree is scanned as if it were a user's project (``scan_project``):
a first pass warms the page cache, then the best of ``--runs`` passes (default 3) is
reported. The process is pinned to one CPU, and the rate is files per CPU-second of this
process (a shared machine's other load does not count against it; the wall time is printed
too), with how many texts the pre-filter let through to ``ast.parse``. Goal: >= 2000 files/s.
``--findings`` lists every finding, so that a reader can check that nothing absurd is
reported on code that is not a training script.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from pathlib import Path

from tffix import scan
from tffix.scan import ScanResult, scan_project

GOAL = 2000


def one_core() -> str:
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        return "not pinned"
    return f"pinned to CPU {cpu}"


def keras_tree(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder), "keras"],
        check=True,
    )
    (wheel,) = folder.glob("keras-*.whl")
    target = folder / wheel.stem
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def counting_parses() -> list[int]:
    """Count the scan's calls of ``ast.parse`` (one per file, one per notebook cell)."""
    count = [0]
    parse = scan._parse

    def counted(text: str, filename: str) -> object:
        count[0] += 1
        return parse(text, filename)

    scan._parse = counted  # type: ignore[assignment]
    return count


def report(name: str, result: ScanResult, cpu: float, *, findings: bool) -> None:
    rate = result.files / cpu if cpu else float("inf")
    wall = result.files / result.seconds if result.seconds else float("inf")
    skipped = ", ".join(f"{n} {why}" for why, n in result.skipped.items()) or "none"
    print(f"{name}")
    print(f"  files scanned {result.files}, skipped {result.skipped_total} ({skipped})")
    print(
        f"  {cpu:.2f} s of CPU: {rate:,.0f} files/s on one core (goal {GOAL:,}); "
        f"wall {result.seconds:.2f} s ({wall:,.0f} files/s, other load included)"
    )
    by_id = collections.Counter(f"{f.id} ({f.severity})" for f in result.findings)
    print(f"  findings {len(result.findings)}: {dict(by_id) or 'none'}")
    if findings:
        for f in result.findings:
            print(f"    {f.location}: {f.severity} [{f.id}] {f.title}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--download-keras", action="store_true")
    parser.add_argument("--findings", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {one_core()}")
    paths = list(args.paths) or [Path(sysconfig.get_paths()["stdlib"])]
    with tempfile.TemporaryDirectory() as tmp:  # the keras wheel, if asked for
        if args.download_keras:
            paths.append(keras_tree(Path(tmp)))
        parses = counting_parses()
        for path in paths:
            scan_project(path)  # warm the page cache
            best = float("inf")
            for _ in range(max(1, args.runs)):
                parses[0] = 0
                start = time.process_time()
                result = scan_project(path)
                best = min(best, time.process_time() - start)
            report(str(path), result, best, findings=args.findings)
            print(f"  parsed {parses[0]} texts (the rest failed the pre-filter)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
