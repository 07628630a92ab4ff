"""`tffix snapshot` on a simulated machine sees the fake driver and GPUs through the real
nvidia-ml-py, and resolves each CUDA soname to the file the fake TensorFlow actually loaded."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable

import pytest

from tests.harness import SimEnv

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not importlib.util.find_spec("tffix.collect"), reason="no tffix.collect yet"
    ),
]

SCENARIOS = [
    "healthy-tf218-andcuda",
    "healthy-two-gpus",
    "ld-library-path-shadowing-cudnn91",
    "cuda-libs-not-found-tf2161",
    "framework-pin-conflict-torch251",
    "cuda-visible-devices-minus-one",
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_snapshot_sees_the_simulated_machine(
    scenario: str, sim_scenarios: Callable[[str], SimEnv]
) -> None:
    env = sim_scenarios(scenario)
    proc = env.run_tffix("snapshot")
    assert proc.returncode == 0, proc.stderr
    snap = json.loads(proc.stdout)
    machine = env.spec["machine"]

    assert snap["driver"]["version"] == machine.get("driver", "550.54.14")
    assert snap["driver"]["cuda"] == machine.get("cuda", "12.4")
    conf = (env.machine_dir / "machine.conf").read_text().splitlines()
    want = [line.split("=", 1)[1] for line in conf if line.split("=")[0].endswith(".name")]
    assert [g["name"] for g in snap["gpus"]] == want  # NVML: before CUDA_VISIBLE_DEVICES
    majors = [line.split("=", 1)[1] for line in conf if line.split("=")[0].endswith(".cc_major")]
    minors = [line.split("=", 1)[1] for line in conf if line.split("=")[0].endswith(".cc_minor")]
    assert [g["compute_capability"] for g in snap["gpus"]] == [
        f"{a}.{b}" for a, b in zip(majors, minors, strict=True)
    ]

    report = env.tf_report()
    assert snap["tensorflow"]["gpus"] == report.gpus
    assert report.loaded, str(report)
    for soname, path in report.loaded.items():
        lib = snap["libraries"].get(soname)
        assert lib is not None, f"{soname} not in the snapshot"
        # `loaded` names the file under the name the loader searched (libcuda.so.1 for the
        # real libcuda.so.550.54.14), so compare real files.
        named = lib.get("loaded") or lib.get("path")
        seen = os.path.realpath(named) if named else None
        assert seen == path, f"{soname}: snapshot {lib}, TensorFlow loaded {path}"
        assert lib["loaded"] == lib["path"], f"{soname}: the resolved file is the loaded one"
    for soname in env.spec["expect"].get("not_loaded", []):
        assert snap["libraries"][soname]["path"] is None
