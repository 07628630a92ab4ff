"""Folders that shadow TensorFlow's own libraries: the plan takes off every one the loader would
reach before the wheel's copy, as one change, and what it leaves is the wheel's copy first."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.diagnosis.conftest import SNAPSHOTS
from tffix import stepdeps
from tffix.diagnosis import diagnose
from tffix.document import parse_snapshot
from tffix.effects.steps import edit_for
from tffix.envedit import apply_edits
from tffix.model import Diagnosis, PlanStep, StepKind
from tffix.ruleset import Ruleset

WHEEL = "/home/u/proj/.venv/lib/python3.11/site-packages/nvidia/cudnn/lib"
SYSTEM = "/usr/local/cuda-12.4/lib64"
CONDA = "/opt/conda/envs/tf/lib"
TOOLS = "/opt/tools/lib"


def _snapshot(ld_library_path: str, candidates: list[str], version: str = "9.1.0") -> Any:
    doc = json.loads((SNAPSHOTS / "healthy.json").read_text())
    doc["env"]["LD_LIBRARY_PATH"] = ld_library_path
    doc["libraries"]["libcudnn.so.9"] = {
        "path": candidates[0],
        "version": version,
        "via": "LD_LIBRARY_PATH",
        "candidates": candidates,
    }
    return doc


def _diagnose(doc: Any, rules: Ruleset) -> Diagnosis:
    return diagnose(parse_snapshot(doc), rules)


def _removals(diag: Diagnosis) -> list[PlanStep]:
    return [s for s in diag.plan if s.kind is StepKind.ENV_PATH_REMOVE]


def _first_left(value: str, plan: tuple[PlanStep, ...], candidates: list[str]) -> str | None:
    """The candidate the loader takes once the plan's edits of LD_LIBRARY_PATH are made: the
    first whose folder (or the folder above its glibc-hwcaps subfolder) is still searched, or
    the wheel's (found through TensorFlow's RUNPATH, not the variable)."""
    edits = [edit_for(s) for s in plan if s.variable == "LD_LIBRARY_PATH"]
    kept = {
        e.rstrip("/")
        for e in apply_edits({"LD_LIBRARY_PATH": value}, edits)["LD_LIBRARY_PATH"].split(":")
        if e
    }
    for path in candidates:
        folder = os.path.dirname(path)
        if path.startswith(WHEEL):
            return path
        if folder in kept or folder.split("/glibc-hwcaps/")[0] in kept:
            return path
    return None


@pytest.mark.parametrize(
    ("value", "candidates", "removed"),
    [
        # two folders ahead of the wheel, each with a cuDNN of its own: both go
        (
            f"{SYSTEM}:{CONDA}",
            [f"{SYSTEM}/libcudnn.so.9", f"{CONDA}/libcudnn.so.9", f"{WHEEL}/libcudnn.so.9"],
            [SYSTEM, CONDA],
        ),
        # as written, a trailing slash kept; an unrelated folder between them stays
        (
            f"{SYSTEM}/:{TOOLS}:{CONDA}",
            [f"{SYSTEM}/libcudnn.so.9", f"{CONDA}/libcudnn.so.9", f"{WHEEL}/libcudnn.so.9"],
            [f"{SYSTEM}/", CONDA],
        ),
        # the second copy in a glibc-hwcaps subfolder of its folder is the loader's too
        (
            f"{SYSTEM}:{CONDA}",
            [
                f"{SYSTEM}/libcudnn.so.9",
                f"{CONDA}/glibc-hwcaps/x86-64-v3/libcudnn.so.9",
                f"{WHEEL}/libcudnn.so.9",
            ],
            [SYSTEM, CONDA],
        ),
        # a copy the loader reaches only after the wheel's is none of the plan's business
        (
            f"{SYSTEM}:{WHEEL}:{CONDA}",
            [f"{SYSTEM}/libcudnn.so.9", f"{WHEEL}/libcudnn.so.9", f"{CONDA}/libcudnn.so.9"],
            [SYSTEM],
        ),
    ],
)
def test_every_folder_ahead_of_the_wheel_is_taken_off_as_one_change(
    rules: Ruleset, value: str, candidates: list[str], removed: list[str]
) -> None:
    diag = _diagnose(_snapshot(value, candidates), rules)
    ids = {f.id for f in diag.findings}
    assert "ld-library-path-shadowing" in ids, diag.findings
    steps = _removals(diag)
    assert sorted(str(s.entry) for s in steps) == sorted(removed)
    for step in steps:
        assert "ld-library-path-shadowing" in step.resolves
    # the removals need each other: one group, applied and judged together
    numbers = [n for n, s in enumerate(diag.plan, start=1) if s in steps]
    groups = stepdeps.groups(stepdeps.needs_of(diag.plan), numbers)
    assert groups == [tuple(numbers)]
    # and what the loader takes once they are made is the wheel's copy
    assert _first_left(value, diag.plan, candidates) == f"{WHEEL}/libcudnn.so.9"


def test_the_two_findings_of_one_shadowing_share_its_steps(rules: Ruleset) -> None:
    """ld-library-path-shadowing and the cudnn-version-mismatch it causes are fixed by the same
    removals: one step per folder, resolving both."""
    candidates = [f"{SYSTEM}/libcudnn.so.9", f"{CONDA}/libcudnn.so.9", f"{WHEEL}/libcudnn.so.9"]
    doc = _snapshot(f"{SYSTEM}:{CONDA}", candidates)
    doc["log"] = [
        "E0000 00:00:1.0 1 cuda_dnn.cc:522] Loaded runtime CuDNN library: 9.1.0 but source was "
        "compiled with: 9.3.0.  CuDNN library needs to have matching major version and equal "
        "or higher minor version."
    ]
    diag = _diagnose(doc, rules)
    ids = {f.id for f in diag.findings}
    assert {"ld-library-path-shadowing", "cudnn-version-mismatch"} <= ids
    steps = _removals(diag)
    assert sorted(str(s.entry) for s in steps) == sorted([SYSTEM, CONDA])
    assert all(
        {"ld-library-path-shadowing", "cudnn-version-mismatch"} <= set(s.resolves) for s in steps
    )
    assert len(diag.plan) == len(steps)


def test_without_the_wheels_copy_only_the_resolved_folder_is_named(rules: Ruleset) -> None:
    """No copy of TensorFlow's own among the candidates: what the loader would take after the
    first folder is not known to be better, so only the folder it resolves now is named."""
    candidates = [f"{SYSTEM}/libcudnn.so.9", f"{CONDA}/libcudnn.so.9"]
    diag = _diagnose(_snapshot(f"{SYSTEM}:{CONDA}", candidates), rules)
    assert [s.entry for s in _removals(diag)] in ([], [SYSTEM])


WORK = "/home/u/work"
LIB = "lib/x86_64-linux-gnu"


def _probed(value: str, searched: list[str], candidates: list[str]) -> Any:
    """A snapshot whose loader probe recorded how it reads LD_LIBRARY_PATH (*searched*)."""
    doc = _snapshot(value, candidates)
    doc["extra"] = {
        **doc.get("extra", {}),
        "loader": {
            "rules": {"LIB": LIB, "PLATFORM": "x86_64", "subdirs": ["glibc-hwcaps/x86-64-v3", ""]},
            "search": {"LD_LIBRARY_PATH": searched},
        },
    }
    return doc


@pytest.mark.parametrize(
    ("value", "searched", "stale", "removed"),
    [
        # an empty entry is the current folder (ld.so(8)): a leading, a trailing, a middle one
        (":/x", [WORK, "/x"], WORK, ""),
        ("/x:", ["/x", WORK], WORK, ""),
        ("/x::/y", ["/x", WORK, "/y"], WORK, ""),
        # a relative entry is read from the current folder
        ("old/lib:/x", [f"{WORK}/old/lib", "/x"], f"{WORK}/old/lib", "old/lib"),
        (".:/x", [WORK, "/x"], WORK, "."),
        ("../lib:/x", ["/home/u/lib", "/x"], "/home/u/lib", "../lib"),
        # $LIB and ${PLATFORM} stand for what the loader measured
        ("/opt/$LIB:/x", [f"/opt/{LIB}", "/x"], f"/opt/{LIB}", "/opt/$LIB"),
        ("/opt/${PLATFORM}/lib", ["/opt/x86_64/lib"], "/opt/x86_64/lib", "/opt/${PLATFORM}/lib"),
        # $ORIGIN is the program's folder, wherever that is
        ("$ORIGIN/../cuda", ["/usr/cuda"], "/usr/cuda", "$ORIGIN/../cuda"),
    ],
)
def test_the_entry_is_named_as_written_whatever_form_it_has(
    rules: Ruleset, value: str, searched: list[str], stale: str, removed: str
) -> None:
    candidates = [f"{stale}/libcudnn.so.9", f"{WHEEL}/libcudnn.so.9"]
    diag = _diagnose(_probed(value, searched, candidates), rules)
    steps = _removals(diag)
    assert [s.entry for s in steps] == [removed]
    assert not [s for s in diag.plan if s.kind is StepKind.MANUAL]
    after = apply_edits({"LD_LIBRARY_PATH": value}, [edit_for(s) for s in steps])
    assert removed not in after["LD_LIBRARY_PATH"].split(":")
    if removed == "":
        assert "current folder" in steps[0].summary


def test_a_copy_outside_ld_library_path_is_not_blamed_on_an_empty_entry(rules: Ruleset) -> None:
    """Between the stale copy and the wheel's, a copy the loader finds through another search
    path (here a folder of TensorFlow's RUNPATH) is no entry of LD_LIBRARY_PATH: the empty
    entry is not named for it."""
    other = "/home/u/proj/.venv/lib/python3.11/site-packages/tensorflow"
    candidates = ["/x/libcudnn.so.9", f"{other}/libcudnn.so.9", f"{WHEEL}/libcudnn.so.9"]
    diag = _diagnose(_probed("/x:", ["/x", WORK], candidates), rules)
    assert [s.entry for s in _removals(diag)] == ["/x"]
