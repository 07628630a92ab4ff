"""Manual steps name the command that fits what the snapshot shows."""

from __future__ import annotations

import json

from tests.diagnosis.conftest import SNAPSHOTS
from tffix.diagnose import diagnose
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
    assert commands[0].startswith('export PATH="/home/u/proj/.venv/bin:$PATH"')
    assert not any("ipykernel" in c for c in commands)
