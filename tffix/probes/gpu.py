"""The driver probe: the NVIDIA driver and its GPUs, through NVML (nvidia-ml-py).

The only module that talks to NVML. It runs in tffix's own process: ``libnvidia-ml.so.1`` is
found the way any process finds it (``LD_LIBRARY_PATH`` as it was when the process started,
then the loader cache), which is also how TensorFlow 2.21 finds it. Cross-checks that need no
library: ``/proc/driver/nvidia/version`` (the kernel module) and the ``/dev/nvidia*`` nodes.

``driver`` is ``None`` when no driver answered; *why* goes to ``extra["driver_probe"]``.
A driver that answered with an error (``Driver/library version mismatch``) is a ``Driver`` with
``error`` set. NVML handles never leave this module. Tests pass a fake NVML module (a GPU is
the one thing they may fake); the file paths are parameters so tests can point at tmp files.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import field
from types import ModuleType
from typing import Any

from tffix.model import Driver, Gpu
from tffix.record import record

PROC_VERSION = "/proc/driver/nvidia/version"
DEV_DIR = "/dev"
PCI_DIR = "/sys/bus/pci/devices"

_NVIDIA_VENDOR = "0x10de"
_DISPLAY_CLASS = "0x03"
"""PCI class 0x03xxxx: display controllers (VGA 0x0300; 3D controller 0x0302, data-centre GPUs)."""

_NVML_LOCK = threading.Lock()
"""NVML is initialised and shut down once per probe; two probes must not interleave."""

_NO_DRIVER_ERRORS = {
    "NVMLError_LibraryNotFound": "libnvidia-ml.so.1 not found (NVML_ERROR_LIBRARY_NOT_FOUND)",
    "NVMLError_DriverNotLoaded": "the NVIDIA kernel driver is not loaded "
    "(NVML_ERROR_DRIVER_NOT_LOADED)",
}
"""NVML failures that mean "no driver answered" (driver: null)."""


@record
class DriverReport:
    """The driver probe's answer."""

    driver: Driver | None
    gpus: tuple[Gpu, ...] | None
    extra: dict[str, object] = field(default_factory=dict)


_KMOD = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)")


def parse_proc_version(text: str) -> str | None:
    """The kernel module's version from ``/proc/driver/nvidia/version``."""
    match = _KMOD.search(text)
    if match:
        return match.group(1)
    match = re.search(r"NVRM version:.*?\s(\d{3}\.\d+(?:\.\d+)?)\s", text)
    return match.group(1) if match else None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def cuda_from_int(value: int) -> str:
    """NVML's ``12040`` -> ``12.4``."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def _try(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception:  # a function the driver lacks, or NOT_SUPPORTED: the field stays unknown
        return None


def _gpus(nvml: Any) -> tuple[Gpu, ...]:
    count = nvml.nvmlDeviceGetCount()
    gpus = []
    for index in range(count):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        cc = _try(lambda: nvml.nvmlDeviceGetCudaComputeCapability(handle))  # noqa: B023 (called at once)
        memory = _try(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))  # noqa: B023 (called at once)
        mig = _try(lambda: nvml.nvmlDeviceGetMigMode(handle))  # noqa: B023 (called at once)
        name = _try(lambda: nvml.nvmlDeviceGetName(handle))  # noqa: B023 (called at once)
        uuid = _try(lambda: nvml.nvmlDeviceGetUUID(handle))  # noqa: B023 (called at once)
        gpus.append(
            Gpu(
                name=None if name is None else _text(name),
                compute_capability=None if cc is None else f"{cc[0]}.{cc[1]}",
                uuid=None if uuid is None else _text(uuid),
                index=index,
                memory_mib=None if memory is None else int(memory.total) // (1024 * 1024),
                mig=None if mig is None else bool(mig[0]),
            )
        )
    return tuple(gpus)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def device_nodes(dev_dir: str = DEV_DIR) -> list[str]:
    """``/dev/nvidia*`` names (``nvidia0``, ``nvidiactl``, ``nvidia-uvm``, …)."""
    try:
        return sorted(n for n in os.listdir(dev_dir) if n.startswith("nvidia"))
    except OSError:
        return []


def pci_nvidia_devices(pci_dir: str = PCI_DIR) -> list[str] | None:
    """PCI addresses of NVIDIA display/3D controllers, whatever the driver's state.

    This tells "no NVIDIA GPU in this machine" apart from "a GPU, but no working driver".
    None when the PCI bus cannot be read (no sysfs, another OS).
    """
    try:
        names = sorted(os.listdir(pci_dir))
    except OSError:
        return None
    found = []
    for name in names:
        vendor = (_read(os.path.join(pci_dir, name, "vendor")) or "").strip().lower()
        klass = (_read(os.path.join(pci_dir, name, "class")) or "").strip().lower()
        if vendor == _NVIDIA_VENDOR and klass.startswith(_DISPLAY_CLASS):
            found.append(name)
    return found


def _load_pynvml() -> ModuleType:
    import pynvml

    module: ModuleType = pynvml
    return module


def probe_driver(
    *,
    nvml: Any = None,
    proc_version: str = PROC_VERSION,
    dev_dir: str = DEV_DIR,
    pci_dir: str = PCI_DIR,
) -> DriverReport:
    """Ask NVML about the driver and GPUs; never raises."""
    extra: dict[str, object] = {}
    pci = pci_nvidia_devices(pci_dir)
    if pci is not None:
        extra["pci_nvidia_devices"] = pci
    proc_text = _read(proc_version)
    kmod = parse_proc_version(proc_text) if proc_text else None
    extra["proc_version"] = proc_text.strip().splitlines()[0] if proc_text else None
    extra["device_nodes"] = device_nodes(dev_dir)
    try:
        nvml = nvml if nvml is not None else _load_pynvml()
    except ImportError as exc:
        extra["driver_probe"] = f"nvidia-ml-py is not importable: {exc}"
        return DriverReport(_from_proc(kmod), None, extra)

    with _NVML_LOCK:
        try:
            nvml.nvmlInit()
        except Exception as exc:
            kind = type(exc).__name__
            why = _NO_DRIVER_ERRORS.get(kind)
            if why is not None:
                extra["driver_probe"] = why
                return DriverReport(_from_proc(kmod), None, extra)
            text = _text(exc) or kind
            if kind == "NVMLError_LibRmVersionMismatch":
                text = "Driver/library version mismatch"
            extra["driver_probe"] = f"nvmlInit failed: {text}"
            return DriverReport(Driver(source="nvml", kernel_module=kmod, error=text), None, extra)
        try:
            version = _try(nvml.nvmlSystemGetDriverVersion)
            cuda_int = _try(nvml.nvmlSystemGetCudaDriverVersion)
            try:
                gpus: tuple[Gpu, ...] | None = _gpus(nvml)
            except Exception as exc:
                gpus = None
                extra["gpus_probe"] = f"listing GPUs failed: {_text(exc) or type(exc).__name__}"
        finally:
            _try(nvml.nvmlShutdown)
    extra["driver_probe"] = "nvml"
    driver = Driver(
        version=None if version is None else _text(version),
        cuda=None if cuda_int is None else cuda_from_int(int(cuda_int)),
        source="nvml",
        kernel_module=kmod,
    )
    return DriverReport(driver, gpus, extra)


def _from_proc(kmod: str | None) -> Driver | None:
    """A kernel module that answers in /proc is a driver, even when NVML cannot be loaded."""
    if kmod is None:
        return None
    return Driver(version=kmod, source="proc", kernel_module=kmod)
