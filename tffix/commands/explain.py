"""`tffix explain [FILE|-]`: TensorFlow, pip or nvidia-smi text in, findings out.

Reads the text (refusing binary or enormous input with one line), turns it into a partial
snapshot (``tffix.logparse.snapshot_from_text``) and runs the same pipeline as ``diagnose``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tffix.commands.diagnose import read_input, show
from tffix.errors import InputError

if TYPE_CHECKING:  # the engine loads when the command runs (completion builds the parser)
    from tffix.model import Diagnosis
    from tffix.options import Options

MAX_LOG_BYTES = 32 * 1024 * 1024
"""A log past this is not something a person pasted; reading it would only cost memory."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The log file (default: standard input) and ``--unsafe``."""
    parser.add_argument(
        "file", nargs="?", default="-", metavar="FILE", help="the log text ('-' or none: stdin)"
    )
    parser.add_argument("--unsafe", action="store_true", help="also show unsafe steps in the plan")


def decode_log(data: bytes, name: str) -> str:
    """The text of a log; ``InputError`` for binary data."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:  # PowerShell's `>` writes UTF-16 with a byte-order mark
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"{name} is not readable UTF-16 text (byte {exc.start})") from exc
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(f"{name} is binary (a NUL byte at offset {nul}), not log text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{name} is not UTF-8 text (undecodable byte at offset {exc.start})"
        ) from exc


def next_step(diag: Diagnosis) -> str | None:
    """What to run when the text names a cause tffix fixes in a venv but gives no plan (a log
    carries no versions or paths to build one from): the live diagnosis, in that venv."""
    from tffix.model import FixSide, Severity

    fixable = [f for f in diag.findings if f.severity == Severity.ERROR and f.fix == FixSide.VENV]
    if not fixable or diag.plan:
        return None
    return (
        "To see the plan for your environment, run `tffix --dry-run` with its venv active "
        "(or `tffix --dry-run --venv DIR`); `tffix` then applies it, asking first."
    )


def _prompt_if_terminal(path: str) -> None:
    if path == "-" and sys.stdin.isatty():
        eof = "Ctrl-Z then Enter" if sys.platform == "win32" else "Ctrl-D"
        print(
            f"tffix explain: paste the log, then press {eof} on a new line "
            "(or give a file: tffix explain FILE)",
            file=sys.stderr,
            flush=True,
        )


def run(options: Options) -> int:
    """Explain the causes the log shows."""
    from tffix.diagnosis import diagnose
    from tffix.logparse import snapshot_from_text
    from tffix.ruleset import load_rules
    from tffix.term import clean

    _prompt_if_terminal(options.file)
    data, name = read_input(options.file, limit=MAX_LOG_BYTES, what="tffix explain reads log text")
    text = decode_log(data, name)
    rules = load_rules()
    snap = snapshot_from_text(text, rules)
    if snap.extra.get("skipped"):
        print(f"tffix explain: {clean(snap.extra['skipped'])}", file=sys.stderr)
    diag = diagnose(snap, rules)
    code = show(diag, snap, rules, options, heading=f"tffix explain: {name}", checks=False)
    hint = next_step(diag)
    if hint and not options.json:
        print(f"\n{hint}")
    return code
