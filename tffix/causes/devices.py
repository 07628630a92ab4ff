"""Device causes: CUDA_VISIBLE_DEVICES hiding every GPU, and GPUs whose architecture the
installed TensorFlow has no code for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tffix.causes.base import Alternative, Cause, Detection, Family, Section, detection, payload
from tffix.causes.steps import (
    and_cuda,
    env_step,
    manual,
    newest_release,
    pip_install,
)
from tffix.facts import Facts, cc_tuple
from tffix.logparse import LogHit
from tffix.model import FixSide, Safety, Severity, StepKind
from tffix.record import record


def check_visible_devices(f: Facts) -> Iterable[Detection]:
    """cuda-visible-devices-masked."""
    if "CUDA_VISIBLE_DEVICES" not in f.snap.env:
        inferred = _masked_by_inference(f)
        if inferred is not None:
            yield inferred
        return
    value = f.snap.env["CUDA_VISIBLE_DEVICES"].strip()
    entries = [e.strip() for e in value.split(",") if e.strip()]
    gpus = f.snap.gpus
    masked: str | None = None
    if value == "" or value.lower() in {"none", "nodevfiles", "void"}:
        masked = f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU"
    elif entries and entries[0].startswith("-"):
        masked = f"CUDA_VISIBLE_DEVICES={value} hides every GPU"
    elif gpus:
        ids = {str(i) for i in range(len(gpus))}
        uuids = {g.uuid for g in gpus if g.uuid}
        # The driver stops at the first entry it cannot match, so the first one decides.
        first = entries[0] if entries else ""
        if first not in ids and not any(u.startswith(first) for u in uuids if first):
            masked = (
                f"CUDA_VISIBLE_DEVICES={value} names no GPU of this machine "
                f"(it has {len(gpus)}: index 0–{len(gpus) - 1})"
            )
    elif f.log.has("no-device"):
        masked = f"CUDA_VISIBLE_DEVICES={value} and the driver reports no CUDA device"
    if masked is None or f.gpu_visible is True:
        return
    ev = ["env.CUDA_VISIBLE_DEVICES"]
    if gpus:
        ev.append("gpus")
    ev += [h.evidence for h in f.log.all("no-device")]
    sched = f.scheduler
    if sched:
        ev.append("platform.scheduler")
        yield detection(
            f,
            "cuda-visible-devices-masked",
            f"{masked}; {sched} sets it for the GPUs this job was given",
            ev,
            fix=FixSide.OUTSIDE,
            detail=f"On {sched} the variable is normally set by the scheduler: the job was "
            "given no GPU. Request one from the scheduler rather than changing the variable.",
        )
    else:
        yield detection(f, "cuda-visible-devices-masked", masked, ev)


def _masked_by_inference(f: Facts) -> Detection | None:
    """cuda-visible-devices-masked read across layers, for a report that does not show the
    variable: the driver runs and a GPU device node exists, yet cuInit finds no device."""
    live = f.snap.provenance is not None or "packages_source" in f.snap.extra
    if live or f.gpu_visible is True or f.container is not None:
        return None
    no_device = f.log.all("no-device")
    present = f.gpu_node_present
    if not no_device or not present:
        return None
    return detection(
        f,
        "cuda-visible-devices-masked",
        "the driver runs and /dev/nvidia0 exists, yet cuInit finds no CUDA device: the GPUs "
        "are most likely hidden (CUDA_VISIBLE_DEVICES set to -1, to an empty string or to an "
        "index this machine does not have)",
        [*(h.evidence for h in no_device), *present],
        detail="TensorFlow prints 'retrieving CUDA diagnostic information' only after finding "
        "/proc/driver/nvidia/version and /dev/nvidia0. The report does not show "
        "CUDA_VISIBLE_DEVICES: check it where the program starts (the shell, the script's "
        'os.environ, a launcher\'s GPU setting): echo "$CUDA_VISIBLE_DEVICES".',
    )


@record
class ArchSupport:
    """How the installed build supports the GPU (``_arch_support``)."""

    support: str
    """``sass``, ``ptx`` (JIT only), ``below`` the build's minimum, ``none``, or ``unknown``
    (only the log says the architecture has no kernels)."""


def check_arch(f: Facts) -> Iterable[Detection]:
    """gpu-arch-unsupported."""
    build = f.tf.build if f.tf else None
    caps: Sequence[str] | None = build.cuda_compute_capabilities if build else None
    caps_ev = "tensorflow.build.cuda_compute_capabilities"
    if not caps and f.release:
        caps, caps_ev = f.release.compute_capabilities, f.tf_version_evidence
    assumed = False
    if not caps and f.rules.releases and _at_or_after_newest(f) and f.gpu_visible is not True:
        # A nightly or an unstated version: the newest release's architectures are the most
        # any PyPI build of that age has (a GPU newer than all of them has no kernels).
        newest = f.rules.releases[-1]
        caps = newest.compute_capabilities
        caps_ev = f.tf_version_evidence if f.tf_version else "gpus"
        assumed = True
    log_hits = f.log.all("invalid-ptx", "ptx-jit", "cc-unknown")
    found = False
    for det in _arch_from_gpus(f, caps, caps_ev, log_hits, assumed=assumed):
        found = True
        yield det
    if found or not log_hits:
        return
    hit = log_hits[0]
    cc_text = hit.groups.get("compute_capability") or next(
        (f"{cc[0]}.{cc[1]}" for _i, _w, cc in f.gpu_ccs if cc), None
    )
    cc = cc_tuple(cc_text.rstrip("a") if cc_text else None)
    # PTX JIT onto an architecture newer than the PTX (Blackwell under compute_90 PTX) fails
    # at kernel launch; on an older one it is only slow.
    jit_fails = cc is not None and cc[0] >= 10
    yield detection(
        f,
        "gpu-arch-unsupported",
        "the GPU's architecture has no usable kernels in this build"
        + (f" (compute capability {cc_text})" if cc_text else ""),
        [h.evidence for h in log_hits] + [w for _i, w, c in f.gpu_ccs if c],
        severity=Severity.WARNING if hit.signal == "ptx-jit" and not jit_fails else None,
        payload=ArchSupport("unknown"),
    )


def _at_or_after_newest(f: Facts) -> bool:
    """True when the TensorFlow in use is unknown, or a version (a nightly) past the matrix."""
    if f.tf_v is None:
        return f.tf_version is None
    return f.tf_v >= f.rules.releases[-1].key


def _arch_from_gpus(
    f: Facts,
    caps: Sequence[str] | None,
    caps_ev: str,
    log_hits: Sequence[LogHit],
    *,
    assumed: bool,
) -> Iterable[Detection]:
    """gpu-arch-unsupported from each GPU's compute capability against the build's list
    (*assumed*: the newest release's list, so only a GPU newer than it can be judged)."""
    for _i, where, cc in f.gpu_ccs:
        if cc is None or not caps:
            continue
        support = _arch_support(caps, cc)
        cc_text = f"{cc[0]}.{cc[1]}"
        ev = [where, caps_ev] + [h.evidence for h in log_hits]
        if assumed and (support == "below" or cc[0] < 10):
            continue
        if support == "below":
            yield detection(
                f,
                "gpu-arch-unsupported",
                f"compute capability {cc_text} is below this build's minimum ({', '.join(caps)})",
                ev,
                payload=ArchSupport(support),
            )
            return
        if support in {"ptx", "none"} and (cc[0] >= 10 or log_hits or support == "none"):
            yield detection(
                f,
                "gpu-arch-unsupported",
                f"compute capability {cc_text} has no machine code in TensorFlow "
                f"{f.tf_version or ''} ({', '.join(caps)}); the PTX JIT fails on it".replace(
                    "  ", " "
                ),
                ev,
                detail="No TensorFlow release on PyPI ships code for Blackwell (10.x/12.x). "
                "NVIDIA's NGC TensorFlow container is built for it.",
                payload=ArchSupport(support),
            )
            return
        if support == "ptx":
            yield detection(
                f,
                "gpu-arch-unsupported",
                f"compute capability {cc_text} runs only through a slow PTX JIT in this build",
                ev,
                severity=Severity.WARNING,
                payload=ArchSupport(support),
            )
            return


def _arch_support(caps: Sequence[str], cc: tuple[int, int]) -> str:
    """``sass``, ``ptx`` (JIT only), ``below`` the build's minimum, or ``none``."""
    sass, ptx = [], []
    for cap in caps:
        t = cc_tuple(cap)
        if t is None:
            continue
        sass.append(t)
        if cap.startswith("compute_"):
            ptx.append(t)
    if not sass:
        return "none"
    if any(s[0] == cc[0] and s[1] <= cc[1] for s in sass):
        return "sass"
    if cc < min(sass):
        return "below"
    if any(p <= cc for p in ptx):
        return "ptx"
    return "none"


def fix_gpu_arch_unsupported(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    below = payload(detected, ArchSupport).support == "below"
    alts: list[Alternative] = []
    if below:
        release = newest_release(f)
        if release is not None:
            alts.append(
                (
                    pip_install(
                        [and_cuda(release)],
                        f"Switch to TensorFlow {release.version}, the newest release with "
                        "machine code for this GPU",
                        Safety.UNSAFE,
                        cause,
                    ),
                )
            )
    alts.append(
        (
            manual(
                [f"docker run --gpus all -it --rm {f.rules.fixes.ngc_image}"],
                "Use NVIDIA's NGC TensorFlow container, built for this GPU's architecture",
                cause,
            ),
        )
    )
    return alts


def fix_cuda_visible_devices_masked(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    finding = detected.finding
    sched = f.scheduler
    if finding.fix == FixSide.OUTSIDE and sched:
        cmds = {
            "slurm": ["srun --gres=gpu:1 --pty bash  # or #SBATCH --gres=gpu:1"],
            "kubernetes": ['kubectl describe pod "$HOSTNAME" | grep nvidia.com/gpu'],
            "ray": ["ray.remote(num_gpus=1)  # on the task or actor that runs TensorFlow"],
        }.get(sched, [])
        if not cmds:
            return []
        return [(manual(cmds, f"Ask {sched} for a GPU for this job", cause),)]
    return [(env_step(StepKind.ENV_UNSET, "CUDA_VISIBLE_DEVICES", cause),)]


FAMILY = Family(
    "devices",
    (
        check_visible_devices,
        check_arch,
    ),
    (
        Cause("cuda-visible-devices-masked", Section.DEVICES, fix_cuda_visible_devices_masked),
        Cause("gpu-arch-unsupported", Section.DEVICES, fix_gpu_arch_unsupported),
    ),
)
