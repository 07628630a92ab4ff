"""Repair wall time on the simulated machine with pip and with uv, and tffix's own overhead.

    python benchmarks/repair_speed.py [SCENARIO] [--runs N]

For one scenario (default ``cuda-libs-missing-tf218``: TensorFlow without its CUDA wheels,
repaired by ``pip install tensorflow[and-cuda]==2.18.1``) it builds a fresh simulated machine
per run, runs ``tffix --yes --json`` once with ``--no-uv`` and once with uv on PATH, and
prints the medians: wall time, the package manager's time (the "done in" lines tffix prints
after each pip/uv command), and tffix's own time beside it: the first diagnosis (snapshot in
fresh children + rules), the re-verification (fresh snapshot + diagnosis + op checks after
each step), both from the outcome's ``timings``, and the rest (interpreter start-up and
imports, the state the journal records, rendering). Needs uv on PATH or in the dev venv
(``pip install -e '.[test]'``); without it only pip is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import build, sim  # noqa: E402

DONE = re.compile(r"^\s+done in ([0-9.]+)s$", re.M)


def one_run(name: str, index: Path, uv: str | None) -> dict[str, float]:
    env = sim.make_env(name, Path(tempfile.mkdtemp(prefix=f"bench-{name}-")), index)
    run_env = {**env.env, **sim.pip_env(index)}
    args = ["--yes", "--json"]
    if uv:
        run_env["PATH"] = f"{Path(uv).parent}{os.pathsep}{run_env['PATH']}"
        run_env["PIP_CONFIG_FILE"] = os.devnull  # uv is skipped when a pip.conf applies
    else:
        args.append("--no-uv")
    start = time.monotonic()
    done = env.run(
        [sys.executable, "-m", "tffix", *args, "--venv", str(env.venv)], env=run_env, timeout=900
    )
    wall = time.monotonic() - start
    doc = json.loads(done.stdout)
    if doc.get("exit_code") != 0:
        raise SystemExit(f"{name}: repair did not end healthy:\n{done.stdout}\n{done.stderr}")
    manager = sum(float(x) for x in DONE.findall(done.stderr))
    timings = doc.get("timings", {})
    verify = float(timings.get("observe", 0)) + float(timings.get("verify", 0))
    first = float(timings.get("first_diagnosis", 0))
    shutil.rmtree(env.root, ignore_errors=True)
    other = wall - manager - verify - first
    return {"wall": wall, "manager": manager, "first": first, "verify": verify, "other": other}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="cuda-libs-missing-tf218")
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()
    index = build.build_index()
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    tools = [("pip", None)] + ([("uv", uv)] if uv else [])
    print(f"scenario {opts.scenario}, {opts.runs} runs each, medians in seconds")
    print(f"{'tool':<5} {'wall':>7} {'pip/uv':>7} {'diagnose':>9} {'re-verify':>10} {'other':>7}")
    for label, path in tools:
        runs = [one_run(opts.scenario, index, path) for _ in range(opts.runs)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"{label:<5} {med['wall']:7.2f} {med['manager']:7.2f} {med['first']:9.2f} "
            f"{med['verify']:10.2f} {med['other']:7.2f}"
        )
    if not uv:
        print("uv not found: install it (pip install uv) to measure the uv path")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
