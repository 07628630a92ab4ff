"""rules/README.md is the cause reference users read: it must be exactly what the generator
writes from the rules the diagnosis loads, and name every id the diagnosis can report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tffix.ruleset import load_rules

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_cause_reference.py"
SPEC = ROOT.parent / "shared" / "spec" / "causes.md"


def test_the_committed_reference_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_every_loaded_cause_is_documented() -> None:
    text = (ROOT / "rules" / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, re.M))
    assert documented == set(load_rules().causes)


def test_the_published_ids_keep_their_place() -> None:
    if not SPEC.exists():
        return  # a checkout without the specification beside it: nothing to compare with
    row = re.compile(r"^\| `([a-z0-9-]+)` \|", re.M)
    published = set(row.findall(SPEC.read_text(encoding="utf-8")))
    documented = set(row.findall((ROOT / "rules" / "README.md").read_text(encoding="utf-8")))
    assert published - {"healthy"} <= documented
