"""`tffix scan` end to end, in-process: output, JSON contract, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tffix.cli import main

HIDE = 'import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "-1"\n'


def test_text_output_and_exit_1_on_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "train.py").write_text(HIDE)
    (tmp_path / "bad.py").write_text("import os\nos.environ['CUDA_VISIBLE_DEVICES'] = (\n")
    monkeypatch.chdir(tmp_path)
    assert main(["scan"]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == (
        'train.py:2: error [cuda-visible-devices-masked] CUDA_VISIBLE_DEVICES="-1" hides '
        "every GPU from TensorFlow"
    )
    assert lines[1] == '    code: os.environ["CUDA_VISIBLE_DEVICES"] = "-1"'
    assert lines[3].startswith("    fix: edit train.py line 2: delete `os.environ[")
    assert lines[-2] == "1 error"
    assert lines[-1].startswith("scanned 1 file in ")
    assert lines[-1].endswith(" s (1 skipped: 1 syntax error)")


def test_clean_project_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ok.py").write_text('import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "0"\n')
    (tmp_path / "quiet.py").write_text('import os\nos.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["scan", "--gpus", "1"]) == 0  # an info finding is not a failure
    out = capsys.readouterr().out
    assert "[code-tf-log-silenced]" in out


def test_json_is_a_diagnosis_document(capsys: pytest.CaptureFixture[str]) -> None:
    folder = FIXTURES / "scan" / "notebook"
    assert main(["scan", "--json", "--gpus", "1", str(folder)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "tffix.diagnosis/1"
    assert doc["gpu_visible"] is None
    assert doc["plan"] == []
    assert set(doc["scan"]) == {"files", "skipped", "seconds"}
    first = doc["findings"][0]
    assert set(first) == {"id", "severity", "fix", "title", "evidence", "detail", "location"}
    assert first["fix"] == "outside"
    assert first["location"].startswith(f"{folder.as_posix()}/train.ipynb:cell ")
    assert first["evidence"] == [f"code:{first['location']}"]


def test_missing_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "no/such/place"]) == 2
    assert capsys.readouterr().err == "tffix: error: no such file or folder: no/such/place\n"


@pytest.mark.parametrize("bad", ["-1", "two"])
def test_bad_gpu_count_is_a_usage_error(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--gpus", bad]) == 2
    assert "--gpus" in capsys.readouterr().err
