#!/usr/bin/env python3
"""How often tffix names the right cause on real reports it was not written against.

For every corpus folder (``../shared/realworld`` and ``fixtures/realworld`` by default), each
``<case>.json`` snapshot is diagnosed by a whole ``tffix diagnose --snapshot FILE --json``
process, exactly as a user would run it, and compared with ``expected.json`` (the causes the
report's own thread confirmed, decided before tffix saw the case). Prints, per corpus and in
total, per expected cause and per era:

* first: the first finding is one of the expected causes;
* top3: one of the expected causes is among the first three findings;
* silent: no error finding at all, where the thread found a problem ("No problem found");

then every miss, with what tffix said instead (not for ``--split holdout``: its cases are
read only through the tables). The figures, not an assertion, are the
result: the goal is >= 95 % first and 0 silent.

``--split dev|holdout`` keeps one half of ``fixtures/realworld`` (by a hash of the case id,
fixed once): rules are developed looking at the dev half only, and the holdout half, never
read while writing rules, says how well they carry over to reports nobody tuned for.

Usage: python benchmarks/realworld_accuracy.py [CORPUS_DIR ...] [--split S] [--jobs N] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [ROOT.parent / "shared" / "realworld", ROOT / "fixtures" / "realworld"]


NO_PROBLEM = "healthy"
"""The cause id a case expects when its thread found the machine working."""


@dataclass(frozen=True)
class Outcome:
    corpus: str
    case: str
    expected: tuple[str, ...]
    era: str
    said: tuple[str, ...]  # finding ids, in tffix's order
    errors: tuple[str, ...]  # the error-level ones
    failure: str = ""  # tffix did not produce a diagnosis (exit code and message)

    @property
    def first(self) -> bool:
        return bool(self.said) and self.said[0] in self.expected

    @property
    def top3(self) -> bool:
        return any(s in self.expected for s in self.said[:3])

    @property
    def silent(self) -> bool:
        # A thread that found nothing wrong ("healthy" expected) cannot be answered silently.
        return not self.errors and NO_PROBLEM not in self.expected


def diagnose(corpus: Path, case: str, entry: dict[str, object]) -> Outcome:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tffix",
            "diagnose",
            "--snapshot",
            str(corpus / f"{case}.json"),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    expected = tuple(str(e) for e in entry.get("expected", []))  # type: ignore[union-attr]
    era = str(entry.get("era") or "unknown")
    label = f"{corpus.parent.name}/{corpus.name}"
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        first_line = (proc.stderr.strip().splitlines() or [""])[-1]
        why = f"exit {proc.returncode}: {first_line}"
        return Outcome(label, case, expected, era, (), (), why)
    findings = doc.get("findings", [])
    said = tuple(f["id"] for f in findings)
    errors = tuple(f["id"] for f in findings if f.get("severity") == "error")
    return Outcome(label, case, expected, era, said, errors)


def split_of(case: str) -> str:
    """``dev`` or ``holdout``: half of the cases each, fixed by the case id alone."""
    return "holdout" if hashlib.sha256(case.encode()).digest()[0] % 2 else "dev"


def rate(outcomes: list[Outcome]) -> str:
    n = len(outcomes)
    if not n:
        return "no cases"
    first = sum(o.first for o in outcomes)
    top3 = sum(o.top3 for o in outcomes)
    silent = sum(o.silent for o in outcomes)
    return (
        f"{n:4d} cases  first {first:4d} ({100 * first / n:5.1f} %)  "
        f"top3 {top3:4d} ({100 * top3 / n:5.1f} %)  silent {silent:3d}"
    )


def table(title: str, groups: dict[str, list[Outcome]]) -> Iterable[str]:
    yield f"\n{title}"
    for key in sorted(groups, key=lambda k: (-len(groups[k]), k)):
        yield f"  {key:34} {rate(groups[key])}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="*", type=Path, default=DEFAULT)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="one JSON object per case")
    parser.add_argument(
        "--split", choices=["dev", "holdout", "all"], default="all", help="which half to run"
    )
    opts = parser.parse_args()

    work: list[tuple[Path, str, dict[str, object]]] = []
    for corpus in opts.corpora:
        expected_file = corpus / "expected.json"
        if not expected_file.is_file():
            print(f"skipped {corpus}: no expected.json", file=sys.stderr)
            continue
        expected = json.loads(expected_file.read_text(encoding="utf-8"))
        work += [
            (corpus, case, expected[case])
            for case in sorted(expected)
            if opts.split == "all" or split_of(case) == opts.split
        ]
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        outcomes = list(pool.map(lambda w: diagnose(*w), work))

    if opts.json:
        for o in outcomes:
            print(
                json.dumps(
                    {
                        "corpus": o.corpus,
                        "case": o.case,
                        "expected": o.expected,
                        "era": o.era,
                        "said": o.said,
                        "first": o.first,
                        "top3": o.top3,
                        "silent": o.silent,
                        "failure": o.failure,
                    }
                )
            )
        return 0

    by_corpus: dict[str, list[Outcome]] = defaultdict(list)
    by_cause: dict[str, list[Outcome]] = defaultdict(list)
    by_era: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_corpus[o.corpus].append(o)
        by_cause[o.expected[0] if o.expected else "(none)"].append(o)
        by_era[o.era].append(o)
    print(f"all                                  {rate(outcomes)}")
    for line in [
        *table("per corpus", by_corpus),
        *table("per expected cause", by_cause),
        *table("per era", by_era),
    ]:
        print(line)
    misses = [o for o in outcomes if not o.first]
    if misses and opts.split == "holdout":
        # Listing them would put the holdout's cases in front of whoever writes the rules.
        print(f"\nmisses: {len(misses)} (not listed for the holdout half: read it by the tables)")
    elif misses:
        print(f"\nmisses ({len(misses)}): case: expected -> what tffix ranked first")
        for o in misses:
            said = o.failure or (", ".join(o.said[:3]) if o.said else "(nothing)")
            flag = "  [silent]" if o.silent and not o.failure else ""
            print(f"  {o.corpus}/{o.case}: {'|'.join(o.expected)} -> {said}{flag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
