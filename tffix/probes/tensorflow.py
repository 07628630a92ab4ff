"""The TensorFlow probe: ask TensorFlow itself, in a fresh child of the target interpreter.

The child imports TensorFlow with its log verbosity raised (``TF_CPP_MIN_LOG_LEVEL=0``,
``TF_CPP_MAX_VLOG_LEVEL=1``: at VLOG 1 the loader names each library it failed to open,
``dso_loader.cc … Could not load dynamic library 'libcudnn.so.9'; dlerror: …``), reports its
version, ``tf.sysconfig.get_build_info()``, ``list_physical_devices('GPU')`` and which CUDA
library files ended up mapped in the process (``/proc/self/maps``). Everything TensorFlow
prints on stderr is kept verbatim as log lines.

The child reports after each stage, so a crash or a hang keeps what was learned before it:
a hang ends at the time limit (``exit: "timeout after 120s"``), a crash is named by its
signal (``exit: "killed by SIGSEGV"``). Nothing here raises for the child's sake.

Asked for ``ops`` (or ``xla``), the child then runs the verification's op checks
(``tffix.probes.verify.OPS``: an op and a ``conv2d`` on ``/GPU:0``, and an XLA op) in the same
process, after a marker line on stderr that splits TensorFlow's log between the snapshot and
the verification: one import answers both (``TensorFlowReport.verification``).

``verify_gpu`` runs the shorter re-verification snippet (list GPUs, run one op on ``/GPU:0``)
in a child of its own.

Both children run in an empty folder of their own: ``python -c`` puts its working folder
first on ``sys.path``, and a ``json.py`` or ``tensorflow/`` in the user's project must not be
what tffix imports. Everything else the user's TensorFlow would see (``PYTHONPATH``, the user
site folder, ``sitecustomize``) is kept, because that is what is being diagnosed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tffix import _subprocess
from tffix.probes import verify
from tffix.record import record

if TYPE_CHECKING:
    # tffix.model is imported when the child's answer is read, not before it starts: a live
    # look starts this child first (tffix.headstart), and the model is a tenth of what
    # tffix imports before it
    from tffix.model import TensorFlowBuild, TensorFlowInfo

DEFAULT_TIMEOUT = 120.0

LOG_ENV = {"TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPP_MAX_VLOG_LEVEL": "1"}
"""TensorFlow's log settings in the child: everything, and VLOG 1 for the loader's lines."""

_MARK = "@@tffix-tf "

MAX_LOG_LINES = 20_000
"""As many log lines as a snapshot document keeps (``tffix.document.MAX_LOG_LINES``)."""

_CUDA_LIB = re.compile(
    r"/(lib(?:cuda|cudart|cudnn\w*|cublas|cublasLt|cufft|curand|cusolver|cusparse|nccl|nvJitLink"
    r"|nvidia-ml|nvinfer|nvrtc|cupti)\.so[.\d]*)$"
)

_DIE_WITH_PARENT = r"""
def _die_with_parent():
    # A Ctrl-C'd tffix must not leave a hung import behind (Linux: PR_SET_PDEATHSIG, SIGKILL).
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None).prctl(1, 9)
        except Exception:
            pass
_die_with_parent()
"""

OPS_MARK = "@@tffix-ops"
"""The stderr line the child writes before the op checks: TensorFlow's log before it is the
snapshot's, after it the verification's."""

_CHILD = (
    _subprocess.CWD_OFF_PATH
    + r"""
import json, sys, time, traceback
MARK = "@@tffix-tf "
OPS_MARK = "@@tffix-ops"
OPS_WANTED = sys.argv[1] if len(sys.argv) > 1 else ""
"""
    + _DIE_WITH_PARENT
    + verify.LAST_LINE
    + verify.OPS
    + r"""
out = {"stage": "start"}
def emit(stage):
    out["stage"] = stage
    sys.stdout.write(MARK + json.dumps(out, default=str) + "\n")
    sys.stdout.flush()
t0 = time.monotonic()
emit("importing")
try:
    import tensorflow as tf
except BaseException as exc:
    out["import_error"] = traceback.format_exception_only(type(exc), exc)[-1].strip()
    out["import_error_type"] = type(exc).__name__
    out["missing_module"] = getattr(exc, "name", None)
    out["seconds"] = time.monotonic() - t0
    emit("import-failed")
    sys.exit(0)
out["import_error"] = None
out["version"] = getattr(tf, "__version__", None)
out["file"] = getattr(tf, "__file__", None)
emit("imported")
try:
    info = dict(tf.sysconfig.get_build_info())
    out["build"] = {k: info.get(k) for k in (
        "cuda_version", "cudnn_version", "is_cuda_build", "is_rocm_build",
        "cuda_compute_capabilities")}
except BaseException as exc:
    out["build_error"] = traceback.format_exception_only(type(exc), exc)[-1].strip()
emit("build-info")
try:
    out["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
except BaseException as exc:
    out["gpus_error"] = traceback.format_exception_only(type(exc), exc)[-1].strip()
emit("listed")
try:
    with open("/proc/self/maps") as fh:
        out["maps"] = sorted({l.split(None, 5)[5].strip() for l in fh
                              if len(l.split(None, 5)) == 6 and "/lib" in l})
except OSError:
    pass
out["seconds"] = time.monotonic() - t0
emit("done")
if OPS_WANTED:
    # the op checks, in this same process: the listing above is theirs too
    sys.stderr.write(OPS_MARK + "\n"); sys.stderr.flush()
    deep = out["deep"] = {"error": out["gpus_error"]} if "gpus_error" in out else {
        "gpus": out.get("gpus", [])}
    try:
        tf.debugging.set_log_device_placement(True)
        run_ops(tf, deep, lambda: emit("done"), xla=OPS_WANTED == "xla")
    except BaseException as exc:
        deep["error"] = last_line(exc)
    emit("done")
"""
)

_VERIFY = (
    _subprocess.CWD_OFF_PATH
    + r"""
import json, sys, traceback
MARK = "@@tffix-verify "
"""
    + _DIE_WITH_PARENT
    + r"""
out = {}
try:
    import tensorflow as tf
    tf.debugging.set_log_device_placement(True)
    gpus = tf.config.list_physical_devices("GPU")
    out["gpus"] = [g.name for g in gpus]
    sys.stdout.write(MARK + json.dumps(out) + "\n"); sys.stdout.flush()
    if gpus:
        with tf.device("/GPU:0"):
            t = tf.reduce_sum(tf.ones([2, 2]))
        out["op_device"] = t.device
        out["op_value"] = float(t.numpy())
except BaseException as exc:
    out["error"] = traceback.format_exception_only(type(exc), exc)[-1].strip()
sys.stdout.write(MARK + json.dumps(out) + "\n"); sys.stdout.flush()
"""
)


@record
class TensorFlowReport:
    """The TensorFlow probe's answer."""

    info: TensorFlowInfo | None
    """None when the target has no ``tensorflow`` module at all."""
    log: tuple[str, ...]
    loaded: dict[str, str]
    """soname-like file name -> the file TensorFlow had mapped after listing GPUs."""
    unknown: str | None = None
    stage: str | None = None
    """The last stage the child reported (``importing``, ``imported``, ``listed``, ``done``)."""
    verification: verify.DeepVerification | None = None
    """The op checks the child ran after listing (``ops``); None when they were not asked."""


def _bounded(lines: tuple[str, ...]) -> tuple[str, ...]:
    """At most ``MAX_LOG_LINES`` lines: the first ones (where the loader speaks) and a note."""
    if len(lines) <= MAX_LOG_LINES:
        return lines
    dropped = len(lines) - MAX_LOG_LINES + 1
    return (*lines[: MAX_LOG_LINES - 1], f"[tffix: {dropped} more log lines dropped]")


def _last_report(stdout: str, mark: str) -> dict[str, object] | None:
    last = None
    for line in stdout.splitlines():
        if line.startswith(mark):
            try:
                last = json.loads(line[len(mark) :])
            except json.JSONDecodeError:
                continue
    return last


def _build(data: object) -> TensorFlowBuild | None:
    from tffix.model import TensorFlowBuild

    if not isinstance(data, dict):
        return None
    caps = data.get("cuda_compute_capabilities")
    if isinstance(caps, str):
        caps = [c.strip() for c in caps.split(",") if c.strip()]

    def text(key: str) -> str | None:
        value = data.get(key)
        return None if value is None else str(value)

    def flag(key: str) -> bool | None:
        value = data.get(key)
        if isinstance(value, str):
            return value.strip().lower() == "true"
        return None if value is None else bool(value)

    return TensorFlowBuild(
        cuda_version=text("cuda_version"),
        cudnn_version=text("cudnn_version"),
        is_cuda_build=flag("is_cuda_build"),
        is_rocm_build=flag("is_rocm_build"),
        cuda_compute_capabilities=None if caps is None else tuple(str(c) for c in caps),
    )


def loaded_libraries(maps: object) -> dict[str, str]:
    """From the child's mapped files: CUDA library file name -> path (first of each name)."""
    out: dict[str, str] = {}
    if not isinstance(maps, list):
        return out
    for path in maps:
        match = _CUDA_LIB.search(str(path))
        if match:
            out.setdefault(match.group(1), str(path))
    return out


_STAGE_WORDS = {
    "start": "before Python started",
    "importing": "while importing tensorflow",
    "imported": "while reading tf.sysconfig.get_build_info()",
    "build-info": "while listing GPUs (tf.config.list_physical_devices)",
    "listed": "after listing GPUs",
}


def _split_log(stderr: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the lines before the op checks, the lines after them)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if OPS_MARK not in lines:
        return _bounded(tuple(lines)), ()
    at = lines.index(OPS_MARK)
    return _bounded(tuple(lines[:at])), _bounded(tuple(lines[at + 1 :]))


def _verification(
    data: dict[str, object] | None, result: _subprocess.Completed, log: tuple[str, ...]
) -> verify.DeepVerification:
    """What the op checks of the child's last report *data* found, as the verification
    child would have said it: an import failure is an error with nothing listed."""
    if data is not None and data.get("import_error"):
        return verify.from_report({"error": data["import_error"]}, result, log)
    deep = data.get("deep") if data is not None else None
    if not isinstance(deep, dict):  # ended before the checks began
        deep = {} if data is None or "gpus" not in data else {"gpus": data["gpus"]}
    return verify.from_report(deep, result, log)


def interpret(
    result: _subprocess.Completed, timeout: float, *, ops: bool = False
) -> TensorFlowReport:
    """Turn the child's output into a report (pure: used by tests with recorded output).

    *ops*: the child was asked for the op checks; the report then carries their verification.
    """
    report = _interpret(result, timeout)
    if not ops:
        return report
    _, ops_log = _split_log(result.stderr)
    data = _last_report(result.stdout, _MARK)
    return replace(report, verification=_verification(data, result, ops_log))


def _interpret(result: _subprocess.Completed, timeout: float) -> TensorFlowReport:
    from tffix.model import UNKNOWN, TensorFlowInfo

    log, _ = _split_log(result.stderr)
    data = _last_report(result.stdout, _MARK)
    exit_text = result.describe_exit()
    if result.timed_out:
        exit_text = f"timeout after {timeout:g}s"
    if data is None:
        why = exit_text or f"exit status {result.returncode}"
        tail = log[-1] if log else ""
        return TensorFlowReport(
            info=TensorFlowInfo(exit=exit_text),
            log=log,
            loaded={},
            unknown=f"the TensorFlow child gave no answer ({why})" + (f": {tail}" if tail else ""),
        )
    stage = str(data.get("stage"))
    if data.get("missing_module") == "tensorflow" and data.get("import_error_type") == (
        "ModuleNotFoundError"
    ):
        return TensorFlowReport(info=None, log=log, loaded={}, stage=stage)
    gpus = data.get("gpus")
    seconds = data.get("seconds")
    info = TensorFlowInfo(
        version=None if data.get("version") is None else str(data["version"]),
        # absent: the child never got past the import (a crash or a hang inside it)
        import_error=str(data["import_error"])
        if data.get("import_error")
        else (None if "import_error" in data else UNKNOWN),
        build=_build(data.get("build")),
        gpus=tuple(str(g) for g in gpus) if isinstance(gpus, list) else None,
        file=None if data.get("file") is None else str(data["file"]),
        exit=exit_text if stage != "done" and stage != "import-failed" else None,
        seconds=float(seconds) if isinstance(seconds, (int, float)) else result.seconds,
    )
    unknown = None
    if stage not in ("done", "import-failed"):
        how = exit_text or f"exit status {result.returncode}"
        unknown = f"the TensorFlow child ended {_STAGE_WORDS.get(stage, stage)} ({how})"
    elif "gpus_error" in data:
        unknown = f"list_physical_devices failed: {data['gpus_error']}"
    return TensorFlowReport(
        info=info, log=log, loaded=loaded_libraries(data.get("maps")), unknown=unknown, stage=stage
    )


def probe_tensorflow(
    python: Path,
    env: Mapping[str, str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    ops: str | None = None,
) -> TensorFlowReport:
    """Import TensorFlow in a fresh child of *python* with *env*; never raises.

    *ops* ``"ops"`` (an op and a ``conv2d`` on ``/GPU:0``) or ``"xla"`` (an XLA op too) runs
    the verification's op checks in the same child after listing, so one import answers the
    snapshot and the verification (``TensorFlowReport.verification``).
    """
    result = _subprocess.run(
        [str(python), "-c", _CHILD, *([ops] if ops else [])],
        env=dict(env),
        env_overrides=LOG_ENV,
        timeout=timeout,
    )
    return interpret(result, timeout, ops=bool(ops))


@record
class VerifyResult:
    """What the re-verification snippet saw (see HARNESS_API.md)."""

    gpus: tuple[str, ...]
    """``list_physical_devices('GPU')`` names (empty when none, or when it failed)."""
    op_device: str | None = None
    """The device of ``reduce_sum(ones([2, 2]))`` under ``/GPU:0``; None when not run."""
    op_value: float | None = None
    error: str | None = None
    """The last line of the exception, when import, listing or the op failed."""
    exit: str | None = None
    """``timeout after Ns`` or ``killed by SIGSEGV`` when the child did not end normally."""
    log: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when a GPU is listed and the op ran on a GPU."""
        return bool(self.gpus) and self.op_device is not None and "GPU" in self.op_device.upper()


def verify_gpu(
    python: Path, env: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT
) -> VerifyResult:
    """Run the verification snippet in a fresh child of *python* with *env*; never raises."""
    result = _subprocess.run([str(python), "-c", _VERIFY], env=dict(env), timeout=timeout)
    log = tuple(line for line in result.stderr.splitlines() if line.strip())
    data = _last_report(result.stdout, "@@tffix-verify ") or {}
    exit_text = f"timeout after {timeout:g}s" if result.timed_out else result.describe_exit()
    error = data.get("error")
    if not data and exit_text is None and result.returncode:
        error = log[-1] if log else f"exit status {result.returncode}"
    gpus = data.get("gpus")
    value = data.get("op_value")
    return VerifyResult(
        gpus=tuple(str(g) for g in gpus) if isinstance(gpus, list) else (),
        op_device=None if data.get("op_device") is None else str(data["op_device"]),
        op_value=float(value) if isinstance(value, (int, float)) else None,
        error=None if error is None else str(error),
        exit=exit_text,
        log=log,
    )
