"""Requirement strings in plans: exact, and never satisfiable by the build being replaced."""

from __future__ import annotations

import json

import pytest

from tests.diagnosis.conftest import SNAPSHOTS
from tffix.diagnosis import diagnose
from tffix.document import parse_snapshot
from tffix.ruleset import Ruleset


def _requirements(doc: dict[str, object], rules: Ruleset) -> list[str]:
    diag = diagnose(parse_snapshot(doc), rules)
    return [r for step in diag.plan for r in step.requirements]


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        ("2.18.1+cpu", "tensorflow[and-cuda]===2.18.1"),  # ==2.18.1 would match 2.18.1+cpu
        ("2.18.1", "tensorflow[and-cuda]==2.18.1"),
    ],
)
def test_a_local_cpu_build_is_replaced_by_arbitrary_equality(
    installed: str, expected: str, rules: Ruleset
) -> None:
    doc = json.loads((SNAPSHOTS / "tf-cpu-only-build" / "pos-custom-cpu-build.json").read_text())
    doc["packages"]["tensorflow"] = installed
    doc["tensorflow"]["version"] = installed
    assert expected in _requirements(doc, rules)
