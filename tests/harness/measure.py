"""Print how long the simulated machine takes to build: ``python -m tests.harness.measure``.

Figures only (no assertions): a cold build of the wheel index into a fresh cache folder, a warm
(cached) one, and the set-up time of a few scenarios (virtualenv + real pip) and of one
``tf_report()``. Pass scenario names as arguments to time others.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.harness import build, sim

DEFAULT = [
    "tf-not-installed",
    "cuda-libs-missing-tf218",
    "healthy-tf218-andcuda",
    "cudnn-version-mismatch-91-under-218",
    "framework-pin-conflict-torch251",
    "healthy-tf221-andcuda",
]


def main(names: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="tffix-sim-measure-") as tmp:
        os.environ["TFFIX_SIM_CACHE"] = tmp
        start = time.perf_counter()
        index = build.build_index()
        print(
            f"index, cold build:   {time.perf_counter() - start:6.2f} s  ({os.cpu_count()} cores)"
        )
        start = time.perf_counter()
        build.build_index()
        print(f"index, cached:       {time.perf_counter() - start:6.2f} s")
        setups = []
        for name in names or DEFAULT:
            start = time.perf_counter()
            env = sim.make_env(name, Path(tempfile.mkdtemp(dir=tmp)), index)
            setups.append(time.perf_counter() - start)
            start = time.perf_counter()
            env.tf_report()
            report = time.perf_counter() - start
            print(f"{name:40s} set-up {setups[-1]:5.2f} s   tf_report {report:5.2f} s")
        print(f"median set-up:       {statistics.median(setups):6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
