"""The single subprocess wrapper: argv lists only, never a shell, failures as values."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from tffix.record import record


@record
class Completed:
    """How a child process ended."""

    argv: tuple[str, ...]
    returncode: int | None
    """None when the child could not be started or was killed at the time limit."""
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    error: str | None = None
    """Why the child could not be started (``OSError`` text)."""

    @property
    def ok(self) -> bool:
        """True when the child ran and exited 0."""
        return self.returncode == 0

    def describe_exit(self) -> str | None:
        """A short phrase for an abnormal end, or None for a normal exit."""
        if self.error is not None:
            return f"could not start: {self.error}"
        if self.timed_out:
            return f"timeout after {self.seconds:.0f}s"
        if self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"killed by {name}"
        return None

    def __str__(self) -> str:
        lines = [f"command: {shown(self.argv)}", f"return code: {self.returncode}"]
        if self.stdout.strip():
            lines.append("stdout:\n" + self.stdout.rstrip())
        if self.stderr.strip():
            lines.append("stderr:\n" + self.stderr.rstrip())
        return "\n".join(lines)


def shown(argv: Sequence[str]) -> str:
    """*argv* for a message: the code after ``-c`` (a probe script) and any multi-line argument
    are elided, so a message about a child never carries tffix's own scripts."""
    out: list[str] = []
    after_c = False
    for arg in argv:
        out.append("<code>" if after_c or "\n" in arg else arg)
        after_c = arg == "-c"
    return " ".join(out)


def child_env(
    overrides: Mapping[str, str | None] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return *base* (default: this process's environment) with *overrides* applied.

    A ``None`` value removes the variable.
    """
    env = dict(os.environ if base is None else base)
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


CWD_OFF_PATH = "import sys\nif sys.path and sys.path[0] == '':\n    del sys.path[0]\n"
"""The first lines of a ``python -c`` probe script that runs in the user's working folder:
``-c`` puts that folder first on ``sys.path``, so a ``json.py`` (or a ``tensorflow/``) in the
user's project would otherwise be imported by the probe. The child still runs *in* that
folder, because the dynamic loader reads an empty ``LD_LIBRARY_PATH`` entry (``:/x``) as the
current folder: a check run elsewhere would load other libraries than the user's runs do."""


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    env_overrides: Mapping[str, str | None] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    stdin: str | None = None,
    neutral_cwd: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> Completed:
    """Run *argv* to completion and return what happened; never raises for the child's sake.

    *env* replaces the environment (default: this process's); *env_overrides* then applies on
    top of it. On timeout the child's whole process group is killed, so a hanging import
    cannot leave grandchildren behind.

    *neutral_cwd* runs the child in a fresh empty folder (removed afterwards) instead of the
    current one: ``python -c`` puts its working folder first on ``sys.path``, so a ``json.py``
    in the user's project would otherwise be imported by tffix's probe scripts.

    *on_line* is called with each line of stdout as it comes (a package manager's progress);
    the whole of stdout is still returned.
    """
    if neutral_cwd and cwd is None:
        with tempfile.TemporaryDirectory(prefix="tffix-child-") as empty:
            return run(
                argv, env=env, env_overrides=env_overrides, cwd=empty, timeout=timeout, stdin=stdin
            )
    full_env = child_env(env_overrides, env)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(  # argv list, no shell
            list(argv),
            env=full_env,
            cwd=cwd,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        return Completed(tuple(argv), None, "", "", time.monotonic() - start, error=str(exc))
    try:
        if on_line is not None:
            out, err = _stream(proc, stdin, on_line, timeout)
        else:
            out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return Completed(tuple(argv), None, out, err, time.monotonic() - start, timed_out=True)
    except BaseException:
        # Ctrl-C reaches only tffix (the child has its own session): stop the child before
        # the caller rolls back, so a pip install cannot go on beside the rollback.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return Completed(tuple(argv), proc.returncode, out, err, time.monotonic() - start)


def _stream(
    proc: subprocess.Popen[str],
    stdin: str | None,
    on_line: Callable[[str], None],
    timeout: float | None,
) -> tuple[str, str]:
    """stdout line by line to *on_line* (stderr drained beside it), as ``communicate`` would."""
    err: list[str] = []
    drain = threading.Thread(target=lambda: err.append(proc.stderr.read() if proc.stderr else ""))
    drain.start()
    if proc.stdin is not None:
        proc.stdin.write(stdin or "")
        proc.stdin.close()
    out: list[str] = []
    assert proc.stdout is not None  # stdout=PIPE
    for line in proc.stdout:
        out.append(line)
        on_line(line.rstrip("\n"))
    proc.wait(timeout=timeout)
    drain.join()
    return "".join(out), "".join(err)
