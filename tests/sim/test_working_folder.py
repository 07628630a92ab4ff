"""TensorFlow is checked in the user's working folder, as the user's own runs load it.

An empty entry of ``LD_LIBRARY_PATH`` (``:/x``, ``/x:``, ``/x::/y``) is the current folder to
the dynamic loader (ld.so(8)), so which cuDNN a process loads depends on where it runs. A check
run in a folder of tffix's own would load the wheel's cuDNN, call the venv healthy and leave
the user's runs failing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.harness import sim

pytestmark = pytest.mark.slow


def _stale_cudnn_in_working_folder(sim_index: Path, folder: Path) -> sim.SimEnv:
    spec = sim.load_scenario("ld-library-path-shadowing-conda-cudnn8")
    spec["system"] = [{"dir": "home", "libs": ["cudnn 8.1.0.77"]}]  # the folder runs start in
    spec["env"] = {}
    env = sim.make_env("stale-cudnn-in-working-folder", folder, sim_index, spec)
    # A leading empty entry: what `export LD_LIBRARY_PATH=:$LD_LIBRARY_PATH` leaves behind.
    env.env["LD_LIBRARY_PATH"] = os.pathsep + env.env.get("LD_LIBRARY_PATH", "")
    return env


def test_the_check_sees_the_cudnn_of_the_working_folder(
    sim_index: Path, tmp_path: Path
) -> None:
    env = _stale_cudnn_in_working_folder(sim_index, tmp_path)
    before = env.tf_report()
    assert "DNN library initialization failed" in before.data.get("dnn_error", ""), before

    done = env.run_tffix("--yes", "--json")
    outcome = json.loads(done.stdout)
    applied = [s for s in outcome["steps"] if s["status"] == "applied"]
    assert applied, done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr

    after = env.tf_report()  # a new shell: the activate script's edit applies
    assert "dnn_error" not in after.data, after
    assert after.data.get("dnn_device", "").endswith("GPU:0"), after

