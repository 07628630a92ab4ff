"""The fake TensorFlow's Python API and log behaviour, as tffix's probes and repairs use them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from tests.harness import SimEnv

pytestmark = pytest.mark.slow

VERIFY = """
import json, tensorflow as tf
tf.debugging.set_log_device_placement(True)
gpus = tf.config.list_physical_devices("GPU")
out = {"gpus": [g.name for g in gpus]}
if gpus:
    with tf.device("/GPU:0"):
        t = tf.reduce_sum(tf.ones([2, 2]))
    out["op_device"] = t.device; out["op_value"] = float(t.numpy())
print(json.dumps(out))
"""

OLD_FORMAT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}: [IWEF] \S+\.cc:\d+\] ")
ABSL_FORMAT = re.compile(r"^[IWEF]0000 00:00:\d+\.\d{6} +\d+ [\w.]+\.cc:\d+\] ")


def _json(report) -> dict:
    return json.loads(report.stdout.strip().splitlines()[-1])


def test_verification_snippet(sim_scenarios: Callable[[str], SimEnv]) -> None:
    report = sim_scenarios("healthy-tf218-andcuda").tf_report(VERIFY)
    assert report.returncode == 0, str(report)
    assert _json(report) == {
        "gpus": ["/physical_device:GPU:0"],
        "op_device": "/job:localhost/replica:0/task:0/device:GPU:0",
        "op_value": 4.0,
    }
    assert report.has_log("Executing op Sum in device /job:localhost/replica:0/task:0/device:GPU:0")


def test_log_formats_of_the_eras(sim_scenarios: Callable[[str], SimEnv]) -> None:
    old = sim_scenarios("healthy-tf218-andcuda").tf_report()
    new = sim_scenarios("healthy-tf221-andcuda").tf_report()
    assert old.log and all(OLD_FORMAT.match(line) for line in old.log if "] " in line[:120])
    assert new.log and all(ABSL_FORMAT.match(line) for line in new.log if "] " in line[:120])


def test_log_levels(sim_scenarios: Callable[[str], SimEnv]) -> None:
    env = sim_scenarios("cuda-libs-missing-tf218")
    quiet = env.tf_report(extra_env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    assert not quiet.has_log("Cannot dlopen")  # a W line
    assert quiet.has_log("Unable to register cuDNN factory")  # an E line
    assert env.tf_report(extra_env={"TF_CPP_MIN_LOG_LEVEL": "3"}).stderr == ""
    loud = env.tf_report(extra_env={"TF_CPP_MAX_VLOG_LEVEL": "1"})
    assert loud.has_log("Successfully opened dynamic library libcuda.so.1")
    assert loud.has_log(
        "Could not load dynamic library 'libcudart.so.12'; dlerror: libcudart.so.12"
    )
    assert not env.tf_report().has_log("Successfully opened dynamic library")


def test_cuda_visible_devices_picks_one_of_two(sim_scenarios: Callable[[str], SimEnv]) -> None:
    env = sim_scenarios("healthy-two-gpus")
    assert env.tf_report().gpus == ["/physical_device:GPU:0", "/physical_device:GPU:1"]
    one = env.tf_report(extra_env={"CUDA_VISIBLE_DEVICES": "1"})
    assert one.gpus == ["/physical_device:GPU:0"]
    assert one.data["gpu_details"][0]["pci_bus_id"] == "0000:02:00.0"


def test_config_api(sim_scenarios: Callable[[str], SimEnv]) -> None:
    code = """
import json, tensorflow as tf
out = {}
gpus = tf.config.list_physical_devices("GPU")
tf.config.experimental.set_memory_growth(gpus[0], True)
out["growth"] = tf.config.experimental.get_memory_growth(gpus[0])
tf.config.set_visible_devices([], "GPU")
out["visible"] = [d.name for d in tf.config.get_visible_devices()]
out["logical"] = [d.name for d in tf.config.list_logical_devices("GPU")]
with tf.device("/GPU:0"):
    out["device"] = tf.constant([[1.0, 2.0]]).device
try:
    tf.config.set_visible_devices(gpus, "GPU")
except RuntimeError as exc:
    out["late"] = str(exc)
out["cuda"] = tf.test.is_built_with_cuda()
out["info"] = tf.sysconfig.get_build_info()["cuda_version"]
out["repr"] = repr(gpus[0])
print(json.dumps(out))
"""
    report = sim_scenarios("healthy-tf218-andcuda").tf_report(code)
    assert report.returncode == 0, str(report)
    assert _json(report) == {
        "growth": True,
        "visible": ["/physical_device:CPU:0"],
        "logical": [],
        "device": "/job:localhost/replica:0/task:0/device:CPU:0",
        "late": "Visible devices cannot be modified after being initialized",
        "cuda": True,
        "info": "12.5.1",
        "repr": "PhysicalDevice(name='/physical_device:GPU:0', device_type='GPU')",
    }


def test_failing_op_raises_the_real_exception(sim_scenarios: Callable[[str], SimEnv]) -> None:
    code = "import tensorflow as tf\ntf.reduce_sum(tf.ones([2, 2]))\n"
    report = sim_scenarios("driver-too-old-470").tf_report(code)
    assert report.returncode == 1
    assert report.log[-1] == (
        "tensorflow.python.framework.errors_impl.InternalError: cudaGetDevice() failed. "
        "Status: CUDA driver version is insufficient for CUDA runtime version"
    )
