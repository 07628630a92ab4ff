"""The driver probe: the real absence of NVML on a machine without a driver, and a fake NVML
module (the GPU is the one thing tests may fake) for what a driver answers."""

from __future__ import annotations

import ctypes.util
from dataclasses import dataclass
from pathlib import Path

import pytest

from tffix.model import Driver, Gpu
from tffix.probes.gpu import cuda_from_int, parse_proc_version, probe_driver

PROC_TEXT = (
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n"
    "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n"
)


def _has_nvml() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


@pytest.mark.skipif(_has_nvml(), reason="this machine has an NVIDIA driver")
def test_real_absence_of_nvml_is_no_driver_with_a_reason(tmp_path: Path) -> None:
    report = probe_driver(proc_version=str(tmp_path / "none"), dev_dir=str(tmp_path))
    assert report.driver is None
    assert report.gpus is None
    assert "libnvidia-ml.so.1 not found" in str(report.extra["driver_probe"])
    assert report.extra["device_nodes"] == []


@pytest.mark.skipif(_has_nvml(), reason="this machine has an NVIDIA driver")
def test_kernel_module_without_nvml_still_names_the_driver(tmp_path: Path) -> None:
    proc = tmp_path / "version"
    proc.write_text(PROC_TEXT)
    (tmp_path / "dev").mkdir()
    for node in ("nvidia0", "nvidiactl", "nvidia-uvm", "null"):
        (tmp_path / "dev" / node).write_text("")
    report = probe_driver(proc_version=str(proc), dev_dir=str(tmp_path / "dev"))
    assert report.driver == Driver(version="550.54.14", source="proc", kernel_module="550.54.14")
    assert report.extra["device_nodes"] == ["nvidia-uvm", "nvidia0", "nvidiactl"]


def test_parse_proc_version() -> None:
    assert parse_proc_version(PROC_TEXT) == "550.54.14"
    aarch = "NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  540.4.0  Release Build\n"
    assert parse_proc_version(aarch) == "540.4.0"
    assert parse_proc_version("garbage") is None


def test_cuda_from_int() -> None:
    assert cuda_from_int(12040) == "12.4"
    assert cuda_from_int(11080) == "11.8"


# --------------------------------------------------------------------------- fake NVML


class NVMLError(Exception):
    pass


class NVMLError_LibRmVersionMismatch(NVMLError):  # pynvml's class name
    pass


class NVMLError_DriverNotLoaded(NVMLError):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


@dataclass
class Memory:
    total: int


class FakeNvml:
    """The calls the probe makes, answered for a two-GPU machine (the second in MIG mode)."""

    def __init__(self, init_error: Exception | None = None) -> None:
        self.init_error = init_error
        self.shutdown = 0

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.shutdown += 1

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"550.54.14"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12040

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> str:
        return ["NVIDIA GeForce RTX 3090", "NVIDIA A100-SXM4-40GB"][h]

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return f"GPU-0000000{h}"

    def nvmlDeviceGetCudaComputeCapability(self, h: int) -> tuple[int, int]:
        return [(8, 6), (8, 0)][h]

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Memory:
        return Memory(24 * 1024**3)

    def nvmlDeviceGetMigMode(self, h: int) -> tuple[int, int]:
        if h == 0:
            raise NVMLError_NotSupported("Not Supported")
        return (1, 1)


def test_driver_and_gpus_from_nvml(tmp_path: Path) -> None:
    fake = FakeNvml()
    report = probe_driver(nvml=fake, proc_version=str(tmp_path / "none"), dev_dir=str(tmp_path))
    assert report.driver == Driver(version="550.54.14", cuda="12.4", source="nvml")
    assert report.gpus == (
        Gpu("NVIDIA GeForce RTX 3090", "8.6", "GPU-00000000", 0, 24576, None),
        Gpu("NVIDIA A100-SXM4-40GB", "8.0", "GPU-00000001", 1, 24576, True),
    )
    assert fake.shutdown == 1


def test_version_mismatch_is_a_driver_with_an_error(tmp_path: Path) -> None:
    proc = tmp_path / "version"
    proc.write_text(PROC_TEXT)
    fake = FakeNvml(NVMLError_LibRmVersionMismatch("RM has detected an NVML/RM version mismatch."))
    report = probe_driver(nvml=fake, proc_version=str(proc), dev_dir=str(tmp_path))
    assert report.driver == Driver(
        source="nvml", kernel_module="550.54.14", error="Driver/library version mismatch"
    )
    assert report.gpus is None


def test_driver_not_loaded_is_no_driver(tmp_path: Path) -> None:
    fake = FakeNvml(NVMLError_DriverNotLoaded("Driver Not Loaded"))
    report = probe_driver(nvml=fake, proc_version=str(tmp_path / "x"), dev_dir=str(tmp_path))
    assert report.driver is None
    assert "NVML_ERROR_DRIVER_NOT_LOADED" in str(report.extra["driver_probe"])


def test_pci_bus_lists_nvidia_display_controllers(tmp_path: Path) -> None:
    from tffix.probes.gpu import pci_nvidia_devices

    devices = {
        "0000:00:00.0": ("0x8086", "0x060000"),  # host bridge
        "0000:01:00.0": ("0x10de", "0x030000"),  # GeForce (VGA)
        "0000:01:00.1": ("0x10de", "0x040300"),  # its HDMI audio function
        "0000:41:00.0": ("0x10de", "0x030200"),  # data-centre GPU (3D controller)
    }
    for name, (vendor, klass) in devices.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "vendor").write_text(vendor + "\n")
        (tmp_path / name / "class").write_text(klass + "\n")
    assert pci_nvidia_devices(str(tmp_path)) == ["0000:01:00.0", "0000:41:00.0"]
    assert pci_nvidia_devices(str(tmp_path / "absent")) is None
