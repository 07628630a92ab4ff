"""Log text -> signals (what each line means) and, for ``tffix explain``, a partial snapshot.

Pure: takes strings and a ``Ruleset``; returns frozen values. Noise patterns (``logs.toml``
``[[noise]]`` and the catalogue's ``noise`` messages) are tried first, so a known-harmless line
("Unable to register cuDNN factory", NUMA, TensorRT) never yields a signal; then the message
catalogue read from TensorFlow's and XLA's source (``messages.toml``), then the hand-written
signatures of ``logs.toml``. Error-level lines that nothing matched are returned by
``unrecognized_errors``, so that an error is never passed over in silence. Reading files and
refusing binary or enormous input is the command's job (``tffix.commands.explain``); this
module only sees text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tffix.lazyre import GuardedPattern, lazy
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
from tffix.normalize import cudnn_version, parse_nvidia_smi, parse_package_list
from tffix.pkgname import canonicalize_name
from tffix.record import record
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


@record
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

    def take(seq: Iterable[str]) -> int:
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


@record
class LogHit:
    """One log line that matched a signature."""

    index: int
    """Position in ``Snapshot.log`` (evidence ``log[index]``)."""
    signal: str
    cause: str
    groups: Mapping[str, str] = field(default_factory=frozen_map)
    line: str = ""
    message: str = ""
    """The id of the catalogued message it matched (``messages.toml``); "" for a signature of
    ``logs.toml``."""

    @property
    def evidence(self) -> str:
        """The evidence pointer into the snapshot."""
        return f"log[{self.index}]"


@record
class LogFacts:
    """Every signal found in a log, in line order, and which lines were known noise."""

    hits: tuple[LogHit, ...] = ()
    noise: tuple[int, ...] = ()
    joined: tuple[int, ...] = ()
    """Lines read as the wrapped tail of a matched line before them (known, not signals)."""

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


_ANSI = lazy(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
"""ANSI escape sequences (terminal colours, cursor moves) that a copied terminal log keeps."""


def clean_line(raw: str) -> str:
    """*raw* as matched: the first ``MATCH_WINDOW`` characters, without ANSI escapes, and of a
    line a progress bar rewrote with carriage returns, only what was printed last."""
    line = raw[: MATCH_WINDOW * 2]
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    if "\r" in line:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
    return line[:MATCH_WINDOW]


_RECORD_START = lazy(
    r"^\s*(?:\[?\d{4}-\d\d-\d\d[ T]\d|[IWEF]\d{4} \d\d:|[IWEF] \S+\.(?:cc|h):\d+\]|"
    r"Traceback \(|File \"|[A-Za-z_][\w.]*(?:Error|Exception|Warning)\b|WARNING\b|ERROR\b|INFO\b|"
    r"[>$#] |\w+@[\w.-]+:)"
)
"""The start of a new log record (a timestamp, a glog/absl prefix, a traceback or exception
line, a prompt): a line that starts so is not the wrapped tail of the line before."""
WRAP_MIN = 60
"""A line this long or longer that matched nothing may have been wrapped by a terminal or a
text box; shorter lines are whole."""


def _noise_patterns(rules: Ruleset) -> tuple[GuardedPattern, ...]:
    return (
        *(n.pattern for n in rules.noise),
        *(m.pattern for m in rules.messages if m.is_noise),
    )


def _match(index: int, raw: str, line: str, rules: Ruleset) -> LogHit | None:
    """The first catalogued message, else the first signature, that *line* matches."""
    for msg in rules.messages:
        if msg.is_noise:
            continue
        match = msg.pattern.search(line)
        if match:
            return LogHit(index, msg.signal, msg.cause, _groups(match), raw[:MATCH_WINDOW], msg.id)
    for sig in rules.signatures:
        match = sig.pattern.search(line)
        if match:
            return LogHit(index, sig.signal, sig.cause, _groups(match), raw[:MATCH_WINDOW])
    return None


_CUDNN_GROUPS = frozenset({"loaded", "compiled", "cudnn_version"})
"""Groups that hold a cuDNN version: TensorFlow 1.x printed it as an integer (7104)."""


def _groups(match: re.Match[str]) -> Mapping[str, str]:
    out = {k: v for k, v in match.groupdict().items() if v is not None}
    for key in _CUDNN_GROUPS & out.keys():
        out[key] = cudnn_version(out[key]) or out[key]
    return frozen_map(out)


def _continues(line: str) -> bool:
    """True when *line* may be the wrapped tail of the line before it."""
    return bool(line.strip()) and not _RECORD_START.match(line)


def scan_log(lines: Sequence[str], rules: Ruleset) -> LogFacts:
    """Match every line against the noise patterns, then the catalogue, then the signatures
    (first match wins).

    Lines are matched as ``clean_line`` leaves them (no ANSI escapes). A long line that matches
    nothing is matched again joined to the next one when that one does not start a record of
    its own (a message wrapped by a terminal or a text box); a match then counts for both.
    """
    hits: list[LogHit] = []
    noise: list[int] = []
    noise_patterns = _noise_patterns(rules)
    cleaned = [clean_line(raw) for raw in lines]
    taken: set[int] = set()
    joined: list[int] = []
    for index, raw in enumerate(lines):
        if index in taken:
            continue
        line = cleaned[index]
        candidates: list[tuple[str, tuple[int, ...]]] = [(line, ())]
        nxt = index + 1
        if len(line) >= WRAP_MIN and nxt < len(lines) and _continues(cleaned[nxt]):
            candidates.append(((line + cleaned[nxt])[:MATCH_WINDOW], (nxt,)))
        for text, tail in candidates:
            if any(p.search(text) for p in noise_patterns):
                noise.extend((index, *tail))
                taken.update(tail)
                break
            hit = _match(index, raw, text, rules)
            if hit is not None:
                hits.append(hit)
                joined.extend(tail)
                taken.update(tail)
                break
    return LogFacts(tuple(hits), tuple(sorted(noise)), tuple(joined))


# --------------------------------------------------------------------------- unrecognised errors

_GLOG_ERROR = lazy(
    r"(?:^|[\s|>\]])(?:\[?\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?\]?:?\s+)?"
    r"[EF](?:\d{4} \d\d:\d\d:\d+(?:\.\d+)?\s+\d+)?\s+\S+\.(?:cc|cpp|h|cu):\d+\]"
)
"""A glog/absl line at level E or F, with TensorFlow's timestamp or absl's ``E0000 00:00:...``,
at the start of the line or after a prefix (a notebook's, a container runtime's ``name |``)."""
_STATUS_CODES = (
    "CANCELLED|UNKNOWN|INVALID_ARGUMENT|DEADLINE_EXCEEDED|NOT_FOUND|ALREADY_EXISTS|"
    "PERMISSION_DENIED|RESOURCE_EXHAUSTED|FAILED_PRECONDITION|ABORTED|OUT_OF_RANGE|"
    "UNIMPLEMENTED|INTERNAL|UNAVAILABLE|DATA_LOSS|UNAUTHENTICATED"
)
"""absl::StatusCode names as ``Status::ToString`` prints them (TensorFlow 2.x, XLA)."""
_STATUS_CODES_1X = (
    "Cancelled|Unknown|Invalid argument|Deadline exceeded|Not found|Already exists|"
    "Permission denied|Resource exhausted|Failed precondition|Aborted|Out of range|"
    "Unimplemented|Internal|Unavailable|Data loss|Unauthenticated"
)
"""The same codes as TensorFlow 1.x's ``error_name`` printed them (``Internal: ...``)."""
_ERROR_TEXT = lazy(
    r"(^\s*ERROR\b|^\s*(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception)(?::|$)|"
    r"\bfailed call to \w+|\bCould not load\b|\bCUDA_ERROR_[A-Z_]+|"
    r"\bcudaError[A-Z]\w+|\bCUDNN_STATUS_(?!SUCCESS)[A-Z_]+|\bCUBLAS_STATUS_(?!SUCCESS)[A-Z_]+|"
    rf"^\s*(?:Status: |status: )?(?:{_STATUS_CODES}): |^\s*(?:{_STATUS_CODES_1X}): \S|"
    r"^\s*Fatal Python error|Segmentation fault|core dumped)"
)
"""Error text in any line: pip/``logging`` ``ERROR``, a Python exception line, TensorFlow's
``failed call to ...``, a failed load ("Could not load dynamic library", cuDNN's own "Could not
load library"), CUDA/cuDNN/cuBLAS error names, a status printed at the start of a line
(``INTERNAL: ...``, 1.x ``Internal: ...``), a crash."""
_TRACEBACK = lazy(r"^\s*Traceback \(most recent call last\):")
_EXCEPTION_LINE = lazy(r"^\s*(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit)\b")


def is_error_line(line: str) -> bool:
    """True when *line* is an error-level TensorFlow, pip or Python line."""
    text = clean_line(line)
    return bool(_GLOG_ERROR.search(text) or _ERROR_TEXT.search(text))


def _tracebacks_without_exception(lines: Sequence[str]) -> list[int]:
    """Traceback headers whose exception line never came (a paste cut short)."""
    out: list[int] = []
    for index, line in enumerate(lines):
        if not _TRACEBACK.match(line[:MATCH_WINDOW]):
            continue
        rest = lines[index + 1 : index + 200]
        ended = False
        for follow in rest:
            if _TRACEBACK.match(follow[:MATCH_WINDOW]):
                break
            if _EXCEPTION_LINE.match(follow[:MATCH_WINDOW]):
                ended = True
                break
        if not ended:
            out.append(index)
    return out


def unrecognized_errors(lines: Sequence[str], facts: LogFacts) -> tuple[int, ...]:
    """Indexes of error-level lines that no noise pattern, message or signature explained.

    Pure: *facts* is ``scan_log(lines, rules)``. A traceback whose exception line is missing
    counts by its ``Traceback`` line; a line any pattern matched, even one that points to no
    cause, is not counted (it is known).
    """
    known = set(facts.noise) | set(facts.joined) | {h.index for h in facts.hits}
    found = [i for i, line in enumerate(lines) if i not in known and is_error_line(line)]
    found += [i for i in _tracebacks_without_exception(lines) if i not in known]
    return tuple(sorted(set(found)))


# --------------------------------------------------------------------------- explain


_FREEZE = lazy(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([0-9][\w.+!-]*)\s*$")
_LIST = lazy(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s+([0-9][\w.+!-]*)(\s+\S.*)?$")
_PY = lazy(r"\b(?:Python |python_version[\"'=: ]+|cp3)(3)\.?(\d{1,2})(?:\.(\d+))?\b")
_PY_SITE = lazy(r"python(3\.\d{1,2})[/\\]site-packages")
_SMI = lazy(r"Driver Version:\s*([\d.]+)\s+CUDA Version:\s*([\d.]+)")
_FOUND = lazy(r"name:\s*(.+?)\s+computeCapability:\s*([\d.]+)")
_ENV = lazy(
    r"^\s*(?:export\s+|set\s+|\$env:)?(CUDA_VISIBLE_DEVICES|LD_LIBRARY_PATH|XLA_FLAGS|"
    r"NVIDIA_VISIBLE_DEVICES|NVIDIA_DRIVER_CAPABILITIES|CUDA_HOME|CUDA_PATH)\s*=\s*"
    r"[\"']?([^\"'\s]*)[\"']?\s*$"
)
_DIAG_CVD = lazy(
    r'env: CUDA_VISIBLE_DEVICES="([^"]*)"|'
    r"CUDA_VISIBLE_DEVICES is set to (an empty string|\S+) - this hides all GPUs from CUDA"
)
"""cuda_diagnostics.cc's report of CUDA_VISIBLE_DEVICES (TF 2.19+), a fact about the env."""
_DLL = lazy(r"\b\w+\.dll\b", re.IGNORECASE)
_TF_VERSION = lazy(
    r"(?:tensorflow(?:-gpu|-cpu)?|tf\.__version__)\s*(?:version|==|:)\s*"
    r"['\"]?(\d+\.\d+(?:\.\d+)?)"
)
_HEADER = lazy(r"^\s*(Package\s+Version|-{3,}\s+-{3,})")
_NOT_A_PACKAGE = {"python", "cuda", "driver", "nvidia-smi", "error", "warning", "info"}
_BARE_ROW = lazy(
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


def _os_of(line: str) -> str | None:
    """The platform a line betrays (a wheel tag, a drive letter, a DLL, a Unix path)."""
    if "win_amd64" in line or re.search(r"\b[A-Z]:\\", line) or _DLL.search(line):
        return "windows"
    if "macosx_" in line:
        return "macos"
    if re.search(r"(^|\s)/(usr|home|opt)/", line) or ".so." in line:
        return "linux"
    return None


def _python_of(line: str) -> str | None:
    if site := _PY_SITE.search(line):
        return site.group(1)
    if py := _PY.search(line):
        return f"{py.group(1)}.{py.group(2)}" + (f".{py.group(3)}" if py.group(3) else "")
    return None


def _env_of(line: str, env: dict[str, str]) -> None:
    if env_match := _ENV.match(line):
        env[env_match.group(1)] = env_match.group(2)
    elif cvd := _DIAG_CVD.search(line):
        value = cvd.group(1) if cvd.group(1) is not None else cvd.group(2)
        env.setdefault("CUDA_VISIBLE_DEVICES", "" if value == "an empty string" else value)


@dataclass
class _Seen:
    """What the lines of a pasted text said, gathered line by line."""

    env: dict[str, str] = field(default_factory=dict)
    py_version: str | None = None
    driver: Driver | None = None
    gpus: list[Gpu] = field(default_factory=list)
    os_name: str | None = None
    wsl: bool | None = None
    tf_version: str | None = None

    def line(self, line: str) -> None:
        _env_of(line, self.env)
        if self.py_version is None:
            self.py_version = _python_of(line)
        if smi := _SMI.search(line):
            self.driver = Driver(version=smi.group(1), cuda=smi.group(2), source="log")
        if found := _FOUND.search(line):
            self.gpus.append(Gpu(name=found.group(1).strip(), compute_capability=found.group(2)))
        if self.tf_version is None and (tfv := _TF_VERSION.search(line)):
            self.tf_version = tfv.group(1)
        if "microsoft-standard-WSL" in line or "/usr/lib/wsl/lib" in line:
            self.wsl = True
            self.os_name = "linux"
        if self.os_name is None:
            self.os_name = _os_of(line)


def snapshot_from_text(text: str, rules: Ruleset) -> Snapshot:
    """A partial ``Snapshot`` from pasted TensorFlow, pip, conda or nvidia-smi output.

    The lines become ``log``; ``pip list``/``pip freeze``/``conda list`` rows become
    ``packages``; a few facts are read from well-known lines (nvidia-smi's header and GPU rows,
    TensorFlow's "Found device" block, ``export CUDA_VISIBLE_DEVICES=...`` and
    cuda_diagnostics' report of it, Python versions in paths and wheel tags).
    Everything not seen stays unknown.
    """
    del rules  # the signatures are applied by the diagnosis itself
    bounded = bound_log(text)
    lines = bounded.lines
    windowed = tuple(line[:MATCH_WINDOW] for line in lines)
    kept = "\n".join(lines)
    packages = _packages(windowed)
    listed = parse_package_list(kept)  # adds conda list and pip show rows
    for name, version in (listed.packages if listed else {}).items():
        packages.setdefault(name, version)
    seen = _Seen(tf_version=packages.get("tensorflow"))
    for line in windowed:
        seen.line(line)
    smi = parse_nvidia_smi(kept)
    if seen.driver is None and smi is not None and smi.driver:
        seen.driver = Driver(version=smi.driver, cuda=smi.cuda, source="log")
    if not seen.gpus and smi is not None:
        seen.gpus = [Gpu(name=name) for name in smi.gpus]
    return Snapshot(
        platform=Platform(os=seen.os_name, wsl=seen.wsl),
        python=PythonInfo(version=seen.py_version),
        packages=frozen_map(packages) if packages else None,
        env=frozen_map(seen.env),
        driver=seen.driver if seen.driver is not None else UNKNOWN,
        gpus=tuple(seen.gpus) if seen.gpus else None,
        tensorflow=TensorFlowInfo(version=seen.tf_version) if seen.tf_version else UNKNOWN,
        log=lines,
        extra=frozen_map(
            {
                "source": {"schema": SNAPSHOT_SCHEMA, "from": "log text"},
                **({"skipped": bounded.note} if bounded.note else {}),
            }
        ),
    )
