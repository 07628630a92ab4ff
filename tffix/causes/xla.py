"""XLA causes: ptxas and libdevice (the nvidia-cuda-nvcc wheel) missing."""

from __future__ import annotations

from collections.abc import Iterable

from tffix import shellquote as sq
from tffix.causes.base import Alternative, Cause, Detection, Family, Section, detection
from tffix.causes.steps import (
    env_step,
    exact_pin,
    manual,
    pip_install,
    shell,
)
from tffix.facts import Facts
from tffix.model import Safety, Severity, StepKind


def check_xla(f: Facts) -> Iterable[Detection]:
    """xla-cuda-tools-missing."""
    hits = f.log.all("libdevice-missing", "ptxas-missing", "ptxas-no-arch")
    if hits:
        ev = [h.evidence for h in hits]
        if "XLA_FLAGS" in f.snap.env:
            ev.append("env.XLA_FLAGS")
        what = "libdevice" if any(h.signal == "libdevice-missing" for h in hits) else "ptxas"
        old = next((h for h in hits if h.signal == "ptxas-no-arch"), None)
        yield detection(
            f,
            "xla-cuda-tools-missing",
            f"the ptxas XLA uses is too old for this GPU (it does not know sm_{old.groups['sm']})"
            if old is not None and "sm" in old.groups
            else f"XLA cannot find {what} (from the CUDA toolkit's nvcc)",
            ev,
        )
        return
    release = f.release
    if release is None or not f.packages_complete or f.is_cuda_build is False:
        return
    nvcc = [n for n in release.pins() if n.startswith("nvidia-cuda-nvcc")]
    others = [n for n in release.pins() if n.startswith("nvidia-") and n in f.packages]
    if nvcc and others and nvcc[0] not in f.packages:
        yield detection(
            f,
            "xla-cuda-tools-missing",
            f"{nvcc[0]} (ptxas and libdevice for XLA) is not installed",
            ["packages", f.tf_version_evidence],
            severity=Severity.WARNING,
        )


def fix_xla_cuda_tools_missing(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    steps = []
    pin = exact_pin(f.release, "nvidia-cuda-nvcc")
    if "XLA_FLAGS" in f.snap.env and "xla_gpu_cuda_data_dir" in f.snap.env["XLA_FLAGS"]:
        steps.append(env_step(StepKind.ENV_UNSET, "XLA_FLAGS", cause))
    if pin:
        steps.append(pip_install([pin], "Install ptxas and libdevice for XLA", Safety.SAFE, cause))
        return [tuple(steps)]
    return [
        (
            manual(
                [
                    "sudo apt-get install -y nvidia-cuda-toolkit",
                    sq.set_variable("XLA_FLAGS", "--xla_gpu_cuda_data_dir=/usr/lib/cuda", shell(f)),
                ],
                "Install the CUDA toolkit's nvcc and point XLA at it",
                cause,
            ),
        )
    ]


FAMILY = Family(
    "xla",
    (check_xla,),
    (Cause("xla-cuda-tools-missing", Section.XLA, fix_xla_cuda_tools_missing),),
)
