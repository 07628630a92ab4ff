"""Log lines -> signals; noise never signals; pasted text -> a partial snapshot."""

from __future__ import annotations

import pytest

from tffix.diagnosis import diagnose, exit_code
from tffix.errors import ExitCode
from tffix.logparse import scan_log, snapshot_from_text
from tffix.model import UNKNOWN, Driver
from tffix.ruleset import Ruleset

NOISE = [
    "E0000 00:00:1745040030.652070 1012 cuda_dnn.cc:8579] Unable to register cuDNN factory: "
    "Attempting to register factory for plugin cuDNN when one has already been registered",
    "2026-11-26 10:00:00: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:477] Unable "
    "to register cuFFT factory: Attempting to register factory for plugin cuFFT",
    "W tensorflow/compiler/tf2tensorrt/utils/py_utils.cc:38] TF-TRT Warning: "
    "Could not find TensorRT",
    "I external/local_tsl/tsl/platform/default/dso_loader.cc:70] Could not load dynamic library "
    "'libnvinfer.so.8.6.1'; dlerror: libnvinfer.so.8.6.1: cannot open shared object file",
    "I cuda_executor.cc:984] could not open file to read NUMA node: "
    "/sys/bus/pci/devices/0000:01:00.0/numa_node",
    "Your kernel may have been built without NUMA support.",
    "I tensorflow/core/platform/cpu_feature_guard.cc:210] This TensorFlow binary is optimized to "
    "use available CPU instructions in performance-critical operations.",
    "I tensorflow/core/util/port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results. To turn them off, set `TF_ENABLE_ONEDNN_OPTS=0`.",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
]


def test_known_noise_never_signals(rules: Ruleset):
    facts = scan_log(NOISE, rules)
    assert facts.hits == ()
    assert facts.noise == tuple(range(len(NOISE)))


def test_noise_alone_gives_no_error_and_says_it_is_noise(rules: Ruleset):
    snap = snapshot_from_text("\n".join(NOISE), rules)
    diag = diagnose(snap, rules)
    assert [(f.id, f.severity.value) for f in diag.findings] == [("healthy", "info")]
    assert diag.gpu_visible is None and exit_code(diag) == ExitCode.OK
    assert f"{len(NOISE)} log line(s) are known noise" in diag.findings[0].title
    assert diag.findings[0].evidence == tuple(f"log[{i}]" for i in range(len(NOISE)))


def test_no_noise_and_no_error_gives_no_finding(rules: Ruleset):
    snap = snapshot_from_text("python train.py\nEpoch 1/10\n", rules)
    assert diagnose(snap, rules).findings == ()


@pytest.mark.parametrize(
    ("line", "signal", "groups"),
    [
        (
            "E0000 cuda_dnn.cc:522] Loaded runtime CuDNN library: 9.1.0 but source was compiled "
            "with: 9.3.0.  CuDNN library needs to have matching major version",
            "cudnn-runtime-mismatch",
            {"loaded": "9.1.0", "compiled": "9.3.0"},
        ),
        (
            "Loaded runtime CuDNN library: 8.1.0 but source was compiled with: 8.6.0.",
            "cudnn-runtime-mismatch",
            {"loaded": "8.1.0", "compiled": "8.6.0"},
        ),
        (
            "Could not load dynamic library 'libcusolver.so.10'; dlerror: libcusolver.so.10: "
            "cannot open shared object file",
            "dlopen-failed",
            {"soname": "libcusolver.so.10"},
        ),
        (
            "kernel version 470... does not match DSO version 515... -- cannot find working "
            "devices in this configuration",
            "kernel-dso-mismatch",
            {"kernel": "470", "dso": "515"},
        ),
        ("Adding visible gpu devices: 0", "gpu-listed", {}),
        (
            'ERROR: No matching distribution found for tensorrt-libs==8.6.1; extra == "and-cuda"',
            "pin-missing",
            {"requirement": "tensorrt-libs==8.6.1"},
        ),
        ("ERROR: No matching distribution found for tensorflow", "no-tensorflow-wheel", {}),
        ("pip install tensorflow[and-cuda]==2.15.0", "pip-install-and-cuda", {"version": "2.15.0"}),
        (
            "TensorFlow was not built with CUDA kernel binaries compatible with compute "
            "capability 12.0. CUDA kernels will be jit-compiled from PTX",
            "ptx-jit",
            {"compute_capability": "12.0"},
        ),
        ("Could not load dynamic library 'libcuda.so.1'; dlerror: ...", "libcuda-missing", {}),
        ("Could not load dynamic library 'cudart64_110.dll'; dlerror: ...", "dll-not-found", {}),
    ],
)
def test_signatures(line: str, signal: str, groups: dict[str, str], rules: Ruleset):
    hit = scan_log([line], rules).first(signal)
    assert hit is not None, scan_log([line], rules).hits
    assert hit.evidence == "log[0]"
    for key, value in groups.items():
        assert hit.groups[key] == value


def test_a_huge_line_is_matched_on_its_start_only(rules: Ruleset):
    line = "Cannot dlopen some GPU libraries." + "x" * 2_000_000
    facts = scan_log([line], rules)
    assert facts.first("cannot-dlopen") is not None
    assert len(facts.hits[0].line) < 5000


def test_pasted_pip_list_and_smi_become_facts(rules: Ruleset):
    text = "\n".join(
        [
            "$ nvidia-smi",
            "| NVIDIA-SMI 550.54.14   Driver Version: 550.54.14   CUDA Version: 12.4     |",
            "$ pip list",
            "Package                      Version",
            "---------------------------- -----------",
            "numpy                        2.0.2",
            "tensorflow                   2.18.1",
            "nvidia-cudnn-cu12            9.1.0.70",
            "$ python -c 'import tensorflow'",
            "/home/u/.venv/lib/python3.11/site-packages/tensorflow/__init__.py",
            "export CUDA_VISIBLE_DEVICES=-1",
            "Loaded runtime CuDNN library: 9.1.0 but source was compiled with: 9.3.0.",
        ]
    )
    snap = snapshot_from_text(text, rules)
    assert snap.packages == {
        "numpy": "2.0.2",
        "tensorflow": "2.18.1",
        "nvidia-cudnn-cu12": "9.1.0.70",
    }
    assert isinstance(snap.driver, Driver) and snap.driver.version == "550.54.14"
    assert snap.python.version == "3.11"
    assert snap.env["CUDA_VISIBLE_DEVICES"] == "-1"
    assert snap.platform.os == "linux"
    ids = [f.id for f in diagnose(snap, rules).findings]
    assert {"cuda-visible-devices-masked", "cudnn-version-mismatch"} <= set(ids)


def test_pip_freeze_lines(rules: Ruleset):
    snap = snapshot_from_text("tensorflow-cpu==2.18.1\nnumpy==2.0.2\n", rules)
    assert snap.packages == {"tensorflow-cpu": "2.18.1", "numpy": "2.0.2"}
    assert snap.driver is UNKNOWN and snap.gpus is None
    assert "tf-cpu-only-package" in [f.id for f in diagnose(snap, rules).findings]


def test_pip_list_rows_pasted_without_their_header(rules: Ruleset):
    text = (
        "tensorflow                   2.16.1\n"
        "nvidia-cudnn-cu12            8.9.7.29\n"
        "tensorflow 2 is great on 3 GPUs\n"  # prose: one space, not pip's column gap
        "Epoch                        12\n"  # not a package that matters here
    )
    snap = snapshot_from_text(text, rules)
    assert snap.packages == {"tensorflow": "2.16.1", "nvidia-cudnn-cu12": "8.9.7.29"}
