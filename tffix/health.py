"""The fast node health check's judgement: findings -> one exit code and one line of reason.

Pure. ``tffix health`` (and the ``tffix-health`` entry point, which skips the full command
line) collects a snapshot without starting TensorFlow: packages, the dynamic loader, NVML and
the driver's files, the environment and the platform. It runs the same checks as the full
diagnosis (``tffix.graph``) over that snapshot, so a cause it reports has the same id, title and
fix side as in ``tffix --dry-run``. What it cannot see is what only TensorFlow itself can say:
``BLIND`` lists those causes and why; ``SEES`` lists the rest. A test holds both tables against
the full diagnosis of the simulated machines.

The line is meant for Slurm's ``HealthCheckProgram``/prolog and for NHC's ``die`` messages:
one line, no colour, the cause id first so that a drain reason can be grepped.
"""

from __future__ import annotations

from collections.abc import Sequence

from tffix.diagnosis import exit_code
from tffix.errors import ExitCode
from tffix.model import Diagnosis, Finding, FixSide, Severity
from tffix.record import record

SEES: dict[str, str] = {
    "tf-not-installed": "package metadata",
    "tf-gpu-stub": "package metadata",
    "tf-cpu-only-package": "package metadata",
    "tf-multiple-distributions": "the RECORD files of the TensorFlow distributions",
    "cuda-libs-missing": "package metadata and the loader",
    "cuda-libs-not-found": "the loader's search order (RUNPATH, LD_LIBRARY_PATH, ld.so.cache)",
    "cuda-version-mismatch": "the versions of the libraries the loader resolves",
    "cudnn-version-mismatch": "cudnnGetVersion() of the cuDNN the loader resolves",
    "ld-library-path-shadowing": "the loader's search order",
    "framework-pin-conflict": "package metadata",
    "xla-cuda-tools-missing": "package metadata and PATH",
    "cuda-visible-devices-masked": "the environment against the GPUs NVML lists",
    "no-nvidia-gpu": "the PCI bus and NVML",
    "driver-not-loaded": "NVML and /proc/driver/nvidia",
    "driver-nvml-missing": "loading the driver's libnvidia-ml.so.1",
    "driver-too-old": "the CUDA version NVML reports against the release's CUDA",
    "driver-library-mismatch": "NVML against /proc/driver/nvidia/version",
    "nvidia-uvm-unavailable": "/dev/nvidia-uvm",
    "container-no-gpu": "container markers and /dev/nvidia*",
    "wsl-libcuda-not-found": "the loader and /usr/lib/wsl/lib",
    "gpu-arch-unsupported": "the compute capability NVML reports against the release's build",
    "windows-native-unsupported": "the platform",
    "macos-needs-metal": "the platform",
    "platform-no-cuda-wheels": "the platform",
    "python-version-unsupported": "the interpreter's version against the release matrix",
    "wrong-interpreter": "PATH against the venv",
    "windows-dll-search-path": "the platform and PATH",
}
"""Cause id -> where the health check sees it (no TensorFlow import needed)."""

BLIND: dict[str, str] = {
    "tf-import-error": "only importing TensorFlow shows that the import fails",
    "tf-cpu-only-build": "only TensorFlow's get_build_info() says is_cuda_build: False",
    "and-cuda-unresolvable": "only a pip run (the plan's install) shows the extra cannot resolve",
    "container-toolkit-outdated": "only the failure TensorFlow logs at cuInit shows it",
    "unrecognized-error": "it is an error line in TensorFlow's log, which the check never reads",
    "tf-user-site-shadowing": "only importing TensorFlow shows which copy Python picks",
    "metal-plugin-incompatible": "only importing TensorFlow loads the Metal plugin and fails",
    "entry-point-gpu-unusable": "only running TensorFlow the way each entry point runs it shows it",
    "variable-from-startup-file": "the check reads the node's environment, not shell files",
    "healthy": "only TensorFlow listing the GPU proves it: a pass means no known cause was seen",
    **dict.fromkeys(
        (
            "code-cuda-device-order",
            "code-gpu-index-out-of-range",
            "code-hides-gpus",
            "code-keras-backend-not-tensorflow",
            "code-ld-library-path-too-late",
            "code-pins-cpu",
            "code-ray-no-gpus",
            "code-shell-export-no-effect",
            "code-tf-log-silenced",
            "code-tensorflow-gpu-requirement",
            "code-docker-image-without-cuda",
            "code-compose-no-gpu-reservation",
        ),
        "the code scan belongs to a project, not to a node (tffix scan, tffix --dry-run)",
    ),
}
"""Cause id -> why the health check cannot see it (the full diagnosis can)."""

PARTLY: dict[str, str] = {
    "gpu-arch-unsupported": "a PTX JIT failure that only TensorFlow's log shows (a GPU newer "
    "than the build's machine code, e.g. an H100 under a build without compute_90)",
    "driver-too-old": "CUDA_ERROR_UNSUPPORTED_PTX_VERSION, which only TensorFlow's log shows",
}
"""Cause id (also in ``SEES``) -> the case of it the health check misses."""

ASSUMED: dict[str, str] = {
    "cuda-libs-missing": "without TensorFlow's build info the build is taken for a CUDA one, "
    "so a CPU-only TensorFlow with no CUDA wheels also reads as missing its libraries",
}
"""Cause id -> why the health check may report it where the full diagnosis does not (it
never turns a passing node into a failing one: the full diagnosis fails it for another cause)."""

MAX_REASON = 300
"""Characters of the one-line reason: Slurm keeps a drain reason short, NHC prints one line."""


@record
class HealthVerdict:
    """What the health check concludes."""

    exit_code: ExitCode
    """0 nothing seen; 1 a cause tffix can fix in the venv; 3 a cause only an outside action
    fixes (drain the node)."""
    line: str
    """The one-line reason (``ok: …`` or ``<cause-id>: <title>``)."""
    causes: tuple[str, ...] = ()
    """Ids of the error findings, ranked."""


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_REASON else flat[: MAX_REASON - 1] + "…"


def judge(findings: Sequence[Finding]) -> HealthVerdict:
    """The verdict over the (ranked) findings of a snapshot taken without TensorFlow.

    The exit code is ``tffix.diagnosis.exit_code``'s (the full diagnosis's rule); the line
    names the first ranked error of the side that decided it.
    """
    errors = [f for f in findings if f.severity is Severity.ERROR]
    warnings = [f.id for f in findings if f.severity is Severity.WARNING]
    if not errors:
        plural = "s" if len(warnings) != 1 else ""
        note = f" ({len(warnings)} warning{plural}: {', '.join(warnings)})" if warnings else ""
        return HealthVerdict(
            ExitCode.OK,
            _one_line(
                "ok: no known cause in packages, loader, driver and environment"
                f"{note} (TensorFlow not imported)"
            ),
        )
    code = exit_code(Diagnosis(gpu_visible=None, findings=tuple(findings)))
    side_of_code = FixSide.OUTSIDE if code is ExitCode.OUTSIDE else FixSide.VENV
    first = next((f for f in errors if f.fix is side_of_code), errors[0])
    others = [f.id for f in errors if f is not first]
    more = f" (+{len(others)} more: {', '.join(others)})" if others else ""
    side = "outside action" if first.fix is FixSide.OUTSIDE else "venv-fixable"
    return HealthVerdict(
        code,
        _one_line(f"{first.id}: {first.title} [{side}]{more}"),
        tuple(f.id for f in errors),
    )
