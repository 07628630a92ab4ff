"""Shared helpers for the diagnosis tests: the shipped rules and the fixture snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from tffix.document import parse_snapshot_text
from tffix.model import Snapshot
from tffix.ruleset import Ruleset, load_rules

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = ROOT / "fixtures" / "snapshots"
REALWORLD = SNAPSHOTS / "realworld"


def cause_fixtures() -> list[Path]:
    """Every fixtures/snapshots/<cause-id>/{pos,neg}-*.json."""
    return sorted(p for p in SNAPSHOTS.glob("*/*.json") if p.parent.name != "realworld")


def load(path: Path) -> Snapshot:
    return parse_snapshot_text(path.read_bytes(), name=path.name)


@pytest.fixture(scope="session")
def rules() -> Ruleset:
    return load_rules()
