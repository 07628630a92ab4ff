"""Every fixture project in fixtures/scan/ yields exactly its expected findings.

The comparison is of the whole set, so each near-miss in a fixture (a CUDA_VISIBLE_DEVICES
of "0" on a one-GPU machine, a CPU block around preprocessing only, a string that mentions
the variable, test code) fails the test if it fires.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tffix.model import FixSide
from tffix.scan import scan_project

CASES = sorted(p.name for p in (FIXTURES / "scan").iterdir() if p.is_dir())


def test_every_pattern_has_a_fixture() -> None:
    assert {
        "env-masked",
        "env-unknown-gpus",
        "visible-devices",
        "device-cpu",
        "device-gpu-index",
        "env-other",
        "notebook",
        "realworld-hardcoded",
        "ray-trials",
    } <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_fixture_project(case: str) -> None:
    folder = FIXTURES / "scan" / case
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    result = scan_project(folder, gpu_count=expected["gpus"])
    got = sorted((f.id, str(f.severity), f.location) for f in result.findings)
    assert got == sorted(tuple(item) for item in expected["findings"])
    assert result.skipped.get("syntax error", 0) == 0
    for finding in result.findings:
        assert finding.fix is FixSide.OUTSIDE  # tffix never edits code
        assert finding.evidence == (f"code:{finding.location}",)
        code, why, fix = finding.detail.split("\n")
        assert code.startswith("code: ") and why.startswith("why: ")
        assert fix.startswith("fix: edit ")


def test_realworld_report_is_reproduced() -> None:
    """shared/realworld/script-hardcodes-cuda-visible-devices-1: "1" on a one-GPU machine."""
    result = scan_project(FIXTURES / "scan" / "realworld-hardcoded", gpu_count=1)
    (finding,) = result.findings
    assert finding.id == "cuda-visible-devices-masked"
    assert "there is no GPU 1" in finding.detail
    assert 'edit main.py line 2: delete `os.environ["CUDA_VISIBLE_DEVICES"] = "1"`' in (
        finding.detail
    )


def test_fixtures_are_text_only(tmp_path: Path) -> None:
    """The fixtures are scanned as text; none of them is imported or run by the scan."""
    marker = tmp_path / "ran"
    (tmp_path / "boom.py").write_text(
        f"open({str(marker)!r}, 'w').write('x')\n"
        "import os\nos.environ['CUDA_VISIBLE_DEVICES'] = '-1'\n"
    )
    result = scan_project(tmp_path)
    assert [f.id for f in result.findings] == ["cuda-visible-devices-masked"]
    assert not marker.exists()
