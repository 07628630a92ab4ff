"""`tffix snapshot [-o FILE] [--tf-timeout S]`: write what tffix sees as ``tffix.snapshot/1``.

The document goes to stdout, or atomically to FILE (with a one-line summary on stderr). A probe
that fails is recorded in the document's ``unknown`` section; the command itself exits 0
whenever it wrote a document, and 2 (a one-line message) for a target or ``-o`` it cannot use.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tffix.errors import ExitCode, UsageError
from tffix.options import Options
from tffix.term import clean

if TYPE_CHECKING:
    from tffix.model import Snapshot


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``-o FILE`` and ``--tf-timeout SECONDS``."""
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the document to FILE instead of stdout"
    )
    parser.add_argument(
        "--tf-timeout",
        metavar="SECONDS",
        type=float,
        default=120.0,
        help="time limit for importing TensorFlow in the child process (default: 120)",
    )
    parser.add_argument(
        "--redact-paths",
        action="store_true",
        help="also replace the home folder with ~ and the user name with <user>",
    )


def check_output_path(path: Path) -> None:
    """Refuse an ``-o`` that cannot be written, before any probe runs."""
    if path.is_dir():
        raise UsageError(f"-o {path}: is a folder; name a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"-o {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"-o {path}: the folder {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"-o {path}: the file is not writable")


def write_atomic(path: Path, text: str) -> None:
    """Write *text* to *path* through a temporary file in the same folder and a rename."""
    parent = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UsageError(f"-o {path}: cannot write: {exc.strerror or exc}") from exc


def summary(snap: Snapshot) -> str:
    """One line: TensorFlow, GPUs, driver, and how many facts are unknown."""
    from tffix.model import UNKNOWN

    tf = snap.tensorflow
    if tf is None:
        tf_text = "no TensorFlow"
    elif tf is UNKNOWN:
        tf_text = "TensorFlow unknown"
    elif tf.import_error:
        tf_text = "TensorFlow does not import"
    else:
        gpus = "?" if tf.gpus is None else str(len(tf.gpus))
        tf_text = f"TensorFlow {tf.version or '?'} sees {gpus} GPU(s)"
    driver = snap.driver
    if driver is None:
        drv = "no driver"
    elif driver is UNKNOWN:
        drv = "driver unknown"
    else:
        drv = f"driver {driver.version or '?'}"
    return f"{tf_text}; {drv}; {len(snap.unknown)} unknown"


def _identity(environ: os._Environ[str]) -> tuple[str | None, str | None]:
    """The home folder and user name that ``--redact-paths`` hides."""
    import getpass

    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):
        user = environ.get("USER")
    home = environ.get("HOME") or os.path.expanduser("~")
    return (home if home != "~" else None), user


def run(options: Options) -> int:
    """Resolve the target, collect, write. The TensorFlow child starts as soon as the target
    is known (``tffix.headstart``): the probes are imported while it imports."""
    from tffix.headstart import start_snapshot
    from tffix.probes.target import resolve_target

    output = Path(options.output) if options.output else None
    if output is not None:
        check_output_path(output)
    timeout = options.tf_timeout
    if not timeout > 0:
        raise UsageError(f"--tf-timeout {timeout:g}: must be more than 0 seconds")
    target = resolve_target(venv=options.venv, python=options.python, environ=os.environ)
    started = start_snapshot(target, environ=os.environ, tf_timeout=timeout)
    from tffix.collect import collect_snapshot

    snap = collect_snapshot(target, environ=os.environ, tf_timeout=timeout, started=started)
    from tffix.document import snapshot_to_json

    hide = _identity(os.environ) if options.redact_paths else None
    text = snapshot_to_json(snap, hide_identity=hide)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(output, text)
        print(f"tffix: wrote {clean(output)}: {clean(summary(snap))}", file=sys.stderr)
    return int(ExitCode.OK)
