"""A repair of *n* steps imports TensorFlow at most *n* + 1 times.

The simulated TensorFlow appends a line to ``$TFFIX_SIM_IMPORT_LOG`` each time it is imported
(by any process), so the count is the real number of imports the whole ``tffix --yes`` run
caused: the first diagnosis, and one look after each group of steps that both re-diagnoses
and runs the op checks. The scenario's entry points (an activated shell, the plain
interpreter) differ only in what activation sets for the shell, so one child answers for both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.sim import SimEnv

pytestmark = pytest.mark.slow

RAN = {"applied", "rolled back", "failed", "rollback incomplete", "interrupted"}
"""Step fates that mean the step was applied (and so looked at afterwards)."""


def repair_counting(sim: SimEnv, log: Path, *flags: str) -> tuple[dict[str, object], int]:
    sim.env["TFFIX_SIM_IMPORT_LOG"] = str(log)
    done = sim.run_tffix("--yes", "--json", *flags)
    doc = json.loads(done.stdout)
    imports = len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0
    return doc, imports


def test_a_one_step_repair_imports_tensorflow_twice(make_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim = make_scenario("cuda-libs-missing-tf218")
    doc, imports = repair_counting(sim, tmp_path / "imports.log")
    steps = [s for s in doc["steps"] if s["status"] in RAN]  # type: ignore[attr-defined]
    assert doc["exit_code"] == 0 and steps, doc
    assert imports <= len(steps) + 1, (imports, [s["summary"] for s in steps])


def test_a_run_that_changes_nothing_imports_tensorflow_once(make_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim = make_scenario("cuda-libs-missing-tf218")
    repair_counting(sim, tmp_path / "first.log")
    doc, imports = repair_counting(sim, tmp_path / "second.log")
    assert doc["changed"] is False and doc["exit_code"] == 0
    assert imports == 1


def test_the_outcome_accounts_for_the_whole_wall_time(make_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The JSON outcome of a real run carries every pinned timing, valid by its schema, and
    its parts add up to its total (what no lap explains is a part too)."""
    import jsonschema

    from tests.docs.test_json_contract import OUTCOME, OUTCOME_TIMINGS
    from tffix.schemas import schema_path

    sim = make_scenario("cuda-libs-missing-tf218")
    doc, _ = repair_counting(sim, tmp_path / "imports.log")
    schema = json.loads(schema_path("outcome").read_text(encoding="utf-8"))
    assert list(jsonschema.Draft7Validator(schema).iter_errors(doc)) == []
    assert set(doc) == OUTCOME
    timings = doc["timings"]
    assert isinstance(timings, dict) and set(timings) == OUTCOME_TIMINGS
    parts = sum(v for k, v in timings.items() if k != "total")
    assert abs(parts - timings["total"]) < 0.02  # rounding to milliseconds, 12 parts
