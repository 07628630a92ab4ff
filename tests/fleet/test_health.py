"""The fast health check against the full diagnosis, on the simulated machines.

On each scenario ``tffix-health --json`` (no TensorFlow child) and ``tffix --dry-run --json``
(everything) run on the same venv. The check must never fail a node the full diagnosis passes,
must report every cause of ``SEES`` that the full diagnosis reports, may miss only what
``BLIND`` and ``PARTLY`` say it misses, and may add only what ``ASSUMED`` explains. A default
sample runs in CI; ``TFFIX_HEALTH_ALL=1`` runs every scenario.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from tests.harness.sim import SimEnv, pip_env, scenario_names
from tffix.cli import main
from tffix.diagnosis import exit_code
from tffix.document import parse_snapshot_text
from tffix.errors import ExitCode
from tffix.graph import build_graph
from tffix.health import ASSUMED, BLIND, MAX_REASON, PARTLY, SEES, judge
from tffix.model import UNKNOWN, Diagnosis, FixSide, Severity
from tffix.ruleset import load_rules
from tffix.schemas import schema_path

ROOT = Path(__file__).resolve().parents[2]
HEALTH = Path(sys.executable).parent / "tffix-health"
DEFAULT_SAMPLE = [
    "healthy-tf218-andcuda",
    "cuda-libs-missing-tf218",
    "driver-too-old-470",
    "driver-too-old-ptx-h100",  # seen only in TensorFlow's log: the check passes it (PARTLY)
    "tf-import-error-numpy2",  # BLIND
    "tf-cpu-only-package",  # ASSUMED adds cuda-libs-missing
    "cuda-visible-devices-minus-one",
]


def _sample() -> list[str]:
    return scenario_names() if os.environ.get("TFFIX_HEALTH_ALL") else DEFAULT_SAMPLE


def _env(env: SimEnv) -> dict[str, str]:
    return {**env.env, **pip_env(env.index), "TFFIX_SYSROOT": str(env.root)}


def _errors(doc: dict[str, object]) -> list[str]:
    return [f["id"] for f in doc["findings"] if f["severity"] == "error"]  # type: ignore[index,union-attr]


def test_every_cause_is_either_seen_or_not() -> None:
    causes = set(load_rules().causes) | {"healthy"}
    assert set(SEES) | set(BLIND) == causes
    assert not set(SEES) & set(BLIND)
    assert set(PARTLY) <= set(SEES) and set(ASSUMED) <= set(SEES)


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (ROOT / "fixtures" / "snapshots").glob("*/*.json") if p.stem != "expected"),
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_the_verdict_is_one_line_naming_the_deciding_cause(path: Path) -> None:
    snap = parse_snapshot_text(path.read_bytes(), name=path.name)
    snap = replace(snap, tensorflow=UNKNOWN, log=())  # what the health check collects
    findings = build_graph(snap, load_rules()).findings
    verdict = judge(findings)
    assert "\n" not in verdict.line and len(verdict.line) <= MAX_REASON
    errors = [f for f in findings if f.severity is Severity.ERROR]
    assert verdict.exit_code == exit_code(Diagnosis(None, findings))
    assert (verdict.exit_code == ExitCode.OK) == (not errors)
    if errors:
        side = FixSide.OUTSIDE if verdict.exit_code == ExitCode.OUTSIDE else FixSide.VENV
        first = next(f for f in errors if f.fix is side)
        assert verdict.line.startswith(f"{first.id}: ")
        assert verdict.causes == tuple(f.id for f in errors)
    else:
        assert verdict.line.startswith("ok: ")


@pytest.mark.slow
@pytest.mark.parametrize("scenario", _sample())
def test_health_against_the_full_diagnosis(scenario: str, sim_scenarios, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if not HEALTH.exists():
        pytest.skip(f"tffix-health is not installed next to {sys.executable}")
    env = sim_scenarios(scenario)
    full = env.run_tffix("--dry-run", "--json", "--no-scan")
    health = env.run([str(HEALTH), "--json", "--venv", str(env.venv)], env=_env(env))
    full_doc, health_doc = json.loads(full.stdout), json.loads(health.stdout)
    full_errors, health_errors = set(_errors(full_doc)), set(_errors(health_doc))

    assert health.returncode == health_doc["exit_code"]
    schema = json.loads(schema_path("diagnosis").read_text())
    jsonschema.validate(health_doc, schema, cls=jsonschema.Draft7Validator)
    if full.returncode == 0:
        assert health.returncode == 0, health_doc["reason"]  # never fails a passing node
    assert (full_errors & set(SEES)) - set(PARTLY) <= health_errors
    assert full_errors - health_errors <= set(BLIND) | set(PARTLY)
    assert health_errors - full_errors <= set(ASSUMED)
    if health_errors - full_errors:
        assert full.returncode != 0  # an assumed cause only where the node fails anyway

    # tffix report reads the health document as this host's, in the state its code names
    (tmp_path / f"{scenario}.health.json").write_text(health.stdout)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        main(["report", str(tmp_path / f"{scenario}.health.json"), "--json"])
    (view,) = json.loads(out.getvalue())["per_host"]
    assert (view["host"], view["kind"]) == (scenario, "health")
    assert view["state"] == {0: "healthy", 1: "fixable", 3: "outside"}[health.returncode]

    text = env.run([str(HEALTH), "--venv", str(env.venv)], env=_env(env))
    lines = text.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tffix health: "), text.stdout
    assert text.returncode == health.returncode and text.stderr == ""


@pytest.mark.slow
def test_health_never_imports_tensorflow(make_scenario, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = make_scenario("healthy-tf218-andcuda")
    marker = tmp_path / "tensorflow-imported"
    init = env.site_packages / "tensorflow" / "__init__.py"
    init.write_text(f"open({str(marker)!r}, 'w').close()\n" + init.read_text())
    done = env.run([str(HEALTH), "--venv", str(env.venv)], env=_env(env))
    assert done.returncode == 0, done.stdout + done.stderr
    assert not marker.exists()
    through_cli = env.run(
        [sys.executable, "-m", "tffix", "health", "--venv", str(env.venv)], env=_env(env)
    )
    assert through_cli.stdout == done.stdout and not marker.exists()
    env.run_tffix("--dry-run")  # the full diagnosis does import it: the marker works
    assert marker.exists()


def test_a_missing_venv_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = subprocess.run(
        [str(HEALTH) if HEALTH.exists() else sys.executable, *([] if HEALTH.exists() else
         ["-m", "tffix.commands.health"]), "--venv", str(tmp_path / "nope")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == ExitCode.USAGE
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1
    assert main(["health", "--venv", str(tmp_path / "nope")]) == ExitCode.USAGE
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_docs_name_what_the_check_sees_and_misses() -> None:
    text = (ROOT / "docs" / "fleet.md").read_text()
    seen, rest = text.split("It sees in part:", 1)
    partly, blind = rest.split("It cannot see", 1)
    assert all(f"`{c}`" in seen for c in SEES if c not in PARTLY)
    assert all(f"`{c}`" in partly for c in PARTLY)
    assert all(f"`{c}`" in blind for c in BLIND if not c.startswith("code-"))
    assert "`code-*`" in blind
