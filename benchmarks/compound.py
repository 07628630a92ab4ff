"""Compound scenarios on the simulated machine: how many a repair fixes, leaves, or loses.

    python benchmarks/compound.py [--sample N] [--workers N] [--only NAME…] [--keep DIR]

Builds every combination of ``tests.harness.compound`` (every pair of venv-fixable causes of
the scenario catalog, one scenario per cause, and each cause with a healthy look-alike), runs
``tffix --yes`` (``--unsafe`` added only when an unsafe step was held back), a second
``--yes``, and ``tffix undo`` until nothing is left, and prints the counts:

- tried: combinations built (``unbuildable``: pip could not make the combination at all);
- fixed: the GPU works after the first run (listed, an op, a cuDNN op, an XLA op);
- left: the run exits 3 or 4 and says why (the reasons are listed);
- lost: a TensorFlow installed at the start is gone at the end (must be 0);
- not restored: ``tffix undo`` did not bring back ``pip freeze --all`` and the activate
  scripts byte for byte (``undo stack`` when only because more than one run was undone);
- violations: any other broken invariant (a second run that changed something, an exit 1).

Exits 1 when anything was lost or a violation was found. Takes about 20 s per combination
per worker on the simulated machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import build, compound  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=0, help="a fixed sample of N (0: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=[], help="combination names to run")
    parser.add_argument("--keep", type=Path, help="folder for the environments (kept on failure)")
    args = parser.parse_args()
    specs = compound.combinations()
    if args.only:
        specs = [s for s in specs if s["name"] in args.only]
    elif args.sample:
        specs = compound.sample(specs, args.sample)
    base = args.keep or Path(tempfile.mkdtemp(prefix="tffix-compound-"))
    index = build.build_index()
    start = time.monotonic()

    def progress(v: compound.Verdict) -> None:
        flag = "ok " if not v.violations else "BAD"
        print(f"  {flag} {v.outcome:<11} {v.seconds:5.1f}s  {v.name}", flush=True)
        for why in v.violations:
            print(f"        - {why}", flush=True)

    verdicts = compound.run_all(specs, base, index, workers=args.workers, progress=progress)
    counts = Counter(v.outcome for v in verdicts)
    not_restored = [v for v in verdicts if v.undo_restored is False]
    stack_only = [v for v in not_restored if v.runs_changed > 1]
    violations = [v for v in verdicts if v.violations and v not in not_restored]
    built = len(verdicts) - counts["unbuildable"]
    print()
    print(f"combinations: {len(verdicts)} ({built} built, {counts['unbuildable']} unbuildable)")
    print(f"tried: {built}")
    print(f"fixed: {counts['fixed']}")
    print(f"left with the reason: {counts['left']}")
    print(f"lost: {counts['lost']}")
    print(f"not restored by undo: {len(not_restored)} (undo stack: {len(stack_only)})")
    print(f"other violations: {len(violations)}")
    print(f"wall: {time.monotonic() - start:.0f}s with {args.workers} workers")
    left = [v for v in verdicts if v.outcome == "left"]
    if left:
        print("left:")
        for v in left:
            print(f"  {v.name}: {v.reason}")
    for v in verdicts:
        if v.outcome == "unbuildable":
            print(f"unbuildable: {v.name}: {v.reason}")
    return 1 if counts["lost"] or violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
