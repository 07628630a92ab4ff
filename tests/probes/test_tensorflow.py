"""The TensorFlow probe and the re-verification snippet, against stand-in ``tensorflow``
modules put on ``PYTHONPATH`` of a real child interpreter (the snapshot tests install one from
a wheel; these cover the answers a GPU machine would give)."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from tffix._subprocess import Completed
from tffix.model import UNKNOWN
from tffix.probes.tensorflow import interpret, loaded_libraries, probe_tensorflow, verify_gpu

GPU_TF = """
import os, sys
__version__ = "2.18.1"
__file__ = __file__
class _Dev:
    def __init__(self, name): self.name = name; self.device_type = "GPU"
class _T:
    def __init__(self, device): self.device = device
    def numpy(self): return 4.0
class config:
    @staticmethod
    def list_physical_devices(kind=None):
        if os.environ.get("CUDA_VISIBLE_DEVICES") == "-1":
            return []
        return [_Dev("/physical_device:GPU:0")]
class sysconfig:
    @staticmethod
    def get_build_info():
        return {"cuda_version": "12.5.1", "cudnn_version": "9", "is_cuda_build": "True",
                "cuda_compute_capabilities": "sm_60,sm_70,compute_90"}
class debugging:
    @staticmethod
    def set_log_device_placement(on): pass
class device:
    def __init__(self, name): self.name = name
    def __enter__(self): return self
    def __exit__(self, *a): return False
def ones(shape): return None
def reduce_sum(x):
    if os.environ.get("FAKE_OP_FAILS"):
        sys.stderr.write("E0000 cuda_dnn.cc:522] Loaded runtime CuDNN library: 9.1.0 but "
                         "source was compiled with: 9.3.0.\\n")
        raise RuntimeError("DNN library initialization failed.")
    return _T("/job:localhost/replica:0/task:0/device:GPU:0")
sys.stderr.write("I0000 gpu_device.cc:2313] Found device 0 with properties:\\n")
"""


@pytest.fixture
def fake_tf(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(textwrap.dedent(GPU_TF))
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path)}


def test_probe_reports_version_build_gpus_and_log(fake_tf: dict[str, str]) -> None:
    report = probe_tensorflow(Path(sys.executable), fake_tf, timeout=60)
    info = report.info
    assert info is not None and info is not UNKNOWN
    assert info.version == "2.18.1"
    assert info.import_error is None
    assert info.gpus == ("/physical_device:GPU:0",)
    assert info.build is not None
    assert info.build.is_cuda_build is True  # "True" as text, as some builds print it
    assert info.build.cuda_compute_capabilities == ("sm_60", "sm_70", "compute_90")
    assert info.exit is None
    assert report.unknown is None
    assert report.log == ("I0000 gpu_device.cc:2313] Found device 0 with properties:",)


def test_no_tensorflow_module_is_none(tmp_path: Path) -> None:
    report = probe_tensorflow(Path(sys.executable), {"PYTHONPATH": str(tmp_path)}, timeout=60)
    assert report.info is None
    assert report.unknown is None


def test_verify_gpu_runs_the_op_on_the_gpu(fake_tf: dict[str, str]) -> None:
    result = verify_gpu(Path(sys.executable), fake_tf, timeout=60)
    assert result.gpus == ("/physical_device:GPU:0",)
    assert result.op_device == "/job:localhost/replica:0/task:0/device:GPU:0"
    assert result.op_value == 4.0
    assert result.ok
    assert result.error is None


def test_verify_gpu_reports_the_failing_op(fake_tf: dict[str, str]) -> None:
    result = verify_gpu(Path(sys.executable), {**fake_tf, "FAKE_OP_FAILS": "1"}, timeout=60)
    assert result.gpus == ("/physical_device:GPU:0",)
    assert not result.ok
    assert result.error == "RuntimeError: DNN library initialization failed."
    assert any("Loaded runtime CuDNN library: 9.1.0" in line for line in result.log)


def test_verify_gpu_without_a_visible_gpu(fake_tf: dict[str, str]) -> None:
    result = verify_gpu(Path(sys.executable), {**fake_tf, "CUDA_VISIBLE_DEVICES": "-1"})
    assert result.gpus == ()
    assert result.op_device is None
    assert not result.ok


def test_output_before_a_crash_is_kept() -> None:
    out = (
        '@@tffix-tf {"stage": "importing"}\n'
        '@@tffix-tf {"stage": "imported", "import_error": null, "version": "2.16.1"}\n'
        '@@tffix-tf {"stage": "build-info", "import_error": null, "version": "2.16.1",'
        ' "build": {"cuda_version": "12.3", "is_cuda_build": true}}\n'
    )
    result = Completed(("python",), -11, out, "Segmentation fault\n", 1.5)
    report = interpret(result, 120)
    assert report.info is not None and report.info is not UNKNOWN
    assert report.info.version == "2.16.1"
    assert report.info.import_error is None
    assert report.info.build is not None and report.info.build.cuda_version == "12.3"
    assert report.info.gpus is None
    assert report.info.exit == "killed by SIGSEGV"
    assert report.unknown == (
        "the TensorFlow child ended while listing GPUs (tf.config.list_physical_devices) "
        "(killed by SIGSEGV)"
    )


def test_a_child_that_never_started() -> None:
    result = Completed(("python",), None, "", "", 0.0, error="[Errno 2] No such file")
    report = interpret(result, 120)
    assert report.unknown is not None and "could not start" in report.unknown


def test_loaded_libraries_from_maps() -> None:
    maps = [
        "/v/site-packages/nvidia/cudnn/lib/libcudnn.so.9",
        "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/v/site-packages/nvidia/cudnn/lib/libcudnn_graph.so.9",
    ]
    assert loaded_libraries(maps) == {
        "libcudnn.so.9": "/v/site-packages/nvidia/cudnn/lib/libcudnn.so.9",
        "libcuda.so.550.54.14": "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14",
        "libcudnn_graph.so.9": "/v/site-packages/nvidia/cudnn/lib/libcudnn_graph.so.9",
    }


def test_a_flood_of_log_lines_is_bounded() -> None:
    from tffix.probes.tensorflow import MAX_LOG_LINES

    stderr = "".join(f"I0000 line {i}\n" for i in range(MAX_LOG_LINES + 10))
    out = '@@tffix-tf {"stage": "done", "import_error": null, "version": "2.21.0"}\n'
    report = interpret(Completed(("python",), 0, out, stderr, 1.0), 120)
    assert len(report.log) == MAX_LOG_LINES
    assert report.log[0] == "I0000 line 0"
    assert report.log[-1] == "[tffix: 11 more log lines dropped]"
