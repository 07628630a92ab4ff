"""The fake NVIDIA driver: libcuda.so.1 (CUDA_VISIBLE_DEVICES as the real driver applies it) and
libnvidia-ml.so.1 through the real nvidia-ml-py, each driven in a child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

UUIDS = [
    "GPU-aaaaaaaa-1111-2222-3333-444444444444",
    "GPU-bbbbbbbb-1111-2222-3333-444444444444",
    "GPU-abcdef00-1111-2222-3333-444444444444",
]
MACHINE = {
    "driver": "550.54.14",
    "cuda": "12.4",
    "gpus": [
        {"name": "NVIDIA A100-SXM4-40GB", "uuid": UUIDS[0]},
        {"name": "NVIDIA GeForce RTX 3090", "uuid": UUIDS[1]},
        {"name": "Tesla T4", "uuid": UUIDS[2]},
    ],
}
NAMES = [g["name"] for g in MACHINE["gpus"]]

LIBCUDA_CHILD = r"""
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])
out = {"init": lib.cuInit(0)}
ver = ctypes.c_int()
lib.cuDriverGetVersion(ctypes.byref(ver))
out["driver"] = ver.value
count = ctypes.c_int(-1)
out["count_rc"] = lib.cuDeviceGetCount(ctypes.byref(count))
out["names"] = []
for i in range(max(count.value, 0)):
    dev = ctypes.c_int()
    lib.cuDeviceGet(ctypes.byref(dev), i)
    buf = ctypes.create_string_buffer(100)
    lib.cuDeviceGetName(buf, 100, dev)
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.cuDeviceGetAttribute(ctypes.byref(major), 75, dev)
    lib.cuDeviceGetAttribute(ctypes.byref(minor), 76, dev)
    mem = ctypes.c_size_t()
    lib.cuDeviceTotalMem_v2(ctypes.byref(mem), dev)
    bus = ctypes.create_string_buffer(32)
    lib.cuDeviceGetPCIBusId(bus, 32, dev)
    out["names"].append(buf.value.decode())
    out.setdefault("cc", []).append("%d.%d" % (major.value, minor.value))
    out.setdefault("bus", []).append(bus.value.decode())
    out.setdefault("mem", []).append(mem.value)
name = ctypes.c_char_p()
lib.cuGetErrorName(out["init"], ctypes.byref(name))
out["init_name"] = name.value.decode() if name.value else None
print(json.dumps(out))
"""


def _libcuda(machine_dir: Path, visible: str | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    proc = subprocess.run(
        [sys.executable, "-c", LIBCUDA_CHILD, str(machine_dir / "libcuda.so.1")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


@pytest.fixture
def three_gpus(make_machine: Callable[..., Path]) -> Path:
    return make_machine(MACHINE)


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        (None, [0, 1, 2]),  # unset: every device
        ("", []),  # empty: none
        ("-1", []),  # an invalid index: none
        ("0", [0]),
        ("2,0", [2, 0]),  # order is the variable's
        ("1,5,2", [1]),  # the first invalid entry ends the list
        ("3", []),  # out of range
        ("0,foo,1", [0]),
        (UUIDS[1], [1]),  # full UUID
        ("GPU-bbbb", [1]),  # unique UUID prefix
        ("GPU-abc,0", [2, 0]),
        ("GPU-a", []),  # ambiguous prefix (aaaaaaaa, abcdef00) is invalid
        ("GPU-ffff", []),  # UUID of no device
        ("1,GPU-ffff,0", [1]),
    ],
)
def test_libcuda_applies_cuda_visible_devices_in_cuinit(
    three_gpus: Path, visible: str | None, expected: list[int]
) -> None:
    out = _libcuda(three_gpus, visible)
    if expected:
        assert out["init"] == 0
        assert out["names"] == [NAMES[i] for i in expected]
    else:
        assert out["init"] == 100
        assert out["init_name"] == "CUDA_ERROR_NO_DEVICE"
        assert out["count_rc"] == 3  # CUDA_ERROR_NOT_INITIALIZED
    assert out["driver"] == 12040


def test_libcuda_reports_the_described_hardware(three_gpus: Path) -> None:
    out = _libcuda(three_gpus, None)
    assert out["cc"] == ["8.0", "8.6", "7.5"]
    assert out["bus"] == ["0000:01:00.0", "0000:02:00.0", "0000:03:00.0"]
    assert out["mem"][0] == 40960 * 1024 * 1024


@pytest.mark.parametrize(
    ("machine", "code", "name"),
    [
        ({"kernel_module": False}, 100, "CUDA_ERROR_NO_DEVICE"),
        ({"kernel_module_version": "550.40.07"}, 803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"),
        ({"uvm": False}, 999, "CUDA_ERROR_UNKNOWN"),
        ({"gpus": []}, 100, "CUDA_ERROR_NO_DEVICE"),
    ],
)
def test_libcuda_cuinit_fails_as_the_machine_says(
    make_machine: Callable[..., Path], machine: Mapping[str, Any], code: int, name: str
) -> None:
    out = _libcuda(make_machine({**MACHINE, **machine}), None)
    assert (out["init"], out["init_name"]) == (code, name)


NVML_CHILD = r"""
import json, pynvml
out = {}
try:
    pynvml.nvmlInit()
except pynvml.NVMLError as exc:
    print(json.dumps({"error": str(exc), "type": type(exc).__name__}))
    raise SystemExit(0)
out["driver"] = pynvml.nvmlSystemGetDriverVersion()
out["cuda"] = pynvml.nvmlSystemGetCudaDriverVersion()
out["cuda_v2"] = pynvml.nvmlSystemGetCudaDriverVersion_v2()
n = pynvml.nvmlDeviceGetCount()
out["gpus"] = []
for i in range(n):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    mem = pynvml.nvmlDeviceGetMemoryInfo(h)
    out["gpus"].append({
        "name": pynvml.nvmlDeviceGetName(h),
        "uuid": pynvml.nvmlDeviceGetUUID(h),
        "cc": list(pynvml.nvmlDeviceGetCudaComputeCapability(h)),
        "total": mem.total,
        "bus": pynvml.nvmlDeviceGetPciInfo(h).busId,
        "index": pynvml.nvmlDeviceGetIndex(h),
    })
if n:
    last = pynvml.nvmlDeviceGetHandleByPciBusId(out["gpus"][-1]["bus"])
    out["by_bus"] = pynvml.nvmlDeviceGetName(last)
out["err3"] = pynvml.nvmlErrorString(3)
pynvml.nvmlShutdown()
print(json.dumps(out))
"""


def _nvml(machine_dir: Path, **extra: str) -> dict[str, Any]:
    env = {**os.environ, "LD_LIBRARY_PATH": str(machine_dir), **extra}
    proc = subprocess.run(
        [sys.executable, "-c", NVML_CHILD], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


def test_nvml_through_real_nvidia_ml_py(three_gpus: Path) -> None:
    out = _nvml(three_gpus, CUDA_VISIBLE_DEVICES="1")  # NVML ignores CUDA_VISIBLE_DEVICES
    assert out["driver"] == "550.54.14"
    assert out["cuda"] == out["cuda_v2"] == 12040
    assert [g["name"] for g in out["gpus"]] == NAMES
    assert [g["uuid"] for g in out["gpus"]] == UUIDS
    assert [g["cc"] for g in out["gpus"]] == [[8, 0], [8, 6], [7, 5]]
    assert out["gpus"][1]["total"] == 24576 * 1024 * 1024
    assert out["gpus"][2]["bus"] == "00000000:03:00.0"
    assert [g["index"] for g in out["gpus"]] == [0, 1, 2]
    assert out["by_bus"] == "Tesla T4"
    assert out["err3"] == "Not Supported"


@pytest.mark.parametrize(
    ("machine", "error"),
    [
        ({"kernel_module": False}, "Driver Not Loaded"),
        ({"kernel_module_version": "550.40.07"}, "RM has detected an NVML/RM version mismatch."),
        ({"nvml": False}, "NVML Shared Library Not Found"),
        ({"driver": False}, "NVML Shared Library Not Found"),
    ],
)
def test_nvml_init_fails_as_the_machine_says(
    make_machine: Callable[..., Path], machine: Mapping[str, Any], error: str
) -> None:
    out = _nvml(make_machine({**MACHINE, **machine}))
    assert out["error"] == error


def test_driver_is_installed_like_a_real_one(three_gpus: Path) -> None:
    assert os.readlink(three_gpus / "libcuda.so.1") == "libcuda.so.550.54.14"
    assert os.readlink(three_gpus / "libnvidia-ml.so.1") == "libnvidia-ml.so.550.54.14"
    assert (three_gpus / "machine.conf").read_text().count("gpu_count=3") == 1


def test_sysroot_shows_the_host_facts_probes_read(make_machine: Callable[..., Path]) -> None:
    from tffix.probes.gpu import device_nodes, parse_proc_version
    from tffix.probes.host import detect_container, detect_wsl

    root = make_machine({**MACHINE, "kernel_module_version": "550.40.07"}).parents[2]
    text = (root / "proc/driver/nvidia/version").read_text()
    assert parse_proc_version(text) == "550.40.07"
    assert device_nodes(str(root / "dev")) == [
        "nvidia-uvm",
        "nvidia-uvm-tools",
        "nvidia0",
        "nvidia1",
        "nvidia2",
        "nvidiactl",
    ]
    assert detect_container(root, {}) is None
    assert not detect_wsl(root, {})

    docker = make_machine({"driver": False, "gpus": [], "container": "docker"}, "docker").parents[2]
    assert detect_container(docker, {}) == "docker"
    assert not (docker / "proc/driver/nvidia/version").exists()
    assert device_nodes(str(docker / "dev")) == []

    wsl = make_machine({**MACHINE, "wsl": True, "driver_dir": "usr/lib/wsl/lib"}, "wsl")
    assert wsl.parts[-4:] == ("usr", "lib", "wsl", "lib")
    assert detect_wsl(wsl.parents[3], {})
    unloaded = make_machine({**MACHINE, "kernel_module": False}, "unloaded").parents[2]
    assert not (unloaded / "proc/driver/nvidia/version").exists()
