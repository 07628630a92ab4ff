"""The frozen data tffix reasons about: what it saw (a snapshot) and what it concludes.

Nothing here reads or writes the system. Probes build a ``Snapshot``; diagnosis and planning
are pure functions from a ``Snapshot`` to a ``Diagnosis``. JSON conversion lives in
``tffix.document``.

Partial knowledge is the normal case (a user pastes ``pip list`` and ten log lines), so every
field that may be unknown is ``None`` when unknown. Where the contract gives ``null`` a meaning
of its own (``driver: null`` = "no driver answered", ``libraries[x].path: null`` = "nothing
resolves"), the absent case is the ``UNKNOWN`` sentinel instead, so the two never blur.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import field
from types import MappingProxyType
from typing import TypeVar

from tffix.record import record

SNAPSHOT_SCHEMA = "tffix.snapshot/1"
DIAGNOSIS_SCHEMA = "tffix.diagnosis/1"


class _Unknown(enum.Enum):
    """Single-member sentinel: the fact was not observed (absent from the document)."""

    UNKNOWN = "unknown"

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False


UNKNOWN = _Unknown.UNKNOWN
T = TypeVar("T")


def frozen_map(items: Mapping[str, T] | None = None) -> Mapping[str, T]:
    """Return a read-only copy of *items* (keys sorted, so output order is deterministic)."""
    return MappingProxyType(dict(sorted((items or {}).items())))


# --------------------------------------------------------------------------- snapshot parts


@record
class Platform:
    """The operating system and runtime around the interpreter."""

    os: str | None = None
    """``linux``, ``windows`` or ``macos``."""
    arch: str | None = None
    """``x86_64``, ``aarch64``, ``arm64``, …"""
    wsl: bool | None = None
    """True under WSL2."""
    container: str | _Unknown | None = UNKNOWN
    """``docker``, ``podman``, ``kubernetes``, ``lxc``, … or None when not in a container."""
    libc: str | None = None
    """For example ``glibc 2.35``."""
    distro: str | None = None
    """``PRETTY_NAME`` from os-release."""
    kernel: str | None = None
    """``uname -r``."""
    jetson: bool | None = None
    """True on an NVIDIA Jetson (L4T) board."""
    shell: str | None = None
    """The user's interactive shell (``bash``, ``zsh``, ``fish``, ``pwsh``, …)."""
    scheduler: str | _Unknown | None = UNKNOWN
    """``slurm``, ``kubernetes`` or ``ray`` when a scheduler assigned the devices, else None."""
    cpu_flags: tuple[str, ...] | None = None
    """The CPU features TensorFlow cares about (``avx``, ``avx2``, …) when known."""


@record
class PythonInfo:
    """The target interpreter."""

    version: str | None = None
    executable: str | None = None
    venv: str | _Unknown | None = UNKNOWN
    """The virtualenv's folder, or None when the target is not a virtualenv."""
    kind: str | None = None
    """``venv``, ``conda``, ``conda-base``, ``system`` (see ``tffix.probes.target``)."""
    implementation: str | None = None


@record
class Driver:
    """The NVIDIA driver, as NVML (or ``/proc/driver/nvidia/version``) reports it."""

    version: str | None = None
    """For example ``550.54.14``."""
    cuda: str | None = None
    """The highest CUDA version the driver supports, ``12.4``."""
    source: str | None = None
    """``nvml``, ``proc`` or ``log``: where the version came from."""
    kernel_module: str | None = None
    """The kernel module's version from ``/proc/driver/nvidia/version``, when readable."""
    error: str | None = None
    """The driver answered but refused (``Driver/library version mismatch``)."""


@record
class Gpu:
    """One GPU as the driver reports it, before ``CUDA_VISIBLE_DEVICES`` is applied."""

    name: str | None = None
    compute_capability: str | None = None
    """``8.6``."""
    uuid: str | None = None
    index: int | None = None
    memory_mib: int | None = None
    mig: bool | None = None


@record
class Library:
    """Which file the dynamic loader resolves for one soname, for TensorFlow."""

    path: str | _Unknown | None = UNKNOWN
    """The resolved file; None when nothing resolves."""
    version: str | None = None
    via: str | None = None
    """``LD_LIBRARY_PATH``, ``RUNPATH``, ``ld.so.cache``, ``default``, ``preloaded``."""
    loaded: str | None = None
    """The file TensorFlow actually had mapped after discovery, where it was seen."""
    candidates: tuple[str, ...] = ()
    """Every file of that soname on the search path, in the loader's order."""
    error: str | None = None
    """``dlerror()`` text when the resolved file exists but does not load."""


@record
class TensorFlowBuild:
    """``tf.sysconfig.get_build_info()``."""

    cuda_version: str | None = None
    cudnn_version: str | None = None
    is_cuda_build: bool | None = None
    is_rocm_build: bool | None = None
    cuda_compute_capabilities: tuple[str, ...] | None = None


@record
class TensorFlowInfo:
    """What TensorFlow itself said in a fresh child process of the target interpreter."""

    version: str | None = None
    import_error: str | _Unknown | None = UNKNOWN
    """The exception text when ``import tensorflow`` failed; None when it imported."""
    build: TensorFlowBuild | None = None
    gpus: tuple[str, ...] | None = None
    """``list_physical_devices('GPU')`` names; None when not asked or it failed."""
    file: str | None = None
    """``tensorflow.__file__``."""
    exit: str | None = None
    """How the child ended when not normally (``timeout after 60s``, ``killed by SIGSEGV``)."""
    seconds: float | None = None


ENTRY_POINT_VARIABLES = (
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "XLA_FLAGS",
    "TF_XLA_FLAGS",
    "CUDA_HOME",
    "CUDNN_PATH",
)
"""The variables that can make one entry point differ from another, most decisive first:
the ones an entry point's ``values`` holds and whose origin is traced."""


@record
class EntryPointState:
    """One way the interpreter is run (``tffix.probes.entrypoints``) and what TensorFlow does
    there: the check run the way that entry point runs it."""

    kind: str
    """``activated``, ``plain``, ``kernel``, ``vscode``, ``cron`` or ``systemd``."""
    name: str
    source: str | None = None
    """The file that defines it (``kernel.json``, ``settings.json``), if any."""
    python: str | None = None
    """The interpreter it starts (a kernel's ``argv[0]``)."""
    adds: Mapping[str, str | None] = field(default_factory=frozen_map)
    """What it changes in the variables that matter, against the caller's environment
    (None: it unsets the variable)."""
    values: Mapping[str, str] = field(default_factory=frozen_map)
    """The traced variables (``CUDA_VISIBLE_DEVICES``, ``LD_LIBRARY_PATH``, ``XLA_FLAGS``, …)
    as that entry point has them; an absent key is unset there."""
    usable: bool | None = None
    """True when a GPU was listed and an op (and a conv2d) ran on it there; None: not checked."""
    gpus: tuple[str, ...] | None = None
    error: str | None = None
    """Why it is not usable (the check's error), when it is not."""


@record
class Origin:
    """One place that sets (or extends) a variable (``tffix.probes.provenance``)."""

    file: str
    line: int | None
    text: str
    kind: str
    """``shell``, ``login``, ``system``, ``module``, ``conda``, ``python``, ``kernelspec``,
    ``dotenv``, ``activate``, ``vscode``, ``cron``, ``systemd``."""


@record
class Provenance:
    """Where the variables that matter come from, and every place tffix looked."""

    origins: Mapping[str, tuple[Origin, ...]] = field(default_factory=frozen_map)
    """Variable -> every line that sets or extends it, in the order a session loads them."""
    searched: tuple[str, ...] = ()


@record
class Snapshot:
    """Everything tffix saw, as the ``tffix.snapshot/1`` document says it."""

    platform: Platform = field(default_factory=Platform)
    python: PythonInfo = field(default_factory=PythonInfo)
    packages: Mapping[str, str] | None = None
    """Canonical distribution name -> version; None when unknown."""
    env: Mapping[str, str] = field(default_factory=frozen_map)
    """Only variables that matter, verbatim; an absent key means unset or unknown."""
    driver: Driver | _Unknown | None = UNKNOWN
    gpus: tuple[Gpu, ...] | None = None
    libraries: Mapping[str, Library] = field(default_factory=frozen_map)
    tensorflow: TensorFlowInfo | _Unknown | None = UNKNOWN
    """None when the target has no TensorFlow to ask."""
    log: tuple[str, ...] = ()
    extra: Mapping[str, object] = field(default_factory=frozen_map)
    """Probe details beyond the contract (owners of ``tensorflow/``, nvidia lib folders,
    activate-script settings, device nodes, …), keyed by probe."""
    unknown: Mapping[str, str] = field(default_factory=frozen_map)
    """Probe key -> why it could not be determined ("unknown, because …")."""
    entry_points: tuple[EntryPointState, ...] | None = None
    """How the interpreter is run, each with the GPU check's result there; None: not looked."""
    provenance: Provenance | None = None
    """Where the variables that matter are set; None: not looked."""


# --------------------------------------------------------------------------- diagnosis


class Severity(str, enum.Enum):
    """How much a finding matters."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    def __str__(self) -> str:
        return self.value

    @property
    def order(self) -> int:
        """0 for errors, 1 for warnings, 2 for info: the order findings are shown and ranked."""
        return _SEVERITY_ORDER[self]


_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


class FixSide(str, enum.Enum):
    """Who can fix a finding: tffix inside the venv, or a person outside it."""

    VENV = "venv"
    OUTSIDE = "outside"

    def __str__(self) -> str:
        return self.value


class Safety(str, enum.Enum):
    """How safe a plan step is to apply (ruff's fix-safety model)."""

    SAFE = "safe"
    """Applied after one confirmation, or by ``--yes``."""
    UNSAFE = "unsafe"
    """Applied only with ``--unsafe`` (changes the TensorFlow release, overrides pins)."""
    MANUAL = "manual"
    """Shown with exact commands, never applied."""

    def __str__(self) -> str:
        return self.value


class StepKind(str, enum.Enum):
    """The plan step kinds of ``tffix.diagnosis/1``."""

    PIP_INSTALL = "pip-install"
    PIP_UNINSTALL = "pip-uninstall"
    ENV_SET = "env-set"
    ENV_UNSET = "env-unset"
    ENV_PATH_PREPEND = "env-path-prepend"
    ENV_PATH_REMOVE = "env-path-remove"
    MANUAL = "manual"
    KERNELSPEC_ENV = "kernelspec-env"
    """Edit one Jupyter kernelspec's ``env`` (``path``: its ``kernel.json``)."""
    IMPORT_HOOK = "import-hook"
    """Set/unset a variable or preload libraries when TensorFlow is imported (``tffix.hook``)."""
    STARTUP_EDIT = "startup-edit"
    """Comment out one line of a user's start-up file (always unsafe)."""

    def __str__(self) -> str:
        return self.value


@record
class Finding:
    """One cause, with the evidence that points into the snapshot."""

    id: str
    severity: Severity
    fix: FixSide
    title: str
    evidence: tuple[str, ...] = ()
    detail: str = ""
    """A longer explanation, shown with ``-v``."""
    blocks: tuple[str, ...] = ()
    """Ids of findings that cannot be judged (or fixed) until this one is."""
    location: str | None = None
    """``file:line`` for findings from the code scan."""


@record
class PlanStep:
    """One action. Exactly the fields its ``kind`` needs are set."""

    kind: StepKind
    summary: str
    safety: Safety
    resolves: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    variable: str | None = None
    value: str | None = None
    entry: str | None = None
    """env-path-prepend/-remove: the text put first on (or removed from) the list variable;
    for a prepend of several folders, they joined by ``os.pathsep``, in order."""
    entries: tuple[str, ...] = ()
    """env-path-prepend: the folders put first, in order (one edit, however many)."""
    commands: tuple[str, ...] = ()
    op: str | None = None
    """For kernelspec-env and import-hook: ``set``, ``unset``, ``prepend`` or ``remove``."""
    path: str | None = None
    """The file a kernelspec-env or startup-edit step changes."""
    line: int | None = None
    """The line a startup-edit step comments out (1-based)."""
    before: str | None = None
    """That line as it reads now (the edit is refused when it reads otherwise)."""
    after: str | None = None
    """That line as the step leaves it."""
    preload: tuple[str, ...] = ()
    """Libraries an import-hook step preloads by full path."""
    needs: tuple[int, ...] = ()
    """Numbers (1-based, in the same plan) of the steps this one needs: applied with it, or
    first; without them it is not applied (``tffix.stepdeps`` derives them)."""

    def identity(self) -> tuple[object, ...]:
        """What makes two steps the same action, whatever their summary, safety, resolved
        findings or edges: the planner merges plan steps by it, the repair remembers the
        steps it tried by it."""
        return (
            self.kind,
            self.requirements,
            self.packages,
            self.variable,
            self.value,
            self.entry,
            self.commands,
            self.op,
            self.path,
            self.line,
            self.preload,
        )


@record
class GpuUse:
    """What is known of TensorFlow and the GPU, one fact each (None: not observed).

    *listed* is ``list_physical_devices('GPU')``; the others say whether work ran there: a
    plain op, a cuDNN op, an XLA-compiled function. A snapshot never runs ops, so they are
    known only where its evidence shows them (a log line of a failed cuDNN or XLA call, an
    error finding that rules the GPU out); *usable* sums them up: True only when an op ran.
    """

    listed: bool | None = None
    op: bool | None = None
    cudnn: bool | None = None
    xla: bool | None = None
    why: str | None = None
    """For *usable* False: the finding that shows it."""

    @property
    def usable(self) -> bool | None:
        if self.listed is False or False in (self.op, self.cudnn, self.xla):
            return False
        return True if self.op is True else None


@record
class Diagnosis:
    """The ``tffix.diagnosis/1`` document: ranked findings and the ranked plan."""

    gpu_visible: bool | None
    findings: tuple[Finding, ...] = ()
    plan: tuple[PlanStep, ...] = ()
    entry_points: tuple[EntryPointState, ...] | None = None
    """Each way the interpreter is run, usable or not (from the snapshot)."""
    gpu_use: GpuUse | None = None
    """Listed and usable as separate facts (None: not worked out, as in a bare ``Diagnosis``)."""
