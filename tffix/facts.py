"""What the checks need, derived once from a (possibly very partial) snapshot and the rules.

Pure. ``Facts`` is the one reading of a snapshot every cause's detection and fix share; the
version helpers parse the loose version text found in snapshots and logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tffix.logparse import LogFacts
from tffix.model import Driver, Library, Snapshot, TensorFlowInfo
from tffix.ruleset import Release, Ruleset

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

    def known_bad_hits(self, cause: str) -> list[str]:
        """Ids of the rules' known defects of the installed release that apply here."""
        out = []
        for bad in self.rules.known_bad:
            if bad.cause != cause or self.tf_version not in bad.releases:
                continue
            if bad.python is not None and (self.python is None or self.python not in bad.python):
                continue
            if bad.requires is not None:
                have = self.packages.get(canonicalize_name(bad.requires.name))
                if have is None or not bad.requires.specifier.contains(have, prereleases=True):
                    continue
            out.append(bad.id)
        return out
