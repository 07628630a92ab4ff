"""The snapshot document: partial input reads, wrong input is a one-line InputError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tffix.document import parse_snapshot, parse_snapshot_text, snapshot_to_dict
from tffix.errors import InputError
from tffix.model import UNKNOWN

SHARED = Path(__file__).resolve().parents[2] / "shared"
SPEC_EXAMPLE = {
    "schema": "tffix.snapshot/1",
    "platform": {
        "os": "linux",
        "arch": "x86_64",
        "wsl": False,
        "container": None,
        "libc": "glibc 2.35",
    },
    "python": {
        "version": "3.11.7",
        "executable": "/home/u/proj/.venv/bin/python",
        "venv": "/home/u/proj/.venv",
    },
    "packages": {"tensorflow": "2.18.1", "nvidia-cudnn-cu12": "9.3.0.75", "torch": "2.5.1"},
    "env": {"LD_LIBRARY_PATH": "/usr/local/cuda-11.8/lib64", "CUDA_VISIBLE_DEVICES": "-1"},
    "driver": {"version": "550.54.14", "cuda": "12.4"},
    "gpus": [{"name": "NVIDIA GeForce RTX 3090", "compute_capability": "8.6"}],
    "libraries": {
        "libcudnn.so.9": {
            "path": "/usr/local/cuda-11.8/lib64/libcudnn.so.9",
            "version": "9.1.0",
            "via": "LD_LIBRARY_PATH",
        }
    },
    "tensorflow": {
        "version": "2.18.1",
        "import_error": None,
        "build": {
            "cuda_version": "12.5.1",
            "cudnn_version": "9",
            "is_cuda_build": True,
            "cuda_compute_capabilities": ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"],
        },
        "gpus": [],
    },
    "log": [
        "E0000 ... cuda_dnn.cc:522] Loaded runtime CuDNN library: 9.1.0 but source was "
        "compiled with: 9.3.0."
    ],
}


def test_spec_example_round_trips() -> None:
    snap = parse_snapshot(SPEC_EXAMPLE)
    assert snap.packages is not None and snap.packages["nvidia-cudnn-cu12"] == "9.3.0.75"
    assert snap.libraries["libcudnn.so.9"].via == "LD_LIBRARY_PATH"
    assert snap.tensorflow and snap.tensorflow.build and snap.tensorflow.build.is_cuda_build
    again = snapshot_to_dict(snap)
    for key, value in SPEC_EXAMPLE.items():
        assert again[key] == value, key


def test_absent_means_unknown_and_null_means_none() -> None:
    bare = parse_snapshot({"schema": "tffix.snapshot/1"})
    assert bare.driver is UNKNOWN and bare.tensorflow is UNKNOWN and bare.packages is None
    assert "driver" not in snapshot_to_dict(bare)
    none = parse_snapshot({"schema": "tffix.snapshot/1", "driver": None})
    assert none.driver is None
    assert snapshot_to_dict(none)["driver"] is None


def test_a_document_without_schema_is_read_as_a_snapshot() -> None:
    """snapshot.md: reading never requires a field; only a *different* schema is refused."""
    snap = parse_snapshot({"tensorflow": {"version": "2.18.1"}, "log": ["a line"]})
    assert snap.tensorflow is not UNKNOWN and snap.tensorflow.version == "2.18.1"
    assert snapshot_to_dict(snap)["schema"] == "tffix.snapshot/1"


def test_empty_string_env_value_is_kept() -> None:
    snap = parse_snapshot({"schema": "tffix.snapshot/1", "env": {"CUDA_VISIBLE_DEVICES": ""}})
    assert snap.env["CUDA_VISIBLE_DEVICES"] == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "is not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"schema": "tffix.diagnosis/1"}', "expected 'tffix.snapshot/1'"),
        ('{"schema": "tffix.snapshot/1", "packages": [1]}', "packages must be an object"),
        ('{"schema": "tffix.snapshot/1", "gpus": [{"index": "one"}]}', "gpus[0].index"),
        ('{"schema": "tffix.snapshot/1", "log": [3]}', "log[0] must be a string"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_bad_documents_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(InputError, match=None) as info:
        parse_snapshot_text(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_huge_document_is_refused_before_parsing() -> None:
    with pytest.raises(InputError, match="MiB"):
        parse_snapshot_text(" " * (33 * 1024 * 1024))


def test_binary_is_refused() -> None:
    with pytest.raises(InputError, match="not UTF-8"):
        parse_snapshot_text(b"\xff\xfe\x00garbage")


@pytest.mark.parametrize(
    "path", sorted((SHARED / "realworld").glob("*.json")), ids=lambda p: p.stem
)
def test_every_realworld_report_parses(path: Path) -> None:
    if path.name == "expected.json":
        pytest.skip("not a snapshot")
    data = json.loads(path.read_text())
    snap = parse_snapshot(data, name=path.name)
    assert snapshot_to_dict(snap)["schema"] == "tffix.snapshot/1"
