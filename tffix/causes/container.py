"""Container causes: a container started without the GPU, or an outdated NVIDIA container
toolkit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from packaging.version import Version

from tffix.causes.base import Alternative, Cause, Detection, Family, Section, detection
from tffix.causes.steps import (
    manual,
)
from tffix.facts import Facts, parse_version


def check_container(f: Facts) -> Iterable[Detection]:
    """container-no-gpu, container-toolkit-outdated."""
    ev: list[str] = []
    nvd = f.snap.env.get("NVIDIA_VISIBLE_DEVICES")
    caps = f.snap.env.get("NVIDIA_DRIVER_CAPABILITIES")
    hits = f.log.all("container-no-driver", "container-no-runtime")
    in_container = f.container is not None or (bool(hits) and f.snap.platform.container is not None)
    if in_container:
        if nvd is not None and nvd.strip().lower() in {"void", "none", ""}:
            ev.append("env.NVIDIA_VISIBLE_DEVICES")
        if caps is not None and not re.search(r"\b(compute|all)\b", caps):
            ev.append("env.NVIDIA_DRIVER_CAPABILITIES")
        if f.device_nodes is not None and not f.device_nodes:
            ev.append("extra.device_nodes")
        ev += [h.evidence for h in hits]
        ev += _cuinit_without_gpu(f)
        if not _nvml_sees_gpus(f):
            # The runtime mounts the driver's user-space libraries (libcuda.so.1 among them)
            # only into a container started with GPU access (NVIDIA_DRIVER_CAPABILITIES
            # "compute"; without NVIDIA_VISIBLE_DEVICES it behaves as runc): inside a
            # container, no libcuda is no GPU access given.
            ev += f.libcuda_failed
        if not ev and f.driver_absent and f.snap.gpus == () and f.gpu_visible is not True:
            ev.append("driver")
        if ev and f.gpu_visible is not True:
            where = f"{f.container} container" if f.container else "container"
            if f.container == "kubernetes":
                where = "Kubernetes pod"
            yield detection(
                f,
                "container-no-gpu",
                f"this {where} was started without GPU access",
                (["platform.container"] if f.container else []) + ev,
                detail="Start it with the NVIDIA runtime: `docker run --gpus all …` (Docker), "
                "`--device nvidia.com/gpu=all` (Podman with CDI), or request `nvidia.com/gpu` "
                "in the pod's resources (Kubernetes).",
            )
    got = f.cuinit_error
    if got and "NOT_FOUND" in got[0] and f.container and f.snap.platform.wsl:
        yield detection(
            f,
            "container-toolkit-outdated",
            "WSL2: cuInit fails with 'named symbol not found' inside the container: the NVIDIA "
            "container toolkit does not map the libraries this Windows driver needs",
            ["platform.wsl", "platform.container", got[1]],
            detail="Windows drivers 555 and newer need libnvdxgdmal.so.1 mapped into the "
            "container, which NVIDIA container toolkit 1.14.4 (Docker Desktop 4.31) and newer "
            "do; update the toolkit or Docker Desktop, or go back to a 552 driver.",
        )
    for hit in f.log.all("container-toolkit"):
        yield detection(
            f,
            "container-toolkit-outdated",
            "the NVIDIA container toolkit cannot set up the GPU for this container",
            [hit.evidence],
        )
        break
    toolkit = f.snap.extra.get("container_toolkit")
    if isinstance(toolkit, str) and f.snap.platform.wsl and f.driver:
        tv, dv = parse_version(toolkit), parse_version(f.driver.version)
        if tv and dv and dv.major >= 555 and tv < Version("1.14.4"):
            yield detection(
                f,
                "container-toolkit-outdated",
                f"NVIDIA container toolkit {toolkit} is too old for driver {f.driver.version} "
                "under WSL2 (needs ≥ 1.14.4)",
                ["extra.container_toolkit", "driver.version", "platform.wsl"],
            )


_NO_GPU_CUINIT = ("CUDA_ERROR_NO_DEVICE", "CUDA_ERROR_STUB_LIBRARY", "UNKNOWN ERROR (34)")
"""cuInit's verdicts in a container given no GPU: no device, or only the CUDA toolkit's stub
libcuda (error 34, CUDA_ERROR_STUB_LIBRARY) because no driver library was mounted."""


def _nvml_sees_gpus(f: Facts) -> bool:
    """NVML, loaded in this very environment, lists GPUs. A container started without GPU
    access has no driver library to load (the runtime mounts it only with the GPUs), so this
    contradicts "no GPU access"; /proc/driver/nvidia does not, since procfs is the host's."""
    driver = f.snap.driver
    source = getattr(driver, "source", None)
    return source == "nvml" and bool(f.snap.gpus)


def _cuinit_without_gpu(f: Facts) -> list[str]:
    """Evidence that CUDA found no GPU inside the container: cuInit's verdict, unless the log
    shows the host's kernel driver answering inside it (then the driver checks explain it)."""
    got = f.cuinit_error
    if got is None or f.log.has("kernel-dso-mismatch", "driver-library-mismatch"):
        return []
    if _nvml_sees_gpus(f):
        return []  # the driver's own library answers inside the container: GPUs were passed in
    if got[0] in _NO_GPU_CUINIT or f.log.has("smi-no-driver"):
        return [got[1]]
    return []


def fix_container_no_gpu(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    if f.container == "kubernetes" or f.scheduler == "kubernetes":
        cmds = [
            'kubectl patch deployment <name> --type=json -p \'[{"op":"add","path":'
            '"/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu",'
            '"value":1}]\''
        ]
    elif f.container == "podman":
        cmds = ["podman run --device nvidia.com/gpu=all …  # the same command, with the GPU"]
    else:
        cmds = [
            "docker run --rm --gpus all ubuntu nvidia-smi  # checks the host's NVIDIA runtime",
            "docker run --gpus all …  # restart this container with the GPU",
        ]
    return [(manual(cmds, "Restart the container with GPU access", cause),)]


def fix_container_toolkit_outdated(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    return [
        (
            manual(
                [
                    "sudo apt-get install -y --only-upgrade nvidia-container-toolkit",
                    "sudo nvidia-ctk runtime configure --runtime=docker",
                    "sudo systemctl restart docker",
                ],
                "Upgrade the NVIDIA container toolkit on the host",
                cause,
            ),
        )
    ]


FAMILY = Family(
    "container",
    (check_container,),
    (
        Cause("container-no-gpu", Section.CONTAINER, fix_container_no_gpu),
        Cause("container-toolkit-outdated", Section.CONTAINER, fix_container_toolkit_outdated),
    ),
)
