"""Log text -> signals (what each line means) and, for ``tffix explain``, a partial snapshot.

Pure: takes strings and a ``Ruleset``; returns frozen values. Noise patterns are tried first,
so a known-harmless line ("Unable to register cuDNN factory", NUMA, TensorRT) never yields a
signal. Reading files and refusing binary or enormous input is the command's job
(``tffix.commands.explain``); this module only sees text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name

from tffix.model import (
    SNAPSHOT_SCHEMA,
    UNKNOWN,
    Driver,
    Gpu,
    Platform,
    PythonInfo,
    Snapshot,
    TensorFlowInfo,
    frozen_map,
)
from tffix.ruleset import Ruleset

MATCH_WINDOW = 4096
"""Only the first this-many characters of a line are matched (a pasted log can hold a
megabyte-long line; the interesting text is at its start)."""

MAX_LINES = 100_000
"""``tffix explain`` reads at most this many lines of a log: the first and the last half."""
MAX_CHARS = 8 * 1024 * 1024
"""…and at most this many characters to match (each line counts up to ``MATCH_WINDOW``):
with every signature tried on each line, this keeps the worst log to seconds, not minutes
(``benchmarks/explain_bounds.py`` prints the figures)."""


@dataclass(frozen=True, slots=True)
class BoundedLog:
    """The lines of a log that are read, and what was skipped."""

    lines: tuple[str, ...]
    """The first lines, then (when some were skipped) one marker line, then the last lines."""
    skipped: int = 0
    total: int = 0

    @property
    def note(self) -> str | None:
        """``skipped N lines, because …``, or None when every line was read."""
        if not self.skipped:
            return None
        return (
            f"skipped {self.skipped} of {self.total} lines, because a log is read up to "
            f"{MAX_LINES} lines or {MAX_CHARS // (1024 * 1024)} Mi characters (the first and the "
            "last half were read)"
        )


def bound_log(text: str) -> BoundedLog:
    """Cut *text* into lines and keep what ``MAX_LINES`` and ``MAX_CHARS`` allow.

    TensorFlow names the libraries it fails to load near the start of a log and the final
    error near its end, so both ends are kept and the middle is skipped.
    """
    lines = text.splitlines()

    def cost(line: str) -> int:
        return min(len(line), MATCH_WINDOW) + 1

    if len(lines) <= MAX_LINES and sum(map(cost, lines)) <= MAX_CHARS:
        return BoundedLog(tuple(lines), 0, len(lines))
    half_lines, half_chars = MAX_LINES // 2, MAX_CHARS // 2

    def take(seq: Sequence[str]) -> int:
        count = chars = 0
        for line in seq:
            chars += cost(line)
            if count >= half_lines or chars > half_chars:
                break
            count += 1
        return count

    head = take(lines)
    tail = min(take(reversed(lines)), len(lines) - head)
    skipped = len(lines) - head - tail
    marker = f"[tffix: {skipped} lines skipped]"
    kept = (*lines[:head], marker, *lines[len(lines) - tail :])
    return BoundedLog(kept, skipped, len(lines))


@dataclass(frozen=True, slots=True)
class LogHit:
    """One log line that matched a signature."""

    index: int
    """Position in ``Snapshot.log`` (evidence ``log[index]``)."""
    signal: str
    cause: str
    groups: Mapping[str, str] = field(default_factory=frozen_map)
    line: str = ""

    @property
    def evidence(self) -> str:
        """The evidence pointer into the snapshot."""
        return f"log[{self.index}]"


@dataclass(frozen=True, slots=True)
class LogFacts:
    """Every signal found in a log, in line order, and which lines were known noise."""

    hits: tuple[LogHit, ...] = ()
    noise: tuple[int, ...] = ()

    def has(self, *signals: str) -> bool:
        """True when any of *signals* occurred."""
        return any(h.signal in signals for h in self.hits)

    def all(self, *signals: str) -> tuple[LogHit, ...]:
        """Every hit of *signals*, in line order."""
        return tuple(h for h in self.hits if h.signal in signals)

    def first(self, *signals: str) -> LogHit | None:
        """The first hit of *signals*, or None."""
        found = self.all(*signals)
        return found[0] if found else None


def scan_log(lines: Sequence[str], rules: Ruleset) -> LogFacts:
    """Match every line against the noise patterns, then the signatures (first match wins)."""
    hits: list[LogHit] = []
    noise: list[int] = []
    for index, raw in enumerate(lines):
        line = raw[:MATCH_WINDOW]
        if any(n.pattern.search(line) for n in rules.noise):
            noise.append(index)
            continue
        for sig in rules.signatures:
            match = sig.pattern.search(line)
            if match:
                groups = {k: v for k, v in match.groupdict().items() if v is not None}
                hits.append(
                    LogHit(index, sig.signal, sig.cause, frozen_map(groups), raw[:MATCH_WINDOW])
                )
                break
    return LogFacts(tuple(hits), tuple(noise))


# --------------------------------------------------------------------------- explain


_FREEZE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([0-9][\w.+!-]*)\s*$")
_LIST = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s+([0-9][\w.+!-]*)(\s+\S.*)?$")
_PY = re.compile(r"\b(?:Python |python_version[\"'=: ]+|cp3)(3)\.?(\d{1,2})(?:\.(\d+))?\b")
_PY_SITE = re.compile(r"python(3\.\d{1,2})[/\\]site-packages")
_SMI = re.compile(r"Driver Version:\s*([\d.]+)\s+CUDA Version:\s*([\d.]+)")
_FOUND = re.compile(r"name:\s*(.+?)\s+computeCapability:\s*([\d.]+)")
_ENV = re.compile(
    r"^\s*(?:export\s+|set\s+|\$env:)?(CUDA_VISIBLE_DEVICES|LD_LIBRARY_PATH|XLA_FLAGS|"
    r"NVIDIA_VISIBLE_DEVICES|NVIDIA_DRIVER_CAPABILITIES|CUDA_HOME|CUDA_PATH)\s*=\s*"
    r"[\"']?([^\"'\s]*)[\"']?\s*$"
)
_TF_VERSION = re.compile(
    r"(?:tensorflow(?:-gpu|-cpu)?|tf\.__version__)\s*(?:version|==|:)\s*"
    r"['\"]?(\d+\.\d+(?:\.\d+)?)"
)
_HEADER = re.compile(r"^\s*(Package\s+Version|-{3,}\s+-{3,})")
_NOT_A_PACKAGE = {"python", "cuda", "driver", "nvidia-smi", "error", "warning", "info"}
_BARE_ROW = re.compile(
    r"^((?:tensorflow|tf-nightly|tf_nightly|keras|nvidia|torch|jax|numpy|protobuf|ml-dtypes)"
    r"[A-Za-z0-9._-]*)\s{2,}([0-9][\w.+!-]*)\s*$",
    re.IGNORECASE,
)
"""A ``pip list`` row pasted without its header: only for the packages that matter here, and
only with pip's column gap, so that prose ("tensorflow 2 is great") never reads as a row."""


def _packages(lines: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    in_list = False
    for line in lines:
        if _HEADER.match(line):
            in_list = True
            continue
        match = _FREEZE.match(line)
        if match:
            out[canonicalize_name(match.group(1))] = match.group(3)
            continue
        if not in_list and (bare := _BARE_ROW.match(line)):
            out[canonicalize_name(bare.group(1))] = bare.group(2)
            continue
        if in_list:
            match = _LIST.match(line)
            if match and match.group(1).lower() not in _NOT_A_PACKAGE:
                out[canonicalize_name(match.group(1))] = match.group(2)
                continue
            if line.strip():
                in_list = False
    return out


def snapshot_from_text(text: str, rules: Ruleset) -> Snapshot:
    """A partial ``Snapshot`` from pasted TensorFlow, pip or nvidia-smi output.

    The lines become ``log``; ``pip list``/``pip freeze`` lines become ``packages``; a few facts
    are read from well-known lines (nvidia-smi's driver line, TensorFlow's "Found device"
    block, ``export CUDA_VISIBLE_DEVICES=...``, Python versions in paths and wheel tags).
    Everything not seen stays unknown.
    """
    del rules  # the signatures are applied by the diagnosis itself
    bounded = bound_log(text)
    lines = bounded.lines
    packages = _packages(line[:MATCH_WINDOW] for line in lines)
    env: dict[str, str] = {}
    py_version: str | None = None
    driver: Driver | None = None
    gpus: list[Gpu] = []
    os_name: str | None = None
    wsl: bool | None = None
    tf_version: str | None = packages.get("tensorflow")
    for raw in lines:
        line = raw[:MATCH_WINDOW]
        if env_match := _ENV.match(line):
            env[env_match.group(1)] = env_match.group(2)
        if py_version is None:
            if site := _PY_SITE.search(line):
                py_version = site.group(1)
            elif py := _PY.search(line):
                py_version = f"{py.group(1)}.{py.group(2)}" + (
                    f".{py.group(3)}" if py.group(3) else ""
                )
        if smi := _SMI.search(line):
            driver = Driver(version=smi.group(1), cuda=smi.group(2), source="log")
        if found := _FOUND.search(line):
            gpus.append(Gpu(name=found.group(1).strip(), compute_capability=found.group(2)))
        if tf_version is None and (tfv := _TF_VERSION.search(line)):
            tf_version = tfv.group(1)
        if "microsoft-standard-WSL" in line or "/usr/lib/wsl/lib" in line:
            wsl = True
            os_name = "linux"
        if os_name is None:
            if "win_amd64" in line or re.search(r"\b[A-Z]:\\", line):
                os_name = "windows"
            elif "macosx_" in line:
                os_name = "macos"
            elif re.search(r"(^|\s)/(usr|home|opt)/", line) or ".so." in line:
                os_name = "linux"
    return Snapshot(
        platform=Platform(os=os_name, wsl=wsl),
        python=PythonInfo(version=py_version),
        packages=frozen_map(packages) if packages else None,
        env=frozen_map(env),
        driver=driver if driver is not None else UNKNOWN,
        gpus=tuple(gpus) if gpus else None,
        tensorflow=TensorFlowInfo(version=tf_version) if tf_version else UNKNOWN,
        log=lines,
        extra=frozen_map(
            {
                "source": {"schema": SNAPSHOT_SCHEMA, "from": "log text"},
                **({"skipped": bounded.note} if bounded.note else {}),
            }
        ),
    )
