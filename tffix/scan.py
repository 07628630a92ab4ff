"""Find the places in a user's own code that keep TensorFlow off the GPU, without running it.

The analysis is pure: ``analyze_source`` and ``analyze_notebook`` take text and return
``Finding`` values, read with Python's ``ast`` (never by importing or running the code).
``scan_paths`` and ``scan_project`` are the thin edge that walks folders and reads files
through ``tffix.probes.project`` (the only I/O) and counts what it could not read.

What is judged (the pattern data is in ``rules/code.toml``):

- ``CUDA_VISIBLE_DEVICES`` set in code (``os.environ[...] =``, ``setdefault``, ``update``,
  ``os.putenv``), in ``%env``/``%set_env`` magics and in shell lines that start a program,
  to a value that hides every GPU (``-1``, empty, a first entry that is no device, an index
  the machine does not have when its GPU count is known);
- ``tf.config.set_visible_devices([], 'GPU')`` (and the ``experimental``/``compat.v1``
  spellings), a CPU-only device list, ``ConfigProto(device_count={'GPU': 0})``;
- a ``tf.device('/CPU:0')`` block around model construction, ``fit`` or a training loop, a
  CPU-only ``OneDeviceStrategy``, and ``tf.device('/GPU:N')`` past the machine's GPU count;
- other variables set in code that change the picture (``CUDA_DEVICE_ORDER``,
  ``KERAS_BACKEND``, ``LD_LIBRARY_PATH``, ``TF_CPP_MIN_LOG_LEVEL``);
- Ray tasks, actors, Tune trials and Train workers that train but ask for no GPU (Ray starts
  them with ``CUDA_VISIBLE_DEVICES`` empty).

A missing ``tf.device`` block is never a finding: TensorFlow places ops on a visible GPU by
itself. Test code is not judged (it pins the CPU on purpose): files and folders named like
tests, ``test*`` functions, ``Test*``/``*TestCase`` classes, and modules whose
``if __name__ == "__main__":`` block runs a test runner. Code under any other ``if``
(``if args.cpu:``) is reported one severity lower, with the condition in the title, because
it may be a deliberate switch. tffix never edits code: each finding's ``detail`` names the
line, the code, why it matters, and the exact edit to make.
"""

from __future__ import annotations

import ast
import bisect
import fnmatch
import functools
import gc
import io
import json
import re
import shlex
import sys
import time
import tokenize
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from keyword import iskeyword, issoftkeyword
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tffix import projectfiles
from tffix.errors import RuleError, UsageError
from tffix.model import Finding, FixSide, Severity
from tffix.probes import project
from tffix.probes.project import looks_like_project
from tffix.record import record
from tffix.resources import rules_dir
from tffix.ruleset import CauseMeta, parse_cause

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

__all__ = [
    "ScanResult",
    "ScanRules",
    "analyze_notebook",
    "analyze_source",
    "judge_visible_devices",
    "load_scan_rules",
    "looks_like_project",
    "parse_device",
    "scan_paths",
    "scan_project",
]

RULES_FILE = "code.toml"

MASKED = "cuda-visible-devices-masked"
HIDES = "code-hides-gpus"
PINS_CPU = "code-pins-cpu"
OUT_OF_RANGE = "code-gpu-index-out-of-range"
DEVICE_ORDER = "code-cuda-device-order"
KERAS_BACKEND = "code-keras-backend-not-tensorflow"
LOADER_PATH = "code-ld-library-path-too-late"
LOG_SILENCED = "code-tf-log-silenced"
EXPORT_NO_EFFECT = "code-shell-export-no-effect"
RAY_NO_GPUS = "code-ray-no-gpus"

# Skip reasons besides the probe's (too large, unreadable, vanished).
SYNTAX_ERROR = "syntax error"
NOT_TEXT = "not text"
NOT_NOTEBOOK = "not a notebook"
TOO_COMPLEX = "too complex"
TEST_FILE = "test file"
FILE_LIMIT = "over the file limit"
TIME_LIMIT = "over the time limit"
TOO_MANY_CELLS = "too many cells"

MAX_NOTEBOOK_CELLS = 10_000
"""A notebook with more cells than this is not judged (generated, or a log kept as cells)."""

_LOWER = {Severity.ERROR: Severity.WARNING, Severity.WARNING: Severity.INFO}
_MAX_SNIPPET = 100
_MAX_COND = 60
_MAX_DEPTH = 8
"""How far a name may be chased through ``a = b``, ``b = "x"`` before giving up."""

_DEFAULT_NAMES = {"tf": "tensorflow", "os": "os", "keras": "keras"}
"""What these names mean when the code uses them without importing them (a notebook that
imports in a cell the scan could not parse, a snippet): the universal convention."""

_CANONICAL = (
    ("tensorflow.compat.v1.", "tensorflow."),
    ("tensorflow.compat.v2.", "tensorflow."),
    ("tensorflow._api.v2.", "tensorflow."),
    ("tensorflow.config.experimental.", "tensorflow.config."),
    ("tensorflow.python.keras.", "keras."),
    ("tensorflow.keras.", "keras."),
    ("tf_keras.", "keras."),
    ("keras.src.", "keras."),
    ("keras.api.", "keras."),
)

DEVICE_SCOPES = frozenset({"tensorflow.device", "keras.device"})
"""The canonical names of the calls whose ``with`` block pins a device (``_device_block``)."""
VISIBLE_DEVICES_CALL = "tensorflow.config.set_visible_devices"
ONE_DEVICE_STRATEGY = "tensorflow.distribute.OneDeviceStrategy"
SET_BACKEND_CALL = "keras.config.set_backend"

_DEVICE_RE = re.compile(
    r"^(?:/job:[^/]*)?(?:/replica:\d+)?(?:/task:\d+)?/?(?:device:)?"
    r"(?P<type>[A-Za-z_]+)(?::(?P<index>\d+|\*))?$"
)
_ASSIGNMENT_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
_ENV_MAGIC_RE = re.compile(r"^%(?:env|set_env)\s+(.*)$")
_SHELL_SPLIT_RE = re.compile(r"&&|\|\||;|\|")
_MAGIC_ASSIGN_RE = re.compile(r"^[\w.\[\]'\", ]+=\s*[!%]")


# --------------------------------------------------------------------------- rules data


@record
class ScanRules:
    """The scan's pattern data (``[scan]`` in ``rules/code.toml``)."""

    causes: Mapping[str, CauseMeta]
    triggers: tuple[str, ...]
    trigger_keywords: tuple[str, ...]
    """Names that make a file worth parsing only when written as a keyword (``name=``)."""
    keyword_re: re.Pattern[str] | None
    line_tokens: tuple[str, ...]
    skip_dirs: frozenset[str]
    max_python_bytes: int
    max_notebook_bytes: int
    test_dirs: frozenset[str]
    test_file_globs: tuple[str, ...]
    test_runners: tuple[str, ...]
    visible_devices: str
    device_order: str
    device_orders: frozenset[str]
    keras_backend: str
    keras_backends_ok: frozenset[str]
    loader_path: str
    log_level: str
    log_level_hides_warnings: frozenset[str]
    uuid_prefixes: tuple[str, ...]
    training_methods: frozenset[str]
    training_constructors: frozenset[str]
    training_modules: tuple[str, ...]
    training_functions: tuple[re.Pattern[str], ...]
    graph_mode: frozenset[str]


def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise RuleError(f"{RULES_FILE}: [{where}] must be a table")
    return value


def _strings(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{RULES_FILE}: {where}.{key} must be a list of strings")
    return tuple(value)


def _string(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str):
        raise RuleError(f"{RULES_FILE}: {where}.{key} must be a string")
    return value


def _integer(table: Mapping[str, Any], key: str, where: str) -> int:
    value = table.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise RuleError(f"{RULES_FILE}: {where}.{key} must be a positive whole number")
    return value


def _keyword_pattern(names: Sequence[str]) -> re.Pattern[str] | None:
    """``name`` followed by ``=`` (not ``==``), across spaces, newlines and ``\\`` breaks."""
    if not names:
        return None
    alternatives = "|".join(re.escape(n) for n in names)
    return re.compile(rf"\b(?:{alternatives})[\s\\]*=(?!=)")


def parse_scan_rules(text: str) -> ScanRules:
    """Read the text of ``rules/code.toml``; a missing or mistyped key is a ``RuleError``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{RULES_FILE}: {exc}") from exc
    causes: dict[str, CauseMeta] = {}
    for cause_id, entry in _table(data, "causes", "causes").items():
        where = f"causes.{cause_id}"
        if not isinstance(entry, dict):
            raise RuleError(f"{RULES_FILE}: [{where}] must be a table")
        causes[cause_id] = parse_cause(RULES_FILE, cause_id, entry)
    # The shared id is defined in causes.md; a code location is fixed by editing the code.
    causes.setdefault(
        MASKED,
        CauseMeta(MASKED, FixSide.OUTSIDE, Severity.ERROR, "CUDA_VISIBLE_DEVICES hides every GPU"),
    )
    missing = {HIDES, PINS_CPU, OUT_OF_RANGE, DEVICE_ORDER, KERAS_BACKEND, LOADER_PATH}
    missing |= {LOG_SILENCED, EXPORT_NO_EFFECT, RAY_NO_GPUS}
    missing -= causes.keys()
    if missing:
        raise RuleError(f"{RULES_FILE}: missing [causes.{sorted(missing)[0]}]")
    scan = _table(data, "scan", "scan")
    env = _table(scan, "env", "scan.env")
    training = _table(scan, "training", "scan.training")
    soft = _table(scan, "soft_placement", "scan.soft_placement")
    try:
        patterns = tuple(
            re.compile(p) for p in _strings(training, "function_patterns", "scan.training")
        )
    except re.error as exc:
        raise RuleError(f"{RULES_FILE}: scan.training.function_patterns: {exc}") from exc
    keywords = _strings(scan, "trigger_keywords", "scan") if "trigger_keywords" in scan else ()
    return ScanRules(
        causes=MappingProxyType(causes),
        triggers=_strings(scan, "triggers", "scan")
        + tuple(
            _string(env, key, "scan.env")
            for key in (
                "visible_devices",
                "device_order",
                "keras_backend",
                "loader_path",
                "log_level",
            )
        ),
        trigger_keywords=keywords,
        keyword_re=_keyword_pattern(keywords),
        line_tokens=_strings(scan, "line_tokens", "scan"),
        skip_dirs=frozenset(_strings(scan, "skip_dirs", "scan")),
        max_python_bytes=_integer(scan, "max_python_bytes", "scan"),
        max_notebook_bytes=_integer(scan, "max_notebook_bytes", "scan"),
        test_dirs=frozenset(_strings(scan, "test_dirs", "scan")),
        test_file_globs=_strings(scan, "test_file_globs", "scan"),
        test_runners=_strings(scan, "test_runners", "scan"),
        visible_devices=_string(env, "visible_devices", "scan.env"),
        device_order=_string(env, "device_order", "scan.env"),
        device_orders=frozenset(_strings(env, "device_orders", "scan.env")),
        keras_backend=_string(env, "keras_backend", "scan.env"),
        keras_backends_ok=frozenset(_strings(env, "keras_backends_ok", "scan.env")),
        loader_path=_string(env, "loader_path", "scan.env"),
        log_level=_string(env, "log_level", "scan.env"),
        log_level_hides_warnings=frozenset(_strings(env, "log_level_hides_warnings", "scan.env")),
        uuid_prefixes=_strings(env, "uuid_prefixes", "scan.env"),
        training_methods=frozenset(_strings(training, "methods", "scan.training")),
        training_constructors=frozenset(_strings(training, "constructors", "scan.training")),
        training_modules=_strings(training, "constructor_modules", "scan.training"),
        training_functions=patterns,
        graph_mode=frozenset(_strings(soft, "graph_mode", "scan.soft_placement")),
    )


@functools.cache
def load_scan_rules() -> ScanRules:
    """The shipped ``rules/code.toml`` (read once per process)."""
    try:
        text = rules_dir().joinpath(RULES_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"cannot read {RULES_FILE}: {exc}") from exc
    return parse_scan_rules(text)


# --------------------------------------------------------------------------- pure judgements


def parse_device(spec: str) -> tuple[str, int | None] | None:
    """``'/device:GPU:1'`` -> ``('GPU', 1)``; ``'/cpu:0'`` -> ``('CPU', 0)``; junk -> None."""
    match = _DEVICE_RE.match(spec.strip())
    if match is None:
        return None
    index = match.group("index")
    return match.group("type").upper(), int(index) if index and index.isdigit() else None


@record
class Visibility:
    """What a ``CUDA_VISIBLE_DEVICES`` value does on a machine with a known GPU count."""

    verdict: str
    """``hides`` (no GPU visible), ``partial`` (entries after an invalid one are dropped),
    ``selects`` (names specific GPUs that exist or cannot be judged)."""
    reason: str = ""
    indices: tuple[int, ...] = ()


def judge_visible_devices(
    value: str, gpu_count: int | None, uuid_prefixes: Sequence[str] = ("GPU-", "MIG-")
) -> Visibility:
    """Judge *value* the way CUDA reads it.

    CUDA reads the comma-separated list left to right and stops at the first entry that is
    not a device (``-1``, ``none``, an index past the device count): only the entries before
    it are visible. Indices are judged only when *gpu_count* is known and positive (with no
    GPU at all the machine, not the code, is the problem); UUIDs are never judged here.
    """
    if value.strip() == "":
        return Visibility("hides", "an empty value hides every GPU")
    entries = [entry.strip() for entry in value.split(",")]
    indices: list[int] = []
    for position, entry in enumerate(entries):
        bad = ""
        if entry.isdigit():
            index = int(entry)
            if gpu_count and index >= gpu_count:
                have = f"GPU {gpu_count - 1}" if gpu_count == 1 else f"GPUs 0–{gpu_count - 1}"
                bad = f"there is no GPU {index} (this machine has {have})"
            else:
                indices.append(index)
        elif not entry.startswith(tuple(uuid_prefixes)):
            bad = f"{entry!r} is not a GPU index or UUID" if entry else "an empty entry"
        if bad:
            if position == 0:
                return Visibility("hides", f"{bad}, so CUDA makes no GPU visible")
            return Visibility(
                "partial", f"{bad}; CUDA ignores it and every entry after it", tuple(indices)
            )
    return Visibility("selects", "", tuple(indices))


# --------------------------------------------------------------------------- analysis


@record
class _Cond:
    """Why a statement may not run: the ``if`` test (rendered only when a finding needs it)."""

    node: ast.expr | None
    negate: bool = False
    text: str | None = None

    def render(self) -> str:
        if self.text is not None:
            return self.text
        assert self.node is not None
        source = ast.unparse(self.node)
        if len(source) > _MAX_COND:
            source = source[: _MAX_COND - 1] + "…"
        return f"not ({source})" if self.negate else source


@record
class _Chunk:
    """One parsed piece of a file: a whole module, or one notebook cell."""

    tree: ast.Module
    text: str
    lines: tuple[str, ...]
    cell: int | None = None


class _Recorder:
    """What one file's names mean (imports, names assigned once, constant values), and the
    findings recorded for it. The recognisers below build on it; one instance per file."""

    def __init__(self, rules: ScanRules, display: str, gpu_count: int | None) -> None:
        self.rules = rules
        self.display = display
        self.gpu_count = gpu_count
        self.aliases: dict[str, str | None] = {}
        self.assign_count: dict[str, int] = {}
        self.assigned: dict[str, ast.expr] = {}
        self.soft_placement: bool | None = None
        self.graph_mode = False
        self.test_module = False
        self.chunk: _Chunk | None = None
        self._tokens: tuple[frozenset[str], re.Pattern[str] | None] = (frozenset(), None)
        self._lines_of: dict[int, list[int]] = {}
        self._relevant_lines: list[int] = []
        self.found: list[tuple[tuple[int, int], Finding]] = []
        self._seen: set[tuple[str, str | None, str]] = set()
        self.order_fastest_first: list[tuple[int, str]] = []
        self.index_selections = 0

    def _learn(self, node: ast.stmt) -> None:
        """Record the imported modules and the names one statement binds."""
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    self.aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    self.aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                local = alias.asname or alias.name
                if node.level or not node.module:
                    self.aliases[local] = None  # relative: not one we know
                else:
                    self.aliases[local] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                self._bind(target, node.value)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self._bind(node.target, node.value)
        elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor)):
            self._bind(node.target, None)

    def _all_tokens(self) -> frozenset[str]:
        """The rules' tokens that make a line worth a close look."""
        return (
            frozenset(self.rules.line_tokens)
            | frozenset(self.rules.triggers)
            | frozenset(self.rules.trigger_keywords)
        )

    def _line_tokens(self, tokens: frozenset[str]) -> tuple[frozenset[str], re.Pattern[str] | None]:
        """*tokens*, and the pattern of the local names of ``os``/``os.environ`` or of an API
        a token names (``from os import environ as E`` then ``E[V] = X``;
        ``from tensorflow.config import set_visible_devices as svd``). Local names are
        matched as whole words (``E`` is not every capital E)."""
        names = set()
        for name in [*self.aliases, *self.assigned]:
            bound = self._binding(name, 0)
            if bound is None or name in tokens:
                continue
            last = bound.rsplit(".", 1)[-1]
            if bound in _OS_NAMES or any(token in last for token in tokens):
                names.add(name)
        if not names:
            return tokens, None
        return tokens, re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, names))) + r")\b")

    def _lines(self, chunk: _Chunk) -> list[int]:
        key = id(chunk)
        if key not in self._lines_of:
            self._lines_of[key] = _matching_lines(chunk.text, *self._tokens)
        return self._lines_of[key]

    def _relevant(self, node: ast.stmt, *, header: bool = False) -> bool:
        """True when a line of *node* (of its header only, with *header*) holds a token."""
        first = node.lineno
        last = node.end_lineno or first
        decorators = getattr(node, "decorator_list", None)
        if decorators:  # a definition's lineno is its `def` line, after the decorators
            first = min(first, *(d.lineno for d in decorators))
        body = getattr(node, "body", None)
        if header and isinstance(body, list) and body and isinstance(body[0], ast.stmt):
            last = max(first, body[0].lineno - 1)
        lines = self._relevant_lines
        i = bisect.bisect_left(lines, first)
        return i < len(lines) and lines[i] <= last

    def _bind(self, target: ast.expr, value: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            count = self.assign_count.get(target.id, 0) + (1 if value is not None else 2)
            self.assign_count[target.id] = count
            if value is not None and count == 1:
                self.assigned[target.id] = value
            else:
                self.assigned.pop(target.id, None)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._bind(element, None)
        elif isinstance(target, ast.Starred):
            self._bind(target.value, None)

    def _binding(self, name: str, depth: int) -> str | None:
        if name in self.aliases:
            return self.aliases[name]
        value = self.assigned.get(name)
        if value is not None and depth < _MAX_DEPTH:
            if isinstance(value, (ast.Name, ast.Attribute)):
                return self._qual(value, depth + 1)
            return None
        if name in self.assign_count:
            return None
        return _DEFAULT_NAMES.get(name)

    def _qual(self, node: ast.expr, depth: int = 0) -> str | None:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            base = self._binding(node.id, depth)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "get_ipython"
        ):
            base = "get_ipython()"
        else:
            return None
        if base is None:
            return None
        return ".".join([base, *reversed(parts)])

    def qualname(self, node: ast.expr) -> str | None:
        """The canonical dotted name *node* refers to (aliases resolved), or None."""
        name = self._qual(node)
        return None if name is None else canonical_name(name)

    def _const(self, node: ast.expr, depth: int = 0) -> str | bool | None:
        """A string (or bool) the expression always has, or None."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, (str, bool)):
                return value
            if isinstance(value, int):
                return str(value)
            return None
        if isinstance(node, ast.Name):
            value_node = self.assigned.get(node.id)
            return None if value_node is None else self._const(value_node, depth + 1)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self._const(node.operand, depth + 1)
            return f"-{inner}" if isinstance(inner, str) and inner.isdigit() else None
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "str"
            and len(node.args) == 1
            and not node.keywords
        ):
            inner = self._const(node.args[0], depth + 1)
            return inner if isinstance(inner, str) else None
        if isinstance(node, ast.JoinedStr):
            out = []
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    if part.format_spec is not None or part.conversion not in (-1, 115):
                        return None
                    part = part.value
                value = self._const(part, depth + 1)
                if not isinstance(value, str):
                    return None
                out.append(value)
            return "".join(out)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self._const(node.left, depth + 1)
            right = self._const(node.right, depth + 1)
            if isinstance(left, str) and isinstance(right, str):
                return left + right
        return None

    def _values(self, node: ast.expr, cond: _Cond | None) -> list[tuple[str, _Cond | None]]:
        """Each string *node* may have, with the extra condition under which it has it."""
        if isinstance(node, ast.IfExp):
            return [
                *self._values(node.body, cond or _Cond(node.test)),
                *self._values(node.orelse, cond or _Cond(node.test, negate=True)),
            ]
        value = self._const(node)
        return [(value, cond)] if isinstance(value, str) else []

    @staticmethod
    def _arg(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
        if len(call.args) > position:
            return call.args[position]
        for item in call.keywords:
            if item.arg == keyword:
                return item.value
        return None

    def add(
        self,
        cause: str,
        lineno: int,
        cond: _Cond | None,
        *,
        title: str,
        why: str,
        edit: str,
        severity: Severity | None = None,
        restart: bool = False,
    ) -> None:
        """Record a finding at *lineno* of the current chunk. *restart*: in a notebook, the
        edit takes effect only after a kernel restart (the environment and TensorFlow's
        device list are fixed once TensorFlow has started)."""
        info = self.rules.causes[cause]
        severity = severity or info.severity
        if cond is not None:
            severity = _LOWER.get(severity, severity)
            title = f"{title} (only when `{cond.render()}`)"
        chunk = self.chunk
        cell = chunk.cell if chunk else None
        if cell is None:
            location = f"{self.display}:{lineno}"
            where = f"{self.display} line {lineno}"
        else:
            location = f"{self.display}:cell {cell}:line {lineno}"
            where = f"{self.display} cell {cell} line {lineno}"
        key = (cause, location, title)
        if key in self._seen:
            return
        self._seen.add(key)
        line = chunk.lines[lineno - 1].strip() if chunk and 0 < lineno <= len(chunk.lines) else ""
        if len(line) > _MAX_SNIPPET:
            line = line[: _MAX_SNIPPET - 1] + "…"
        fix = f"edit {where}: " + edit.replace("{code}", f"`{line}`")
        if cell is not None and restart:
            fix += ", then restart the kernel (the old setting stays until it restarts)"
        finding = Finding(
            id=cause,
            severity=severity,
            fix=info.fix,
            title=title,
            evidence=(f"code:{location}",),
            detail=f"code: {line}\nwhy: {why}\nfix: {fix}",
            location=location,
        )
        self.found.append(((cell or 0, lineno), finding))

    def findings(self) -> tuple[Finding, ...]:
        """The findings in file order."""
        return tuple(f for _, f in sorted(self.found, key=lambda pair: pair[0]))


class _Environment(_Recorder):
    """Recognises environment settings made in code: ``os.environ``/``os.putenv`` in Python,
    ``%env`` magics and ``!``/``%%bash`` shell lines in notebooks (CUDA_VISIBLE_DEVICES,
    CUDA_DEVICE_ORDER, KERAS_BACKEND, LD_LIBRARY_PATH, TF_CPP_MIN_LOG_LEVEL)."""

    def _environ_item(
        self, target: ast.expr, value: ast.expr, stmt: ast.stmt, cond: _Cond | None
    ) -> None:
        if isinstance(target, ast.Subscript) and self.qualname(target.value) == "os.environ":
            key = self._const(target.slice)
            if isinstance(key, str):
                self._env_expr(key, value, stmt, cond)

    def _environ_mapping(self, value: ast.expr, stmt: ast.AST, cond: _Cond | None) -> None:
        if isinstance(value, ast.Dict):
            for key_node, item in zip(value.keys, value.values, strict=False):
                key = None if key_node is None else self._const(key_node)
                if isinstance(key, str):
                    self._env_expr(key, item, stmt, cond)
        elif (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id == "dict"
        ):
            for keyword in value.keywords:
                if keyword.arg:
                    self._env_expr(keyword.arg, keyword.value, stmt, cond)

    def _env_expr(self, var: str, value: ast.expr, stmt: ast.AST, cond: _Cond | None) -> None:
        values = self._values(value, cond)
        if not values and var == self.rules.loader_path:
            values = [("…", cond)]  # any value is too late: the loader has already read it
        for text, extra in values:
            self.env_set(var, text, getattr(stmt, "lineno", 1), extra, how="python")

    def _ipython_call(self, method: str, call: ast.Call, cond: _Cond | None) -> None:
        args = [self._const(a) for a in call.args]
        if method in ("run_line_magic", "magic") and args and isinstance(args[0], str):
            line = args[0] if method == "magic" else f"{args[0]} {args[1] or ''}"
            if len(args) >= 2 or method == "magic":
                self.magic(f"%{line.lstrip('%')}", call.lineno, cond)
        elif method == "system" and args and isinstance(args[0], str):
            self.shell([(call.lineno, args[0])], cond)

    def magic(self, line: str, lineno: int, cond: _Cond | None) -> None:
        """Judge a ``%env``/``%set_env`` magic line."""
        match = _ENV_MAGIC_RE.match(line.strip())
        if match is None:
            return
        body = match.group(1).strip()
        assignment = _ASSIGNMENT_RE.match(body)
        if assignment:
            var, value = assignment.group(1), assignment.group(2)
        else:
            parts = body.split(None, 1)
            if len(parts) != 2:
                return  # `%env VAR` reads a variable; `%env` lists them
            var, value = parts
        value = value.strip()
        if "$" in value or "{" in value:
            return  # IPython expands $name / {expr}: the value is not known here
        # IPython keeps quotes: `%env CUDA_VISIBLE_DEVICES="0"` sets the three characters "0".
        self.env_set(var, value, lineno, cond, how="magic")

    def shell(self, lines: Sequence[tuple[int, str]], cond: _Cond | None) -> None:
        """Judge shell lines (a ``!`` line, or a ``%%bash`` cell's lines in order)."""
        pending: list[tuple[int, str, str]] = []
        for lineno, text in lines:
            for command in _SHELL_SPLIT_RE.split(text):
                try:
                    words = shlex.split(command, comments=True)
                except ValueError:
                    words = command.split()
                if not words:
                    continue
                if words[0] == "export":
                    for word in words[1:]:
                        assignment = _ASSIGNMENT_RE.match(word)
                        if assignment:
                            pending.append((lineno, assignment.group(1), assignment.group(2)))
                    continue
                if words[0] == "env":
                    words = words[1:]
                prefix = []
                while words and _ASSIGNMENT_RE.match(words[0]):
                    assignment = _ASSIGNMENT_RE.match(words.pop(0))
                    assert assignment is not None
                    prefix.append((lineno, assignment.group(1), assignment.group(2)))
                if words:  # a program runs with the exports so far and its own prefix
                    for where, var, value in [*pending, *prefix]:
                        self.env_set(var, value, where, cond, how="shell")
                    pending = []
        for where, var, value in pending:
            visibility = judge_visible_devices(value, self.gpu_count, self.rules.uuid_prefixes)
            if var == self.rules.visible_devices and visibility.verdict == "hides":
                self.add(
                    EXPORT_NO_EFFECT,
                    where,
                    cond,
                    title=f"'!export {var}={value}' has no effect on this kernel",
                    why="a '!' line runs in a throw-away subshell; the kernel running "
                    "TensorFlow keeps its own environment (use %env to change it)",
                    edit="delete {code}",
                )

    def env_set(self, var: str, value: str, lineno: int, cond: _Cond | None, *, how: str) -> None:
        """Judge one environment variable set to *value* in code."""
        rules = self.rules
        shown = f"{var}={json.dumps(value)}" if how != "shell" else f"{var}={shlex.quote(value)}"
        edit = f"in {{code}}, drop the {var} setting" if how == "shell" else "delete {code}"
        restart = how != "shell"  # a shell line's setting lives in its child process only
        if var == rules.visible_devices:
            visibility = judge_visible_devices(value, self.gpu_count, rules.uuid_prefixes)
            if visibility.verdict == "hides":
                hint = ' (to choose a GPU, set it to "0" instead)'
                bare = _unquote(value)
                if how == "magic" and bare != value:
                    hint = f" (%env keeps the quotes: write %env {var}={bare})"
                    if judge_visible_devices(bare, self.gpu_count).verdict == "hides":
                        hint = " (to choose a GPU, set it to 0 instead, without quotes)"
                self.add(
                    MASKED,
                    lineno,
                    cond,
                    restart=restart,
                    title=f"{shown} hides every GPU from TensorFlow",
                    why=f"{visibility.reason}; TensorFlow then finds no GPU and runs on the CPU",
                    edit=edit + hint,
                )
            elif visibility.verdict == "partial":
                self.add(
                    OUT_OF_RANGE,
                    lineno,
                    cond,
                    restart=restart,
                    severity=Severity.INFO,  # the GPUs before the bad entry stay visible
                    title=f"{shown} lists a GPU that does not exist",
                    why=visibility.reason,
                    edit=f"in {{code}}, list only GPUs 0–{(self.gpu_count or 1) - 1}",
                )
            if visibility.indices:
                self.index_selections += 1
        elif var == rules.device_order:
            if value not in rules.device_orders:
                self.add(
                    DEVICE_ORDER,
                    lineno,
                    cond,
                    restart=restart,
                    title=f"{shown} is not a device order CUDA knows",
                    why=f"CUDA_DEVICE_ORDER takes {' or '.join(sorted(rules.device_orders))}; "
                    "any other value is ignored (an index belongs in CUDA_VISIBLE_DEVICES)",
                    edit=f"in {{code}}, set {var} to 'PCI_BUS_ID' (the order nvidia-smi uses)",
                )
            elif value == "FASTEST_FIRST":
                self.order_fastest_first.append((lineno, shown))
        elif var == rules.keras_backend:
            self._keras_backend(value, lineno, cond, how=how)
        elif var == rules.loader_path:
            if how == "shell":
                return  # set before the program starts: that is how it works
            self.add(
                LOADER_PATH,
                lineno,
                cond,
                restart=restart,
                title=f"{var} set inside Python cannot help TensorFlow find CUDA libraries",
                why="the dynamic loader reads LD_LIBRARY_PATH once, when the process starts; "
                "changing it later has no effect on libraries TensorFlow loads",
                edit="delete {code} and set it before Python starts (in the shell, or let "
                "tffix set it in the venv's activate script)",
            )
        elif var == rules.log_level and value.strip() in rules.log_level_hides_warnings:
            self.add(
                LOG_SILENCED,
                lineno,
                cond,
                restart=restart,
                title=f"{shown} hides TensorFlow's GPU warnings",
                why="at level 2 or 3 TensorFlow no longer prints 'Cannot dlopen some GPU "
                "libraries … Skipping registering GPU devices', the line that says why the GPU "
                "is not used",
                edit="while diagnosing, delete {code} or set it to '1'",
            )

    def _keras_backend(self, value: str, lineno: int, cond: _Cond | None, *, how: str) -> None:
        if value.strip().lower() in self.rules.keras_backends_ok:
            return
        self.add(
            KERAS_BACKEND,
            lineno,
            cond,
            restart=how != "shell",
            title=f"Keras backend {value!r} moves training away from TensorFlow",
            why=f"with Keras 3 the model then trains on {value}, not TensorFlow, so "
            "TensorFlow's GPU setup does not apply (and that backend may have no GPU support "
            "installed)",
            edit="delete {code} (or set it to 'tensorflow')"
            if how != "shell"
            else "in {code}, remove the KERAS_BACKEND setting",
        )

    def _finish_device_order(self) -> None:
        if not self.index_selections or (self.gpu_count is not None and self.gpu_count < 2):
            return
        for lineno, shown in self.order_fastest_first:
            self.add(
                DEVICE_ORDER,
                lineno,
                None,
                title=f"{shown} makes GPU indices differ from nvidia-smi's",
                why="this code picks a GPU by index, and FASTEST_FIRST numbers GPUs by speed, "
                "not by PCI bus as nvidia-smi does, so the index may name another GPU",
                edit="in {code}, set CUDA_DEVICE_ORDER to 'PCI_BUS_ID'",
            )


class _Placement(_Recorder):
    """Recognises device placement that keeps TensorFlow off the GPU: ``set_visible_devices``,
    ``ConfigProto(device_count=…)``, CPU-only strategies and ``tf.device`` blocks around
    training, and soft placement / graph mode (which change what a GPU index means)."""

    def _note_placement(self, call: ast.Call) -> None:
        name = self.qualname(call.func)
        if name is None:
            return
        if name == "tensorflow.config.set_soft_device_placement" and call.args:
            value = self._const(call.args[0])
            if isinstance(value, bool):
                self.soft_placement = value
        elif name in self.rules.graph_mode:
            self.graph_mode = True
        if name.endswith("ConfigProto"):
            for keyword in call.keywords:
                if keyword.arg == "allow_soft_placement":
                    value = self._const(keyword.value)
                    if isinstance(value, bool):
                        self.soft_placement = value

    def _device_kind(self, node: ast.expr, depth: int = 0) -> str | None:
        """``CPU``/``GPU`` when *node* is a device list of one kind only, else None."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(node, ast.Name) and node.id in self.assigned:
            return self._device_kind(self.assigned[node.id], depth + 1)
        if isinstance(node, ast.Subscript):
            return self._device_kind(node.value, depth + 1)
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
            kinds = {self._device_kind(e, depth + 1) for e in node.elts}
            return kinds.pop() if len(kinds) == 1 else None
        if isinstance(node, ast.Call):
            name = self.qualname(node.func) or ""
            if name.rsplit(".", 1)[-1] in (
                "list_physical_devices",
                "get_visible_devices",
                "list_logical_devices",
            ):
                kind_node = self._arg(node, 0, "device_type")
                kind = None if kind_node is None else self._const(kind_node)
                return kind.upper() if isinstance(kind, str) else None
        return None

    def _set_visible_devices(self, call: ast.Call, cond: _Cond | None) -> None:
        devices = self._arg(call, 0, "devices")
        kind_node = self._arg(call, 1, "device_type")
        kind = None if kind_node is None else self._const(kind_node)
        kind = kind.upper() if isinstance(kind, str) else None
        if devices is None or (kind_node is not None and kind is None):
            return
        empty = isinstance(devices, (ast.List, ast.Tuple)) and not devices.elts
        if (empty and kind in ("GPU", None)) or (
            kind is None and self._device_kind(devices) == "CPU"
        ):
            what = "an empty GPU list" if empty else "a list of CPU devices only"
            self.add(
                HIDES,
                call.lineno,
                cond,
                restart=True,
                title="tf.config.set_visible_devices hides every GPU from TensorFlow",
                why=f"it is given {what}, so TensorFlow registers no GPU device and every op "
                "runs on the CPU",
                edit="delete {code} (TensorFlow sees every GPU by default; to use one GPU "
                "only, pass tf.config.list_physical_devices('GPU')[:1], 'GPU')",
            )

    def _config_proto(self, call: ast.Call, cond: _Cond | None) -> None:
        for keyword in call.keywords:
            if keyword.arg != "device_count" or not isinstance(keyword.value, ast.Dict):
                continue
            for key_node, value_node in zip(keyword.value.keys, keyword.value.values, strict=False):
                key = None if key_node is None else self._const(key_node)
                if isinstance(key, str) and key.upper() == "GPU" and self._const(value_node) == "0":
                    self.add(
                        HIDES,
                        call.lineno,
                        cond,
                        restart=True,
                        title="ConfigProto(device_count={'GPU': 0}) gives TensorFlow no GPU",
                        why="a session built with this config creates no GPU device, so "
                        "everything it runs is placed on the CPU",
                        edit="in {code}, remove the 'GPU': 0 entry from device_count",
                    )

    def _strategy_cpu(self, call: ast.Call, spec: str, cond: _Cond | None) -> None:
        self.add(
            PINS_CPU,
            call.lineno,
            cond,
            title=f"OneDeviceStrategy({spec!r}) trains on the CPU",
            why="every variable and step created under this strategy is placed on the CPU, "
            "even when a GPU is visible",
            edit="in {code}, use '/GPU:0' instead of " + repr(spec) + " (or "
            "tf.distribute.get_strategy() to let TensorFlow choose)",
        )

    def _device_block(
        self, expr: ast.expr, block: ast.With | ast.AsyncWith, cond: _Cond | None
    ) -> None:
        if not isinstance(expr, ast.Call):
            return
        if self.qualname(expr.func) not in DEVICE_SCOPES:
            return
        spec_node = self._arg(expr, 0, "device_name")
        spec = None if spec_node is None else self._const(spec_node)
        device = parse_device(spec) if isinstance(spec, str) else None
        if device is None:
            return
        kind, index = device
        if kind == "CPU" and self._trains(block.body):
            self.add(
                PINS_CPU,
                expr.lineno,
                cond,
                title=f"with tf.device({spec!r}) pins model building or training to the CPU",
                why="everything created or run inside this block is placed on the CPU even "
                "when a GPU is visible; without a tf.device block TensorFlow already uses the "
                "GPU",
                edit="remove {code} and dedent the block under it (keep a CPU block around the "
                "input pipeline only, if that was the intent)",
            )
        elif kind == "GPU" and index is not None and self.gpu_count and index >= self.gpu_count:
            soft_off = self.soft_placement is False or (
                self.graph_mode and self.soft_placement is not True
            )
            severity = Severity.ERROR if soft_off else Severity.INFO
            why = (
                "soft device placement is off here, so TensorFlow fails with "
                "'Could not satisfy explicit device specification'"
                if soft_off
                else "with soft device placement (TensorFlow 2's default in eager mode) the "
                "ops silently go to another device instead"
            )
            self.add(
                OUT_OF_RANGE,
                expr.lineno,
                cond,
                severity=severity,
                title=f"tf.device({spec!r}) names GPU {index}, but this machine has "
                f"{self.gpu_count} GPU{'s' if self.gpu_count != 1 else ''}",
                why=why,
                edit=f"in {{code}}, use a GPU that exists ('/GPU:0' … '/GPU:{self.gpu_count - 1}')",
            )

    def _trains(self, body: Sequence[ast.stmt]) -> bool:
        rules = self.rules
        for node in _walk_same_scope(body):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            last = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if isinstance(func, ast.Attribute) and last in rules.training_methods:
                return True
            name = self.qualname(func) or ""
            if name in rules.training_constructors or name.startswith(
                tuple(m + "." for m in rules.training_modules)
            ):
                return True
            lowered = last.lower()
            if any(p.search(lowered) for p in rules.training_functions):
                return True
        return False


class _Ray(_Placement):
    """Recognises Ray tasks and actors that train with TensorFlow but ask Ray for no GPU."""

    def _gpus_requested(self, node: ast.expr | None) -> bool | None:
        """For a resources dict literal: True when it asks for a GPU (``"gpu": 1``, or any
        value not known to be 0), False when not, None when it cannot be read."""
        if not isinstance(node, ast.Dict):
            return None
        for key_node, value in zip(node.keys, node.values, strict=True):
            key = None if key_node is None else self._const(key_node)
            if key_node is None:
                return None  # **other: cannot tell
            if isinstance(key, str) and key.lower() in ("gpu", "gpus", "num_gpus"):
                return self._const(value) not in ("0", False)
        return False

    def _ray_remote(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, cond: _Cond | None
    ) -> None:
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            name = self.qualname(call.func if call else decorator)
            if name != "ray.remote":
                continue
            gpus = (
                next((k.value for k in call.keywords if k.arg == "num_gpus"), None)
                if call
                else None
            )
            if gpus is not None and self._const(gpus) not in ("0",):
                return  # asks for GPUs (or a number the scan cannot read)
            if not self._trains(
                node.body if not isinstance(node, ast.ClassDef) else _methods_body(node)
            ):
                return
            self.add(
                RAY_NO_GPUS,
                decorator.lineno,
                cond,
                title=f"Ray runs {node.name} without a GPU",
                why="Ray sets CUDA_VISIBLE_DEVICES to an empty value in every task or actor "
                "that does not ask for GPUs, so TensorFlow inside it sees none",
                edit="in {code}, ask for a GPU: @ray.remote(num_gpus=1)",
            )

    def _ray_call(self, name: str, call: ast.Call, cond: _Cond | None) -> None:
        last = name.rsplit(".", 1)[-1]
        if last == "run" and ".tune." in f".{name}.":
            resources = self._arg(call, 99, "resources_per_trial")
            what = "resources_per_trial"
        elif last == "with_resources":
            resources = self._arg(call, 1, "resources")
            what = "the resources"
        elif last == "ScalingConfig":
            use_gpu = self._arg(call, 99, "use_gpu")
            if use_gpu is not None and self._const(use_gpu) is not False:
                return
            self.add(
                RAY_NO_GPUS,
                call.lineno,
                cond,
                title="ScalingConfig without use_gpu=True trains every worker on the CPU",
                why="Ray Train gives workers no GPU unless use_gpu=True, and sets "
                "CUDA_VISIBLE_DEVICES to an empty value in them",
                edit="in {code}, add use_gpu=True",
            )
            return
        else:
            return
        if resources is None or self._gpus_requested(resources) is not False:
            return
        self.add(
            RAY_NO_GPUS,
            call.lineno,
            cond,
            title=f"{what} of this Ray Tune trial ask for no GPU",
            why="Ray starts a trial that asks for no GPU with CUDA_VISIBLE_DEVICES set to an "
            "empty value, so TensorFlow inside it sees none",
            edit='in {code}, add "gpu": 1 to ' + what,
        )


class _Analyzer(_Environment, _Ray):
    """Walks the chunks of one file (a first pass for names and placement, a second over every
    relevant statement) and hands each call and assignment to the recogniser it concerns."""

    def prepass(self, chunks: Sequence[_Chunk]) -> None:
        """Learn imports, names assigned once, soft placement and graph mode."""
        for chunk in chunks:
            for node in _statements(chunk.tree.body):
                self._learn(node)
        self._tokens = self._line_tokens(self._all_tokens())
        # What _note_placement acts on is named on a line by one of these (or by a local name
        # bound to one): only the statements spanning such a line are walked for it.
        placement = self._line_tokens(
            frozenset({"set_soft_device_placement", "ConfigProto"})
            | frozenset(name.rsplit(".", 1)[-1] for name in self.rules.graph_mode)
        )
        for chunk in chunks:
            self.chunk = chunk
            self._relevant_lines = _matching_lines(chunk.text, *placement)
            for stmt in _statements(chunk.tree.body, within=self._relevant):
                if self._relevant(stmt, header=True):
                    for header in _header_nodes(stmt):
                        for sub in ast.walk(header):
                            if isinstance(sub, ast.Call):
                                self._note_placement(sub)
            for stmt in chunk.tree.body:
                if isinstance(stmt, ast.If) and self._if_kind(stmt.test) == "main":
                    self.test_module |= self._runs_tests(stmt.body)
        self.chunk = None

    def _runs_tests(self, body: Sequence[ast.stmt]) -> bool:
        for stmt in body:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Call):
                    name = self.qualname(node.func) or ""
                    if any(name == r or name.endswith("." + r) for r in self.rules.test_runners):
                        return True
        return False

    def run(self, chunks: Sequence[_Chunk]) -> None:
        """Judge every chunk (after ``prepass`` saw them all)."""
        if self.test_module:
            return
        for chunk in chunks:
            self.chunk = chunk
            self._relevant_lines = self._lines(chunk)
            self._stmts(chunk.tree.body, None)
        self._finish_device_order()

    def _stmts(self, body: Iterable[ast.stmt], cond: _Cond | None) -> None:
        for stmt in body:
            if self._relevant(stmt):
                self._stmt(stmt, cond)

    def _stmt(self, node: ast.stmt, cond: _Cond | None) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not node.name.startswith("test"):
                self._ray_remote(node, cond)
                self._stmts(node.body, cond)
        elif isinstance(node, ast.ClassDef):
            if not self._is_test_class(node):
                self._ray_remote(node, cond)
                self._stmts(node.body, cond)
        elif isinstance(node, ast.If):
            kind = self._if_kind(node.test)
            self._calls(node.test, cond)
            if kind == "main":
                self._stmts(node.body, cond)
            elif kind != "type_checking":
                self._stmts(node.body, cond or _Cond(node.test))
            self._stmts(node.orelse, cond or _Cond(node.test, negate=True))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self._calls(item.context_expr, cond)
                self._device_block(item.context_expr, node, cond)
            self._stmts(node.body, cond)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            self._calls(node.iter if not isinstance(node, ast.While) else node.test, cond)
            self._stmts(node.body, cond)
            self._stmts(node.orelse, cond)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            self._stmts(node.body, cond)  # type: ignore[attr-defined]
            for handler in node.handlers:  # type: ignore[attr-defined]
                self._stmts(handler.body, cond or _Cond(None, text="an exception is caught"))
            self._stmts(node.orelse, cond)  # type: ignore[attr-defined]
            self._stmts(node.finalbody, cond)  # type: ignore[attr-defined]
        elif isinstance(node, ast.Match):
            for case in node.cases:
                self._stmts(case.body, cond or _Cond(None, text="a match case applies"))
        else:
            self._simple(node, cond)

    def _is_test_class(self, node: ast.ClassDef) -> bool:
        if node.name.startswith("Test"):
            return True
        for base in node.bases:
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
            if name.endswith("TestCase"):
                return True
        return False

    @staticmethod
    def _if_kind(test: ast.expr) -> str:
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
            sides = [test.left, test.comparators[0]]
            names = {s.id for s in sides if isinstance(s, ast.Name)}
            consts = {s.value for s in sides if isinstance(s, ast.Constant)}
            if names == {"__name__"} and consts == {"__main__"}:
                return "main"
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            return "type_checking"
        return ""

    def _simple(self, node: ast.stmt, cond: _Cond | None) -> None:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._environ_item(target, node.value, node, cond)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self._environ_item(node.target, node.value, node, cond)
        elif (
            isinstance(node, ast.AugAssign)
            and isinstance(node.op, ast.BitOr)
            and self.qualname(node.target) == "os.environ"
        ):
            self._environ_mapping(node.value, node, cond)
        self._calls(node, cond)

    def _calls(self, node: ast.AST, cond: _Cond | None) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                self._call(sub, cond)

    def _call(self, call: ast.Call, cond: _Cond | None) -> None:
        name = self.qualname(call.func)
        if name is None:
            return
        args = call.args
        if name in ("os.putenv", "os.environ.setdefault", "os.environ.__setitem__"):
            if len(args) >= 2:
                key = self._const(args[0])
                if isinstance(key, str):
                    self._env_expr(key, args[1], call, cond)
        elif name == "os.environ.update":
            for arg in args:
                self._environ_mapping(arg, call, cond)
            for keyword in call.keywords:
                if keyword.arg:
                    self._env_expr(keyword.arg, keyword.value, call, cond)
        elif name == VISIBLE_DEVICES_CALL:
            self._set_visible_devices(call, cond)
        elif name.endswith("ConfigProto"):
            self._config_proto(call, cond)
        elif name in (ONE_DEVICE_STRATEGY, SET_BACKEND_CALL):
            self._device_or_backend(name, call, cond)
        elif name.startswith("get_ipython()."):
            self._ipython_call(name.rsplit(".", 1)[1], call, cond)
        elif name.startswith("ray."):
            self._ray_call(name, call, cond)

    def _device_or_backend(self, name: str, call: ast.Call, cond: _Cond | None) -> None:
        """``OneDeviceStrategy('/cpu:0')`` or ``keras.config.set_backend('jax')``."""
        spec = self._arg(call, 0, "device" if "Strategy" in name else "backend")
        value = None if spec is None else self._const(spec)
        if isinstance(value, str) and "Strategy" in name:
            device = parse_device(value)
            if device and device[0] == "CPU":
                self._strategy_cpu(call, value, cond)
        elif isinstance(value, str):
            self._keras_backend(value, call.lineno, cond, how="python")


def canonical_name(name: str) -> str:
    """``tensorflow.compat.v1.config.experimental.X`` -> ``tensorflow.config.X``, etc."""
    changed = True
    while changed:
        changed = False
        for old, new in _CANONICAL:
            if name.startswith(old):
                name = new + name[len(old) :]
                changed = True
    return "keras" if name == "tensorflow.keras" else name


_OS_NAMES = frozenset(
    {"os", "os.environ", "os.putenv", "os.environ.setdefault", "os.environ.update"}
)
_BODY_FIELDS = frozenset({"body", "orelse", "finalbody", "handlers", "cases"})
_EMPTY = ast.Module(body=[], type_ignores=[])


def _statements(
    body: Sequence[ast.stmt], within: Callable[[ast.stmt], bool] | None = None
) -> Iterator[ast.stmt]:
    """Every statement under *body*, nested ones included, without entering expressions.

    With *within*, only the statements it accepts, and only those under accepted ones: a
    test of a statement's line span (a nested statement lies within its parent's lines)
    then skips whole subtrees, which is most of a large file.
    """
    stack: list[ast.stmt] = list(reversed(body))
    while stack:
        node = stack.pop()
        if within is not None and not within(node):
            continue
        yield node
        nested: list[ast.stmt] = []
        for name in ("body", "orelse", "finalbody"):
            part = getattr(node, name, None)
            if isinstance(part, list):
                nested.extend(part)
        for holder in (*getattr(node, "handlers", ()), *getattr(node, "cases", ())):
            nested.extend(holder.body)
        stack.extend(reversed(nested))


def _header_nodes(stmt: ast.stmt) -> list[ast.AST]:
    """A simple statement itself; for a compound one, its parts other than nested bodies."""
    if not hasattr(stmt, "body"):
        return [stmt]
    out: list[ast.AST] = []
    for name, value in ast.iter_fields(stmt):
        if name in _BODY_FIELDS:
            continue
        if isinstance(value, ast.AST):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, ast.AST))
    return out


def _matching_lines(text: str, tokens: Iterable[str], names: re.Pattern[str] | None) -> list[int]:
    """The sorted 1-based numbers of the lines of *text* holding a token or a name.

    ``str.find`` per token, not one regular expression of alternatives: on large files it
    is several times faster (``re`` tries every alternative at every position)."""
    positions: list[int] = []
    for token in tokens:
        at = text.find(token)
        while at >= 0:
            positions.append(at)
            at = text.find(token, at + len(token))
    if names is not None:
        positions.extend(match.start() for match in names.finditer(text))
    positions.sort()
    out: list[int] = []
    line = 1
    last = 0
    for at in positions:
        line += text.count("\n", last, at)
        last = at
        if not out or out[-1] != line:
            out.append(line)
    return out


_NEW_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _methods_body(node: ast.ClassDef) -> list[ast.stmt]:
    """The statements of a class's methods (what a Ray actor runs)."""
    out: list[ast.stmt] = []
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out.extend(item.body)
    return out


def _walk_same_scope(body: Sequence[ast.stmt]) -> Iterator[ast.AST]:
    """Every node under *body*, not entering nested functions, classes or lambdas."""
    stack: list[ast.AST] = [node for node in body if not isinstance(node, _NEW_SCOPES)]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(
            child for child in ast.iter_child_nodes(node) if not isinstance(child, _NEW_SCOPES)
        )


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _parse(text: str, filename: str) -> ast.Module:
    # Not the file's own name: on a SyntaxError CPython re-reads the file named to quote the
    # line, which for a notebook of broken cells means reading the whole file once per cell.
    del filename
    # A syntax tree holds no reference cycles, so reference counting frees it; the cyclic
    # collector would only walk its hundreds of thousands of fresh nodes over and over while
    # they are being built (a tenth to a fifth of the parse time on large files).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(text, filename="<scanned source>")
    finally:
        if enabled:
            gc.enable()


def analyze_source(
    text: str, filename: str, *, gpu_count: int | None = None, rules: ScanRules | None = None
) -> tuple[Finding, ...]:
    """The findings in Python source *text*; *filename* is how findings name the file.

    Raises ``SyntaxError`` (or ``ValueError`` for a NUL byte) when the text is not Python;
    ``RecursionError`` for code nested too deeply to parse.
    """
    rules = rules or load_scan_rules()
    tree = _parse(text, filename)
    analyzer = _Analyzer(rules, filename, gpu_count)
    chunks = [_Chunk(tree, text, tuple(text.splitlines()))]
    analyzer.prepass(chunks)
    analyzer.run(chunks)
    return analyzer.findings()


# --------------------------------------------------------------------------- notebooks


@record
class _Cell:
    number: int
    python: str | None
    """The cell as Python, magics and shell lines replaced by ``pass`` (None: not Python)."""
    lines: tuple[str, ...]
    magics: tuple[tuple[int, str], ...]
    shell: tuple[tuple[int, str], ...]
    shell_cell: bool


_SHELL_CELLS = ("%%bash", "%%sh", "%%script bash", "%%script sh")
_PYTHON_CELLS = ("%%time", "%%timeit", "%%capture", "%%prun", "%%debug", "%%python")


def _cell_source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", cell.get("input", ""))
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def _translate(number: int, source: str) -> _Cell:
    lines = source.splitlines()
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        if first.startswith(_SHELL_CELLS):
            shell = tuple((i, line) for i, line in enumerate(lines[1:], start=2))
            return _Cell(number, None, tuple(lines), (), shell, True)
        if not first.startswith(_PYTHON_CELLS):
            return _Cell(number, None, tuple(lines), (), (), False)  # %%writefile, %%html, …
    out: list[str] = []
    magics: list[tuple[int, str]] = []
    shell_lines: list[tuple[int, str]] = []
    for lineno, line in enumerate(lines, start=1):
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith("%%") and lineno == 1:
            out.append("")
        elif stripped.startswith("%"):
            magics.append((lineno, stripped))
            out.append(indent + "pass")
        elif stripped.startswith("!"):
            shell_lines.append((lineno, stripped[1:]))
            out.append(indent + "pass")
        elif _MAGIC_ASSIGN_RE.match(stripped) or stripped.endswith("?"):
            out.append(indent + "pass")  # files = !ls, x = %time f(), obj?
        else:
            out.append(line)
    return _Cell(number, "\n".join(out), tuple(lines), tuple(magics), tuple(shell_lines), False)


def notebook_cells(json_text: str) -> list[_Cell]:
    """The code cells of a notebook, numbered from 1 in notebook order (all cells counted).

    Raises ``ValueError`` when the text is not a notebook.
    """
    data = json.loads(json_text)
    if not isinstance(data, dict):
        raise ValueError("not a notebook")
    cells = data.get("cells")
    if cells is None and isinstance(data.get("worksheets"), list) and data["worksheets"]:
        cells = data["worksheets"][0].get("cells")  # nbformat 3
    if not isinstance(cells, list):
        raise ValueError("not a notebook")
    out = []
    for number, cell in enumerate(cells, start=1):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            out.append(_translate(number, _cell_source(cell)))
    return out


def analyze_notebook(
    json_text: str,
    filename: str,
    *,
    gpu_count: int | None = None,
    rules: ScanRules | None = None,
) -> tuple[Finding, ...]:
    """The findings in a Jupyter notebook's code cells, magics and shell lines.

    The cells are read as one module in notebook order (an import in cell 1 names things in
    cell 5). A cell that is not valid Python is left out; the rest are still judged.
    Raises ``ValueError`` when the text is not a notebook.
    """
    rules = rules or load_scan_rules()
    analyzer = _Analyzer(rules, filename, gpu_count)
    cells = notebook_cells(json_text)
    chunks: list[_Chunk] = []
    for cell in cells:
        if cell.python is None:
            continue
        try:
            tree = _parse(cell.python, filename)
        except (SyntaxError, ValueError):
            continue
        chunks.append(_Chunk(tree, cell.python, cell.lines, cell.number))
    analyzer.prepass(chunks)
    if analyzer.test_module:
        return ()
    analyzer.run(chunks)
    for cell in cells:
        analyzer.chunk = _Chunk(_EMPTY, "", cell.lines, cell.number)
        for lineno, line in cell.magics:
            analyzer.magic(line, lineno, None)
        if cell.shell_cell:  # one shell: an export holds for the lines after it
            analyzer.shell(cell.shell, None)
        else:  # each `!` line is a shell of its own
            for item in cell.shell:
                analyzer.shell([item], None)
    return analyzer.findings()


# --------------------------------------------------------------------------- files


@record
class ScanResult:
    """What a scan found, and how much it looked at."""

    findings: tuple[Finding, ...]
    """Errors first, then warnings, then info; within each, in file and line order."""
    files: int
    """Files read and judged."""
    skipped: Mapping[str, int]
    """Reason -> how many files (or folders) were not judged: ``syntax error``, ``not
    text``, ``too large``, ``unreadable``, ``test file``, …"""
    seconds: float

    @property
    def skipped_total(self) -> int:
        """How many files were skipped, for every reason together."""
        return sum(self.skipped.values())


def is_test_path(display: str, rules: ScanRules) -> bool:
    """True for a file named or filed like a test (``tests/x.py``, ``test_x.py``, ``x_test.py``)."""
    parts = display.replace("\\", "/").split("/")
    if any(part in rules.test_dirs for part in parts[:-1]):
        return True
    return any(fnmatch.fnmatchcase(parts[-1], glob) for glob in rules.test_file_globs)


def decode_source(data: bytes) -> str | None:
    """Python source bytes as text (UTF-8, or the file's coding cookie), or None for binary."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return None


# --------------------------------------------------------------------------- pre-filter
#
# Most files of a project cannot hold a finding, and ``ast.parse`` is most of a scan's time.
# A file is parsed only when a cheap look at its text says that it might hold one; every test
# here over-approximates what the analysis above would find (when in doubt, parse), and
# tests/scan/test_prefilter*.py compare the two over fixtures and generated sources.

_BLANK = r"(?:[ \t\f]|\\\r?\n)"
"""Blanks inside one logical line (a backslash at the end of a line continues it)."""
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IMPORT_ITEM_RE = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*|\*)(?:\s+as\s+[A-Za-z_][A-Za-z0-9_]*)?")
_IMPORT_END_RE = re.compile(r"[;#]|(?<!\\)[\r\n]|\Z")
_DOTTED_TAIL_RE = re.compile(rf"(?:\w+{_BLANK}*\.{_BLANK}*)*(\w+){_BLANK}*\Z")
_STRING_OR_COMMENT_RE = re.compile(
    r"#[^\r\n]*"
    r"|'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''"
    r'|"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""'
    r"|'[^'\\\r\n]*(?:\\.[^'\\\r\n]*)*'"
    r'|"[^"\\\r\n]*(?:\\.[^"\\\r\n]*)*"',
    re.DOTALL,
)
"""A comment or a string literal (its prefix letters left outside), as Python up to 3.11
tokenizes them: left to right, the first match of this pattern in code is the next one."""
_NESTING_STRING_RE = re.compile(r"(?<![\w])(?:[fFtT][rRbB]?|[rRbB][fFtT])['\"]")
"""An f-string (or t-string) opening: from Python 3.12 one may hold its own quotes, which
``_STRING_OR_COMMENT_RE`` cannot follow."""


@record
class _Target:
    """What a name must look like in the text to resolve to one of some qualified names that
    share their last component (``tensorflow.device`` and ``keras.device``)."""

    word: str
    """The last component (``device``)."""
    parts: frozenset[str]
    """Every other component such a name can hold: ``tensorflow``, ``compat``, ``v1``,
    ``keras``, ``tf_keras``, …. Derived, not listed: ``canonical_name`` only swaps one prefix
    of ``_CANONICAL`` for another, so such a name holds only the components of those prefixes
    and of the qualified names' own modules."""
    defaults: frozenset[str]
    """The names read as one of those modules without an import (``tf``, ``keras``):
    ``_DEFAULT_NAMES`` whose module is made of ``parts``."""
    word_re: re.Pattern[str]
    """The word. (Each pattern here starts with its literal text, not ``\\b``: ``re`` then
    jumps from one occurrence of it to the next, tens of times faster.)"""
    from_re: re.Pattern[str]
    """``from M import`` with ``M`` made of ``parts``: only there can ``from M import word``
    name one of the qualified names."""


@functools.cache
def _target(names: frozenset[str]) -> _Target:
    (word,) = {name.rsplit(".", 1)[-1] for name in names}
    modules = (name.rsplit(".", 1)[0] for name in names)
    prefixes = (*(prefix for pair in _CANONICAL for prefix in pair), *modules)
    parts = frozenset(part for prefix in prefixes for part in prefix.split(".") if part)
    defaults = frozenset(n for n, m in _DEFAULT_NAMES.items() if set(m.split(".")) <= parts)
    alternatives = "|".join(sorted(map(re.escape, parts), key=lambda part: (-len(part), part)))
    module = rf"(?:{alternatives})(?:{_BLANK}*\.{_BLANK}*(?:{alternatives}))*"
    word_re = re.compile(rf"{re.escape(word)}(?<!\w{re.escape(word)})(?!\w)")
    from_re = re.compile(rf"from(?<!\wfrom){_BLANK}+{module}{_BLANK}+import\b")
    return _Target(word, parts, defaults, word_re, from_re)


_MAX_PARENTHESES = 50
"""How deep ``_dotted`` follows parentheses around a name before leaving it to the parser."""


class _Doubt(Exception):
    """The text is not plain enough to judge without parsing it."""


def _code_only(text: str) -> str | None:
    """*text* with every comment and string literal blanked out; None when that is not sure
    (a quote left over: an unterminated string, or an f-string of Python 3.12 and later)."""
    if sys.version_info >= (3, 12) and _NESTING_STRING_RE.search(text):
        return None
    code = _STRING_OR_COMMENT_RE.sub(" ", text)
    if "'" in code or '"' in code:
        return None
    return code


def _skip(code: str, at: int, inside: bool) -> int:
    """The first position from *at* that is not a blank; *inside* brackets, line breaks are
    blanks too (and a comment there is a doubt)."""
    end = len(code)
    while at < end:
        char = code[at]
        if char in " \t\f":
            at += 1
        elif char == "\\" and code.startswith(("\n", "\r"), at + 1):
            at += 3 if code.startswith("\r\n", at + 1) else 2
        elif inside and char in "\r\n":
            at += 1
        elif inside and char == "#":
            raise _Doubt
        else:
            break
    return at


def _skip_back(code: str, at: int) -> int:
    while at >= 0 and code[at] in " \t\f":
        at -= 1
    return at


def _line_ends(code: str, end: int) -> list[int]:
    """Where the code before the line break at *end* may end: the last character of the
    nearest line with code (blank and comment-only lines are passed over), or the last one
    before a ``#`` on it (which may start a comment). Empty at the start of the text."""
    while end >= 0:
        newline = code.rfind("\n", 0, end)
        start = max(newline, code.rfind("\r", newline + 1, end)) + 1
        line = code[start:end]
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            if stripped.endswith("\\"):
                raise _Doubt  # continued by a backslash (or a comment ending in one)
            cuts = [len(line)] + [at for at, char in enumerate(line) if char == "#"]
            ends = {start + len(line[:cut].rstrip()) - 1 for cut in cuts}
            return sorted(at for at in ends if at >= start)
        end = start - 1
    return []


def _dotted(code: str, at: int, inside: bool, depth: int = 0) -> tuple[list[str], int] | None:
    """The dotted name starting at *at* (``a.b.c``, parenthesised or not) and where it ends;
    None when the expression there does not start with one."""
    at = _skip(code, at, inside)
    if code.startswith("(", at):
        if depth > _MAX_PARENTHESES:
            raise _Doubt
        got = _dotted(code, at + 1, True, depth + 1)
        if got is None:
            return None
        parts, at = got
        at = _skip(code, at, True)
        if not code.startswith(")", at):
            return None  # a tuple, a conditional, a call in parentheses: not a name
        at += 1
    else:
        match = _NAME_RE.match(code, at)
        if match is None or iskeyword(match.group()):
            return None
        parts = [match.group()]
        at = match.end()
    while True:
        after = _skip(code, at, inside)
        if not code.startswith(".", after):
            return parts, at
        match = _NAME_RE.match(code, _skip(code, after + 1, inside))
        if match is None:
            raise _Doubt
        parts.append(match.group())
        at = match.end()


def _assigned_name(code: str, at: int) -> list[str] | None:
    """The dotted name assigned by the ``=`` just before *at* (``x = a.b``, ``x = (a)``,
    ``x = y = a.b``), or None when the value is anything else (a call, a subscript, …)."""
    got = _dotted(code, at, False)
    if got is None:
        return None
    parts, at = got
    at = _skip(code, at, False)
    if at >= len(code) or code[at] in "\r\n;#":
        return parts
    if code[at] == "=" and not code.startswith("==", at):
        return _assigned_name(code, at + 1)  # `a = b = value`: the value decides
    return None


def _annotated_value(code: str, at: int) -> int | None:
    """After ``name:`` at *at*: where the value of ``name: T = value`` starts, or None when
    there is none on this logical line (a slice, a dict entry, a lambda, ``if x:``)."""
    depth = 0
    end = len(code)
    while at < end:
        char = code[at]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0:
                return None
        elif char in "'\"":
            raise _Doubt
        elif char in "\r\n":
            if depth:
                raise _Doubt  # an annotation over several lines
            if not code.startswith("\\", at - 1):
                return None
        elif char in ";#" and not depth:
            return None
        elif char == "=" and not depth:
            if code.startswith("=", at + 1):
                at += 2
                continue
            if code[at - 1] not in "<>!=":
                return at + 1
        at += 1
    return None


class _NameUse:
    """Whether Python code could name one of a target's qualified names the way
    ``_Recorder.qualname`` resolves names (``tensorflow.device``), read from the text alone.

    Such a name ends in ``.device`` on a receiver whose name is made of the target's parts
    or is bound to a module made of them (by ``import … as``, or by ``name = a.b`` assigned
    once, chased as far as the analysis does), or it is ``device`` imported from such a
    module.
    Every judgement leans to "could": the text may hold strings and comments.
    Raises ``_Doubt`` where the text is too unusual to read.
    """

    def __init__(self, code: str, target: _Target) -> None:
        self.code = code
        self.target = target
        self._sites: dict[str, list[list[str] | None]] = {}

    def found(self) -> bool:
        """True when some occurrence of the word in the code could be such a name."""
        words = self.target.word_re.finditer(self.code)
        return any(self._names_target(m.start()) for m in words) or self._imports_word()

    def _names_target(self, at: int) -> bool:
        """Whether the word at *at* could end one of the target's names."""
        code = self.code
        before = _skip_back(code, at - 1)
        if before >= 0 and code[before] in "\r\n":  # `a.` may end the line before
            dots = [end for end in _line_ends(code, before) if code[end] == "."]
            if len(dots) > 1:
                raise _Doubt
            if not dots:
                return False  # a bare name
            before = dots[0]
        elif before < 0 or code[before] != ".":
            return False  # a bare name: an import of it is checked by _imports_word
        while True:  # walk back the receiver, one `.name` at a time
            end = _skip_back(code, before - 1)
            if end >= 0 and code[end] in "\r\n":  # the receiver ends an earlier line
                ends = _line_ends(code, end)
                if len(ends) > 1:
                    raise _Doubt
                end = ends[0] if ends else -1
            if end < 0:
                return False
            char = code[end]
            if char == ")":
                return self._parenthesised(end)
            if not (char.isalnum() or char == "_"):
                return False  # a subscript, a literal, …: the analysis gives those no name
            start = end
            while start > 0 and (code[start - 1].isalnum() or code[start - 1] == "_"):
                start -= 1
            name = code[start : end + 1]
            if name[0].isdigit():
                return False
            before = _skip_back(code, start - 1)
            if before < 0 or code[before] != ".":
                # the first name; after a line break it may also be an attribute of a receiver
                # on the line before, which _module's answer for a part covers
                return self._module(name, 0, frozenset())
            if name not in self.target.parts:
                return False  # an attribute no scope's name holds

    def _parenthesised(self, close: int) -> bool:
        """For a receiver ending in the ``)`` at *close*: False for a call (the analysis gives
        it no name), else whether the parenthesised expression is a dotted name of a module
        made of the target's parts."""
        code = self.code
        depth = 0
        at = close
        while at >= 0:
            char = code[at]
            if char in ")]}":
                depth += 1
            elif char in "([{":
                depth -= 1
                if depth == 0:
                    break
            elif char in "'\"#\r\n":
                raise _Doubt  # a string or a comment may hold brackets
            at -= 1
        if at < 0 or code[at] != "(":
            raise _Doubt
        before = _skip_back(code, at - 1)
        if before >= 0:
            char = code[before]
            if char in "\r\n":
                raise _Doubt
            if char in ")]":
                return False  # called on a call or a subscript
            if char.isalnum() or char == "_":
                start = before
                while start > 0 and (code[start - 1].isalnum() or code[start - 1] == "_"):
                    start -= 1
                word = code[start : before + 1]
                if not (iskeyword(word) or issoftkeyword(word)):
                    return False  # a call: `f(x).device`
        got = _dotted(code, at + 1, True)
        if got is None:
            return False
        parts, end = got
        if _skip(code, end, True) != close:
            return False  # `(a, b)`, `(a if b else c)`: not a name
        root, *attrs = parts
        return set(attrs) <= self.target.parts and self._module(root, 0, frozenset())

    def _module(self, name: str, depth: int, seen: frozenset[str]) -> bool:
        """Whether *name* could be bound to a module made of the target's parts."""
        if name in self.target.parts or name in self.target.defaults:
            return True
        if depth > _MAX_DEPTH:
            return True
        if name in seen:
            return False  # a loop: a binding that holds goes round it no more than once
        for value in self._bindings(name):
            if value is None:
                return True  # bound by an import of such a module
            root, *attrs = value
            if set(attrs) <= self.target.parts and self._module(root, depth + 1, seen | {name}):
                return True
        return False

    def _bindings(self, name: str) -> list[list[str] | None]:
        """The dotted names assigned to *name*, and None for each import binding it to a
        module made of the target's parts."""
        if name in self._sites:
            return self._sites[name]
        code = self.code
        sites: list[list[str] | None] = []
        quoted = re.escape(name)
        target = re.compile(rf"{quoted}(?<![\w.]{quoted})(?:[ \t)]|\\\r?\n)*(=(?!=)|:(?!=))")
        for match in target.finditer(code):
            at: int | None = match.end()
            if match.group(1) == ":":
                at = _annotated_value(code, match.end())
            if at is not None:
                value = _assigned_name(code, at)
                if value is not None:
                    sites.append(value)
        for match in re.finditer(rf"as(?<!\was){_BLANK}+{quoted}(?!\w)", code):
            start = match.start()  # `import a.b as name`: is a.b made of the parts?
            tail = _DOTTED_TAIL_RE.search(code, max(0, start - 300), start)
            if tail is not None:
                parts = re.split(rf"{_BLANK}*\.{_BLANK}*", tail.group().strip(" \t\f\\\r\n"))
                if set(parts) <= self.target.parts:
                    sites.append(None)
        self._sites[name] = sites
        return sites

    def _imports_word(self) -> bool:
        """True for ``from M import device`` (``as d``) with ``M`` made of the target's parts."""
        code = self.code
        for match in self.target.from_re.finditer(code):
            at = _skip(code, match.end(), False)
            if code.startswith("(", at):
                close = code.find(")", at)
                names = code[at + 1 : close]
                if close < 0 or "#" in names or "'" in names or '"' in names:
                    raise _Doubt  # a comment may hold the `)`
            else:
                end = _IMPORT_END_RE.search(code, at)
                assert end is not None  # \Z always matches
                names = code[at : end.start()]
            for item in re.sub(r"\\\r?\n", " ", names).split(","):
                item = item.strip()
                if item and not _IMPORT_ITEM_RE.fullmatch(item):
                    raise _Doubt
                if item.split()[:1] == [self.target.word]:
                    return True
        return False


def _may_name(text: str, names: frozenset[str]) -> bool:
    """Whether *text* could name one of *names* (qualified names sharing their last part).

    A first look at the whole text rejects most files; a file it cannot reject is looked at
    again with its strings and comments blanked out (TensorFlow's own sources name
    ``tf.device`` in docstrings). Non-ASCII code is parsed: Python reads identifiers in their
    NFKC form (``ｔｆ`` is ``tf``).
    """
    target = _target(names)
    if text.isascii():
        if target.word not in text:
            return False
        try:
            if not _NameUse(text, target).found():
                return False
        except _Doubt:
            pass
    code = _code_only(text)
    if code is None or not code.isascii():
        return True
    try:
        return _NameUse(code, target).found()
    except _Doubt:
        return True


_CALL_TARGETS = {
    name.rsplit(".", 1)[1]: frozenset({name})
    for name in (VISIBLE_DEVICES_CALL, ONE_DEVICE_STRATEGY, SET_BACKEND_CALL)
}
"""The calls ``_Analyzer._call`` judges by qualified name, by their last part: a trigger of
``[scan]`` that is one of these makes a file worth parsing only where that name could
resolve to the call (TensorFlow's own sources define and document OneDeviceStrategy)."""


_IMPORT_TRIGGER_RE = re.compile(r"(?:import|from) ([A-Za-z_][A-Za-z0-9_]*)")


_IMPORT_KEYWORD_END_RE = re.compile(r"(?:,|(?<![\w.])import|(?<![\w.])from)\Z")


@functools.cache
def _module_import(trigger: str) -> re.Pattern[str] | None:
    """For a trigger that imports a module (``import ray``, ``from ray``): the pattern of the
    module's name as a word, None for any other trigger."""
    match = _IMPORT_TRIGGER_RE.fullmatch(trigger)
    if match is None:
        return None
    module = re.escape(match.group(1))
    return re.compile(rf"{module}(?<!\w{module})(?!\w)")


def _imports_module(text: str, pattern: re.Pattern[str]) -> bool:
    """Whether the module's name stands where an import names it: after ``import``, ``from``
    or a comma (``import os, ray``, ``from  ray.tune import x``), whatever the blanks."""
    for match in pattern.finditer(text):
        head = re.sub(r"\\\r?\n", " ", text[max(0, match.start() - 200) : match.start()])
        if _IMPORT_KEYWORD_END_RE.search(head.rstrip(" \t\f")):
            return True
    return False


@functools.cache
def _trigger_tests(
    triggers: tuple[str, ...],
) -> tuple[tuple[str, re.Pattern[str] | None, frozenset[str] | None], ...]:
    """Each trigger with how it is tested: a module import (``import ray`` and ``from ray``
    make one test), a call's name (``_CALL_TARGETS``), or the plain text."""
    tests: dict[str, tuple[str, re.Pattern[str] | None, frozenset[str] | None]] = {}
    for trigger in triggers:
        pattern = _module_import(trigger)
        key = pattern.pattern if pattern is not None else trigger
        tests.setdefault(key, (trigger, pattern, _CALL_TARGETS.get(trigger)))
    return tuple(tests.values())


def _worth_parsing(text: str, rules: ScanRules) -> bool:
    """Whether *text* can hold a finding at all (cheap text tests, no parsing)."""
    for trigger, pattern, names in _trigger_tests(rules.triggers):
        if pattern is not None:
            if _imports_module(text, pattern):
                return True
        elif trigger in text and (names is None or _may_name(text, names)):
            return True
    if (
        rules.keyword_re is not None
        and any(k in text for k in rules.trigger_keywords)  # a substring test first: cheap
        and rules.keyword_re.search(text)
    ):
        return True
    # a tf.device block (_device_block) needs a with statement and a name of DEVICE_SCOPES
    return "with" in text and _may_name(text, DEVICE_SCOPES)


def _project_file(
    source: project.SourceFile, text: str, rules: ScanRules, gpu_count: int | None
) -> tuple[Finding, ...]:
    """A requirements list, Dockerfile, compose or .env file (``tffix.projectfiles``)."""

    def hides(value: str) -> str | None:
        seen = judge_visible_devices(value, gpu_count, rules.uuid_prefixes)
        return seen.reason if seen.verdict == "hides" else None

    severities = {cause: meta.severity for cause, meta in rules.causes.items()}
    return projectfiles.analyze_project_file(
        source.config or "", text, source.display, severities=severities, judge=hides
    )


def _judge_file(
    source: project.SourceFile, rules: ScanRules, gpu_count: int | None
) -> tuple[Finding, ...] | str:
    """The findings of one file, or why it was skipped."""
    limit = rules.max_notebook_bytes if source.notebook else rules.max_python_bytes
    data = project.read(source.path, max_bytes=limit)
    if isinstance(data, str):
        return data
    text = decode_source(data)
    if text is None:
        return NOT_TEXT
    try:
        if source.config is not None:
            return _project_file(source, text, rules, gpu_count)
        if source.notebook:
            return analyze_notebook(text, source.display, gpu_count=gpu_count, rules=rules)
        if not _worth_parsing(text, rules):
            return ()
        return analyze_source(text, source.display, gpu_count=gpu_count, rules=rules)
    except (RecursionError, MemoryError):
        return TOO_COMPLEX
    except (SyntaxError, ValueError):
        return NOT_NOTEBOOK if source.notebook else SYNTAX_ERROR


def _sources(
    paths: Sequence[Path], rules: ScanRules, *, relative: bool
) -> Iterator[project.SourceFile | project.Skipped]:
    for path in paths:
        if path.is_dir():
            shown = "" if relative or path == Path() else path.as_posix()
            yield from project.walk(path, display=shown, skip_dirs=rules.skip_dirs)
        else:
            notebook = path.suffix == project.NOTEBOOK_SUFFIX
            yield project.SourceFile(path, path.as_posix(), notebook)


def _cell_count_over(source: project.SourceFile, rules: ScanRules) -> bool:
    """True when the notebook *source* has more than ``MAX_NOTEBOOK_CELLS`` cells.

    Counted on the bytes: every cell, and nothing else in nbformat, has a ``"cell_type"``
    key (inside a cell's text the quotes are escaped). An unreadable file is left to the
    judge, which says why.
    """
    data = project.read(source.path, max_bytes=rules.max_notebook_bytes)
    return isinstance(data, bytes) and data.count(b'"cell_type"') > MAX_NOTEBOOK_CELLS


def _scan(
    paths: Sequence[Path],
    *,
    gpu_count: int | None,
    max_files: int | None,
    max_seconds: float | None = None,
    relative: bool = False,
) -> ScanResult:
    start = time.perf_counter()
    rules = load_scan_rules()
    skipped: dict[str, int] = {}
    per_file: list[tuple[Finding, ...]] = []
    files = 0

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for source in _sources(paths, rules, relative=relative):
        if isinstance(source, project.Skipped):
            skip(source.reason)
            continue
        if source.relative and is_test_path(source.relative, rules):
            skip(TEST_FILE)
            continue
        if max_files is not None and files >= max_files:
            skip(FILE_LIMIT)
            continue
        if max_seconds is not None and time.perf_counter() - start >= max_seconds:
            skip(TIME_LIMIT)
            continue
        if source.notebook and _cell_count_over(source, rules):
            skip(TOO_MANY_CELLS)
            continue
        result = _judge_file(source, rules, gpu_count)
        if isinstance(result, str):
            skip(result)
            continue
        files += 1
        if result:
            per_file.append(result)
    ordered = sorted((f for group in per_file for f in group), key=lambda f: f.severity.order)
    return ScanResult(
        findings=tuple(ordered),
        files=files,
        skipped=MappingProxyType(dict(sorted(skipped.items()))),
        seconds=time.perf_counter() - start,
    )


def scan_paths(
    paths: Sequence[Path],
    *,
    gpu_count: int | None = None,
    max_files: int | None = None,
    max_seconds: float | None = None,
) -> ScanResult:
    """Scan files and folders named by a user; findings name files as the paths were given.

    A file named explicitly is read whatever its name (a test file, a script without
    ``.py``). Raises ``UsageError`` for a path that does not exist. Files met after
    *max_seconds* are counted as skipped ``over the time limit``.
    """
    for path in paths:
        if not path.exists():
            raise UsageError(f"no such file or folder: {path}")
    return _scan(list(paths), gpu_count=gpu_count, max_files=max_files, max_seconds=max_seconds)


DEFAULT_MAX_FILES = 20_000
"""``scan_project``'s bound: a folder that merely looks like a project (a home folder with a
``.git`` or a notebook) must not make ``tffix --dry-run`` read a whole disk."""


DEFAULT_MAX_SECONDS = 30.0
"""``scan_project``'s time bound, for the same reason: the diagnosis must not wait on it."""


def scan_project(
    root: Path,
    *,
    gpu_count: int | None = None,
    max_files: int | None = DEFAULT_MAX_FILES,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
) -> ScanResult:
    """Scan the project folder *root*; findings name files relative to it.

    *gpu_count* is the number of GPUs the driver reports (``None`` when unknown: indices
    are then not judged). *max_files* and *max_seconds* bound the work (None: no bound);
    files past them are counted as skipped ``over the file limit`` / ``over the time limit``.
    """
    if not root.is_dir():
        raise UsageError(f"no such folder: {root}")
    return _scan(
        [root], gpu_count=gpu_count, max_files=max_files, max_seconds=max_seconds, relative=True
    )
