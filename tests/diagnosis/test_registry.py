"""The cause table is complete: every piece of every cause is there, and nothing is there twice.

A cause is its rules entry (``rules/*.toml``), its ``Cause`` value in a family module of
``tffix.causes`` (report section and fix), its detector, and its fixtures. Forgetting one of
them fails here, not silently in a user's plan.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.conftest import FIXTURES
from tests.diagnosis.conftest import SNAPSHOTS, cause_fixtures, load
from tffix.causes import CAUSES, DETECTORS, FAMILIES, Section
from tffix.causes.base import Detection
from tffix.facts import Facts
from tffix.logparse import scan_log
from tffix.model import FixSide, Severity
from tffix.report import CHECKS
from tffix.ruleset import Ruleset
from tffix.scan import load_scan_rules

SNAPSHOT_CAUSES = sorted(c.id for family in FAMILIES if family.detectors for c in family.causes)
"""Causes found in a snapshot (families with detectors): each has fixtures/snapshots/<id>/."""
CODE_CAUSES = sorted(load_scan_rules().causes.keys() - set(SNAPSHOT_CAUSES))
"""Causes found only in a project's code by tffix.scan: their fixtures are fixtures/scan/."""


def test_no_cause_is_declared_twice() -> None:
    ids = Counter(c.id for family in FAMILIES for c in family.causes)
    assert [i for i, n in ids.items() if n > 1] == []
    assert len(CAUSES) == sum(ids.values())


def test_every_rules_entry_has_a_cause_and_every_cause_a_rules_entry(rules: Ruleset) -> None:
    assert sorted(rules.causes.keys() - CAUSES.keys()) == [], "rules entry without a Cause"
    assert sorted(CAUSES.keys() - rules.causes.keys()) == [], "Cause without a rules entry"


def test_every_venv_cause_that_is_a_problem_has_a_fix(rules: Ruleset) -> None:
    """A venv-fixable error or warning without a fix would silently get no plan step (info
    findings are never planned)."""
    missing = [
        cid
        for cid, meta in rules.causes.items()
        if meta.fix == FixSide.VENV and meta.severity != Severity.INFO and CAUSES[cid].fix is None
    ]
    assert missing == []


def test_every_section_is_on_the_report_once_and_shows_a_cause() -> None:
    sections = [spec.section for spec in CHECKS]
    assert sorted(sections) == sorted(Section), "a Section without a report line, or twice"
    for spec in CHECKS:
        assert spec.causes, f"report line {spec.label!r} shows no cause"
    for cause in CAUSES.values():
        assert cause.section is None or cause.section in sections, cause.id


def test_snapshot_causes_have_a_section_and_code_causes_do_not() -> None:
    for cid in SNAPSHOT_CAUSES:
        assert CAUSES[cid].section is not None, cid
    for cid in CODE_CAUSES:
        assert CAUSES[cid].section is None, cid


@pytest.mark.parametrize("cause", SNAPSHOT_CAUSES)
def test_every_snapshot_cause_has_two_positives_and_a_near_miss(cause: str) -> None:
    folder = SNAPSHOTS / cause
    assert len(list(folder.glob("pos-*.json"))) >= 2, f"{cause}: fewer than 2 pos-*.json"
    assert list(folder.glob("neg-*.json")), f"{cause}: no neg-*.json near miss"


def test_every_fixture_folder_names_a_registered_cause() -> None:
    folders = {p.parent.name for p in cause_fixtures()}
    assert sorted(folders - set(SNAPSHOT_CAUSES)) == []


def _scan_expected() -> Counter[str]:
    seen: Counter[str] = Counter()
    for path in sorted((FIXTURES / "scan").glob("*/expected.json")):
        for cid, *_rest in json.loads(path.read_text(encoding="utf-8"))["findings"]:
            seen[cid] += 1
    return seen


@pytest.mark.parametrize("cause", CODE_CAUSES)
def test_every_code_cause_has_two_positives_in_the_scan_fixtures(cause: str) -> None:
    """Near misses of code causes are every other line of the fixture projects: the scan
    fixture test compares the whole set of findings."""
    assert _scan_expected()[cause] >= 2, cause


def test_detectors_name_only_registered_causes(rules: Ruleset) -> None:
    """Over every fixture snapshot, each detector returns detections of registered ids."""
    emitted: set[str] = set()
    for path in [*cause_fixtures(), SNAPSHOTS / "healthy.json"]:
        snap = load(path)
        facts = Facts(snap, rules, scan_log(snap.log, rules))
        for detect in DETECTORS:
            for found in detect(facts):
                assert isinstance(found, Detection)
                assert found.id in CAUSES, (detect.__name__, found.id)
                emitted.add(found.id)
    assert sorted(set(SNAPSHOT_CAUSES) - emitted) == [], "a cause no fixture makes fire"
