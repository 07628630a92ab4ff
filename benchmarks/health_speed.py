#!/usr/bin/env python3
"""How long the node health check takes against the full diagnosis, on the same venv.

Goal: ``tffix-health`` under 0.3 s of wall time, so that a Slurm prolog or an NHC run can
afford it on every job start. Prints the median and the fastest of N runs of whole processes:

* ``tffix-health``: the fast check behind its own small parser (what a prolog calls);
* ``tffix health``: the same check through the full ``tffix`` command line;
* ``tffix --dry-run``: the full diagnosis (TensorFlow imported in a child, and everything else);

with the CPU time each process and its children used (less sensitive to a busy machine than
the wall time), and, in process, the health check's phases (target, probes, checks) to show
where the time goes. By default each scenario is built on the simulated GPU machine
(tests/harness), whose fake TensorFlow imports in milliseconds: a real TensorFlow takes
seconds to import, so on a real venv (``--venv DIR``) the full diagnosis is much slower and
the check is not.

Usage: python benchmarks/health_speed.py [SCENARIO ...] [--venv DIR] [--runs N]
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
sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent
DEFAULT = ["healthy-tf218-andcuda", "cuda-libs-missing-tf218", "driver-too-old-470"]
GOAL = 0.3


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(
    argv: list[str], env: dict[str, str], cwd: Path, runs: int
) -> tuple[float, float, float, int]:
    """(median wall, fastest wall, median CPU of the process and its children, exit code).

    The CPU time is what the check costs the node; the wall time also holds the waits for
    other processes on a busy machine.
    """
    times, cpu, code = [], [], 0
    for _ in range(runs):
        before = _children_cpu()
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - before)
        code = done.returncode
    return statistics.median(times), min(times), statistics.median(cpu), code


def phases(venv: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    """Median seconds of each phase of the check, in this process (imports already done)."""
    from tffix.collect import collect_snapshot
    from tffix.graph import build_graph
    from tffix.health import judge
    from tffix.probes.target import resolve_target
    from tffix.ruleset import load_rules

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        out: dict[str, list[float]] = {"target": [], "probes": [], "checks": []}
        for _ in range(runs):
            t0 = time.perf_counter()
            target = resolve_target(venv=str(venv), environ=env)
            t1 = time.perf_counter()
            snap = collect_snapshot(target, environ=env, with_tensorflow=False)
            t2 = time.perf_counter()
            judge(build_graph(snap, load_rules()).findings)
            t3 = time.perf_counter()
            out["target"].append(t1 - t0)
            out["probes"].append(t2 - t1)
            out["checks"].append(t3 - t2)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {k: statistics.median(v) for k, v in out.items()}


def measure(name: str, venv: Path, env: dict[str, str], cwd: Path, runs: int) -> float:
    health = [str(BIN / "tffix-health"), "--venv", str(venv)]
    if not (BIN / "tffix-health").exists():
        health = [sys.executable, "-m", "tffix.commands.health", "--venv", str(venv)]
    rows = [
        ("tffix-health", health),
        ("tffix health", [sys.executable, "-m", "tffix", "health", "--venv", str(venv)]),
        ("tffix --dry-run", [sys.executable, "-m", "tffix", "--dry-run", "--no-scan",
                             "--venv", str(venv)]),
    ]  # fmt: skip
    print(f"\n{name}")
    fast = 0.0
    for label, argv in rows:
        median, best, cpu, code = timed(argv, env, cwd, runs)
        fast = fast or median
        print(
            f"  {label:18} median {median:6.3f} s   fastest {best:6.3f} s   "
            f"cpu {cpu:6.3f} s   exit {code}"
        )
    parts = phases(venv, env, max(3, runs // 2))
    print(
        "  health phases (in process): "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in parts.items())
    )
    return fast


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help=f"simulated scenarios (default: {DEFAULT})")
    parser.add_argument("--venv", type=Path, help="measure this venv instead, on this machine")
    parser.add_argument("--runs", type=int, default=11)
    opts = parser.parse_args()
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
        f"python {sys.version.split()[0]}"
    )
    medians = []
    if opts.venv:
        env = dict(os.environ)
        medians.append(measure(str(opts.venv), opts.venv, env, Path.cwd(), opts.runs))
    else:
        from tests.harness import build, sim

        index = build.build_index()
        with tempfile.TemporaryDirectory(prefix="tffix-health-bench-") as tmp:
            for name in opts.scenarios or DEFAULT:
                env = sim.make_env(name, Path(tmp) / name, index)
                run_env = {**env.env, **sim.pip_env(index), "TFFIX_SYSROOT": str(env.root)}
                medians.append(measure(name, env.venv, run_env, env.root / "home", opts.runs))
    worst = max(medians)
    verdict = "met" if worst < GOAL else "NOT met"
    print(f"\ntffix-health, slowest median: {worst:.3f} s (goal < {GOAL} s: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
