"""Load and validate the rules data (``rules/*.toml``) into frozen objects.

Every ``*.toml`` file in the rules folder is read; each top-level table this module knows
(``causes``, ``release``, ``line``, ``minimum``, ``toolkit``, ``signature``, ``noise``, ``gpu``,
``message``, ``message_source``, ``tf_era``,
``known_bad``, ``platform``, ``framework``) is validated key by key, and a mistake is a
``RuleError`` naming the file and the key. Tables it does not know belong to other modules
(``era`` in ``sonames.toml``, the code-scan patterns) and are left alone. ``[causes.<id>]`` may
appear in any file; the same id in two files is an error naming both.

Reading files is the only I/O here and happens once per process (``load_rules`` caches).
Nothing here looks at the machine being diagnosed.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from tffix.eras import Era, parse_eras
from tffix.errors import RuleError
from tffix.lazyre import GuardedPattern
from tffix.messages import (
    Message,
    MessageSource,
    check_messages,
    parse_messages,
    parse_sources,
    rule_pattern,
)
from tffix.model import FixSide, Severity, frozen_map
from tffix.record import record
from tffix.resources import rules_dir

if TYPE_CHECKING:  # importlib.abc pulls in importlib.resources, tempfile, shutil …
    from importlib.abc import Traversable

    # packaging.requirements imports packaging.utils, which imports packaging.tags (logging,
    # platform, sysconfig, subprocess): a fifth of a snapshot diagnosis's start-up. The rules'
    # requirements are plain ``name<specifiers>`` and are read by ``name_and_specifier``;
    # ``Requirement`` is imported only for one that is not.
    from packaging.requirements import Requirement


# --------------------------------------------------------------------------- rule objects


@record
class CauseMeta:
    """One cause id: who fixes it, how bad it is, and its edges to other causes."""

    id: str
    fix: FixSide
    severity: Severity
    summary: str
    rank: int = 90
    """Lower is earlier when the graph does not decide (the layer order of causes.md)."""
    blocks: tuple[str, ...] = ()
    """Causes that cannot be judged or fixed until this one is."""
    hides: tuple[str, ...] = ()
    """Causes this one fully explains: when both fire, the hidden one is not reported."""
    file: str = ""


@record
class Release:
    """One TensorFlow release in the matrix (Linux x86_64 wheels)."""

    version: str
    python: tuple[str, ...]
    """``major.minor`` of the Pythons with a Linux x86_64 wheel."""
    cuda: str
    cudnn: str
    compute_capabilities: tuple[str, ...]
    requires_python: str = ""
    glibc: str = ""
    and_cuda: tuple[str, ...] = ()
    """The ``[and-cuda]`` requirements exactly as the wheel METADATA states them."""
    and_cuda_resolves: bool = False
    and_cuda_error: str = ""
    source: Mapping[str, str] = field(default_factory=frozen_map)

    @property
    def key(self) -> Version:
        """The version as a comparable ``Version``."""
        return Version(self.version)

    @property
    def line(self) -> str:
        """``2.18`` for ``2.18.1``."""
        return ".".join(self.version.split(".")[:2])

    def pins(self) -> Mapping[str, SpecifierSet]:
        """The ``[and-cuda]`` requirements as name -> specifier."""
        out = {}
        for text in self.and_cuda:
            name, specifier = name_and_specifier(text)
            out[name] = specifier
        return out


@record
class Line:
    """A release line (``2.4``): its CUDA/cuDNN and the sonames it loads."""

    name: str
    cuda: str
    cudnn: str
    sonames: Mapping[str, str] = field(default_factory=frozen_map)
    python: tuple[str, ...] = ()
    """The Python versions the line published wheels for (empty: see the matrix)."""


@record
class DriverFloor:
    """A driver version floor for a CUDA major (``minimum``) or toolkit (``toolkit``)."""

    cuda: str
    linux: str
    windows: str


@record
class Signature:
    """A log line pattern and what it signals."""

    signal: str
    pattern: GuardedPattern
    cause: str


@record
class Noise:
    """A known-harmless log line."""

    pattern: GuardedPattern
    why: str


@record
class GpuName:
    """A GPU marketing-name pattern and its compute capability."""

    match: GuardedPattern
    compute_capability: str
    """"" for a GPU that is not NVIDIA's (it has none)."""
    vendor: str = "nvidia"
    family: str = ""
    """The architecture (``Blackwell``, ``Ampere``; ``Radeon`` for AMD)."""


@record
class KnownBad:
    """A release with a known defect."""

    id: str
    releases: tuple[str, ...]
    cause: str
    fixed_in: str
    why: str
    python: SpecifierSet | None = None
    requirement: str = ""
    """The requirement the defect also needs installed (``numpy>=2``); "" when none."""

    @property
    def requires(self) -> Requirement | None:
        """``requirement`` parsed (None when there is none)."""
        return _parsed_requirement(self.requirement) if self.requirement else None


@record
class Policy:
    """Platform policy values from ``[platform]``."""

    windows_last_gpu: str = "2.10"
    cpu_only_packages: tuple[str, ...] = ()
    tf_distributions: tuple[str, ...] = ()
    tensorflow_gpu_last: str = "2.11.0"


@record
class FixData:
    """Values the plans name, from ``[fixes]`` (``rules/fixes.toml``)."""

    ngc_image: str = ""
    """An NGC TensorFlow container image built for every current GPU architecture."""
    numpy_1: str = ""
    """The pin of the last NumPy 1.x release."""
    metal: str = ""
    """The pin of Apple's newest tensorflow-metal plugin (for a TensorFlow of unknown release)."""
    metal_pairs: tuple[tuple[tuple[int, int], str], ...] = ()
    """(TensorFlow major, minor) -> the tensorflow-metal version built for that line and the
    lines after it up to the next entry, in order (Apple's release table)."""
    wheel_lib_dirs: Mapping[str, str] = field(default_factory=frozen_map)
    """nvidia-* wheel (no -cuXX) -> its folder under site-packages/nvidia/."""
    soname_lib_dirs: Mapping[str, str] = field(default_factory=frozen_map)
    """soname stem (``libcudnn``) -> the same folder."""

    def metal_for(self, tf_version: str | None) -> str:
        """The ``tensorflow-metal==X`` pin paired with TensorFlow *tf_version* ("" when that
        release predates the plugin; the newest pin when the release is unknown)."""
        parts = (tf_version or "").split(".")
        if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
            return self.metal
        line = (int(parts[0]), int(parts[1]))
        paired = [version for start, version in self.metal_pairs if start <= line]
        return f"tensorflow-metal=={paired[-1]}" if paired else ""


@record
class Ruleset:
    """Everything in ``rules/`` that diagnosis and planning read."""

    causes: Mapping[str, CauseMeta]
    releases: tuple[Release, ...] = ()
    """Oldest first."""
    lines: Mapping[str, Line] = field(default_factory=frozen_map)
    minimums: tuple[DriverFloor, ...] = ()
    toolkits: tuple[DriverFloor, ...] = ()
    signatures: tuple[Signature, ...] = ()
    noise: tuple[Noise, ...] = ()
    gpus: tuple[GpuName, ...] = ()
    known_bad: tuple[KnownBad, ...] = ()
    policy: Policy = field(default_factory=Policy)
    frameworks: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=frozen_map)
    """framework -> version -> distribution -> specifier."""
    fixes: FixData = field(default_factory=FixData)
    messages: tuple[Message, ...] = ()
    """The message catalogue (``rules/messages.toml``), in file order."""
    message_sources: Mapping[str, MessageSource] = field(default_factory=frozen_map)
    eras: tuple[Era, ...] = ()
    """TensorFlow's eras (``[[tf_era]]``), oldest first."""

    def compile_patterns(self) -> None:
        """Compile every pattern now: read from the rules cache, they compile when first used,
        and a command that changes the venv must meet a bad one before its first change
        (``RuleError``), not in the middle of a repair."""
        for pattern in (
            *(s.pattern for s in self.signatures),
            *(n.pattern for n in self.noise),
            *(g.match for g in self.gpus),
            *(m.pattern for m in self.messages),
        ):
            pattern.compiled  # noqa: B018 - compiling is the check

    def release(self, version: str | None) -> Release | None:
        """The matrix entry of *version*, if it is in the matrix."""
        if not version:
            return None
        for rel in self.releases:
            if rel.version == version:
                return rel
        return None

    def line_of(self, version: str | None) -> Line | None:
        """The release line of *version* (``2.4.1`` -> line ``2.4``)."""
        if not version:
            return None
        return self.lines.get(".".join(version.split(".")[:2]))

    def cause(self, cause_id: str) -> CauseMeta:
        """The metadata of *cause_id* (a ``KeyError`` for an unknown id is a bug)."""
        return self.causes[cause_id]


# --------------------------------------------------------------------------- requirements

_SIMPLE_REQUIREMENT = re.compile(
    r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"
    r"(?P<spec>(?:~=|===|==|!=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+"
    r"(?:,(?:~=|===|==|!=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+)*)?"
)
"""``name`` or ``name<op><version>[,<op><version>…]`` without spaces, extras, markers or URLs:
how the rules write every requirement (``nvidia-cudnn-cu12==9.3.0.75``)."""


@functools.lru_cache(maxsize=256)
def _parsed_requirement(text: str) -> Requirement:
    from packaging.requirements import Requirement

    return Requirement(text)


@functools.lru_cache(maxsize=1024)
def name_and_specifier(text: str) -> tuple[str, SpecifierSet]:
    """The name and the specifier of requirement *text*, as ``packaging``'s ``Requirement``
    reads them (``InvalidRequirement`` when it is not one). A plain ``name<specifiers>`` is
    read without importing ``packaging.requirements``; ``tests/test_ruleset_requirements.py``
    holds the two readings equal."""
    match = _SIMPLE_REQUIREMENT.fullmatch(text)
    if match is not None:
        try:
            return match["name"], SpecifierSet(match["spec"] or "")
        except InvalidSpecifier:
            pass  # Requirement says why, in its own words
    req = _parsed_requirement(text)
    return req.name, req.specifier


# --------------------------------------------------------------------------- validation


class _Reader:
    """Typed access to one file's data, raising ``RuleError`` with file and key."""

    def __init__(self, file: str, cached: str = "") -> None:
        self.file = file
        self.cached = cached
        """The rules cache these documents were read from ("": the TOML itself)."""

    def fail(self, key: str, message: str) -> RuleError:
        return RuleError(f"{self.file}: {key}: {message}")

    def table(self, value: object, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return value

    def tables(self, value: object, key: str) -> list[Mapping[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, "must be an array of tables ([[...]])")
        return value

    def keys(
        self, obj: Mapping[str, Any], key: str, required: set[str], optional: set[str]
    ) -> None:
        for name in obj:
            if name not in required | optional:
                allowed = ", ".join(sorted(required | optional))
                raise self.fail(f"{key}.{name}", f"unknown key (allowed: {allowed})")
        for name in sorted(required):
            if name not in obj:
                raise self.fail(f"{key}.{name}", "is required")

    def string(
        self, obj: Mapping[str, Any], name: str, key: str, default: str | None = None
    ) -> str:
        value = obj.get(name, default)
        if not isinstance(value, str):
            raise self.fail(f"{key}.{name}", "must be a string")
        return value

    def strings(self, obj: Mapping[str, Any], name: str, key: str) -> tuple[str, ...]:
        value = obj.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{key}.{name}", "must be a list of strings")
        return tuple(value)

    def integer(self, obj: Mapping[str, Any], name: str, key: str, default: int) -> int:
        value = obj.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{key}.{name}", "must be a whole number")
        return value

    def boolean(self, obj: Mapping[str, Any], name: str, key: str, default: bool) -> bool:
        value = obj.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(f"{key}.{name}", "must be true or false")
        return value

    def regex(self, obj: Mapping[str, Any], name: str, key: str, flags: int = 0) -> GuardedPattern:
        return rule_pattern(
            self.string(obj, name, key), flags, f"{self.file}: {key}.{name}", self.cached
        )

    def version(self, obj: Mapping[str, Any], name: str, key: str) -> str:
        text = self.string(obj, name, key)
        try:
            Version(text)
        except InvalidVersion as exc:
            raise self.fail(f"{key}.{name}", f"{text!r} is not a version") from exc
        return text


def parse_cause(file: str, cause_id: str, obj: Mapping[str, Any]) -> CauseMeta:
    """One ``[causes.<id>]`` table of *file*, validated (a ``RuleError`` names the key)."""
    return _cause(_Reader(file), cause_id, obj)


def _cause(r: _Reader, cause_id: str, obj: Mapping[str, Any]) -> CauseMeta:
    key = f"causes.{cause_id}"
    r.keys(obj, key, {"fix", "severity", "summary"}, {"rank", "blocks", "hides"})
    fix = r.string(obj, "fix", key)
    if fix not in {"venv", "outside"}:
        raise r.fail(f"{key}.fix", "must be 'venv' or 'outside'")
    severity = r.string(obj, "severity", key)
    if severity not in {"error", "warning", "info"}:
        raise r.fail(f"{key}.severity", "must be 'error', 'warning' or 'info'")
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", cause_id):
        raise r.fail(key, "a cause id is kebab-case (a-z, 0-9, -)")
    return CauseMeta(
        id=cause_id,
        fix=FixSide(fix),
        severity=Severity(severity),
        summary=r.string(obj, "summary", key),
        rank=r.integer(obj, "rank", key, 90),
        blocks=r.strings(obj, "blocks", key),
        hides=r.strings(obj, "hides", key),
        file=r.file,
    )


def _requirement(r: _Reader, text: str, key: str) -> SpecifierSet:
    """The specifier of requirement *text* (a ``RuleError`` when it is not a requirement)."""
    try:
        return name_and_specifier(text)[1]
    except ValueError as exc:  # InvalidRequirement, without importing it to name it
        raise r.fail(key, f"not a requirement: {str(exc).splitlines()[0]}") from exc


def _release(r: _Reader, version: str, obj: Mapping[str, Any]) -> Release:
    key = f'release."{version}"'
    r.keys(
        obj,
        key,
        {"python", "cuda", "cudnn", "compute_capabilities"},
        {
            "requires_python",
            "glibc",
            "and_cuda",
            "and_cuda_resolves",
            "and_cuda_error",
            "source",
        },
    )
    try:
        Version(version)
    except InvalidVersion as exc:
        raise r.fail(key, f"{version!r} is not a version") from exc
    and_cuda = r.strings(obj, "and_cuda", key)
    for i, text in enumerate(and_cuda):
        _requirement(r, text, f"{key}.and_cuda[{i}]")
    requires_python = r.string(obj, "requires_python", key, "")
    if requires_python:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier as exc:
            raise r.fail(f"{key}.requires_python", "is not a version specifier") from exc
    source = r.table(obj.get("source", {}), f"{key}.source")
    for name, value in source.items():
        if not isinstance(value, str):
            raise r.fail(f"{key}.source.{name}", "must be a string")
    return Release(
        version=version,
        python=r.strings(obj, "python", key),
        cuda=r.string(obj, "cuda", key),
        cudnn=r.string(obj, "cudnn", key),
        compute_capabilities=r.strings(obj, "compute_capabilities", key),
        requires_python=requires_python,
        glibc=r.string(obj, "glibc", key, ""),
        and_cuda=and_cuda,
        and_cuda_resolves=r.boolean(obj, "and_cuda_resolves", key, bool(and_cuda)),
        and_cuda_error=r.string(obj, "and_cuda_error", key, ""),
        source=frozen_map(source),
    )


def _line(r: _Reader, name: str, obj: Mapping[str, Any]) -> Line:
    key = f'line."{name}"'
    r.keys(obj, key, {"cuda", "cudnn"}, {"sonames", "python"})
    sonames = r.table(obj.get("sonames", {}), f"{key}.sonames")
    for comp, value in sonames.items():
        if not isinstance(value, str):
            raise r.fail(f"{key}.sonames.{comp}", "must be a string")
    return Line(
        name=name,
        cuda=r.string(obj, "cuda", key),
        cudnn=r.string(obj, "cudnn", key),
        sonames=frozen_map(sonames),
        python=tuple(r.strings(obj, "python", key)) if "python" in obj else (),
    )


def _floor(r: _Reader, obj: Mapping[str, Any], key: str) -> DriverFloor:
    r.keys(obj, key, {"cuda", "linux"}, {"windows"})
    return DriverFloor(
        cuda=r.string(obj, "cuda", key),
        linux=r.string(obj, "linux", key),
        windows=r.string(obj, "windows", key, ""),
    )


def _signature(r: _Reader, obj: Mapping[str, Any], key: str) -> Signature:
    r.keys(obj, key, {"signal", "pattern"}, {"cause"})
    return Signature(
        signal=r.string(obj, "signal", key),
        pattern=r.regex(obj, "pattern", key),
        cause=r.string(obj, "cause", key, ""),
    )


def _noise(r: _Reader, obj: Mapping[str, Any], key: str) -> Noise:
    r.keys(obj, key, {"pattern"}, {"why"})
    return Noise(pattern=r.regex(obj, "pattern", key), why=r.string(obj, "why", key, ""))


def _gpu(r: _Reader, obj: Mapping[str, Any], key: str) -> GpuName:
    r.keys(obj, key, {"match", "compute_capability"}, {"vendor", "family"})
    return GpuName(
        match=r.regex(obj, "match", key, re.IGNORECASE),
        compute_capability=r.string(obj, "compute_capability", key),
        vendor=r.string(obj, "vendor", key, "nvidia"),
        family=r.string(obj, "family", key, ""),
    )


def _known_bad(r: _Reader, obj: Mapping[str, Any], key: str) -> KnownBad:
    r.keys(obj, key, {"id", "releases", "cause", "fixed_in", "why"}, {"python", "requires"})
    python = None
    requires = ""
    if "python" in obj:
        try:
            python = SpecifierSet(r.string(obj, "python", key))
        except InvalidSpecifier as exc:
            raise r.fail(f"{key}.python", "is not a version specifier") from exc
    if "requires" in obj:
        requires = r.string(obj, "requires", key)
        _requirement(r, requires, f"{key}.requires")
    return KnownBad(
        id=r.string(obj, "id", key),
        releases=r.strings(obj, "releases", key),
        cause=r.string(obj, "cause", key),
        fixed_in=r.version(obj, "fixed_in", key),
        why=r.string(obj, "why", key),
        python=python,
        requirement=requires,
    )


def _policy(r: _Reader, obj: Mapping[str, Any]) -> Policy:
    key = "platform"
    r.keys(
        obj,
        key,
        set(),
        {"windows_last_gpu", "cpu_only_packages", "tf_distributions", "tensorflow_gpu_last"},
    )
    return Policy(
        windows_last_gpu=r.string(obj, "windows_last_gpu", key, "2.10"),
        cpu_only_packages=r.strings(obj, "cpu_only_packages", key),
        tf_distributions=r.strings(obj, "tf_distributions", key),
        tensorflow_gpu_last=r.string(obj, "tensorflow_gpu_last", key, "2.11.0"),
    )


def _pin(r: _Reader, obj: Mapping[str, Any], name: str, key: str) -> str:
    text = r.string(obj, name, key)
    specs = list(_requirement(r, text, f"{key}.{name}"))
    if len(specs) != 1 or specs[0].operator != "==":
        raise r.fail(f"{key}.{name}", "must pin one exact version (name==version)")
    return text


def _folders(r: _Reader, obj: Mapping[str, Any], name: str, key: str) -> Mapping[str, str]:
    table = r.table(obj.get(name, {}), f"{key}.{name}")
    if not all(isinstance(v, str) and v for v in table.values()):
        raise r.fail(f"{key}.{name}", "values must be folder names")
    return frozen_map(dict(table))


def _metal_pairs(
    r: _Reader, obj: Mapping[str, Any], metal: str, key: str
) -> tuple[tuple[tuple[int, int], str], ...]:
    where = f"{key}.metal_pairs"
    table = r.table(obj.get("metal_pairs", {}), where)
    pairs: list[tuple[tuple[int, int], str]] = []
    for line, version in table.items():
        parts = line.split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise r.fail(f"{where}.{line}", "keys must be TensorFlow release lines (2.14)")
        if not isinstance(version, str) or not all(p.isdigit() for p in version.split(".")):
            raise r.fail(f"{where}.{line}", "values must be tensorflow-metal versions (1.1.0)")
        pairs.append(((int(parts[0]), int(parts[1])), version))
    pairs.sort()
    if pairs and metal.split("==")[-1] != pairs[-1][1]:
        raise r.fail(f"{key}.metal", f"must be the newest pair, tensorflow-metal=={pairs[-1][1]}")
    return tuple(pairs)


def _fixes(r: _Reader, obj: Mapping[str, Any]) -> FixData:
    key = "fixes"
    r.keys(
        obj,
        key,
        {"ngc_image", "numpy_1", "metal"},
        {"wheel_lib_dirs", "soname_lib_dirs", "metal_pairs"},
    )
    metal = _pin(r, obj, "metal", key)
    return FixData(
        ngc_image=r.string(obj, "ngc_image", key),
        numpy_1=_pin(r, obj, "numpy_1", key),
        metal=metal,
        metal_pairs=_metal_pairs(r, obj, metal, key),
        wheel_lib_dirs=_folders(r, obj, "wheel_lib_dirs", key),
        soname_lib_dirs=_folders(r, obj, "soname_lib_dirs", key),
    )


def _frameworks(r: _Reader, obj: Mapping[str, Any]) -> dict[str, dict[str, dict[str, str]]]:
    out: dict[str, dict[str, dict[str, str]]] = {}
    for name, versions in obj.items():
        for version, pins in r.table(versions, f"framework.{name}").items():
            key = f'framework.{name}."{version}"'
            table = r.table(pins, key)
            for dist, spec in table.items():
                if not isinstance(spec, str):
                    raise r.fail(f"{key}.{dist}", "must be a string")
                try:
                    SpecifierSet(spec)
                except InvalidSpecifier as exc:
                    raise r.fail(f"{key}.{dist}", f"{spec!r} is not a specifier") from exc
            out.setdefault(name, {})[version] = dict(table)
    return out


# --------------------------------------------------------------------------- loading


class _Collector:
    def __init__(self, cached: str = "") -> None:
        self.cached = cached
        self.causes: dict[str, CauseMeta] = {}
        self.releases: dict[str, Release] = {}
        self.lines: dict[str, Line] = {}
        self.minimums: list[DriverFloor] = []
        self.toolkits: list[DriverFloor] = []
        self.signatures: list[Signature] = []
        self.noise: list[Noise] = []
        self.gpus: list[GpuName] = []
        self.known_bad: list[KnownBad] = []
        self.policy = Policy()
        self.frameworks: dict[str, dict[str, dict[str, str]]] = {}
        self.fixes = FixData()
        self.messages: list[Message] = []
        self.message_sources: dict[str, MessageSource] = {}
        self.eras: list[Era] = []

    def add(self, file: str, data: Mapping[str, Any]) -> None:
        r = _Reader(file, self.cached)
        handlers: dict[str, Callable[[Any], None]] = {
            "causes": lambda v: self._causes(r, v),
            "release": lambda v: self._keyed(r, v, "release", _release, self.releases),
            "line": lambda v: self._keyed(r, v, "line", _line, self.lines),
            "minimum": lambda v: self._list(r, v, "minimum", _floor, self.minimums),
            "toolkit": lambda v: self._list(r, v, "toolkit", _floor, self.toolkits),
            "signature": lambda v: self._list(r, v, "signature", _signature, self.signatures),
            "noise": lambda v: self._list(r, v, "noise", _noise, self.noise),
            "gpu": lambda v: self._list(r, v, "gpu", _gpu, self.gpus),
            "known_bad": lambda v: self._list(r, v, "known_bad", _known_bad, self.known_bad),
            "platform": lambda v: setattr(self, "policy", _policy(r, r.table(v, "platform"))),
            "framework": lambda v: self.frameworks.update(_frameworks(r, r.table(v, "framework"))),
            "fixes": lambda v: setattr(self, "fixes", _fixes(r, r.table(v, "fixes"))),
            "message": lambda v: self.messages.extend(parse_messages(r.file, v, r.cached)),
            "message_source": lambda v: self.message_sources.update(parse_sources(r.file, v)),
            "tf_era": lambda v: self.eras.extend(parse_eras(r.file, v)),
        }
        for name, value in data.items():
            handler = handlers.get(name)
            if handler is not None:  # other tables belong to other modules
                handler(value)

    def _causes(self, r: _Reader, value: object) -> None:
        for cause_id, obj in r.table(value, "causes").items():
            meta = _cause(r, cause_id, r.table(obj, f"causes.{cause_id}"))
            if cause_id in self.causes:
                other = self.causes[cause_id].file
                raise RuleError(f"{r.file}: causes.{cause_id}: already defined in {other}")
            self.causes[cause_id] = meta

    @staticmethod
    def _keyed(r: _Reader, value: object, name: str, parse: Any, into: dict[str, Any]) -> None:
        for key, obj in r.table(value, name).items():
            into[key] = parse(r, key, r.table(obj, f'{name}."{key}"'))

    @staticmethod
    def _list(r: _Reader, value: object, name: str, parse: Any, into: list[Any]) -> None:
        for i, obj in enumerate(r.tables(value, name)):
            into.append(parse(r, obj, f"{name}[{i}]"))

    def check(self) -> None:
        """Cross-file checks: every id a rule names must be a defined cause."""
        known = set(self.causes)
        for meta in self.causes.values():
            for edge in ("blocks", "hides"):
                for other in getattr(meta, edge):
                    if other not in known:
                        raise RuleError(
                            f"{meta.file}: causes.{meta.id}.{edge}: unknown cause id {other!r}"
                        )
        for sig in self.signatures:
            if sig.cause and sig.cause not in known:
                raise RuleError(f"rules: signature {sig.signal!r}: unknown cause {sig.cause!r}")
        for bad in self.known_bad:
            if bad.cause not in known:
                raise RuleError(f"rules: known_bad {bad.id!r}: unknown cause {bad.cause!r}")
        check_messages(self.messages, self.message_sources, known)

    def build(self) -> Ruleset:
        self.check()
        return Ruleset(
            causes=frozen_map(self.causes),
            releases=tuple(sorted(self.releases.values(), key=lambda r: Version(r.version))),
            lines=frozen_map(self.lines),
            minimums=tuple(self.minimums),
            toolkits=tuple(self.toolkits),
            signatures=tuple(self.signatures),
            noise=tuple(self.noise),
            gpus=tuple(self.gpus),
            known_bad=tuple(self.known_bad),
            policy=self.policy,
            frameworks=frozen_map({k: frozen_map(v) for k, v in self.frameworks.items()}),
            fixes=self.fixes,
            messages=tuple(self.messages),
            message_sources=frozen_map(self.message_sources),
            eras=tuple(self.eras),
        )


def parse_rules(files: Mapping[str, bytes | str]) -> Ruleset:
    """Build a ``Ruleset`` from file name -> TOML text (pure; used by tests and the loader)."""
    return _build({name: _toml(name, files[name]) for name in sorted(files)})


def _toml(name: str, text: bytes | str) -> dict[str, Any]:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RuleError(f"{name}: not UTF-8 text (byte {exc.start})") from exc
    if sys.version_info >= (3, 11):  # imported here: a cached load parses no TOML
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{name}: not valid TOML: {exc}") from exc


def _build(data: Mapping[str, Mapping[str, Any]], cached: str = "") -> Ruleset:
    """The checks and the ``Ruleset`` of parsed TOML documents (file name -> document); from
    the rules cache at *cached*, patterns are compiled when first used (``rule_pattern``)."""
    collector = _Collector(cached)
    for name in sorted(data):
        collector.add(name, data[name])
    return collector.build()


# --------------------------------------------------------------------------- parsed-TOML cache

_CACHE_FORMAT = "1"
"""Bumped when what the cache holds changes."""


def _cache_file(files: Mapping[str, bytes]) -> Path | None:
    """Where the parsed documents of exactly these *files* are kept (``None``: no cache)."""
    import os
    import zlib  # not hashlib: importing it loads OpenSSL, a tenth of the load it saves

    if os.environ.get("TFFIX_NO_CACHE"):
        return None
    crc, adler = zlib.crc32(_CACHE_FORMAT.encode()), zlib.adler32(_CACHE_FORMAT.encode())
    size = 0
    for name in sorted(files):
        for part in (f"\0{name}\0{len(files[name])}\0".encode(), files[name]):
            crc, adler = zlib.crc32(part, crc), zlib.adler32(part, adler)
        size += len(files[name])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tffix" / f"rules-{size:x}-{crc:08x}{adler:08x}.json"


def _cached(path: Path, names: set[str]) -> dict[str, Any] | None:
    """The parsed documents kept at *path*, if it is this user's own file and whole."""
    import json
    import os

    try:
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None  # someone else could have written it
            data = json.loads(fh.read())
    except (OSError, ValueError, AttributeError):  # absent, unreadable, torn; no getuid
        return None
    if not isinstance(data, dict) or set(data) != names:
        return None
    return data if all(isinstance(v, dict) for v in data.values()) else None


def _keep(path: Path, data: Mapping[str, Any]) -> None:
    """Write *data* to *path* atomically; a cache that cannot be written is no error."""
    import json
    import os
    import tempfile

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rules-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except (OSError, TypeError, ValueError):  # read-only home; a value JSON cannot hold
        return


def _load_files(files: Mapping[str, bytes]) -> Ruleset:
    """``parse_rules(files)``, with the TOML parsing (a third of a cold load) skipped when the
    documents of these exact bytes were kept by an earlier run (``~/.cache/tffix``): the
    cache holds plain JSON data, checked by the same rules as the TOML it came from."""
    path = _cache_file(files)
    data = _cached(path, set(files)) if path is not None else None
    if data is not None:
        try:
            return _build(data, str(path))
        except RuleError:
            pass  # a cache that does not pass the checks is ignored, and rewritten
    data = {name: _toml(name, files[name]) for name in sorted(files)}
    rules = _build(data)
    if path is not None:
        _keep(path, data)
    return rules


def read_rule_files(directory: Traversable | Path) -> dict[str, bytes]:
    """Every ``*.toml`` in *directory*, as ``rules/<name>`` -> bytes."""
    try:
        entries = sorted(directory.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise RuleError(f"rules folder {directory} cannot be read: {exc}") from exc
    files = {}
    for entry in entries:
        if entry.name.endswith(".toml") and entry.is_file():
            try:
                files[f"rules/{entry.name}"] = entry.read_bytes()
            except OSError as exc:
                raise RuleError(f"rules/{entry.name}: cannot be read: {exc}") from exc
    if not files:
        raise RuleError(f"rules folder {directory} holds no .toml files")
    return files


@functools.lru_cache(maxsize=4)
def _load(directory: str | None) -> Ruleset:
    folder: Traversable | Path = rules_dir() if directory is None else Path(directory)
    return _load_files(read_rule_files(folder))


def load_rules(directory: Path | str | None = None) -> Ruleset:
    """The shipped rules (or those in *directory*), loaded once per process."""
    return _load(None if directory is None else str(directory))


def clear_cache() -> None:
    """Forget loaded rules (the benchmark measures a cold load with it)."""
    _load.cache_clear()
