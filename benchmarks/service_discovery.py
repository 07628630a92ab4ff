#!/usr/bin/env python3
"""What finding cron jobs and systemd units costs a snapshot, on a machine root with many.

Builds a throwaway venv and a machine root (``TFFIX_SYSROOT`` layout) holding N system
units, N user units (each with a drop-in and an ``EnvironmentFile=``), a user crontab of N
lines and ``/etc/cron.d`` files, a tenth of them running the venv's python, then times
``tffix.probes.services.entry_points`` (reading and modelling only; the GPU check per entry
point is the TensorFlow child, timed by ``snapshot_speed.py``) and prints the median, the
slowest run and how many entry points were found.

Usage: python benchmarks/service_discovery.py [--units N] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tffix.probes import services  # noqa: E402


def build(folder: Path, units: int) -> tuple[Path, Path, dict[str, str]]:
    prefix = folder / "home" / "proj" / ".venv"
    venv.EnvBuilder(with_pip=False).create(prefix)
    python = prefix / "bin" / "python"
    root, home = folder / "root", folder / "home"
    user = services.account(None, {}).user
    system = root / "etc" / "systemd" / "system"
    mine = home / ".config" / "systemd" / "user"
    for folder_ in (system, mine, root / "etc" / "cron.d"):
        folder_.mkdir(parents=True, exist_ok=True)
    (root / "etc" / "train.env").write_text("XLA_FLAGS=--x\nCUDA_VISIBLE_DEVICES=0\n")
    for i in range(units):
        exe = python if i % 10 == 0 else Path("/usr/bin/python3")
        body = (
            f"[Unit]\nDescription=unit {i}\n[Service]\nEnvironment=A={i} B=two\n"
            f"EnvironmentFile=-/etc/train.env\nExecStart={exe} job{i}.py\n"
        )
        for where in (system, mine):
            (where / f"u{i}.service").write_text(body)
            drop = where / f"u{i}.service.d"
            drop.mkdir(exist_ok=True)
            (drop / "gpu.conf").write_text("[Service]\nEnvironment=CUDA_VISIBLE_DEVICES=-1\n")
        exe_line = f"{i % 60} * * * * root {exe} job{i}.py\n"
        (root / "etc" / "cron.d" / f"job{i}").write_text(f"X{i}=1\n{exe_line}")
    spool = root / "var" / "spool" / "cron" / "crontabs" / user
    spool.parent.mkdir(parents=True)
    lines = [
        f"V{i}=x\n{i % 60} * * * * {python if i % 10 == 0 else 'true'} a\n" for i in range(units)
    ]
    spool.write_text("".join(lines))
    environ = {"HOME": str(home), "USER": user, "PATH": "/usr/bin:/bin"}
    return root, prefix, environ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tffix-svc-") as tmp:
        root, prefix, environ = build(Path(tmp), args.units)
        python = prefix / "bin" / "python"
        found = services.entry_points(root, python, prefix, environ)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            services.entry_points(root, python, prefix, environ)
            times.append(time.perf_counter() - start)
        kinds = {k: sum(1 for p in found if p.kind == k) for k in ("cron", "systemd")}
        print(
            f"{args.units} system units, {args.units} user units (with drop-ins), "
            f"{args.units} cron.d files, a {2 * args.units}-line crontab: "
            f"{kinds['cron']} cron jobs and {kinds['systemd']} units run the venv"
        )
        print(
            f"discovery: median {statistics.median(times) * 1000:.1f} ms, "
            f"slowest {max(times) * 1000:.1f} ms over {args.runs} runs"
        )


if __name__ == "__main__":
    main()
