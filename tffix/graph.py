"""The cause graph: a snapshot and the rules -> findings with evidence and "blocks" edges.

Pure. ``Facts`` derives what the checks need from a (possibly very partial) snapshot; one
check function per group of causes returns findings; ``build_graph`` merges them, drops the
ones another finding fully explains (``hides`` in the rules), computes the ``blocks`` edges
from the rules among the findings present, and ranks them with ``finding_rank``.

A check that depends on a fact nobody observed does not fire: unknown is never "false".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tffix.logparse import LogFacts, scan_log
from tffix.model import (
    UNKNOWN,
    Driver,
    Finding,
    FixSide,
    Library,
    Severity,
    Snapshot,
    TensorFlowInfo,
)
from tffix.ruleset import Release, Ruleset
from tffix.unrecognized import unrecognized_finding

SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
SCHEDULER_VARIABLES = {
    "SLURM_JOB_ID": "slurm",
    "SLURM_JOBID": "slurm",
    "KUBERNETES_SERVICE_HOST": "kubernetes",
    "RAY_JOB_ID": "ray",
    "RAY_ADDRESS": "ray",
}
SYSTEM_CUDA = re.compile(r"/cuda(-(?P<version>\d+(\.\d+)?))?(/|$)")


def parse_version(text: str | None) -> Version | None:
    """``Version(text)`` or None for missing or unparsable text (``"470.."`` -> 470)."""
    if not text:
        return None
    cleaned = re.match(r"\d+(\.\d+)*", text.strip())
    if not cleaned:
        return None
    try:
        return Version(cleaned.group(0))
    except InvalidVersion:
        return None


def major_minor(text: str | None) -> str | None:
    """``3.11`` for ``3.11.7``."""
    version = parse_version(text)
    if version is None:
        return None
    return f"{version.major}.{version.minor}"


def cc_tuple(text: str | None) -> tuple[int, int] | None:
    """``(8, 6)`` for ``"8.6"`` or ``"sm_86"``/``"compute_86"``."""
    if not text:
        return None
    text = text.strip()
    arch = re.fullmatch(r"(?:sm|compute)_(\d+?)(\d)a?", text)
    if arch:
        return int(arch.group(1)), int(arch.group(2))
    dotted = re.fullmatch(r"(\d+)\.(\d+)", text)
    if dotted:
        return int(dotted.group(1)), int(dotted.group(2))
    return None


# --------------------------------------------------------------------------- derived facts


@dataclass(frozen=True)
class Facts:
    """What the checks need, derived once from a snapshot and the rules."""

    snap: Snapshot
    rules: Ruleset
    log: LogFacts = field(default_factory=LogFacts)

    # ---- platform
    @cached_property
    def os(self) -> str | None:
        return self.snap.platform.os

    @cached_property
    def linux(self) -> bool:
        return self.os == "linux"

    @cached_property
    def container(self) -> str | None:
        value = self.snap.platform.container
        return value if isinstance(value, str) and value else None

    @cached_property
    def scheduler(self) -> str | None:
        value = self.snap.platform.scheduler
        if isinstance(value, str) and value:
            return value
        for name, sched in SCHEDULER_VARIABLES.items():
            if name in self.snap.env:
                return sched
        return None

    @cached_property
    def jetson(self) -> bool:
        if self.snap.platform.jetson:
            return True
        names = " ".join(g.name or "" for g in self.snap.gpus or ())
        kernel = self.snap.platform.kernel or ""
        return bool(re.search(r"jetson|orin|xavier", names, re.I)) or "tegra" in kernel

    @cached_property
    def python(self) -> str | None:
        return major_minor(self.snap.python.version)

    # ---- packages
    @cached_property
    def packages(self) -> Mapping[str, str]:
        return self.snap.packages or {}

    @cached_property
    def optional_sonames(self) -> frozenset[str] | None:
        """Sonames the loader probe looked up that TensorFlow opens only for some work (NCCL,
        nvJitLink); None when no loader probe ran (a pasted report)."""
        loader = self.snap.extra.get("loader")
        if not isinstance(loader, Mapping):
            return None
        return frozenset(str(s) for s in loader.get("optional", ()))

    @cached_property
    def device_nodes(self) -> tuple[str, ...] | None:
        """``/dev/nvidia*`` names (``nvidia0``, ``nvidia-uvm``), when the probe listed them."""
        nodes = self.snap.extra.get("device_nodes")
        if not isinstance(nodes, list):
            return None
        return tuple(str(n).rsplit("/", 1)[-1] for n in nodes)

    @cached_property
    def packages_complete(self) -> bool:
        """True when ``packages`` looks like a whole ``pip list`` rather than a pasted excerpt."""
        if self.snap.packages is None:
            return False
        if self.snap.extra.get("packages_complete") is True:
            return True
        if self.snap.extra.get("packages_source") in {"metadata", "pip-api"}:
            return True  # the live probe read every installed distribution
        return "numpy" in self.packages or len(self.packages) >= 12

    def has(self, name: str) -> bool:
        return canonicalize_name(name) in self.packages

    @cached_property
    def tf_dists(self) -> tuple[str, ...]:
        names = {canonicalize_name(n) for n in self.rules.policy.tf_distributions}
        return tuple(sorted(n for n in self.packages if n in names))

    @cached_property
    def tf_dist(self) -> str | None:
        """The distribution that provides TensorFlow (``tensorflow`` when several)."""
        for name in ("tensorflow", "tf-nightly", "tensorflow-gpu", "tensorflow-cpu"):
            if name in self.tf_dists:
                return name
        return self.tf_dists[0] if self.tf_dists else None

    @cached_property
    def tf(self) -> TensorFlowInfo | None:
        value = self.snap.tensorflow
        return value if isinstance(value, TensorFlowInfo) else None

    @cached_property
    def tf_version(self) -> str | None:
        if self.tf is not None and self.tf.version:
            return self.tf.version
        if self.tf_dist is not None:
            return self.packages[self.tf_dist]
        return None

    @cached_property
    def tf_version_evidence(self) -> str:
        if self.tf is not None and self.tf.version:
            return "tensorflow.version"
        return f"packages.{self.tf_dist}" if self.tf_dist else "tensorflow.version"

    @cached_property
    def tf_v(self) -> Version | None:
        return parse_version(self.tf_version)

    @cached_property
    def release(self) -> Release | None:
        release = self.rules.release(self.tf_version)
        if release is None and self.tf_version and "+" in self.tf_version:
            release = self.rules.release(self.tf_version.split("+")[0])
        return release

    @cached_property
    def tf_cuda(self) -> str | None:
        """The CUDA version TensorFlow was built with, from the build info or the matrix."""
        build = self.tf.build if self.tf else None
        if build and build.cuda_version:
            windows = re.fullmatch(r"64_(\d+)(\d)", build.cuda_version)  # "64_112" = 11.2
            if windows:
                return f"{windows.group(1)}.{windows.group(2)}"
            if re.fullmatch(r"\d+(\.\d+)*", build.cuda_version):
                return build.cuda_version
        if self.release:
            return self.release.cuda
        line = self.rules.line_of(self.tf_version)
        return line.cuda if line else None

    @cached_property
    def tf_cuda_major(self) -> int | None:
        version = parse_version(self.tf_cuda)
        return version.major if version else None

    @cached_property
    def tf_cudnn(self) -> str | None:
        if self.release:
            return self.release.cudnn
        line = self.rules.line_of(self.tf_version)
        return line.cudnn if line else None

    @cached_property
    def is_cuda_build(self) -> bool | None:
        build = self.tf.build if self.tf else None
        if build and build.is_cuda_build is not None:
            return build.is_cuda_build
        return None

    @cached_property
    def tf_gpus(self) -> tuple[str, ...] | None:
        return self.tf.gpus if self.tf else None

    @cached_property
    def gpu_visible(self) -> bool | None:
        if self.tf_gpus is not None:
            return bool(self.tf_gpus)
        if self.snap.tensorflow is None or self.import_error:
            return False  # no TensorFlow to ask, or it does not import
        if self.log.has("gpu-listed"):
            return True
        return None

    @cached_property
    def import_error(self) -> str | None:
        if self.tf is None:
            return None
        value = self.tf.import_error
        return value if isinstance(value, str) and value else None

    # ---- driver and GPUs
    @cached_property
    def driver(self) -> Driver | None:
        value = self.snap.driver
        return value if isinstance(value, Driver) else None

    @cached_property
    def driver_absent(self) -> bool:
        """True when the snapshot says no driver answered (``driver: null``)."""
        return self.snap.driver is None

    @cached_property
    def gpu_ccs(self) -> tuple[tuple[int, str, tuple[int, int] | None], ...]:
        """(index, evidence, compute capability) per GPU, from the driver or the GPU name."""
        out = []
        for i, gpu in enumerate(self.snap.gpus or ()):
            cc = cc_tuple(gpu.compute_capability)
            where = f"gpus[{i}].compute_capability"
            if cc is None and gpu.name:
                for entry in self.rules.gpus:
                    if entry.match.search(gpu.name):
                        cc = cc_tuple(entry.compute_capability)
                        where = f"gpus[{i}].name"
                        break
            out.append((i, where, cc))
        return tuple(out)

    # ---- environment
    def env_list(self, name: str) -> tuple[str, ...]:
        sep = ";" if self.os == "windows" else ":"
        return tuple(e for e in self.snap.env.get(name, "").split(sep) if e)

    @cached_property
    def site_packages(self) -> str | None:
        """The target's site-packages folder, when it can be told exactly."""
        value = self.snap.extra.get("site_packages")
        if isinstance(value, str) and value:
            return value
        venv = self.snap.python.venv
        if isinstance(venv, str) and venv and self.python and self.os in {"linux", None}:
            return f"{venv.rstrip('/')}/lib/python{self.python}/site-packages"
        return None

    def nvidia_installed(self, major: int | None = None) -> tuple[str, ...]:
        """Installed ``nvidia-*-cuXX`` wheels (of CUDA *major* when given)."""
        out = []
        for name in self.packages:
            match = re.fullmatch(r"nvidia-[\w-]+-cu(\d+)", name)
            if match and (major is None or int(match.group(1)) == major):
                out.append(name)
        return tuple(sorted(out))

    def library(self, component: str) -> tuple[str, Library] | None:
        """The snapshot's library entry for a component (``cudnn`` -> ``libcudnn.so.9``)."""
        for soname, lib in self.snap.libraries.items():
            if re.fullmatch(rf"lib{component}\.so(\.[\d.]+)?", soname):
                return soname, lib
        return None


# --------------------------------------------------------------------------- checks

Check = Callable[[Facts], Iterable[Finding]]


def _finding(
    facts: Facts,
    cause: str,
    title: str,
    evidence: Sequence[str],
    *,
    detail: str = "",
    severity: Severity | None = None,
    fix: FixSide | None = None,
) -> Finding:
    meta = facts.rules.cause(cause)
    return Finding(
        id=cause,
        severity=severity or meta.severity,
        fix=fix or meta.fix,
        title=title,
        evidence=tuple(dict.fromkeys(evidence)),
        detail=detail,
    )


def _tf_at_least(facts: Facts, version: str) -> bool | None:
    if facts.tf_v is None:
        return None
    return facts.tf_v >= Version(version)


def check_platform(f: Facts) -> Iterable[Finding]:
    """windows-native-unsupported, macos-needs-metal, platform-no-cuda-wheels."""
    last = Version(f.rules.policy.windows_last_gpu)
    if f.os == "windows" and not f.snap.platform.wsl:
        newer = f.tf_v is None or (f.tf_v.major, f.tf_v.minor) > (last.major, last.minor)
        if newer and f.gpu_visible is not True:
            ev = ["platform.os"]
            if f.tf_version:
                ev.append(f.tf_version_evidence)
            version = f"TensorFlow {f.tf_version}" if f.tf_version else "TensorFlow ≥ 2.11"
            yield _finding(
                f,
                "windows-native-unsupported",
                f"{version} has no GPU build on native Windows (the last was {last})",
                ev,
                detail="Since 2.11, TensorFlow's Windows wheels are CPU-only. Run TensorFlow in "
                "WSL2 (pip install 'tensorflow[and-cuda]' there) or use TensorFlow ≤ 2.10 "
                "with Python ≤ 3.10 natively.",
            )
    metal = f.snap.packages is not None and f.has("tensorflow-metal")
    if f.os == "macos" and f.gpu_visible is not True and not metal:
        yield _finding(
            f,
            "macos-needs-metal",
            "macOS has no CUDA; TensorFlow uses the GPU only through tensorflow-metal",
            ["platform.os", "packages"] if f.snap.packages is not None else ["platform.os"],
        )
    arch = (f.snap.platform.arch or "").lower()
    if f.linux and (arch in {"aarch64", "arm64"} or f.jetson) and f.gpu_visible is not True:
        nvidia_build = bool(f.tf_version and "+nv" in f.tf_version)
        if not nvidia_build:
            ev = ["platform.arch"] if arch else []
            if f.jetson:
                ev += [f"gpus[{i}].name" for i, g in enumerate(f.snap.gpus or ()) if g.name]
                ev += ["platform.jetson"] if f.snap.platform.jetson else []
            yield _finding(
                f,
                "platform-no-cuda-wheels",
                "the PyPI TensorFlow wheels for Linux aarch64"
                + (" (Jetson)" if f.jetson else "")
                + " are CPU-only",
                ev or ["platform"],
                detail="Use NVIDIA's TensorFlow build for Jetson (JetPack wheels from "
                "developer.download.nvidia.com) or an NVIDIA L4T/NGC container.",
            )


def check_python(f: Facts) -> Iterable[Finding]:
    """python-version-unsupported."""
    gpu_releases = [r for r in f.rules.releases if r.key >= Version("2.12")]
    if f.python:
        supported = any(f.python in r.python for r in gpu_releases)
        if not supported and not (f.tf_version and f.gpu_visible):
            pythons = sorted(
                {p for r in gpu_releases for p in r.python}, key=lambda p: parse_version(p)
            )
            ev = ["python.version"]
            hit = f.log.first("no-tensorflow-wheel")
            if hit:
                ev.append(hit.evidence)
            yield _finding(
                f,
                "python-version-unsupported",
                f"no TensorFlow GPU release has wheels for Python {f.python} "
                f"(supported: {pythons[0]}–{pythons[-1]})",
                ev,
            )
    elif f.log.has("no-tensorflow-wheel") and f.os != "windows":
        hit = f.log.first("no-tensorflow-wheel")
        assert hit is not None
        yield _finding(
            f,
            "python-version-unsupported",
            "pip found no TensorFlow wheel for this interpreter",
            [hit.evidence],
            detail="pip lists no version at all when no release has a wheel for the Python "
            "version (or a 32-bit Python). Check `python -VV`.",
        )


def check_interpreter(f: Facts) -> Iterable[Finding]:
    """wrong-interpreter."""
    venv = f.snap.python.venv
    tf_file = f.tf.file if f.tf else None
    flag = f.snap.extra.get("wrong_interpreter")
    if isinstance(flag, str) and flag:
        yield _finding(f, "wrong-interpreter", flag, ["extra.wrong_interpreter"])
        return
    if isinstance(venv, str) and venv and tf_file and not tf_file.startswith(venv.rstrip("/")):
        yield _finding(
            f,
            "wrong-interpreter",
            f"TensorFlow is imported from {tf_file}, outside the target environment {venv}",
            ["tensorflow.file", "python.venv"]
            + (["env.PYTHONPATH"] if "PYTHONPATH" in f.snap.env else []),
        )


def check_container(f: Facts) -> Iterable[Finding]:
    """container-no-gpu, container-toolkit-outdated."""
    ev: list[str] = []
    nvd = f.snap.env.get("NVIDIA_VISIBLE_DEVICES")
    caps = f.snap.env.get("NVIDIA_DRIVER_CAPABILITIES")
    hits = f.log.all("container-no-driver")
    in_container = f.container is not None or (bool(hits) and f.snap.platform.container is not None)
    if in_container:
        if nvd is not None and nvd.strip().lower() in {"void", "none", ""}:
            ev.append("env.NVIDIA_VISIBLE_DEVICES")
        if caps is not None and not re.search(r"\b(compute|all)\b", caps):
            ev.append("env.NVIDIA_DRIVER_CAPABILITIES")
        if f.device_nodes is not None and not f.device_nodes:
            ev.append("extra.device_nodes")
        ev += [h.evidence for h in hits]
        if not ev and f.driver_absent and f.snap.gpus == () and f.gpu_visible is not True:
            ev.append("driver")
        if ev and f.gpu_visible is not True:
            where = f"{f.container} container" if f.container else "container"
            if f.container == "kubernetes":
                where = "Kubernetes pod"
            yield _finding(
                f,
                "container-no-gpu",
                f"this {where} was started without GPU access",
                (["platform.container"] if f.container else []) + ev,
                detail="Start it with the NVIDIA runtime: `docker run --gpus all …` (Docker), "
                "`--device nvidia.com/gpu=all` (Podman with CDI), or request `nvidia.com/gpu` "
                "in the pod's resources (Kubernetes).",
            )
    for hit in f.log.all("container-toolkit"):
        yield _finding(
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
            yield _finding(
                f,
                "container-toolkit-outdated",
                f"NVIDIA container toolkit {toolkit} is too old for driver {f.driver.version} "
                "under WSL2 (needs ≥ 1.14.4)",
                ["extra.container_toolkit", "driver.version", "platform.wsl"],
            )


def check_driver(f: Facts) -> Iterable[Finding]:
    """no-nvidia-gpu, driver-not-loaded, driver-library-mismatch, nvidia-uvm, wsl-libcuda."""
    cvd_set = "CUDA_VISIBLE_DEVICES" in f.snap.env
    drv = f.driver
    # The PCI bus lists GPUs whatever the driver's state, except under WSL2 (paravirtualised).
    pci = None if f.snap.platform.wsl else f.snap.extra.get("pci_nvidia_devices")
    pci_none = pci == 0 or pci == []
    no_device = f.log.first("no-device")
    driver_unloaded = "DRIVER_NOT_LOADED" in str(f.snap.extra.get("driver_probe", ""))
    if (f.snap.gpus == () and drv is not None) or (pci_none and f.snap.gpus in ((), None)):
        ev = ["gpus"] if f.snap.gpus == () else []
        ev += ["driver.version"] if drv is not None else ["extra.pci_nvidia_devices"]
        yield _finding(f, "no-nvidia-gpu", "no NVIDIA GPU is present on this machine", ev)
        return
    if (
        no_device
        and not cvd_set
        and f.container is None
        and not f.snap.gpus
        and not pci
        and not driver_unloaded
    ):
        yield _finding(
            f,
            "no-nvidia-gpu",
            "the driver reports no CUDA-capable device",
            [no_device.evidence],
        )
    # driver-library-mismatch
    mism: list[str] = []
    if drv is not None and drv.error and "mismatch" in drv.error.lower():
        mism.append("driver.error")
    if drv is not None and drv.kernel_module and drv.version:
        kv, uv = parse_version(drv.kernel_module), parse_version(drv.version)
        if kv and uv and kv != uv:
            mism += ["driver.kernel_module", "driver.version"]
    mism += [h.evidence for h in f.log.all("kernel-dso-mismatch", "driver-library-mismatch")]
    if mism:
        hit = f.log.first("kernel-dso-mismatch")
        if hit and "kernel" in hit.groups:
            title = (
                f"the kernel module (driver {hit.groups['kernel']}) and the user-space driver "
                f"library ({hit.groups['dso']}) differ"
            )
        else:
            title = "the NVIDIA kernel module and the user-space driver libraries differ"
        yield _finding(
            f,
            "driver-library-mismatch",
            title,
            mism,
            detail="After a driver upgrade the old kernel module stays loaded until a reboot; "
            "in a container, a CUDA compat libcuda newer than the host driver has the same "
            "effect (use an image whose CUDA matches the host driver).",
        )
        return
    # driver-not-loaded / wsl-libcuda-not-found
    wsl = bool(f.snap.platform.wsl)
    nl: list[str] = []
    if f.driver_absent:
        nl.append("driver")
    if drv is not None and drv.error:
        nl.append("driver.error")
    nl += [h.evidence for h in f.log.all("smi-no-driver", "libcuda-missing")]
    libcuda = f.snap.libraries.get("libcuda.so.1")
    if libcuda is not None and libcuda.path is None:
        nl.append("libraries.libcuda.so.1")
    if nl and f.gpu_visible is not True and f.snap.gpus != ():
        if wsl:
            yield _finding(
                f,
                "wsl-libcuda-not-found",
                "WSL2: the loader does not see the driver's libcuda in /usr/lib/wsl/lib",
                ["platform.wsl", *nl],
            )
        elif f.container is None or f.snap.gpus:
            yield _finding(
                f,
                "driver-not-loaded",
                "no working NVIDIA kernel driver answers"
                + (f" ({drv.error})" if drv is not None and drv.error else ""),
                nl,
            )
    uvm: list[str] = [h.evidence for h in f.log.all("uvm")]
    nodes = f.device_nodes or ()
    if any(re.fullmatch(r"nvidia\d+", n) for n in nodes) and "nvidia-uvm" not in nodes:
        uvm.append("extra.device_nodes")
    if uvm and f.gpu_visible is not True:
        yield _finding(
            f,
            "nvidia-uvm-unavailable",
            "the nvidia_uvm kernel module is missing or broken (CUDA cannot initialise)",
            uvm,
            detail="Common after suspend/resume: reload the module (or reboot). Inside LXC, the "
            "host must load nvidia_uvm and pass /dev/nvidia-uvm through.",
        )


def check_nvml(f: Facts) -> Iterable[Finding]:
    """driver-nvml-missing: libcuda resolves, libnvidia-ml does not, and TensorFlow needs it.

    The loader probe asks for ``libnvidia-ml.so.1`` only for releases that load it (2.21+),
    so its presence in ``libraries`` is the "TensorFlow needs it" part.
    """
    nvml = f.snap.libraries.get("libnvidia-ml.so.1")
    cuda = f.snap.libraries.get("libcuda.so.1")
    if nvml is None or nvml.path is not None or f.gpu_visible is True:
        return
    if cuda is None or not isinstance(cuda.path, str):
        return
    yield _finding(
        f,
        "driver-nvml-missing",
        f"the driver's libcuda is here but its NVML library (libnvidia-ml.so.1) is not: "
        f"TensorFlow {f.tf_version or ''} lists no GPU without it, and says nothing".replace(
            "  ", " "
        ),
        ["libraries.libnvidia-ml.so.1", "libraries.libcuda.so.1"],
        detail="TensorFlow 2.21 and newer ask NVML about each GPU before listing it. A driver "
        "installed without its user-space NVML library (a minimal install, or a container "
        "that mounts libcuda alone) leaves TensorFlow silent and GPU-less.",
    )


def driver_floor(f: Facts, cuda: str) -> tuple[str, str] | None:
    """(minimum, recommended) driver for CUDA *cuda* on this OS."""
    cv = parse_version(cuda)
    if cv is None:
        return None
    col = "windows" if f.os == "windows" else "linux"
    minimum = next((m for m in f.rules.minimums if m.cuda == str(cv.major)), None)
    if minimum is None:
        return None
    toolkit = None
    for t in f.rules.toolkits:
        if parse_version(t.cuda) == Version(f"{cv.major}.{cv.minor}"):
            toolkit = t
    low = getattr(minimum, col) or minimum.linux
    rec = (getattr(toolkit, col) or toolkit.linux) if toolkit else low
    return low, rec


def check_driver_version(f: Facts) -> Iterable[Finding]:
    """driver-too-old."""
    ev: list[str] = [h.evidence for h in f.log.all("driver-insufficient")]
    drv = f.driver
    cuda = f.tf_cuda
    title = "the NVIDIA driver is too old for TensorFlow's CUDA runtime"
    if drv is not None and drv.version and cuda:
        floor = driver_floor(f, cuda)
        dv = parse_version(drv.version)
        if floor and dv is not None and dv < Version(floor[0]):
            ev = ["driver.version", f.tf_version_evidence, *ev]
            title = (
                f"driver {drv.version} is older than {floor[0]}, the minimum for CUDA "
                f"{parse_version(cuda).major}.x (TensorFlow {f.tf_version} uses CUDA {cuda})"
            )
        elif (
            drv.cuda
            and f.tf_cuda_major
            and (parse_version(drv.cuda) or Version("0")).major < (f.tf_cuda_major)
        ):
            ev = ["driver.cuda", f.tf_version_evidence, *ev]
            title = (
                f"the driver supports CUDA {drv.cuda}, but TensorFlow {f.tf_version} needs "
                f"CUDA {cuda}"
            )
    elif ev and drv is not None and drv.version:
        ev.insert(0, "driver.version")
        title = f"driver {drv.version} is too old for the CUDA runtime TensorFlow loads"
    if ev:
        yield _finding(f, "driver-too-old", title, ev)


def check_distribution(f: Facts) -> Iterable[Finding]:
    """tf-not-installed, tf-gpu-stub, tf-multiple-distributions, tf-cpu-only-*."""
    policy = f.rules.policy
    stub_hits = f.log.all("tf-gpu-removed")
    if f.has("tensorflow-gpu") or stub_hits:
        version = f.packages.get("tensorflow-gpu")
        legacy = version is not None and (parse_version(version) or Version("0")) <= Version(
            policy.tensorflow_gpu_last
        )
        ev = (["packages.tensorflow-gpu"] if version else []) + [h.evidence for h in stub_hits]
        if legacy:
            yield _finding(
                f,
                "tf-gpu-stub",
                f"tensorflow-gpu {version} is the legacy package (the last real one is "
                f"{policy.tensorflow_gpu_last}); use tensorflow[and-cuda]",
                ev,
                severity=Severity.WARNING,
            )
        else:
            yield _finding(
                f,
                "tf-gpu-stub",
                "tensorflow-gpu was removed after 2.11: its 2.12 release is a stub that fails "
                "to build; install tensorflow instead",
                ev,
            )
    # not installed
    tf_none = f.snap.tensorflow is None
    missing_import = bool(f.import_error and "No module named 'tensorflow'" in f.import_error)
    if (tf_none or missing_import or (f.packages_complete and not f.tf_dists)) and not f.tf_dists:
        ev = []
        if tf_none:
            ev.append("tensorflow")
        if missing_import:
            ev.append("tensorflow.import_error")
        if f.packages_complete:
            ev.append("packages")
        yield _finding(f, "tf-not-installed", "no TensorFlow is installed in the target", ev)
    # several distributions
    dists = set(f.tf_dists)
    wrappers = {
        "windows": {"tensorflow", "tensorflow-intel"},
        "macos": {"tensorflow", "tensorflow-macos"},
    }
    arch = (f.snap.platform.arch or "").lower()
    expected = wrappers.get(f.os or "", set())
    if arch in {"aarch64", "arm64"}:
        expected = {"tensorflow", "tensorflow-cpu-aws"}
    owners = f.snap.extra.get("tensorflow_owners")
    many = len(dists) > 1 and not dists <= expected
    if many or (isinstance(owners, list) and len(owners) > 1):
        names = sorted(dists) if many else sorted(str(o) for o in owners)  # type: ignore[union-attr]
        ev = [f"packages.{n}" for n in sorted(dists)] if many else []
        if isinstance(owners, list) and len(owners) > 1:
            ev.append("extra.tensorflow_owners")
        yield _finding(
            f,
            "tf-multiple-distributions",
            f"{' and '.join(names)} are installed together and overwrite each other's "
            "tensorflow/ folder",
            ev,
        )
    # CPU-only package
    cpu_only = [
        n for n in f.tf_dists if n in {canonicalize_name(c) for c in policy.cpu_only_packages}
    ]
    if f.os == "windows":
        cpu_only = [n for n in cpu_only if n != "tensorflow-intel"]
    if arch in {"aarch64", "arm64"}:
        cpu_only = [n for n in cpu_only if n != "tensorflow-cpu-aws"]
    tf1 = f.packages.get("tensorflow")
    tf1_v = parse_version(tf1)
    if cpu_only:
        yield _finding(
            f,
            "tf-cpu-only-package",
            f"{', '.join(cpu_only)} is a CPU-only TensorFlow distribution",
            [f"packages.{n}" for n in cpu_only],
        )
    elif tf1_v is not None and tf1_v.major == 1 and not f.has("tensorflow-gpu"):
        yield _finding(
            f,
            "tf-cpu-only-package",
            f"tensorflow {tf1} is a TensorFlow 1.x CPU-only package (the GPU build was "
            "tensorflow-gpu)",
            ["packages.tensorflow"],
        )
    # CPU-only build
    not_cuda = f.log.all("not-cuda-build")
    if (f.is_cuda_build is False or not_cuda) and f.gpu_visible is not True:
        ev = (["tensorflow.build.is_cuda_build"] if f.is_cuda_build is False else []) + [
            h.evidence for h in not_cuda
        ]
        conda = f.has("tensorflow-base") or f.snap.python.kind in {"conda", "conda-base"}
        yield _finding(
            f,
            "tf-cpu-only-build",
            f"TensorFlow {f.tf_version or ''} reports is_cuda_build: False".replace("  ", " ")
            + (" (a conda CPU build)" if conda else ""),
            ev,
        )


def check_import(f: Facts) -> Iterable[Finding]:
    """tf-import-error."""
    err = f.import_error
    hits = f.log.all("numpy2-abi", "glibc-too-old", "cpu-no-avx", "protobuf-mismatch")
    ev = (["tensorflow.import_error"] if err else []) + [h.evidence for h in hits]
    text = " ".join([err or ""] + [h.line for h in hits])
    if err and "No module named 'tensorflow'" in err:
        return
    if err and re.search(r"lib(cuda|cudnn|cublas|cudart|cufft|cusolver|cusparse)\w*\.so", err):
        return  # a CUDA library failing to load: the library checks say which
    known = _known_bad_hits(f, "tf-import-error")
    if not ev and not known:
        return
    outside = bool(re.search(r"GLIBC_|Illegal instruction|AVX", text))
    numpy = f.packages.get("numpy")
    if known and numpy:
        ev += [f.tf_version_evidence, "packages.numpy"]
    if re.search(r"NumPy 1\.x|_ARRAY_API|multiarray", text) or known:
        title = (
            f"TensorFlow {f.tf_version or ''} was built for NumPy 1.x but NumPy "
            f"{numpy or '2'} is installed".replace("  ", " ")
        )
    elif outside:
        title = "import tensorflow fails: this machine's glibc or CPU is too old for the wheel"
    else:
        title = "import tensorflow fails: " + (err or hits[0].line).strip().splitlines()[-1][:120]
    yield _finding(
        f,
        "tf-import-error",
        title,
        ev,
        fix=FixSide.OUTSIDE if outside else None,
    )


def _known_bad_hits(f: Facts, cause: str) -> list[str]:
    out = []
    for bad in f.rules.known_bad:
        if bad.cause != cause or f.tf_version not in bad.releases:
            continue
        if bad.python is not None and (f.python is None or f.python not in bad.python):
            continue
        if bad.requires is not None:
            have = f.packages.get(canonicalize_name(bad.requires.name))
            if have is None or not bad.requires.specifier.contains(have, prereleases=True):
                continue
        out.append(bad.id)
    return out


def check_and_cuda(f: Facts) -> Iterable[Finding]:
    """and-cuda-unresolvable."""
    pins = f.log.all("pin-missing")
    requested = f.log.all("pip-install-and-cuda")
    asked = next((h.groups.get("version") for h in requested if h.groups.get("version")), None)
    version = asked or f.tf_version
    release = f.rules.release(version)
    ev = [h.evidence for h in requested if h.groups.get("version")] + [h.evidence for h in pins]
    bad = None
    for entry in f.rules.known_bad:
        if (
            entry.cause == "and-cuda-unresolvable"
            and version in entry.releases
            and (entry.python is None or (f.python and f.python in entry.python))
        ):
            bad = entry
    wants_cuda = bool(requested or pins)
    if pins and bad is None and release is None:
        hit = pins[0]
        yield _finding(
            f,
            "and-cuda-unresolvable",
            f"pip cannot install {hit.groups.get('requirement', 'a pinned CUDA wheel')}, "
            "required by tensorflow[and-cuda]",
            ev,
        )
    elif bad is not None and wants_cuda:
        if not ev:
            ev = [f.tf_version_evidence] + (["python.version"] if bad.python else [])
        yield _finding(f, "and-cuda-unresolvable", bad.why, ev)
    elif release is not None and not release.and_cuda_resolves and (requested or pins):
        yield _finding(
            f,
            "and-cuda-unresolvable",
            f"tensorflow[and-cuda]=={release.version} does not resolve: "
            f"{release.and_cuda_error or 'a pinned wheel is not on the index'}",
            ev,
        )


def check_visible_devices(f: Facts) -> Iterable[Finding]:
    """cuda-visible-devices-masked."""
    if "CUDA_VISIBLE_DEVICES" not in f.snap.env:
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
        yield _finding(
            f,
            "cuda-visible-devices-masked",
            f"{masked}; {sched} sets it for the GPUs this job was given",
            ev,
            fix=FixSide.OUTSIDE,
            detail=f"On {sched} the variable is normally set by the scheduler: the job was "
            "given no GPU. Request one from the scheduler rather than changing the variable.",
        )
    else:
        yield _finding(f, "cuda-visible-devices-masked", masked, ev)


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


def check_arch(f: Facts) -> Iterable[Finding]:
    """gpu-arch-unsupported."""
    build = f.tf.build if f.tf else None
    caps: Sequence[str] | None = build.cuda_compute_capabilities if build else None
    caps_ev = "tensorflow.build.cuda_compute_capabilities"
    if not caps and f.release:
        caps, caps_ev = f.release.compute_capabilities, f.tf_version_evidence
    log_hits = f.log.all("invalid-ptx", "ptx-jit")
    for _i, where, cc in f.gpu_ccs:
        if cc is None or not caps:
            continue
        support = _arch_support(caps, cc)
        cc_text = f"{cc[0]}.{cc[1]}"
        ev = [where, caps_ev] + [h.evidence for h in log_hits]
        if support == "below":
            yield _finding(
                f,
                "gpu-arch-unsupported",
                f"compute capability {cc_text} is below this build's minimum ({', '.join(caps)})",
                ev,
            )
            return
        if support in {"ptx", "none"} and (cc[0] >= 10 or log_hits or support == "none"):
            yield _finding(
                f,
                "gpu-arch-unsupported",
                f"compute capability {cc_text} has no machine code in TensorFlow "
                f"{f.tf_version or ''} ({', '.join(caps)}); the PTX JIT fails on it".replace(
                    "  ", " "
                ),
                ev,
                detail="No TensorFlow release on PyPI ships code for Blackwell (10.x/12.x). "
                "NVIDIA's NGC TensorFlow container is built for it.",
            )
            return
        if support == "ptx":
            yield _finding(
                f,
                "gpu-arch-unsupported",
                f"compute capability {cc_text} runs only through a slow PTX JIT in this build",
                ev,
                severity=Severity.WARNING,
            )
            return
    if log_hits and not f.gpu_ccs:
        hit = log_hits[0]
        yield _finding(
            f,
            "gpu-arch-unsupported",
            "the GPU's architecture has no usable kernels in this build"
            + (
                f" (compute capability {hit.groups['compute_capability']})"
                if "compute_capability" in hit.groups
                else ""
            ),
            [h.evidence for h in log_hits],
            severity=Severity.WARNING if hit.signal == "ptx-jit" else None,
        )


def _dlopen_failed(f: Facts) -> list[str]:
    ev = [h.evidence for h in f.log.all("dlopen-failed", "cannot-dlopen")]
    # Libraries TensorFlow opens only for some work (NCCL for multi-GPU, nvJitLink for JIT)
    # are looked up too, but their absence does not keep the GPU from TensorFlow.
    optional = f.optional_sonames or frozenset()
    for soname, lib in f.snap.libraries.items():
        if soname.startswith("libcuda.") or soname.startswith("libnvidia") or soname in optional:
            continue
        if lib.path is None or lib.error:
            ev.append(f"libraries.{soname}")
    return ev


def check_libraries(f: Facts) -> Iterable[Finding]:
    """cuda-libs-missing, cuda-libs-not-found, cuda-version-mismatch."""
    if not f.linux and f.os is not None:
        if f.os == "windows":
            yield from _check_windows_dlls(f)
        return
    major = f.tf_cuda_major
    failed = _dlopen_failed(f)
    if f.is_cuda_build is False:
        return
    # version mismatch: CUDA of another major available
    mism: list[str] = []
    other: str | None = None
    if major is not None:
        wrong = [n for n in f.nvidia_installed() if not n.endswith(f"-cu{major}")]
        right = f.nvidia_installed(major)
        if wrong and not right:
            mism += [f"packages.{n}" for n in wrong]
            other = wrong[0].rsplit("-cu", 1)[1]
        for name in ("cudatoolkit", "cuda-toolkit", "cuda-runtime", "cuda-cudart", "cuda"):
            cv = parse_version(f.packages.get(name))
            if cv is not None and cv.major != major and not right:
                mism.append(f"packages.{name}")
                other = other or f"{cv.major}.{cv.minor}"
        if failed:
            built = parse_version(f.tf_cuda)
            # Before CUDA 11.1 there was no minor-version compatibility: sonames such as
            # libcudart.so.10.1 or libcusolver.so.10 (CUDA 11.0) exist in one minor only.
            exact_minor = built is not None and built < Version("11.1")
            for entry in f.env_list("LD_LIBRARY_PATH"):
                m = SYSTEM_CUDA.search(entry)
                mv = parse_version(m.group("version")) if m and m.group("version") else None
                if mv is None or built is None:
                    continue
                if mv.major != major or (exact_minor and (mv.major, mv.minor) != built.release[:2]):
                    mism.append("env.LD_LIBRARY_PATH")
                    other = other or str(mv)
    if mism:
        yield _finding(
            f,
            "cuda-version-mismatch",
            f"TensorFlow {f.tf_version} needs CUDA {f.tf_cuda} libraries, but CUDA "
            f"{other} is what is installed",
            [*mism, f.tf_version_evidence, *failed],
        )
        return
    if f.gpu_visible is True and not failed:
        return
    state = _library_state(f, failed)
    if state is None:
        return
    kind, ev, title, detail = state
    yield _finding(f, kind, title, ev, detail=detail)


def _library_state(f: Facts, failed: list[str]) -> tuple[str, list[str], str, str] | None:
    major = f.tf_cuda_major
    release = f.release
    pins = release.pins() if release else {}
    nvidia_pins = [n for n in pins if n.startswith("nvidia-")]
    installed = [n for n in nvidia_pins if n in f.packages]
    absent = [n for n in nvidia_pins if n not in f.packages]
    requested = f.log.all("pip-install-and-cuda")
    bad = _known_bad_hits(f, "cuda-libs-not-found")
    candidates = [
        f"libraries.{s}"
        for s, lib in f.snap.libraries.items()
        if lib.path is None and lib.candidates and not s.startswith("libcuda.")
    ]
    system_cuda = [
        f"env.{v}"
        for v in ("CUDA_HOME", "CUDA_PATH", "PATH", "LD_LIBRARY_PATH")
        if SYSTEM_CUDA.search(f.snap.env.get(v, ""))
    ]
    tf_label = f"TensorFlow {f.tf_version}" if f.tf_version else "TensorFlow"
    if bad and (failed or f.tf_gpus == ()):
        have = installed or requested or not f.packages_complete
        if have:
            ev = [f.tf_version_evidence, *failed] + [f"packages.{n}" for n in installed[:1]]
            ev += [h.evidence for h in requested]
            why = next(b.why for b in f.rules.known_bad if b.id == bad[0])
            return (
                "cuda-libs-not-found",
                ev,
                f"{tf_label} does not find its pip-installed CUDA libraries (known RUNPATH "
                "regression)",
                why,
            )
    if failed or (f.tf_gpus == () and f.packages_complete and absent):
        if candidates:
            return (
                "cuda-libs-not-found",
                [*candidates, *failed],
                "the CUDA libraries exist on this machine, but the loader does not find them",
                "",
            )
        if installed and (not absent or not f.packages_complete):
            return (
                "cuda-libs-not-found",
                [*failed, *(f"packages.{n}" for n in installed)],
                f"the nvidia-* CUDA wheels are installed, but {tf_label} does not load them",
                "",
            )
        if not f.packages_complete and (f.snap.platform.wsl or system_cuda) and f.tf_version:
            ev = [*failed, *system_cuda] + (["platform.wsl"] if f.snap.platform.wsl else [])
            return (
                "cuda-libs-not-found",
                ev,
                f"{tf_label} cannot load the CUDA libraries: a system CUDA is not on the loader "
                "path and no nvidia-* wheels are shown",
                "Either put the system CUDA's lib64 on LD_LIBRARY_PATH or, better, install the "
                "pinned nvidia-* wheels with tensorflow[and-cuda].",
            )
        ev = list(failed)
        if f.packages_complete:
            ev.append("packages")
        if absent and f.packages_complete:
            title = (
                f"{tf_label} is a CUDA build, but {len(absent)} of its {len(nvidia_pins)} "
                "CUDA library wheels are not installed"
                if installed
                else f"{tf_label} is a CUDA build, but no CUDA libraries are installed "
                "(tensorflow without [and-cuda])"
            )
        else:
            title = f"{tf_label} cannot load the CUDA libraries it needs"
            sonames = [h.groups["soname"] for h in f.log.all("dlopen-failed")]
            if sonames:
                title += f" ({', '.join(dict.fromkeys(sonames))})"
                return ("cuda-libs-missing", ev, title, soname_detail(f.rules, sonames))
        return ("cuda-libs-missing", ev, title, "")
    if (
        f.packages_complete
        and release is not None
        and major is not None
        and absent
        and not installed
        and f.is_cuda_build is not False
        and f.tf_gpus is None
        and f.linux
    ):
        return (
            "cuda-libs-missing",
            [f.tf_version_evidence, "packages"],
            f"{tf_label} is a CUDA build, but no CUDA libraries are installed "
            "(tensorflow without [and-cuda])",
            "",
        )
    return None


def soname_detail(rules: Ruleset, sonames: Sequence[str]) -> str:
    """Which TensorFlow lines (and CUDA versions) load these sonames, from rules/lines.toml."""
    parts = []
    for soname in dict.fromkeys(sonames):
        lines = [line for line in rules.lines.values() if soname in line.sonames.values()]
        if not lines:
            continue
        names = sorted(
            (line.name for line in lines), key=lambda n: parse_version(n) or Version("0")
        )
        cudas = sorted(
            {line.cuda for line in lines}, key=lambda c: parse_version(c) or Version("0")
        )
        span = names[0] if len(names) == 1 else f"{names[0]}–{names[-1]}"
        parts.append(f"{soname} is what TensorFlow {span} loads (CUDA {', '.join(cudas)})")
    return "; ".join(parts) + "." if parts else ""


def _check_windows_dlls(f: Facts) -> Iterable[Finding]:
    hits = f.log.all("dll-not-found")
    if not hits or f.tf_v is None or f.tf_v >= Version("2.11"):
        return
    cuda_dirs = [e for e in f.env_list("PATH") if re.search(r"CUDA", e, re.I)]
    py = parse_version(f.python)
    if cuda_dirs and py is not None and py >= Version("3.8"):
        yield _finding(
            f,
            "windows-dll-search-path",
            "the CUDA DLL folder is on PATH, but Python ≥ 3.8 no longer searches PATH for "
            "DLL dependencies",
            ["env.PATH", "python.version", *(h.evidence for h in hits)],
        )
    else:
        yield _finding(
            f,
            "cuda-libs-missing",
            "TensorFlow cannot load the CUDA DLLs it needs",
            [h.evidence for h in hits],
        )


def check_cudnn(f: Facts) -> Iterable[Finding]:
    """cudnn-version-mismatch, ld-library-path-shadowing, framework-pin-conflict."""
    release = f.release
    pins = release.pins() if release else {}
    # Which installed nvidia-* wheels miss TensorFlow's pins, and whose pins put them there.
    drift: dict[str, str] = {}
    for name, spec in pins.items():
        have = f.packages.get(name)
        if have is not None and not spec.contains(have, prereleases=True):
            drift[name] = have
    conflicts = _framework_conflicts(f, pins)
    # shadowing
    shadow_ev: list[str] = []
    for soname, lib in f.snap.libraries.items():
        preloaded = bool(lib.loaded and lib.loaded != lib.path)
        if (lib.via in {"LD_LIBRARY_PATH", "preloaded"} or preloaded) and wrong_library(
            f, soname, lib
        ):
            shadow_ev += [
                "env.LD_LIBRARY_PATH" if lib.via == "LD_LIBRARY_PATH" else "",
                f"libraries.{soname}",
            ]
    nvj = f.log.all("nvjitlink-symbol")
    if nvj and any(SYSTEM_CUDA.search(e) for e in f.env_list("LD_LIBRARY_PATH")):
        shadow_ev += ["env.LD_LIBRARY_PATH", *(h.evidence for h in nvj)]
    mism_hits = f.log.all("cudnn-runtime-mismatch")
    right_wheel = next(
        (n for n in f.packages if re.fullmatch(r"nvidia-cudnn-cu\d+", n) and n not in drift), None
    )
    other_cudnn = next((n for n in ("cudnn",) if n in f.packages), None)
    if mism_hits and right_wheel and other_cudnn:
        # the right cuDNN wheel is installed, yet another one is loaded ahead of it
        hit = mism_hits[0]
        loaded = hit.groups.get("loaded", "")
        if parse_version(f.packages[other_cudnn]) == parse_version(loaded):
            shadow_ev += [f"packages.{other_cudnn}", f"packages.{right_wheel}", hit.evidence]
            if "LD_LIBRARY_PATH" in f.snap.env:
                shadow_ev.insert(0, "env.LD_LIBRARY_PATH")
    shadow_ev = [e for e in shadow_ev if e]
    if conflicts:
        fw, fw_version, names = conflicts[0]
        yield _finding(
            f,
            "framework-pin-conflict",
            f"{fw} {fw_version} pins {', '.join(names)} to versions TensorFlow "
            f"{f.tf_version} cannot use",
            [f"packages.{fw}", *(f"packages.{n}" for n in names), f.tf_version_evidence]
            + [h.evidence for h in f.log.all("framework-pin")],
            detail="pip can only keep one version of each nvidia-* wheel. Either install "
            "TensorFlow's pins (torch may then misbehave), choose releases whose pins agree "
            "(e.g. tensorflow 2.20 with torch 2.8), or use one venv per framework.",
        )
    elif f.log.has("framework-pin"):
        hit = f.log.first("framework-pin")
        assert hit is not None
        yield _finding(
            f,
            "framework-pin-conflict",
            f"{hit.groups.get('framework')} {hit.groups.get('framework_version')} requires "
            f"{hit.groups.get('requirement')}, which TensorFlow's pins exclude",
            [hit.evidence],
        )
    if shadow_ev:
        yield _finding(f, "ld-library-path-shadowing", _shadow_title(f, shadow_ev), shadow_ev)
    cudnn_ev: list[str] = []
    title = ""
    conflict_names = {n for _fw, _v, names in conflicts for n in names}
    for name, have in sorted(drift.items()):
        if "cudnn" in name and name not in conflict_names:
            cudnn_ev.append(f"packages.{name}")
            title = (
                f"{name} {have} is installed, but TensorFlow {f.tf_version} needs "
                f"{name}{pins[name]}"
            )
    for hit in mism_hits:
        loaded, compiled = hit.groups.get("loaded"), hit.groups.get("compiled")
        lv, cv = parse_version(loaded), parse_version(compiled)
        if lv and cv and (lv.major != cv.major or lv.minor < cv.minor):
            cudnn_ev.append(hit.evidence)
            title = title or (
                f"TensorFlow loads cuDNN {loaded}, but it was compiled with cuDNN {compiled} "
                "(needs the same major and an equal or newer minor)"
            )
    found = f.library("cudnn")
    if found and f.tf_cudnn and found[1].version:
        lv, need = parse_version(found[1].version), parse_version(f.tf_cudnn)
        if lv and need and (lv.major != need.major or lv.minor < need.minor):
            cudnn_ev.append(f"libraries.{found[0]}")
            title = title or (
                f"the loader resolves cuDNN {found[1].version}, but TensorFlow "
                f"{f.tf_version} needs cuDNN {f.tf_cudnn}"
            )
    if not cudnn_ev and f.log.has("cudnn-init-failed") and not shadow_ev and not conflicts:
        cudnn_ev = [h.evidence for h in f.log.all("cudnn-init-failed")]
        title = "cuDNN failed to initialise (usually a cuDNN older than the one TF needs)"
    if cudnn_ev:
        yield _finding(f, "cudnn-version-mismatch", title, cudnn_ev)
    # other nvidia drift that is not cuDNN and not a framework's doing
    other = {n: v for n, v in drift.items() if "cudnn" not in n and n not in conflict_names}
    if other and not f.log.has("pip-install-and-cuda"):
        names = sorted(other)
        yield _finding(
            f,
            "cuda-version-mismatch",
            f"{', '.join(f'{n} {other[n]}' for n in names)} "
            f"{'does' if len(names) == 1 else 'do'} not match TensorFlow {f.tf_version}'s pins",
            [f"packages.{n}" for n in names] + [f.tf_version_evidence],
            severity=Severity.WARNING,
        )


def _shadow_title(f: Facts, evidence: Sequence[str]) -> str:
    # cuDNN first: TensorFlow checks its version strictly, while a CUDA runtime of another
    # minor is usually tolerated (minor-version compatibility), so it names the real harm.
    for pointer in sorted(evidence, key=lambda p: not p.startswith("libraries.libcudnn")):
        if not pointer.startswith("libraries."):
            continue
        soname = pointer.removeprefix("libraries.")
        lib = f.snap.libraries.get(soname)
        if lib is None or not isinstance(lib.path, str):
            continue
        version = f" {lib.version}" if lib.version else ""
        if lib.loaded and lib.loaded != lib.path:
            return (
                f"another import mapped {lib.loaded}{version} before TensorFlow could load "
                f"its own {soname}"
            )
        folder = lib.path.rsplit("/", 1)[0]
        return (
            f"LD_LIBRARY_PATH puts {soname}{version} from {folder} ahead of the one "
            "TensorFlow needs"
        )
    if f.log.has("nvjitlink-symbol"):
        return (
            "LD_LIBRARY_PATH puts a system CUDA's libnvJitLink ahead of the one the pip CUDA "
            "libraries need"
        )
    return "LD_LIBRARY_PATH puts another version of a CUDA library ahead of the one TF needs"


def wrong_library(f: Facts, soname: str, lib: Library) -> bool:
    """True when the file the loader resolves for *soname* is not one TensorFlow can use."""
    if lib.path is UNKNOWN or lib.path is None:
        return False
    later = [c for c in lib.candidates if c != lib.path]
    if "cudnn" in soname and f.tf_cudnn and lib.version:
        lv, need = parse_version(lib.version), parse_version(f.tf_cudnn)
        if lv and need and (lv.major != need.major or lv.minor < need.minor):
            return True
    if lib.error:
        return bool(later)
    if lib.loaded and lib.loaded != lib.path and "/nvidia/" not in lib.loaded:
        return True  # something imported earlier mapped another copy first
    return bool(later) and any("/nvidia/" in c for c in later) and "/nvidia/" not in str(lib.path)


def _framework_conflicts(
    f: Facts, pins: Mapping[str, SpecifierSet]
) -> list[tuple[str, str, list[str]]]:
    out = []
    for fw, versions in sorted(f.rules.frameworks.items()):
        have = f.packages.get(fw)
        if have is None or not pins:
            continue
        fw_pins = versions.get(have) or versions.get(have.split("+")[0])
        if fw_pins is None:
            continue
        names = []
        for name, spec_text in sorted(fw_pins.items()):
            if name not in pins:
                continue
            exact = re.fullmatch(r"==\s*([\w.]+)", spec_text)
            if exact and not pins[name].contains(exact.group(1), prereleases=True):
                names.append(name)
        if names:
            out.append((fw, have, names))
    return out


def check_xla(f: Facts) -> Iterable[Finding]:
    """xla-cuda-tools-missing."""
    hits = f.log.all("libdevice-missing", "ptxas-missing")
    if hits:
        ev = [h.evidence for h in hits]
        if "XLA_FLAGS" in f.snap.env:
            ev.append("env.XLA_FLAGS")
        what = "libdevice" if any(h.signal == "libdevice-missing" for h in hits) else "ptxas"
        yield _finding(
            f,
            "xla-cuda-tools-missing",
            f"XLA cannot find {what} (from the CUDA toolkit's nvcc)",
            ev,
        )
        return
    release = f.release
    if release is None or not f.packages_complete or f.is_cuda_build is False:
        return
    nvcc = [n for n in release.pins() if n.startswith("nvidia-cuda-nvcc")]
    others = [n for n in release.pins() if n.startswith("nvidia-") and n in f.packages]
    if nvcc and others and nvcc[0] not in f.packages:
        yield _finding(
            f,
            "xla-cuda-tools-missing",
            f"{nvcc[0]} (ptxas and libdevice for XLA) is not installed",
            ["packages", f.tf_version_evidence],
            severity=Severity.WARNING,
        )


CHECKS: tuple[Check, ...] = (
    check_platform,
    check_python,
    check_interpreter,
    check_container,
    check_driver,
    check_driver_version,
    check_nvml,
    check_distribution,
    check_import,
    check_and_cuda,
    check_visible_devices,
    check_arch,
    check_libraries,
    check_cudnn,
    check_xla,
)
"""Every check, in layer order (the order does not affect the result: ranking decides)."""


# --------------------------------------------------------------------------- the graph


@dataclass(frozen=True, slots=True)
class Graph:
    """The ranked findings, whether a GPU is visible, and the facts they came from."""

    findings: tuple[Finding, ...]
    gpu_visible: bool | None
    facts: Facts


def _merge(findings: Iterable[Finding]) -> dict[str, Finding]:
    """One finding per id: the first (most specific) title, evidence of all, worst severity."""
    out: dict[str, Finding] = {}
    for finding in findings:
        have = out.get(finding.id)
        if have is None:
            out[finding.id] = finding
            continue
        severity = min(have.severity, finding.severity, key=SEVERITY_ORDER.__getitem__)
        out[finding.id] = replace(
            have,
            severity=severity,
            evidence=tuple(dict.fromkeys(have.evidence + finding.evidence)),
            detail=have.detail or finding.detail,
            location=have.location or finding.location,
        )
    return out


def blocked_by(present: Mapping[str, Finding], rules: Ruleset) -> dict[str, tuple[str, ...]]:
    """id -> ids of present findings it blocks (direct edges from the rules)."""
    edges = {}
    for fid in present:
        meta = rules.causes.get(fid)
        declared = meta.blocks if meta else ()
        edges[fid] = tuple(sorted(b for b in declared if b in present and b != fid))
    return edges


def _reach(edges: Mapping[str, tuple[str, ...]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    seen.discard(start)
    return seen


def finding_rank(finding: Finding, blocked: int, rules: Ruleset) -> tuple[int, int, int, str]:
    """The ranking key of a finding (lower ranks first).

    Errors before warnings before info; then the finding that blocks the most other present
    findings (transitively); then the cause's layer rank from the rules (platform, driver,
    distribution, devices, libraries, tools); then the id, so the order is total.
    """
    meta = rules.causes.get(finding.id)
    return (SEVERITY_ORDER[finding.severity], -blocked, meta.rank if meta else 90, finding.id)


def build_graph(
    snapshot: Snapshot, rules: Ruleset, *, extra_findings: Sequence[Finding] = ()
) -> Graph:
    """Run every check over *snapshot*, merge, hide what is explained, link and rank."""
    facts = Facts(snapshot, rules, scan_log(snapshot.log, rules))
    raw: list[Finding] = []
    for check in CHECKS:
        raw.extend(check(facts))
    raw.extend(extra_findings)
    raw.extend(unrecognized_finding(snapshot.log, facts.log, rules, facts.gpu_visible))
    present = _merge(raw)
    hidden: set[str] = set()
    for fid in present:
        meta = rules.causes.get(fid)
        if meta and present[fid].severity == Severity.ERROR:
            hidden.update(h for h in meta.hides if h != fid)
    present = {k: v for k, v in present.items() if k not in hidden}
    problems = [f for f in present.values() if f.severity != Severity.INFO]
    gpu_visible = facts.gpu_visible
    if gpu_visible and not problems:
        noise = len(facts.log.noise)
        present["healthy"] = _finding(
            facts,
            "healthy",
            f"TensorFlow sees {len(facts.tf_gpus or ()) or 'a'} GPU"
            + ("s" if len(facts.tf_gpus or ()) > 1 else "")
            + (f"; {noise} log line(s) are known noise" if noise else ""),
            ["tensorflow.gpus"]
            if facts.tf_gpus
            else [h.evidence for h in facts.log.all("gpu-listed")],
        )
    edges = blocked_by(present, rules)
    linked = {fid: replace(f, blocks=edges[fid]) for fid, f in present.items()}
    ranked = sorted(linked.values(), key=lambda f: finding_rank(f, len(_reach(edges, f.id)), rules))
    return Graph(tuple(ranked), gpu_visible, facts)
