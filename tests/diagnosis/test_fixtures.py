"""Every cause fires on its positive fixtures and stays silent on its near misses; the healthy
fixture is healthy; each real-world report gets its expected first finding."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.diagnosis.conftest import REALWORLD, SNAPSHOTS, cause_fixtures, load
from tffix.causes import FAMILIES
from tffix.diagnosis import diagnose, exit_code
from tffix.errors import ExitCode
from tffix.model import Safety, Severity, StepKind
from tffix.ruleset import Ruleset

SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "causes.md"
CAUSE_IDS = [
    "tf-not-installed",
    "tf-gpu-stub",
    "tf-cpu-only-package",
    "tf-cpu-only-build",
    "tf-import-error",
    "tf-multiple-distributions",
    "cuda-libs-missing",
    "cuda-libs-not-found",
    "cuda-version-mismatch",
    "cudnn-version-mismatch",
    "ld-library-path-shadowing",
    "framework-pin-conflict",
    "xla-cuda-tools-missing",
    "cuda-visible-devices-masked",
    "no-nvidia-gpu",
    "driver-not-loaded",
    "driver-too-old",
    "driver-library-mismatch",
    "nvidia-uvm-unavailable",
    "container-no-gpu",
    "container-toolkit-outdated",
    "wsl-libcuda-not-found",
    "gpu-arch-unsupported",
    "windows-native-unsupported",
    "macos-needs-metal",
    "platform-no-cuda-wheels",
    "python-version-unsupported",
    "and-cuda-unresolvable",
    "wrong-interpreter",
    "windows-dll-search-path",
]
"""The ids of causes.md (the contract), kept here for a checkout without ../shared."""
SNAPSHOT_CAUSES = sorted(c.id for f in FAMILIES if f.detectors for c in f.causes)
"""Every cause a snapshot can show, from the cause table (tffix.causes)."""


def spec_ids() -> list[str]:
    if SPEC.exists():
        text = SPEC.read_text(encoding="utf-8")
        return sorted(set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, re.M)) - {"healthy"})
    return sorted(CAUSE_IDS)


def test_the_hard_coded_ids_match_the_spec():
    assert sorted(CAUSE_IDS) == spec_ids()


def test_every_spec_id_is_in_the_cause_table():
    assert sorted(set(spec_ids()) - set(SNAPSHOT_CAUSES)) == []


@pytest.mark.parametrize("cause", SNAPSHOT_CAUSES)
def test_every_cause_has_two_positives_and_a_near_miss(cause: str, rules: Ruleset):
    folder = SNAPSHOTS / cause
    assert len(list(folder.glob("pos-*.json"))) >= 2, cause
    assert list(folder.glob("neg-*.json")), cause
    assert cause in rules.causes


@pytest.mark.parametrize("path", cause_fixtures(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture(path: Path, rules: Ruleset):
    diag = diagnose(load(path), rules)
    ids = [f.id for f in diag.findings]
    cause = path.parent.name
    if path.name.startswith("pos-"):
        assert cause in ids, f"{cause} did not fire: {ids}"
        finding = next(f for f in diag.findings if f.id == cause)
        assert finding.evidence, "a finding points into the snapshot"
        for pointer in finding.evidence:
            assert re.match(
                r"^(platform|python|packages|env|driver|gpus|libraries|"
                r"tensorflow|log|extra|entry_points|provenance)\b",
                pointer,
            ), pointer
    else:
        assert cause not in ids, f"{cause} fired on a near miss: {ids}"
    # every plan is exact: pinned versions, the fields each kind needs
    for step in diag.plan:
        assert step.resolves and all(r in ids for r in step.resolves)
        if step.kind == StepKind.PIP_INSTALL:
            assert all("==" in r for r in step.requirements), step.requirements
        if step.kind == StepKind.MANUAL:
            assert step.commands and step.safety == Safety.MANUAL
        if step.kind in {StepKind.ENV_PATH_PREPEND, StepKind.ENV_PATH_REMOVE}:
            assert step.variable and step.entry


def test_error_findings_come_first_and_blockers_before_what_they_block(rules: Ruleset):
    for path in cause_fixtures():
        diag = diagnose(load(path), rules)
        order = {f.id: i for i, f in enumerate(diag.findings)}
        severities = [f.severity for f in diag.findings]
        errors = [s == Severity.ERROR for s in severities]
        assert errors == sorted(errors, reverse=True), path
        for f in diag.findings:
            for blocked in f.blocks:
                assert order[f.id] < order[blocked] or f.severity != Severity.ERROR, path


def test_healthy_fixture(rules: Ruleset):
    diag = diagnose(load(SNAPSHOTS / "healthy.json"), rules)
    assert diag.gpu_visible is True
    assert not [f for f in diag.findings if f.severity == Severity.ERROR]
    assert [f.id for f in diag.findings] == ["healthy"]
    assert diag.plan == ()
    assert exit_code(diag) == ExitCode.OK


EXPECTED = json.loads((REALWORLD / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_realworld_first_finding(case: str, rules: Ruleset):
    diag = diagnose(load(REALWORLD / f"{case}.json"), rules)
    assert diag.findings, case
    assert diag.findings[0].id in EXPECTED[case]["expected"], [f.id for f in diag.findings]


def test_the_realworld_copy_matches_the_shared_one():
    shared = SPEC.parent.parent / "realworld"
    if not shared.exists():
        pytest.skip("../shared is not beside this checkout")
    for path in shared.glob("*.json"):
        assert (REALWORLD / path.name).read_bytes() == path.read_bytes(), path.name
