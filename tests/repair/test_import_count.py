"""A repair of *n* steps imports TensorFlow at most *n* + 1 times.

The simulated TensorFlow appends a line to ``$TFFIX_SIM_IMPORT_LOG`` each time it is imported
(by any process), so the count is the real number of imports the whole ``tffix --yes`` run
caused: the first diagnosis, and one look after each group of steps that both re-diagnoses
and runs the op checks. In ``cuda-libs-missing-tf218`` the entry points (an activated shell,
the plain interpreter) differ only in what activation sets for the shell, so one child answers
for both.

Where an entry point's environment really differs (the plain run keeps the caller's
``CUDA_VISIBLE_DEVICES=-1``; a kernelspec sets variables of its own), it needs a child of its
own at a look, unless its answer from the previous look still stands: the same interpreter,
the same environment, and no step since changed the interpreter's files. The tests below hold
both halves: the answer is reused after an edit that cannot reach the entry point, and asked
again after one that can (an import hook in the site-packages, a kernelspec edit).
"""

from __future__ import annotations

import json
import re
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


CARRIED = re.compile(r"^tffix: (\w+) .*: carried over from the previous look", re.M)


def test_an_activate_edit_keeps_the_plain_runs_answer_and_a_hook_asks_again(
    make_scenario, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The activated shell gets ``CUDA_VISIBLE_DEVICES=-1`` from the activate script, the plain
    run from the caller's shell. Step 1 edits the activate script: the plain run's answer
    stands (no child for it). Step 2 adds an import hook to the site-packages that only unsets
    ``CUDA_VISIBLE_DEVICES``: the plain run, whose environment sets it, is checked again, and
    now usable (its answer carried over would still say NOT usable); the activated shell's
    environment no longer sets it, so there the hook changes nothing and the last look's own
    report stands. Looks: 1 child (both entry points the same then), 1, 1: steps + 1."""
    sim = make_scenario("cuda-visible-devices-activate-script")
    sim.env["TFFIX_SIM_IMPORT_LOG"] = str(tmp_path / "imports.log")
    done = sim.run_tffix("--yes", "--json")
    doc = json.loads(done.stdout)
    kinds = [s["kind"] for s in doc["steps"] if s["status"] == "applied"]
    assert doc["exit_code"] == 0 and kinds == ["env-unset", "import-hook"], doc["steps"]
    assert {e["kind"]: e["usable"] for e in doc["entry_points"]} == {
        "activated": True,
        "plain": True,
    }
    assert CARRIED.findall(done.stderr) == ["plain", "TensorFlow"], done.stderr
    imports = (tmp_path / "imports.log").read_text(encoding="utf-8").splitlines()
    assert len(imports) == 3, imports


def test_a_kernelspec_edit_asks_the_kernel_again(make_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A kernel whose kernelspec sets ``CUDA_VISIBLE_DEVICES=-1`` (and a variable of its own,
    so it never shares the activated shell's child): the activate edit leaves its answer
    standing, the kernelspec edit changes its environment, and it is checked again: usable at
    the end, which a carried-over answer would not be."""
    sim = make_scenario("cuda-visible-devices-activate-script")
    sim.env.pop("CUDA_VISIBLE_DEVICES")
    spec = sim.venv / "share" / "jupyter" / "kernels" / "tf" / "kernel.json"
    spec.parent.mkdir(parents=True)
    spec.write_text(
        json.dumps(
            {
                "argv": [str(sim.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "TF",
                "language": "python",
                "env": {"CUDA_VISIBLE_DEVICES": "-1", "TF_FORCE_GPU_ALLOW_GROWTH": "true"},
            }
        ),
        encoding="utf-8",
    )
    done = sim.run_tffix("--yes", "--json")
    doc = json.loads(done.stdout)
    kept = [s["kind"] for s in doc["steps"] if s["status"] == "applied"]
    assert doc["exit_code"] == 0 and kept[0] == "env-unset" and "kernelspec-env" in kept, doc
    assert {e["kind"]: e["usable"] for e in doc["entry_points"]}["kernel"] is True
    assert "kernel" in CARRIED.findall(done.stderr), done.stderr
