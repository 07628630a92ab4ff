"""The repair's re-verification: does TensorFlow really work on the GPU, end to end?

Stronger than ``tffix.probes.tensorflow.verify_gpu`` (list GPUs, one ``reduce_sum``): in a
fresh child of the target interpreter, with the environment a user has after re-activating
the venv, it lists the GPUs, runs ``reduce_sum`` on ``/GPU:0`` (CUDA runtime and driver), a
``conv2d`` there (cuDNN), and a ``jit_compile=True`` function (XLA: ptxas and libdevice). A
cuDNN minor older than the build, or XLA tools that are missing, pass the first op and fail
the others, so "the GPU works" means all three ran on the GPU. Never raises.

The repair does not start this child after a step: the TensorFlow probe's child runs the same
checks (``OPS``) after its own listing, so a re-observation costs one import
(``tffix.collect.observe_target``). ``deep_verify`` stays for the entry points whose
environment differs from the one the probe ran in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from tffix import _subprocess
from tffix.record import record

DEFAULT_TIMEOUT = 180.0
MARK = "@@tffix-deep-verify "

OPS = r"""
def run_ops(tf, out, emit, xla=True):
    # With GPUs listed in out["gpus"]: an op on /GPU:0 (CUDA runtime and driver), a conv2d
    # (cuDNN) and, with *xla*, a jit_compile=True function (ptxas, libdevice). The first op's
    # failure propagates; the others are recorded.
    if not out.get("gpus"):
        return
    with tf.device("/GPU:0"):
        t = tf.reduce_sum(tf.ones([2, 2]))
    out["op_device"] = t.device
    out["op_value"] = float(t.numpy())
    emit()
    try:
        with tf.device("/GPU:0"):
            c = tf.nn.conv2d(tf.ones([1, 2, 2, 1]), tf.ones([1, 1, 1, 1]), 1, "VALID")
        out["dnn_device"] = c.device
    except Exception as exc:
        out["dnn_error"] = last_line(exc)
    emit()
    if not xla:
        return
    try:
        @tf.function(jit_compile=True)
        def _xla(x):
            return tf.reduce_sum(x)
        with tf.device("/GPU:0"):
            out["xla_value"] = float(_xla(tf.ones([2, 2])).numpy())
    except Exception as exc:
        out["xla_error"] = last_line(exc)
"""
"""The op checks as source, shared with the TensorFlow probe's child (``tffix.probes.tensorflow``
runs them after its own listing when asked, so one import answers both). Needs ``last_line``."""

LAST_LINE = r"""
def last_line(exc):
    return traceback.format_exception_only(type(exc), exc)[-1].strip()
"""

_CHILD = (
    _subprocess.CWD_OFF_PATH
    + r"""
import json, sys, traceback
MARK = "@@tffix-deep-verify "
out = {}
def emit():
    sys.stdout.write(MARK + json.dumps(out) + "\n"); sys.stdout.flush()
"""
    + LAST_LINE
    + OPS
    + r"""
try:
    import tensorflow as tf
    tf.debugging.set_log_device_placement(True)
    out["gpus"] = [g.name for g in tf.config.list_physical_devices("GPU")]
    emit()
    run_ops(tf, out, emit)
except BaseException as exc:
    out["error"] = last_line(exc)
emit()
"""
)


@record
class DeepVerification:
    """What the verification child saw."""

    gpus: tuple[str, ...] = ()
    op_device: str | None = None
    dnn_device: str | None = None
    dnn_error: str | None = None
    xla_error: str | None = None
    xla_ok: bool = False
    error: str | None = None
    """Import or op failure, the child's abnormal end, or the first check that failed."""
    log: tuple[str, ...] = ()
    imported: bool | None = None
    """True when ``import tensorflow`` worked in the child; None when the child said nothing."""

    @property
    def ok(self) -> bool:
        """True when a GPU is listed and the op, the cuDNN op and the XLA op all ran on it."""
        on_gpu = [d for d in (self.op_device, self.dnn_device) if d and "GPU" in d.upper()]
        return bool(self.gpus) and len(on_gpu) == 2 and self.xla_ok


def deep_verify(
    python: Path, env: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT
) -> DeepVerification:
    """Run the checks in a fresh child of *python* with *env*; never raises."""
    # An empty working folder: the project's own modules must not shadow what is verified.
    done = _subprocess.run([str(python), "-c", _CHILD], env=dict(env), timeout=timeout)
    log = tuple(line for line in done.stderr.splitlines() if line.strip())
    data: dict[str, object] = {}
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            try:
                data = json.loads(line[len(MARK) :])
            except json.JSONDecodeError:
                continue
    return from_report(data, done, log)


def from_report(
    data: Mapping[str, object], done: _subprocess.Completed, log: tuple[str, ...]
) -> DeepVerification:
    """The verification a child's last report *data* stands for (``run_ops``'s keys, with
    ``gpus`` once listing worked and ``error`` for a failure), given how the child ended
    (pure: the TensorFlow probe's child reports the same keys)."""
    gpus = data.get("gpus")
    text = {k: (None if data.get(k) is None else str(data[k])) for k in data}
    error = text.get("error") or done.describe_exit()
    if error is None and not done.ok and not data:
        error = log[-1] if log else f"exit status {done.returncode}"
    if error is None and gpus and text.get("op_device") is None:
        error = "the op on /GPU:0 did not run"
    error = error or text.get("dnn_error") or text.get("xla_error")
    return DeepVerification(
        gpus=tuple(str(g) for g in gpus) if isinstance(gpus, list) else (),
        op_device=text.get("op_device"),
        dnn_device=text.get("dnn_device"),
        dnn_error=text.get("dnn_error"),
        xla_error=text.get("xla_error"),
        xla_ok="xla_value" in data,
        error=error,
        log=log,
        imported=True if "gpus" in data else (False if data else None),
    )
