"""Path steps for libraries the loader misses: only the folders of the libraries it missed."""

from __future__ import annotations

import json

from tests.diagnosis.conftest import SNAPSHOTS
from tffix.diagnosis import diagnose
from tffix.document import parse_snapshot
from tffix.model import StepKind
from tffix.ruleset import Ruleset

SITE = "/home/u/proj/.venv/lib/python3.11/site-packages"


def _entries(doc: dict[str, object], rules: Ruleset) -> list[str]:
    diag = diagnose(parse_snapshot(doc), rules)
    # one prepend step puts every folder first (``entries``, in order)
    return [
        e.split("/nvidia/")[1]
        for s in diag.plan
        if s.kind is StepKind.ENV_PATH_PREPEND
        for e in (s.entries or ((s.entry,) if s.entry else ()))
    ]


def _regression() -> dict[str, object]:
    path = SNAPSHOTS / "cuda-libs-not-found" / "pos-tf2161-runpath-regression.json"
    return json.loads(path.read_text())


def test_a_probed_snapshot_gets_only_the_missing_folders(rules: Ruleset) -> None:
    doc = _regression()
    found = {"path": f"{SITE}/nvidia/cuda_runtime/lib/libcudart.so.12", "via": "RUNPATH"}
    doc["libraries"] = {
        "libcudart.so.12": found,
        "libcublas.so.12": {"path": None},
        "libcudnn.so.8": {"path": None},
        "libnccl.so.2": {"path": None},  # optional: no step for it
    }
    doc["extra"] = {**doc.get("extra", {}), "loader": {"optional": ["libnccl.so.2"]}}
    assert _entries(doc, rules) == ["cublas/lib", "cudnn/lib"]


def test_a_pasted_report_that_names_one_library_gets_every_folder(rules: Ruleset) -> None:
    # No loader probe ran: a library the report does not list is unknown, not found.
    entries = _entries(_regression(), rules)
    assert "cudnn/lib" in entries and "cublas/lib" in entries and len(entries) >= 5
