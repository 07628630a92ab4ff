"""The JSON documents tffix writes have exactly the keys docs/json.md lists: pinned here as
literal sets (the contract), checked against real output for every fixture, and against the
page itself so that the documentation cannot drift."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.diagnosis.conftest import REALWORLD, cause_fixtures, load
from tffix.commands.scan import scan_document
from tffix.diagnosis import diagnose
from tffix.document import diagnosis_to_dict, snapshot_to_json
from tffix.ruleset import Ruleset, load_rules
from tffix.scan import scan_paths

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")

SNAPSHOT = {
    "schema",
    "platform",
    "python",
    "packages",
    "env",
    "driver",
    "gpus",
    "libraries",
    "tensorflow",
    "log",
    "extra",
    "unknown",
    "entry_points",
    "provenance",
}
PLATFORM = {
    "os",
    "arch",
    "wsl",
    "container",
    "libc",
    "distro",
    "kernel",
    "jetson",
    "shell",
    "scheduler",
    "cpu_flags",
}
PYTHON = {"version", "executable", "venv", "kind", "implementation"}
DRIVER = {"version", "cuda", "source", "kernel_module", "error"}
GPU = {"name", "compute_capability", "uuid", "index", "memory_mib", "mig"}
LIBRARY = {"path", "version", "via", "loaded", "candidates", "error"}
TENSORFLOW = {"version", "import_error", "build", "gpus", "file", "exit", "seconds"}
BUILD = {
    "cuda_version",
    "cudnn_version",
    "is_cuda_build",
    "is_rocm_build",
    "cuda_compute_capabilities",
}

OUTCOME = {
    "schema",
    "exit_code",
    "changed",
    "gpu_visible",
    "entry_points",
    "steps",
    "findings",
    "verification",
    "left_changed",
    "reactivate",
    "notes",
    "timings",
}
OUTCOME_TIMINGS = {
    "startup",
    "prepare",
    "first_diagnosis",
    "plan",
    "render",
    "steps",
    "observe",
    "state",
    "journal",
    "confirm",
    "other",
    "unexplained",
    "total",
}
"""The repair outcome's ``timings``, checked against a real run (tests/repair)."""

DIAGNOSIS = {"schema", "gpu_visible", "gpu", "findings", "plan"}
GPU_USE = {"listed", "usable", "op", "cudnn", "xla", "why"}
FINDING_ALWAYS = {"id", "severity", "fix", "title", "evidence"}
FINDING_SOMETIMES = {"detail", "blocks", "location"}
STEP_ALWAYS = {"step", "kind", "summary", "resolves", "safety"}
STEP_SOMETIMES = {"needs"}
STEP_FIELDS = {
    "pip-install": {"requirements"},
    "pip-uninstall": {"packages"},
    "env-set": {"variable", "value"},
    "env-unset": {"variable"},
    "env-path-prepend": {"variable", "entry", "entries"},
    "env-path-remove": {"variable", "entry"},
    "manual": {"commands"},
    "kernelspec-env": {"variable", "op", "path", "commands"},
    "import-hook": {"op", "commands"},
    "startup-edit": {"path", "line", "before", "after", "commands"},
}
STEP_OPTIONAL = {
    "kernelspec-env": {"value", "entry"},
    "import-hook": {"variable", "value", "preload"},
}
"""Fields a step kind has for some operations only (a set has a value, a remove an entry)."""
SCAN = {"files", "skipped", "seconds"}


@pytest.fixture(scope="module")
def rules() -> Ruleset:
    return load_rules()


ALL = cause_fixtures() + sorted(REALWORLD.glob("*.json"))


def _ids(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


@pytest.mark.parametrize("path", ALL, ids=_ids)
def test_snapshot_keys(path: Path) -> None:
    doc = json.loads(snapshot_to_json(load(path)))
    assert doc["schema"] == "tffix.snapshot/1"
    assert set(doc) <= SNAPSHOT
    assert set(doc.get("platform", {})) <= PLATFORM
    assert set(doc.get("python", {})) <= PYTHON
    assert set(doc.get("driver") or {}) <= DRIVER
    for gpu in doc.get("gpus") or []:
        assert set(gpu) <= GPU
    for lib in doc.get("libraries", {}).values():
        assert set(lib) <= LIBRARY
    tf = doc.get("tensorflow") or {}
    assert set(tf) <= TENSORFLOW and set(tf.get("build") or {}) <= BUILD


@pytest.mark.parametrize("path", ALL, ids=_ids)
def test_diagnosis_keys(path: Path, rules: Ruleset) -> None:
    doc = json.loads(json.dumps(diagnosis_to_dict(diagnose(load(path), rules))))
    assert set(doc) - {"entry_points"} == DIAGNOSIS and doc["schema"] == "tffix.diagnosis/1"
    assert set(doc["gpu"]) == GPU_USE and doc["gpu"]["listed"] == doc["gpu_visible"]
    for finding in doc["findings"]:
        assert FINDING_ALWAYS <= set(finding) <= FINDING_ALWAYS | FINDING_SOMETIMES
    assert [s["step"] for s in doc["plan"]] == list(range(1, len(doc["plan"]) + 1))
    for step in doc["plan"]:
        fields = set(step) - STEP_SOMETIMES - STEP_OPTIONAL.get(step["kind"], set())
        assert fields == STEP_ALWAYS | STEP_FIELDS[step["kind"]], step
        assert all(1 <= n <= len(doc["plan"]) for n in step.get("needs", [])), step
        if step["kind"] == "env-path-prepend":
            assert step["entry"] == ":".join(step["entries"])


def test_scan_document_keys() -> None:
    result = scan_paths([ROOT / "fixtures" / "scan" / "env-masked"])
    doc = json.loads(json.dumps(scan_document(result)))
    assert set(doc) == DIAGNOSIS | {"scan"} and set(doc["scan"]) == SCAN
    assert doc["plan"] == [] and set(doc["gpu"].values()) == {None}
    for finding in doc["findings"]:
        assert "location" in finding


def test_the_page_names_every_pinned_key() -> None:
    named = set(re.findall(r"`([a-z_][a-z0-9_-]*)`", PAGE))
    pinned = (
        SNAPSHOT
        | PLATFORM
        | PYTHON
        | DRIVER
        | GPU
        | LIBRARY
        | TENSORFLOW
        | BUILD
        | DIAGNOSIS
        | GPU_USE
        | FINDING_ALWAYS
        | FINDING_SOMETIMES
        | STEP_ALWAYS
        | STEP_SOMETIMES
        | SCAN
        | OUTCOME
        | OUTCOME_TIMINGS
        | {k for fields in STEP_FIELDS.values() for k in fields}
        | set(STEP_FIELDS)
    )
    assert pinned - named == set()
    for schema in ("tffix.snapshot/1", "tffix.diagnosis/1", "tffix.outcome/1"):
        assert f"`{schema}`" in PAGE


def test_the_outcome_schema_names_the_pinned_keys() -> None:
    schema = json.loads((ROOT / "tffix" / "schemas" / "outcome-1.schema.json").read_text())
    assert set(schema["properties"]) == OUTCOME
    assert set(schema["properties"]["timings"]["properties"]) == OUTCOME_TIMINGS
