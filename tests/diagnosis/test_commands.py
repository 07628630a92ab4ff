"""`tffix diagnose`, `tffix explain` and `tffix --dry-run` end to end, in process: output,
exit codes, and one-line errors for bad input."""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

from tests.diagnosis.conftest import REALWORLD, SNAPSHOTS, load
from tffix.cli import main
from tffix.commands import diagnose as diagnose_cmd
from tffix.term import Style, use_colour

HEALTHY = str(SNAPSHOTS / "healthy.json")
MISSING = str(SNAPSHOTS / "cuda-libs-missing" / "pos-tensorflow-without-and-cuda.json")
TOO_OLD = str(SNAPSHOTS / "driver-too-old" / "pos-470-under-cuda12-build.json")
TF216 = str(REALWORLD / "tf216-andcuda-venv-libs-not-found.json")


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_healthy_snapshot(capsys):
    code, out, err = run(capsys, "diagnose", "--snapshot", HEALTHY)
    assert code == 0, err
    assert "[ok] NVIDIA driver: 550.54.14 (CUDA 12.4)" in out
    assert "[ok] TensorFlow lists a GPU: yes" in out
    assert "TensorFlow sees the GPU." in out
    assert "Plan:" not in out
    assert "\033[" not in out  # not a TTY: no colour


def test_fixable_snapshot_shows_the_plan(capsys):
    code, out, _ = run(capsys, "diagnose", "--snapshot", MISSING)
    assert code == 1
    assert "[!!] CUDA libraries:" in out
    assert "1. [safe] " in out
    assert "-m pip install 'tensorflow[and-cuda]==2.18.1'" in out
    assert "evidence:" not in out


def test_verbose_shows_evidence(capsys):
    _, out, _ = run(capsys, "diagnose", "--snapshot", MISSING, "-v")
    # the things themselves, not pointers into the JSON
    assert "seen: nvidia-* wheels installed: none" in out
    assert "seen: libcudnn.so.9: nothing resolves" in out
    assert "Cannot dlopen some GPU libraries" in out
    assert "libraries.libcudnn" not in out and "log[" not in out


def test_outside_problem_exit_code_and_manual_commands(capsys):
    code, out, _ = run(capsys, "diagnose", "--snapshot", TOO_OLD)
    assert code == 3
    assert "[manual]" in out and "sudo ubuntu-drivers install" in out
    assert "needs action outside the venv" in out


def test_unsafe_steps_are_hidden_with_a_hint(capsys):
    code, out, _ = run(capsys, "diagnose", "--snapshot", TF216)
    assert code == 1
    assert "One more step is possible but not shown" in out and "--unsafe" in out
    assert "[unsafe]" not in out
    _, out, _ = run(capsys, "diagnose", "--snapshot", TF216, "--unsafe")
    assert "[unsafe]" in out and "tensorflow[and-cuda]==2.16.2" in out


def test_json_document(capsys):
    code, out, _ = run(capsys, "diagnose", "--snapshot", TF216, "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["schema"] == "tffix.diagnosis/1"
    assert doc["gpu_visible"] is False
    assert set(doc["findings"][0]) >= {"id", "severity", "fix", "title", "evidence"}
    step = doc["plan"][0]
    assert step["step"] == 1 and step["kind"] == "pip-install"
    assert step["requirements"] == ["tensorflow[and-cuda]==2.16.2"]
    assert step["safety"] == "unsafe" and step["resolves"] == ["cuda-libs-not-found"]


def test_snapshot_from_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(Path(HEALTHY).read_bytes())))
    code, out, _ = run(capsys, "diagnose", "--snapshot", "-", "--json")
    assert code == 0 and json.loads(out)["gpu_visible"] is True


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not json", "is not JSON"),
        (b'{"schema": "tffix.diagnosis/1"}', "has schema 'tffix.diagnosis/1'"),
        (b'{"schema": "tffix.snapshot/1", "gpus": {"name": "x"}}', "gpus must be a list"),
        (b'{"schema": "tffix.snapshot/1", "packages": {"tensorflow": [2]}}', "packages.tensorflow"),
        (b"[1, 2]", "must be a JSON object"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
)
def test_bad_snapshot_is_one_line(capsys, tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    code, out, err = run(capsys, "diagnose", "--snapshot", str(path))
    assert code == 2
    assert out == ""
    assert err.startswith("tffix: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_huge_snapshot_is_refused_before_reading(capsys, tmp_path: Path):
    path = tmp_path / "huge.json"
    with path.open("wb") as fh:
        fh.truncate(40 * 1024 * 1024)  # sparse: nothing is written
    code, _, err = run(capsys, "diagnose", "--snapshot", str(path))
    assert code == 2 and "40 MiB" in err and err.count("\n") == 1


@pytest.mark.parametrize("path", ["/no/such/file.json", "."])
def test_unreadable_snapshot(capsys, path: str):
    code, _, err = run(capsys, "diagnose", "--snapshot", path)
    assert code == 2 and err.startswith("tffix: error: ") and err.count("\n") == 1


def test_explain_a_log_file(capsys, tmp_path: Path):
    log = tmp_path / "tf.log"
    log.write_text(
        "2026-11-26 10:00:00: E cuda_dnn.cc:8310] Unable to register cuDNN factory: x\n"
        "tensorflow==2.18.1\n"
        "nvidia-cudnn-cu12==9.1.0.70\n"
        "E0000 cuda_dnn.cc:522] Loaded runtime CuDNN library: 9.1.0 but source was compiled "
        "with: 9.3.0.\n",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "explain", str(log), "-v")
    assert code == 1
    assert "[!!] cuDNN: " in out and "cudnn-version-mismatch" in out
    assert "log line 4: E0000 cuda_dnn.cc:522] Loaded runtime CuDNN library: 9.1.0" in out
    assert "nvidia-cudnn-cu12==9.3.0.75" in out
    assert "Unable to register" not in out


def test_explain_stdin_noise_only(capsys, monkeypatch):
    text = "W py_utils.cc:38] TF-TRT Warning: Could not find TensorRT\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, _ = run(capsys, "explain")
    assert code == 0 and "no known cause" in out


def test_explain_json(capsys, tmp_path: Path):
    log = tmp_path / "pip.log"
    log.write_text("ERROR: No matching distribution found for tensorrt-libs==8.6.1\n")
    code, out, _ = run(capsys, "explain", str(log), "--json")
    doc = json.loads(out)
    assert code == 1 and doc["findings"][0]["id"] == "and-cuda-unresolvable"


def test_explain_windows_utf16_log(capsys, tmp_path: Path):
    log = tmp_path / "ps.log"
    log.write_bytes("Is TensorFlow built with CUDA: False\r\n".encode("utf-16"))
    code, out, _ = run(capsys, "explain", str(log))
    assert "tf-cpu-only-build" in out and code == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "is binary (a NUL byte at offset 7)"),
        (b"caf\xe9 latin-1 text", "is not UTF-8 text"),
    ],
)
def test_explain_refuses_binary(capsys, tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "x.log"
    path.write_bytes(content)
    code, _, err = run(capsys, "explain", str(path))
    assert code == 2 and message in err and err.count("\n") == 1


def test_explain_refuses_an_enormous_log(capsys, tmp_path: Path):
    path = tmp_path / "big.log"
    with path.open("wb") as fh:
        fh.truncate(33 * 1024 * 1024)
    code, _, err = run(capsys, "explain", str(path))
    assert code == 2 and "33 MiB" in err


def test_explain_refuses_an_enormous_stdin(capsys, monkeypatch):
    from tffix.commands import explain

    monkeypatch.setattr(explain, "MAX_LOG_BYTES", 1024)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x" * 2048)))
    code, _, err = run(capsys, "explain", "-")
    assert code == 2 and "standard input is larger than" in err


def test_forced_colour(capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    _, out, _ = run(capsys, "diagnose", "--snapshot", HEALTHY)
    assert "\033[32m[ok]\033[0m" in out


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(
    ("tty", "env", "colour"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),
        (True, {"TERM": "dumb"}, False),
        (False, {"FORCE_COLOR": "1"}, True),
        (False, {"FORCE_COLOR": "0"}, False),
        (True, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),  # no-color.org: NO_COLOR wins
    ],
)
def test_use_colour(tty, env, colour):
    assert use_colour(FakeStream(tty), env) is colour


def test_marks_read_without_colour():
    plain = Style(False)
    assert [plain.mark(s) for s in ("ok", "error", "unknown", "skipped")] == [
        "[ok]",
        "[!!]",
        "[??]",
        "[--]",
    ]


def test_run_live_with_a_collector_seam(capsys, monkeypatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)  # not a project: no code scan
    snap = load(Path(MISSING))
    args = argparse.Namespace(json=False, verbose=0, unsafe=False, no_scan=False)
    code = diagnose_cmd.run_live(args, collect=lambda _args: snap)
    out = capsys.readouterr().out
    assert code == 1 and "tffix diagnosis of /home/u/proj/.venv/bin/python" in out


def test_run_live_merges_code_scan_findings(capsys, monkeypatch, tmp_path: Path):
    if importlib.util.find_spec("tffix.scan") is None:
        pytest.skip("the code scan is not built")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (tmp_path / "train.py").write_text(
        'import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "-1"\nimport tensorflow as tf\n'
    )
    monkeypatch.chdir(tmp_path)
    snap = load(Path(HEALTHY))
    args = argparse.Namespace(json=True, verbose=0, unsafe=False, no_scan=False)
    diagnose_cmd.run_live(args, collect=lambda _args: snap)
    doc = json.loads(capsys.readouterr().out)
    assert any(f.get("location", "").startswith("train.py") for f in doc["findings"]), doc
    args.no_scan = True
    diagnose_cmd.run_live(args, collect=lambda _args: snap)
    doc = json.loads(capsys.readouterr().out)
    assert not any("location" in f for f in doc["findings"])


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("tffix.collect") is None, reason="the probes are not built"
)
def test_dry_run_on_a_real_interpreter(capsys, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--dry-run", "--python", sys.executable, "--no-scan")
    assert "Traceback" not in err, err
    assert code in {0, 1, 3}, err
    assert f"tffix diagnosis of {sys.executable}"[:40] in out
    assert "TensorFlow lists a GPU" in out
