#!/usr/bin/env python3
"""Print the size and coverage of the message catalogue (rules/messages.toml).

Per source file: how many catalogued messages it prints and in which of the source trees read
(the release range). Per tree: how many messages were read there. Per cause: how many messages
point to it. Every entry's provenance is its `seen` list in the catalogue itself.

Usage: python scripts/catalogue_stats.py
"""

from __future__ import annotations

import collections
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    doc = tomllib.loads((ROOT / "rules" / "messages.toml").read_text(encoding="utf-8"))
    trees = list(doc["message_source"])
    messages = doc["message"]
    by_file: dict[str, set[str]] = collections.defaultdict(set)
    trees_of_file: dict[str, set[str]] = collections.defaultdict(set)
    by_tree: collections.Counter[str] = collections.Counter()
    by_cause: collections.Counter[str] = collections.Counter()
    for msg in messages:
        by_cause[msg["cause"] or "(a fact)"] += 1
        for seen in msg["seen"]:
            # the same file moved between trees (stream_executor -> compiler/xla -> third_party)
            name = seen["file"].rsplit("/", 1)[-1]
            by_file[name].add(msg["id"])
            trees_of_file[name].add(seen["tree"])
        for tree in msg["releases"]:
            by_tree[tree] += 1
    print(f"{len(messages)} messages from {len(trees)} source trees ({', '.join(trees)})\n")
    print(f"{'source file':44} {'messages':>8}  trees (releases read)")
    for name in sorted(by_file, key=lambda n: (-len(by_file[n]), n)):
        span = [t for t in trees if t in trees_of_file[name]]
        print(f"  {name:42} {len(by_file[name]):8}  {span[0]} .. {span[-1]} ({len(span)})")
    print(f"\n{'tree':44} {'messages printed there':>8}")
    for tree in trees:
        print(f"  {tree:42} {by_tree[tree]:8}")
    print(f"\n{'cause':44} {'messages':>8}")
    for cause, n in sorted(by_cause.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {cause:42} {n:8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
