"""The CUDA toolkit probe reads a machine root (``$TFFIX_SYSROOT``) read-only, and the
diagnosis says a toolkit is there but off the loader path instead of 'no CUDA libraries'."""

from __future__ import annotations

import json
from pathlib import Path

from tests.diagnosis.conftest import SNAPSHOTS, load
from tffix.diagnosis import diagnose
from tffix.probes.toolkit import probe_toolkits
from tffix.ruleset import load_rules


def _toolkit(root: Path, name: str, version: str | None, lib: str = "lib64") -> Path:
    folder = root / "usr/local" / name
    (folder / lib).mkdir(parents=True)
    (folder / lib / "libcudart.so.12").write_bytes(b"\x7fELF")
    (folder / lib / "libcudart.so.12.4.127").write_bytes(b"\x7fELF")
    (folder / lib / "libnppc.so.12").write_bytes(b"\x7fELF")
    if version:
        (folder / "version.json").write_text(json.dumps({"cuda": {"version": version}}))
    return folder


def test_finds_versioned_and_linked_toolkits_under_the_root(tmp_path: Path) -> None:
    real = _toolkit(tmp_path, "cuda-12.4", "12.4.1")
    _toolkit(tmp_path, "cuda-11.8", None, lib="targets/x86_64-linux/lib")
    (tmp_path / "usr/local/cuda").symlink_to(real)
    (tmp_path / "usr/local/cuda-empty").mkdir()  # no lib folder: not a toolkit
    found = {t["path"]: t for t in probe_toolkits(tmp_path)}
    assert set(found) == {"/usr/local/cuda", "/usr/local/cuda-12.4", "/usr/local/cuda-11.8"}
    assert found["/usr/local/cuda-12.4"]["version"] == "12.4.1"
    assert found["/usr/local/cuda-12.4"]["libraries"] == ["libcudart.so.12"]
    assert found["/usr/local/cuda-11.8"]["version"] == "11.8"  # from the folder's name
    assert (
        found["/usr/local/cuda-11.8"]["lib_dir"] == "/usr/local/cuda-11.8/targets/x86_64-linux/lib"
    )
    assert found["/usr/local/cuda"]["link"] == "/usr/local/cuda-12.4"
    assert all(not str(t["path"]).startswith(str(tmp_path)) for t in found.values())


def test_a_machine_without_toolkits_reports_none(tmp_path: Path) -> None:
    assert probe_toolkits(tmp_path) == []


def test_toolkit_off_the_loader_path_is_named_not_called_missing() -> None:
    rules = load_rules()
    snap = load(SNAPSHOTS / "cuda-libs-missing" / "pos-system-toolkit-off-loader-path.json")
    finding = next(f for f in diagnose(snap, rules).findings if f.id == "cuda-libs-missing")
    assert "no CUDA libraries are installed" not in finding.title
    assert "/usr/local/cuda-12.4 is not on the loader path" in finding.title
    assert "LD_LIBRARY_PATH" in finding.detail and "RUNPATH" in finding.detail
    older = load(SNAPSHOTS / "cuda-libs-missing" / "pos-cuda11-toolkit-under-cuda12-build.json")
    finding = next(f for f in diagnose(older, rules).findings if f.id == "cuda-libs-missing")
    assert "needs CUDA 12" in finding.detail


def test_a_toolkit_already_on_ld_library_path_changes_nothing() -> None:
    import dataclasses

    from tffix.model import frozen_map

    rules = load_rules()
    snap = load(SNAPSHOTS / "cuda-libs-missing" / "pos-system-toolkit-off-loader-path.json")
    on_path = dataclasses.replace(
        snap,
        env=frozen_map(
            {**snap.env, "LD_LIBRARY_PATH": "/usr/local/cuda-12.4/targets/x86_64-linux/lib"}
        ),
    )
    titles = [f.title for f in diagnose(on_path, rules).findings]
    assert not any("not on the loader path" in t for t in titles), titles
