"""The tensorflow-metal a plan installs is the one Apple's release table pairs with the
installed TensorFlow (``rules/fixes.toml`` ``[fixes.metal_pairs]``), for each release line."""

from __future__ import annotations

import json
import re

import pytest

from tests.diagnosis.conftest import SNAPSHOTS
from tffix.diagnosis import diagnose
from tffix.document import parse_snapshot_text
from tffix.errors import RuleError
from tffix.resources import rules_dir
from tffix.ruleset import Ruleset, parse_rules, read_rule_files

# Apple's table (https://pypi.org/project/tensorflow-metal/), one row per release line
APPLE = [
    ("2.5.0", "0.1.2"),
    ("2.6.5", "0.2.0"),
    ("2.7.4", "0.3.0"),
    ("2.8.4", "0.4.0"),
    ("2.9.3", "0.5.0"),
    ("2.10.1", "0.6.0"),
    ("2.11.1", "0.7.0"),
    ("2.12.1", "0.8.0"),
    ("2.13.1", "1.0.0"),
    ("2.14.1", "1.1.0"),
    ("2.15.1", "1.1.0"),
    ("2.16.2", "1.1.0"),
    ("2.17.1", "1.1.0"),
    ("2.18.1", "1.2.0"),
    ("2.20.0", "1.2.0"),
]


def _metal_steps(rules: Ruleset, fixture: str, packages: dict[str, str]) -> list[str]:
    doc = json.loads((SNAPSHOTS / fixture).read_text())
    doc["packages"] = packages
    doc["tensorflow"]["version"] = packages["tensorflow"]  # what the import reported
    snap = parse_snapshot_text(json.dumps(doc).encode(), name=fixture)
    plan = diagnose(snap, rules).plan
    return [r for s in plan for r in s.requirements if r.startswith("tensorflow-metal")]


@pytest.mark.parametrize(("tf", "metal"), APPLE)
def test_the_pin_follows_the_release_table(rules: Ruleset, tf: str, metal: str) -> None:
    assert rules.fixes.metal_for(tf) == f"tensorflow-metal=={metal}"


def test_before_the_plugin_and_unknown_releases(rules: Ruleset) -> None:
    assert rules.fixes.metal_for("2.4.1") == ""
    assert rules.fixes.metal_for(None) == rules.fixes.metal == "tensorflow-metal==1.2.0"


@pytest.mark.parametrize(("tf", "metal"), APPLE)
def test_macos_without_the_plugin_gets_the_paired_one(rules: Ruleset, tf: str, metal: str) -> None:
    steps = _metal_steps(
        rules, "macos-needs-metal/pos-arm64-without-metal.json", {"tensorflow": tf}
    )
    assert steps == [f"tensorflow-metal=={metal}"]


@pytest.mark.parametrize(("tf", "metal"), [("2.16.2", "1.1.0"), ("2.18.0", "1.2.0")])
def test_a_plugin_that_does_not_load_is_replaced_by_the_paired_one(
    rules: Ruleset, tf: str, metal: str
) -> None:
    wrong = "1.2.0" if metal == "1.1.0" else "1.1.0"
    steps = _metal_steps(
        rules,
        "metal-plugin-incompatible/pos-symbol-not-found-at-import.json",
        {"tensorflow": tf, "tensorflow-metal": wrong},
    )
    assert steps[:1] == [f"tensorflow-metal=={metal}"]


def test_the_newest_pin_must_be_the_last_pair() -> None:
    files = read_rule_files(rules_dir())
    text = files["rules/fixes.toml"].decode("utf-8")
    files["rules/fixes.toml"] = text.replace('"2.18" = "1.2.0"\n', "").encode("utf-8")
    with pytest.raises(RuleError, match=re.escape("fixes.metal")):
        parse_rules(files)
