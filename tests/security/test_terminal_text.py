"""Untrusted text (snapshot keys and values, package names, log lines, file names) reaches
the terminal only with its control characters escaped, and every error stays on one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tffix import cli

REALWORLD = ROOT.parent / "shared" / "realworld"
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""What must never be printed raw (newline aside)."""
EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[8m\x9b31m\u202eevil\r\x08"


def _snapshot() -> dict:
    files = sorted(p for p in REALWORLD.glob("*.json") if p.name != "expected.json")
    if not files:
        pytest.skip("no realworld snapshots beside the repository")
    return json.loads(files[0].read_text())


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _hostile_snapshot(tmp_path: Path) -> Path:
    snap = _snapshot()
    snap.setdefault("packages", {})
    snap["packages"] = {**(snap["packages"] or {}), f"tensorflow-gpu{EVIL}": f"2.10{EVIL}"}
    snap.setdefault("env", {})["CUDA_VISIBLE_DEVICES"] = f"-1{EVIL}"
    snap.setdefault("python", {})["executable"] = f"/home/u/{EVIL}/bin/python"
    snap["log"] = [*snap.get("log", []), f"{EVIL} Could not load dynamic library 'libcudnn.so.9'"]
    path = tmp_path / f"snap{EVIL}.json".replace("/", "_")
    path.write_text(json.dumps(snap))
    return path


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_diagnosis_text_escapes_snapshot_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verbose: list[str]
) -> None:
    path = _hostile_snapshot(tmp_path)
    code, out, err = _run(capsys, "diagnose", "--snapshot", str(path), *verbose)
    assert code in (0, 1, 3), err
    assert not RAW.search(out + err), repr(RAW.search(out + err))
    assert "\\x1b]0;pwned\\x07" in out  # visible, not dropped


def test_colour_is_kept_but_injected_sequences_are_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    path = _hostile_snapshot(tmp_path)
    _, out, _ = _run(capsys, "diagnose", "--snapshot", str(path))
    assert "\x1b[1m" in out  # tffix's own bold heading
    for escape in re.finditer("\x1b", out):
        assert re.match(r"\x1b\[(?:0|1|2|32|31;1|33|36|35)m", out[escape.start() :])


def test_json_output_escapes_and_keeps_the_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _hostile_snapshot(tmp_path)
    _, out, _ = _run(capsys, "diagnose", "--snapshot", str(path), "--json")
    assert not RAW.search(out)
    assert json.loads(out)["schema"] == "tffix.diagnosis/1"


@pytest.mark.parametrize(
    "bad",
    [
        {"packages": {"evil\nsecond line\x1b[2J": {}}},
        {"env": {"A\r\nB\x07": ["x"]}},
        {"schema": "tffix.snapshot/1\n\x1b[2Jforged"},
    ],
)
def test_an_error_quoting_a_hostile_key_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: dict
) -> None:
    snap = {**_snapshot(), **bad}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(snap))
    code, _, err = _run(capsys, "diagnose", "--snapshot", str(path))
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("tffix: error: "), err
    assert not RAW.search(err)


def test_explain_escapes_log_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "tf.log"
    log.write_text(
        f"{EVIL}W tensorflow/core/common_runtime/gpu/gpu_device.cc] Cannot dlopen some GPU "
        f"libraries.{EVIL}\ntensorflow-gpu{EVIL}==2.10.0\n"
    )
    _, out, err = _run(capsys, "explain", str(log), "-v")
    assert not RAW.search(out + err)


def test_scan_escapes_file_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "train\x1b]0;pwned\x07\nx.py"
    (tmp_path / name).write_text('import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "-1"\n')
    code, out, err = _run(capsys, "scan", str(tmp_path))
    assert code == 1, out + err
    assert not RAW.search(out + err)
    assert "\\x1b]0;pwned\\x07\\nx.py" in out


def test_sanitiser_escapes_every_control_character() -> None:
    from tffix.term import Style, clean, clean_json, clean_output

    for code in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, 0x202E, 0x2066]:
        char = chr(code)
        assert not RAW.search(clean(char)), hex(code)
        assert clean(char).startswith("\\")
    assert clean("plain text: ok ✓ C:\\Users") == "plain text: ok ✓ C:\\Users"
    assert clean_output("a\nb\x1b") == "a\nb\\x1b"
    styled = Style(colour=True).paint("bold", "x") + "\x1b[2J"
    assert clean_output(styled, colour=True) == "\x1b[1mx\x1b[0m\\x1b[2J"
    text = json.dumps({"k\x9b": "\u202e"}, ensure_ascii=False)
    assert json.loads(clean_json(text)) == {"k\x9b": "\u202e"} and not RAW.search(clean_json(text))
