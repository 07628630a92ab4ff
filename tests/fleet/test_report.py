"""``tffix report`` over real diagnosis documents, held against ``tffix diagnose`` itself.

The fleet is every snapshot under fixtures/snapshots (the cause fixtures and the real-world
reports): each is diagnosed with ``tffix diagnose --snapshot X --json`` and saved as
``<host>.json``. The report must agree with those runs host by host (state <-> exit code,
causes <-> error findings), its counts must add up, and its JSON must satisfy the shipped
schema. Hostile documents give one line and exit 2; hostile strings are escaped.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import jsonschema
import pytest

from tests.fleet import browser
from tffix.cli import main
from tffix.errors import ExitCode
from tffix.schemas import schema_path

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = sorted(
    p for p in (ROOT / "fixtures" / "snapshots").glob("*/*.json") if p.name != "expected.json"
)
STATE_OF_CODE = {0: "healthy", 1: "fixable", 3: "outside"}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """Every fixture snapshot diagnosed by the CLI; host -> its exit code."""
    folder = tmp_path_factory.mktemp("fleet")
    codes: dict[str, int] = {}
    # capsys is function-scoped; a module fixture redirects stdout itself
    for path in SNAPSHOTS:
        host = f"{path.parent.name}--{path.stem}"
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            codes[host] = main(["diagnose", "--snapshot", str(path), "--json"])
        (folder / f"{host}.json").write_text(out.getvalue())
    return folder, codes


def test_report_agrees_with_each_diagnosis(
    fleet_dir: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, codes = fleet_dir
    code, out, err = _run(capsys, "report", str(folder), "--json")
    assert err == ""
    doc = json.loads(out)
    assert doc["hosts"] == len(codes) == len(SNAPSHOTS)
    assert sum(doc["counts"].values()) == doc["hosts"]
    per_host = {h["host"]: h for h in doc["per_host"]}
    assert set(per_host) == set(codes)
    for host, diag_code in codes.items():
        view = per_host[host]
        assert view["exit_code"] == diag_code, host
        assert view["state"] == STATE_OF_CODE[diag_code], host
        document = json.loads((folder / f"{host}.json").read_text())
        errors = [f["id"] for f in document["findings"] if f["severity"] == "error"]
        assert [c["id"] for c in view["causes"]] == errors, host
    for cause in doc["causes"]:
        having = sorted(
            h for h, v in per_host.items() if cause["id"] in {c["id"] for c in v["causes"]}
        )
        assert sorted(cause["hosts"]) == having, cause["id"]
    assert set(doc["healthy"]) == {h for h, c in codes.items() if c == 0}
    outside = {o["host"] for o in doc["outside"]}
    assert {
        h for h, v in per_host.items() if any(c["fix"] == "outside" for c in v["causes"])
    } == outside
    worst = 3 if 3 in codes.values() else max(codes.values())
    assert code == doc["exit_code"] == worst


def test_json_satisfies_the_shipped_schema(
    fleet_dir: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    schema = json.loads(schema_path("fleet").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    _, out, _ = _run(capsys, "report", str(fleet_dir[0]), "--json")
    jsonschema.validate(json.loads(out), schema, cls=jsonschema.Draft7Validator)
    # and the schema is not vacuous: a wrong state fails it
    broken = json.loads(out)
    broken["per_host"][0]["state"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft7Validator)


def test_text_and_html_name_every_host(
    fleet_dir: tuple[Path, dict[str, int]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder, codes = fleet_dir
    page = tmp_path / "fleet.html"
    code, out, _ = _run(capsys, "report", str(folder), "--html", str(page))
    assert code == (3 if 3 in codes.values() else max(codes.values()))
    html = page.read_text()
    for host in codes:
        assert host in out and host in html
    assert browser.fetches(html) == []
    assert browser.fetches('<img src="x.png">')  # the check itself can fail
    rendered = browser.render(page, tmp_path / "artefacts")
    if rendered is None:
        pytest.skip("no Chromium here (apt-get install chromium); the page was not rendered")
    assert rendered.console == []
    assert all(host in rendered.dom for host in codes)


def _doc(**fields: object) -> str:
    return json.dumps({"schema": "tffix.diagnosis/1", "gpu_visible": None, "findings": [],
                       "plan": [], **fields})  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ('{"schema": "tffix.snapshot/1"}', "is neither"),
        ("[]", "JSON object"),
        (_doc(findings="x"), "field findings must be a list"),
        (_doc(findings=[{"id": "a", "severity": "bad"}]), "findings[0]"),
        (_doc(gpu_visible="yes"), "gpu_visible"),
    ],
)
def test_a_bad_document_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    (tmp_path / "good.json").write_text(_doc())
    (tmp_path / "bad.json").write_text(content)
    code, out, err = _run(capsys, "report", str(tmp_path))
    assert code == ExitCode.USAGE
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and message in err and "bad.json" in err


def test_missing_and_empty_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "report", str(tmp_path / "nope"))
    assert code == ExitCode.USAGE and "no such file" in err
    code, _, err = _run(capsys, "report", str(tmp_path))
    assert code == ExitCode.USAGE and "no documents" in err


def test_outcome_wins_over_diagnosis_and_duplicates_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {"id": "cuda-libs-missing", "severity": "error", "fix": "venv", "title": "t"}
    (tmp_path / "gpu1.diagnosis.json").write_text(_doc(findings=[before]))
    outcome = {
        "schema": "tffix.outcome/1",
        "exit_code": 0,
        "changed": True,
        "gpu_visible": True,
        "steps": [{"step": 1, "status": "applied", "summary": "install"}],
        "findings": [{**before, "status": "resolved"}],
    }
    (tmp_path / "gpu1.outcome.json").write_text(json.dumps(outcome))
    code, out, _ = _run(capsys, "report", str(tmp_path), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["hosts"] == 1
    assert doc["counts"]["repaired"] == 1
    assert doc["repaired"] == [
        {"host": "gpu1", "state": "repaired", "resolved": ["cuda-libs-missing"]}
    ]
    (tmp_path / "gpu1.json").write_text(json.dumps(outcome))
    code, _, err = _run(capsys, "report", str(tmp_path))
    assert code == ExitCode.USAGE and "two outcome documents for host gpu1" in err


def test_hostile_strings_are_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = "<script>alert(1)</script>\x1b[2J"
    finding = {"id": evil, "severity": "error", "fix": "outside", "title": evil}
    plan = [{"step": 1, "kind": "manual", "safety": "manual", "summary": evil, "commands": [evil]}]
    (tmp_path / "h.json").write_text(_doc(host=evil, findings=[finding], plan=plan))
    page = tmp_path / "r.html"
    code, out, _ = _run(capsys, "report", str(tmp_path / "h.json"), "--html", str(page))
    assert code == ExitCode.OUTSIDE
    assert "\x1b" not in out
    html = page.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_an_aggregate_saved_in_the_folder_is_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gpu1.json").write_text(_doc())
    code, out, _ = _run(capsys, "report", str(tmp_path), "--json")
    (tmp_path / "fleet.json").write_text(out)
    again, second, err = _run(capsys, "report", str(tmp_path), "--json")
    assert (again, second, err) == (code, out, "")
    named, _, err = _run(capsys, "report", str(tmp_path / "fleet.json"))
    assert named == ExitCode.USAGE and "tffix.fleet/1" in err  # named, it is not a host
