"""Compound causes on the simulated machine: the repair never leaves less than it found.

First the reports that showed it (two problems at once, a problem a step reveals), as fixed
scenarios; then the generated combinations of ``tests.harness.compound`` (every pair of
venv-fixable causes, and each cause with a healthy look-alike). CI runs a fixed sample of the
combinations; ``TFFIX_COMPOUND_ALL=1`` runs all of them (``benchmarks/compound.py`` prints the
counts).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.harness import compound
from tests.harness.sim import SimEnv, load_scenario, make_env

pytestmark = pytest.mark.slow

CI_SAMPLE = 6
"""Generated combinations in the default suite (about 20 s each)."""

ALWAYS = ("cuda-version-mismatch-cuda11-system+ld-library-path-shadowing-conda-cudnn8",)
"""Combinations in the default suite beside the sample, each for a defect it once showed: two
folders on LD_LIBRARY_PATH that each hold a stale cuDNN (taking off one let the loader take
the other, and the step was rolled back as resolving nothing)."""

UNDO_NOT_A_STACK = "undo stack"
"""The xfail reason for combinations whose only violation is that ``tffix undo`` restores the
last run but not the ones before it (``--yes`` twice). Flip ``UNDO_IS_A_STACK`` when it is."""
UNDO_IS_A_STACK = True


def _build(spec: dict[str, Any], tmp_path: Path, sim_index: Path) -> SimEnv:
    return make_env(str(spec["name"]), tmp_path, sim_index, spec=spec)


def _yes(sim: SimEnv) -> tuple[int, dict[str, Any]]:
    done = sim.run_tffix("--yes", "--json", timeout=600)
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError as exc:
        raise AssertionError(f"not JSON:\n{done.stdout}\n{done.stderr}") from exc


# --------------------------------------------------------------------------- the reports


def test_cpu_package_and_a_shadowing_system_cudnn(tmp_path: Path, sim_index: Path) -> None:
    """tensorflow-cpu 2.18.1 and LD_LIBRARY_PATH on a system CUDA 12.4 with cuDNN 9.1: the CPU
    package is swapped for the GPU build (one change: removing it alone leaves no TensorFlow),
    the shadowing folder is not skipped as "resolved" while TensorFlow was gone, and the GPU
    works, in one run."""
    spec = compound.combine(
        load_scenario("tf-cpu-only-package"), load_scenario("ld-library-path-shadowing-cudnn91")
    )
    sim = _build(spec, tmp_path, sim_index)
    code, doc = _yes(sim)
    assert code == 0, doc
    assert compound.tensorflow_installed(sim.pip("freeze", "--all").stdout)
    report = sim.tf_report()
    assert report.gpus == ["/physical_device:GPU:0"] and "dnn_error" not in report.data
    statuses = {s["summary"]: s["status"] for s in doc["steps"]}
    assert not any("not needed any more" in s["message"] for s in doc["steps"]), statuses
    # nothing was called resolved by a diagnosis that could not see TensorFlow
    for step in doc["steps"]:
        for finding in step["findings"]:
            assert not (finding["id"] == "cudnn-version-mismatch" and step["status"] != "applied")


def test_tensorflow_beside_tf_nightly_without_cuda_wheels(tmp_path: Path, sim_index: Path) -> None:
    """tensorflow 2.18.1 beside tf-nightly, no CUDA wheels: a TensorFlow stays installed through
    every run, a second run changes nothing, and undo brings back both distributions."""
    spec = dict(load_scenario("tf-multiple-distributions-nightly"))
    spec["name"] = "tf-and-nightly-no-cuda-wheels"
    spec["packages"] = {
        "install": ["tensorflow==2.18.1"],
        "then": ["tf-nightly==2.23.0.dev20261026"],
    }
    sim = _build(spec, tmp_path, sim_index)
    original = compound.state(sim)
    had = compound.tensorflow_installed(original[0])
    assert had == {"tensorflow", "tf-nightly"}
    code, doc = _yes(sim)
    assert code in (0, 3, 4), doc
    after = compound.state(sim)
    assert compound.tensorflow_installed(after[0]), after[0]
    second_code, second = _yes(sim)
    assert not second["changed"] and compound.state(sim) == after, second
    assert second_code == code
    verdict = compound.Verdict("x")
    compound.undo_all(sim, verdict)  # the same undo loop as the generator
    assert not verdict.violations
    assert compound.state(sim) == original


def test_a_problem_a_step_reveals_is_planned_in_the_same_run(
    tmp_path: Path, sim_index: Path
) -> None:
    """Plain tensorflow 2.21.0: installing its [and-cuda] wheels reveals that libcusolver.so.11
    is not found (the real 2.21.0 RUNPATH names no nvidia/cusolver/lib); that step is planned
    and applied in the same run, and the outcome says it was planned later, and why."""
    sim = _build(load_scenario("cuda-libs-missing-tf221"), tmp_path, sim_index)
    code, doc = _yes(sim)
    assert code == 0, json.dumps(doc, indent=1)
    later = [s for s in doc["steps"] if "planned_after" in s]
    assert later, doc["steps"]
    assert all(s["status"] == "applied" for s in later)
    assert "cuda-libs-not-found" in later[0]["planned_because"]
    assert sim.tf_report().gpus == ["/physical_device:GPU:0"]
    code, doc = _yes(sim)
    assert code == 0 and not doc["changed"]


# --------------------------------------------------------------------------- generated


def _selected() -> list[dict[str, Any]]:
    specs = compound.combinations()
    if os.environ.get("TFFIX_COMPOUND_ALL"):
        return specs
    picked = compound.sample(specs, CI_SAMPLE)
    return picked + [s for s in specs if s["name"] in ALWAYS and s not in picked]


def _only_undo_stack(verdict: compound.Verdict) -> bool:
    return verdict.runs_changed > 1 and verdict.violations == [
        "undo did not restore pip freeze --all and the activate scripts"
    ]


@pytest.mark.parametrize("spec", _selected(), ids=lambda s: str(s["name"]))
def test_generated_compound_scenario(spec: dict[str, Any], tmp_path: Path, sim_index: Path) -> None:
    verdict = compound.check(spec, tmp_path, sim_index)
    if verdict.outcome == "unbuildable":
        pytest.skip(f"pip cannot make this combination: {verdict.reason}")
    if not UNDO_IS_A_STACK and _only_undo_stack(verdict):
        pytest.xfail(UNDO_NOT_A_STACK)
    assert verdict.outcome != "lost", verdict
    assert not verdict.violations, verdict
    assert verdict.outcome in ("fixed", "left")
    if verdict.outcome == "left":
        assert verdict.exit_code in (3, 4) and verdict.reason


def test_combinations_cover_every_pair_and_each_lookalike() -> None:
    reps = compound.representatives()
    specs = compound.combinations()
    n = len(reps)
    assert len(specs) == n * (n - 1) // 2 + n
    causes = {str(s["cause"]) for s in specs}
    for a in reps:
        assert f"{a}+healthy" in causes or any(
            c.endswith(f"+{a}") or c.startswith(f"{a}+") for c in causes
        )
    assert len({str(s["name"]) for s in specs}) == len(specs)
    assert compound.sample(specs, CI_SAMPLE) == compound.sample(specs, CI_SAMPLE)
    assert set(ALWAYS) <= {str(s["name"]) for s in _selected()}
