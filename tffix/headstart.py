"""A live look's head start: the TensorFlow child, started before the rest of tffix loads.

A live look waits seconds for TensorFlow to import in the target's child. Everything else
tffix does (importing the other probes and the diagnosis engine, running those probes,
loading the rules) costs no wall time of its own when it runs during that wait, but only what
comes after the child's start can: so the child starts as soon as what it needs is known, the
target (``tffix.probes.target.resolve_target``) and the environment it runs in (the venv's
``bin/activate`` really sourced). This module imports only that much: no ``tffix.model``, no
other probe, not ``concurrent.futures``. ``tffix.collect`` starts the other probes and waits
for ``HeadStart.tensorflow``; a caller that knows it will look (``tffix --dry-run``) calls
``start`` first and imports the rest while the child runs.

``target_environment`` lives here for that reason (``tffix.collect`` re-exports it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from tffix.probes import activation
from tffix.probes import env as env_probe
from tffix.probes import tensorflow as tf_probe
from tffix.probes.target import Target, TargetKind

_T = TypeVar("_T")

DEFAULT_TF_TIMEOUT = tf_probe.DEFAULT_TIMEOUT


class NoAnswer(TimeoutError):
    """A ``Pending`` call that had not returned within the time asked."""


class Pending(Generic[_T]):
    """The result of a call running in a daemon thread of its own (``concurrent.futures``'
    ``Future``, which costs a tenth of a second's imports, without a pool): if the call never
    returns, the process can still exit, and a Ctrl-C does not wait for a child's time limit."""

    def __init__(self, fn: Callable[[], _T], *, name: str) -> None:
        self._done = threading.Event()
        self._value: _T | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._body, args=(fn,), name=name, daemon=True).start()

    def _body(self, fn: Callable[[], _T]) -> None:
        try:
            self._value = fn()
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()

    def result(self, timeout: float | None = None) -> _T:
        """The call's return value, or its exception raised here; ``NoAnswer`` when it has
        not returned within *timeout* seconds (None: wait as long as it takes)."""
        if not self._done.wait(timeout):
            raise NoAnswer(f"no answer within {timeout:g}s")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set when no error was


def in_thread(fn: Callable[[], _T], *, name: str = "tffix-probe") -> Pending[_T]:
    """Run *fn* in a daemon thread; its ``Pending`` result."""
    return Pending(fn, name=name)


def target_environment(
    target: Target, environ: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, object]]:
    """(the environment the target's children run in, what the activate script sets).

    For a virtualenv, *environ* is overlaid with what sourcing ``bin/activate`` does, tffix's
    recorded edits included; for a conda or system interpreter it is used as it is.
    """
    if target.kind is not TargetKind.VENV:
        return dict(environ), {}
    text, why = env_probe.read_activate(target.prefix)
    if text is None:
        return dict(environ), {"script": str(target.prefix / "bin" / "activate"), "error": why}
    info: dict[str, object] = {"script": str(target.prefix / "bin" / "activate")}
    info.update(env_probe.activate_settings(text))
    others = env_probe.other_activate_exports(target.prefix / "bin")
    if others:
        info["exports"] = [*info["exports"], *others]  # type: ignore[misc]
    active = os.path.realpath(environ.get("VIRTUAL_ENV", "") or "/nonexistent") == (
        os.path.realpath(target.prefix)
    )
    info["active"] = active
    sourced, why = activation.sourced_environment(target.prefix, environ)
    if sourced is not None:
        info["sourced"] = True
        return sourced, info
    info["sourced"] = False
    info["source_error"] = why
    return env_probe.activated_env(environ, target.prefix, text), info


def snapshot_ops(target: Target, *, with_tensorflow: bool = True) -> str | None:
    """The op checks a snapshot's TensorFlow child runs after its listing: ``"ops"`` for a
    virtualenv (its entry points take that answer), none otherwise."""
    return "ops" if with_tensorflow and target.kind is TargetKind.VENV else None


@dataclass(frozen=True)
class HeadStart:
    """A look begun: the environment its children run in, and the TensorFlow child running."""

    target: Target
    environ: Mapping[str, str]
    """The caller's environment the look was begun in."""
    env: dict[str, str]
    """The environment the target's children run in (``target_environment``)."""
    activate: dict[str, object]
    """What the activate script sets (``target_environment``), or the error reading it."""
    tensorflow: Pending[tf_probe.TensorFlowReport | None]
    """The TensorFlow probe's report (None when the look runs no TensorFlow child)."""
    with_tensorflow: bool
    tf_timeout: float
    ops: str | None
    """The op checks the child runs after listing (``tffix.probes.tensorflow``)."""
    carried: str = ""
    """Why the last look's report was taken instead of a child ("": a child runs)."""


def start(
    target: Target,
    *,
    environ: Mapping[str, str],
    tf_timeout: float = DEFAULT_TF_TIMEOUT,
    with_tensorflow: bool = True,
    ops: str | None = None,
    earlier: Callable[[dict[str, str]], tuple[tf_probe.TensorFlowReport, str] | None]
    | None = None,
) -> HeadStart:
    """Work out the target's environment and start the TensorFlow child in it (*ops*: the op
    checks it runs after listing, ``tffix.probes.tensorflow.probe_tensorflow``); never raises
    for the target. ``tffix.collect.collect_snapshot(started=...)`` finishes the look.
    *earlier* gives, for the environment, a report of the last look that still stands and
    why (``tffix.probes.entrycheck.Looks.earlier_report``): then no child starts."""
    try:
        env, activate = target_environment(target, environ)
    except Exception as exc:  # unreadable activate script: use the caller's environment
        env, activate = dict(environ), {"error": f"{type(exc).__name__}: {exc}"}
    kept = earlier(env) if earlier is not None and with_tensorflow else None
    if kept is not None:
        report, carried = kept
        tensorflow: Pending[tf_probe.TensorFlowReport | None] = in_thread(
            lambda: report, name="tffix-tensorflow"
        )
    else:
        carried = ""
        tensorflow = in_thread(
            (lambda: tf_probe.probe_tensorflow(target.python, env, timeout=tf_timeout, ops=ops))
            if with_tensorflow
            else (lambda: None),
            name="tffix-tensorflow",
        )
    return HeadStart(
        target=target,
        environ=environ,
        env=env,
        activate=activate,
        tensorflow=tensorflow,
        with_tensorflow=with_tensorflow,
        tf_timeout=tf_timeout,
        ops=ops,
        carried=carried,
    )


def start_snapshot(
    target: Target,
    *,
    environ: Mapping[str, str],
    tf_timeout: float = DEFAULT_TF_TIMEOUT,
    with_tensorflow: bool = True,
) -> HeadStart:
    """``start`` as ``tffix.collect.collect_snapshot`` would begin the same look (the op
    checks ``snapshot_ops`` names): hand it over as ``collect_snapshot(started=...)``."""
    return start(
        target,
        environ=environ,
        tf_timeout=tf_timeout,
        with_tensorflow=with_tensorflow,
        ops=snapshot_ops(target, with_tensorflow=with_tensorflow),
    )
