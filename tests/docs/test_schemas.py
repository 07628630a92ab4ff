"""The JSON Schemas shipped in tffix/schemas/ describe what tffix really writes: every fixture
snapshot written back, a live `tffix snapshot`, and the diagnosis of every fixture validate,
and a field tffix starts to write without a schema change fails here (additionalProperties
is false in tffix's own output; readers still accept any subset)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.diagnosis.conftest import REALWORLD, SNAPSHOTS, load
from tffix.cli import main
from tffix.diagnosis import diagnose
from tffix.document import diagnosis_to_dict, snapshot_to_json
from tffix.ruleset import load_rules
from tffix.schemas import schema_path

FIXTURES = sorted(SNAPSHOTS.rglob("*.json")) + sorted(REALWORLD.glob("*.json"))
FIXTURES = [p for p in FIXTURES if p.name != "expected.json"]


def _validator(name: str) -> jsonschema.Draft7Validator:
    schema = json.loads(schema_path(name).read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.Draft7Validator, doc: object) -> list[str]:
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_fixture_snapshots_written_back_validate() -> None:
    validator = _validator("snapshot")
    bad = {p.name: _errors(validator, json.loads(snapshot_to_json(load(p)))) for p in FIXTURES}
    assert not {k: v for k, v in bad.items() if v}


def test_diagnosis_of_every_fixture_validates() -> None:
    validator, rules = _validator("diagnosis"), load_rules()
    bad = {
        p.name: _errors(validator, diagnosis_to_dict(diagnose(load(p), rules))) for p in FIXTURES
    }
    assert not {k: v for k, v in bad.items() if v}


def test_a_live_snapshot_validates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshot", "--python", sys.executable, "--tf-timeout", "30"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert not _errors(_validator("snapshot"), doc)


def test_an_unknown_field_is_caught() -> None:
    doc = json.loads(snapshot_to_json(load(Path(SNAPSHOTS / "healthy.json"))))
    doc["platform"]["new_field"] = 1
    assert _errors(_validator("snapshot"), doc)
