"""The orchestrator: the environment the target's children get (the venv's activate script,
tffix block included) and "unknown, because" instead of an exception when a probe fails."""

from __future__ import annotations

import os
import threading
import time
import venv
from pathlib import Path

import pytest

from tffix import activate_text, collect
from tffix.envedit import EditOp, EnvEdit
from tffix.probes import gpu as gpu_probe
from tffix.probes.target import resolve_target


@pytest.fixture
def bare_venv(tmp_path: Path) -> Path:
    path = tmp_path / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    edits = [
        EnvEdit(EditOp.PREPEND, "LD_LIBRARY_PATH", "/opt/fixed/lib"),
        EnvEdit(EditOp.SET, "TF_FORCE_GPU_ALLOW_GROWTH", "true"),
    ]
    # the block as tffix writes it (its recorded edits and the shell code that makes them):
    # the children's environment is what sourcing the script really gives
    script = path / "bin" / "activate"
    text = script.read_text() + "export CUDA_HOME=/usr/local/cuda-11.8\n"
    script.write_text(activate_text.render(activate_text.Shell.POSIX, text, edits))
    return path


def test_children_run_in_the_activated_environment(bare_venv: Path) -> None:
    environ = {"PATH": os.environ["PATH"], "LD_LIBRARY_PATH": "/usr/local/cuda/lib64"}
    target = resolve_target(venv=str(bare_venv), environ=environ)
    snap = collect.collect_snapshot(target, environ=environ, tf_timeout=60)
    assert snap.env["LD_LIBRARY_PATH"] == "/opt/fixed/lib:/usr/local/cuda/lib64"
    assert snap.env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert snap.env["VIRTUAL_ENV"] == str(bare_venv)
    activate = snap.extra["activate"]
    assert isinstance(activate, dict)
    assert activate["active"] is False
    assert [e["variable"] for e in activate["tffix_edits"]] == [
        "LD_LIBRARY_PATH",
        "TF_FORCE_GPU_ALLOW_GROWTH",
    ]
    assert [e["text"] for e in activate["exports"]] == ["export CUDA_HOME=/usr/local/cuda-11.8"]
    assert snap.tensorflow is None  # nothing to import in a bare venv


def test_a_failing_probe_costs_its_section_only(
    bare_venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_: object) -> None:
        raise RuntimeError("a bug in the driver probe")

    monkeypatch.setattr(gpu_probe, "probe_driver", broken)
    environ = {"PATH": os.environ["PATH"]}
    target = resolve_target(venv=str(bare_venv), environ=environ)
    snap = collect.collect_snapshot(target, environ=environ, tf_timeout=60)
    assert (
        snap.unknown["driver"] == "the driver probe failed: RuntimeError: a bug in the driver probe"
    )
    assert snap.packages is not None  # the other probes still answered
    assert snap.python.venv == str(bare_venv)


class HangingNvml:
    """An NVML whose nvmlInit does not return until released (a sick driver)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def nvmlInit(self) -> None:
        self.release.wait(60)
        raise RuntimeError("released")


def test_a_hanging_nvml_costs_the_driver_section_only(
    bare_venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collect, "DRIVER_TIMEOUT", 0.5)
    environ = {"PATH": os.environ["PATH"]}
    target = resolve_target(venv=str(bare_venv), environ=environ)
    nvml = HangingNvml()
    start = time.monotonic()
    try:
        snap = collect.collect_snapshot(target, environ=environ, tf_timeout=60, nvml=nvml)
    finally:
        nvml.release.set()  # let go of the NVML lock for the tests that follow
    assert time.monotonic() - start < 25  # did not wait for nvmlInit
    assert snap.unknown["driver"] == "NVML did not answer within 0.5s (nvmlInit hung)"
    assert snap.packages is not None


def test_host_files_are_read_under_the_given_root(bare_venv: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "proc/driver/nvidia").mkdir(parents=True)
    (root / "proc/driver/nvidia/version").write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 2024\n"
    )
    (root / "dev").mkdir()
    (root / "dev/nvidiactl").write_text("")
    (root / ".dockerenv").write_text("")
    environ = {"PATH": os.environ["PATH"]}
    target = resolve_target(venv=str(bare_venv), environ=environ)
    snap = collect.collect_snapshot(target, environ=environ, tf_timeout=60, host_root=root)
    assert snap.platform.container == "docker"
    assert snap.extra["device_nodes"] == ["nvidiactl"]
    assert snap.driver is not None and snap.driver is not collect.UNKNOWN
    assert snap.driver.kernel_module == "550.54.14"


def test_an_active_venv_behind_another_python_on_path(tmp_path: Path) -> None:
    from tffix.collect import shell_python_mismatch

    venv, other = tmp_path / "venv", tmp_path / "conda"
    for folder in (venv, other):
        (folder / "bin").mkdir(parents=True)
        for name in ("python", "python3"):
            exe = folder / "bin" / name
            exe.write_text("#!/bin/sh\n")
            exe.chmod(0o755)
    active = {"VIRTUAL_ENV": str(venv)}
    behind = {**active, "PATH": f"{other / 'bin'}:{venv / 'bin'}"}
    message = shell_python_mismatch(behind, venv)
    assert message is not None and str(other / "bin" / "python") in message
    assert (
        shell_python_mismatch({**active, "PATH": f"{venv / 'bin'}:{other / 'bin'}"}, venv) is None
    )
    # not the active venv: tffix overlays its activation itself, nothing to say
    assert shell_python_mismatch({"PATH": f"{other / 'bin'}"}, venv) is None
