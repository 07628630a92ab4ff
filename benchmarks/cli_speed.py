#!/usr/bin/env python3
"""Whole-process wall time of the commands a person (or a shell's Tab) waits for.

Goals: ``--version``, ``--help`` and a completion request ≤ 50 ms, ``diagnose --snapshot F``
≤ 100 ms, each as a whole process started the way the ``tffix`` script starts it, printed
beside ``python -c pass`` (the interpreter's own start-up, which no change to tffix lowers).

Prints the median and the minimum wall time over N runs, and the median CPU time (user +
system) of the process, which a shared machine's other load inflates far less than the wall
time. Run it with the machine as quiet as you can.

By default the cases run with this interpreter from the repository root (the development
venv, whose own start-up carries the editable install's import hook and the test tools' .pth
files). ``--python PY`` runs them with another interpreter from a neutral folder instead: the
one of a venv made with the README's ``pip install .``, as a user's install starts.

Usage: python benchmarks/cli_speed.py [--runs N] [--python PY]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = (
    ROOT / "fixtures" / "snapshots" / "cuda-libs-not-found" / "pos-tf2161-runpath-regression.json"
)
ENTRY = "from tffix.cli import main; raise SystemExit(main())"


def _case(name: str, argv: list[str], env: dict[str, str] | None = None, goal: float | None = None):
    return name, argv, env or {}, goal


PY = sys.executable
"""Stands for the interpreter in CASES; ``--python`` replaces it."""


CASES = [
    _case("python -c pass", [PY, "-c", "pass"]),
    _case("tffix --version", [PY, "-c", ENTRY, "--version"], goal=50),
    _case("tffix --help", [PY, "-c", ENTRY, "--help"], goal=50),
    _case(
        "completion (tffix diagnose --sn<Tab>)",
        [PY, "-c", ENTRY],
        {
            "_ARGCOMPLETE": "1",
            "_ARGCOMPLETE_SHELL": "bash",
            "COMP_LINE": "tffix diagnose --sn",
            "COMP_POINT": "19",
            "_ARGCOMPLETE_STDOUT_FILENAME": os.devnull,
        },
        50,
    ),
    _case(
        "tffix diagnose --snapshot F",
        [PY, "-c", ENTRY, "diagnose", "--snapshot", str(SNAPSHOT)],
        goal=100,
    ),
    _case(
        "tffix diagnose --snapshot F --json",
        [PY, "-c", ENTRY, "diagnose", "--snapshot", str(SNAPSHOT), "--json"],
        goal=100,
    ),
    _case(
        "tffix diagnose --snapshot F (rules not cached)",
        [PY, "-c", ENTRY, "diagnose", "--snapshot", str(SNAPSHOT)],
        {"TFFIX_NO_CACHE": "1"},
    ),
]


def _time(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of one whole process."""
    full = {**os.environ, **env}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        argv, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, cwd=cwd
    )
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument(
        "--python", help="run the cases with this interpreter, from a neutral folder"
    )
    args = parser.parse_args()
    python = args.python or PY
    cwd = Path(tempfile.gettempdir()) if args.python else ROOT
    print(f"interpreter: {python}; working folder: {cwd}")
    print(f"{'case':40} {'wall median':>11} {'wall min':>9} {'CPU median':>11}  goal (on wall)")
    for name, argv, env, goal in CASES:
        argv = [python if a == PY else a for a in argv]
        _time(argv, env, cwd)  # warm the page cache
        runs = [_time(argv, env, cwd) for _ in range(args.runs)]
        wall = [w for w, _ in runs]
        cpu = [c for _, c in runs]
        med, low, cpu_med = statistics.median(wall), min(wall), statistics.median(cpu)
        verdict = "" if goal is None else f"≤ {goal} ms: {'met' if med <= goal else 'NOT met'}"
        print(f"{name:40} {med:11.1f} {low:9.1f} {cpu_med:11.1f}  {verdict}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(load average while measuring: {load:.2f}; runs per case: {args.runs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
