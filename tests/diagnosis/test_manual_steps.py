"""Manual steps name the command that fits what the snapshot shows."""

from __future__ import annotations

import json

from tests.diagnosis.conftest import SNAPSHOTS
from tffix.diagnosis import diagnose
from tffix.document import parse_snapshot
from tffix.ruleset import Ruleset


def _commands(doc: dict[str, object], rules: Ruleset) -> list[str]:
    diag = diagnose(parse_snapshot(doc), rules)
    return [c for step in diag.plan for c in step.commands]


def test_an_installed_driver_whose_module_is_not_loaded_is_loaded_first(rules: Ruleset) -> None:
    path = SNAPSHOTS / "driver-not-loaded" / "pos-module-unloaded-gpu-on-pci.json"
    doc = json.loads(path.read_text())
    commands = _commands(doc, rules)
    assert commands[0] == "sudo modprobe nvidia && nvidia-smi"
    del doc["libraries"]["libcuda.so.1"]  # nothing of the driver here: install it
    assert not any("modprobe" in c for c in _commands(doc, rules))


def test_another_python_ahead_of_the_active_venv_is_put_back_behind_it(rules: Ruleset) -> None:
    path = SNAPSHOTS / "wrong-interpreter" / "pos-active-venv-behind-another-python.json"
    commands = _commands(json.loads(path.read_text()), rules)
    # the venv's bin first, quoted for the shell (tffix.shellquote.prepend_path)
    assert commands[0] == 'export PATH=/home/u/proj/.venv/bin"${PATH:+:$PATH}"'
    assert commands[1] == "hash -r"
    assert not any("ipykernel" in c for c in commands)


def test_a_shadowed_cudnn_is_named_before_a_shadowed_cuda_runtime(rules: Ruleset) -> None:
    doc = json.loads((SNAPSHOTS / "healthy.json").read_text())
    stale = "/usr/local/cuda-12.4/lib64"
    site = "/home/u/proj/.venv/lib/python3.11/site-packages/nvidia"
    doc["env"]["LD_LIBRARY_PATH"] = stale

    def shadowed(soname: str, version: str, wheel: str) -> dict[str, object]:
        path = f"{stale}/{soname}"
        candidates = [path, f"{site}/{wheel}/lib/{soname}"]
        return {
            "path": path,
            "version": version,
            "via": "LD_LIBRARY_PATH",
            "candidates": candidates,
        }

    doc["libraries"] = {
        "libcudart.so.12": shadowed("libcudart.so.12", "12.4", "cuda_runtime"),
        "libcudnn.so.9": shadowed("libcudnn.so.9", "9.1.0", "cudnn"),
    }
    diag = diagnose(parse_snapshot(doc), rules)
    shadow = next(f for f in diag.findings if f.id == "ld-library-path-shadowing")
    assert "libcudnn.so.9 9.1.0" in shadow.title
