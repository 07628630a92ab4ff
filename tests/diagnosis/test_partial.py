"""Partial and odd snapshots: unknown is never false, and nothing crashes."""

from __future__ import annotations

import json
import random

from tests.diagnosis.conftest import SNAPSHOTS
from tffix.diagnosis import diagnose, exit_code
from tffix.document import parse_snapshot
from tffix.errors import ExitCode, InputError
from tffix.report import render_json, render_text
from tffix.ruleset import Ruleset


def test_an_empty_snapshot_finds_nothing(rules: Ruleset):
    snap = parse_snapshot({"schema": "tffix.snapshot/1"})
    diag = diagnose(snap, rules)
    assert diag.findings == () and diag.plan == () and diag.gpu_visible is None
    assert exit_code(diag) == ExitCode.OK
    text = render_text(diag, snap, rules=rules)
    assert "[??] NVIDIA driver: unknown" in text
    assert "whether TensorFlow sees the GPU is unknown" in text


def test_a_pasted_pip_list_alone_is_not_a_missing_library(rules: Ruleset):
    snap = parse_snapshot({"schema": "tffix.snapshot/1", "packages": {"tensorflow": "2.18.1"}})
    assert diagnose(snap, rules).findings == ()


WEIRD = ["", "abc", "2", "1.2.3.4.5", "-1", "9999", "12.0", "Ωmega", "sm_", "compute_", "64_"]


def _mutate(obj, rng: random.Random) -> None:
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    for key, value in list(items):
        if isinstance(value, (dict, list)):
            _mutate(value, rng)
        elif isinstance(value, str) and rng.random() < 0.15:
            obj[key] = rng.choice(WEIRD)


def test_mutated_fixtures_never_crash(rules: Ruleset):
    docs = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(SNAPSHOTS.rglob("*.json"))
        if p.name != "expected.json"
    ]
    rng = random.Random(1)
    diagnosed = 0
    for _ in range(400):
        doc = json.loads(json.dumps(rng.choice(docs)))
        for key in list(doc):
            if key != "schema" and rng.random() < 0.3:
                doc.pop(key)
        _mutate(doc, rng)
        try:
            snap = parse_snapshot(doc)
        except InputError:
            continue
        diag = diagnose(snap, rules)
        render_text(diag, snap, rules=rules, verbose=2, show_unsafe=True)
        render_json(diag)
        diagnosed += 1
    assert diagnosed > 200
