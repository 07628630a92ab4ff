"""`tffix diagnose` and `tffix --dry-run`: a snapshot (saved or live) -> findings and plan.

The glue only: read the snapshot (or collect it from the live target and scan the project's
code), run the pure pipeline (``tffix.diagnosis``), render (``tffix.report``), return the exit
code. Never catches ``TffixError`` (``tffix.cli.main`` does).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from tffix.errors import InputError

if TYPE_CHECKING:
    # The engine is imported when a diagnosis runs, not when the parser is built: shell
    # completion builds this command's parser on every Tab.
    from tffix.model import Diagnosis, Finding, Snapshot
    from tffix.options import Options
    from tffix.ruleset import Ruleset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--snapshot FILE`` (or ``-``), ``--unsafe``, ``--no-scan``."""
    parser.add_argument(
        "--snapshot",
        metavar="FILE",
        help="diagnose a saved tffix.snapshot/1 document ('-' reads standard input) instead "
        "of the live target",
    )
    parser.add_argument("--unsafe", action="store_true", help="also show unsafe steps in the plan")
    parser.add_argument(
        "--no-scan",
        action="store_true",
        help="do not scan the current project's code (live target only)",
    )


def read_limited(stream: BinaryIO, name: str, limit: int, what: str) -> bytes:
    """Read at most *limit* bytes of *stream*; ``InputError`` when there is more."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{name} is larger than {limit // (1024 * 1024)} MiB; {what}")
    return data


def read_input(path: str, *, limit: int, what: str) -> tuple[bytes, str]:
    """The bytes of *path* (``-`` = standard input) and a name for messages."""
    if path == "-":
        return read_limited(sys.stdin.buffer, "standard input", limit, what), "standard input"
    file = Path(path)
    try:
        size = file.stat().st_size
        if file.is_file() and size > limit:
            raise InputError(
                f"{path} is {size // (1024 * 1024)} MiB; {what} "
                f"(at most {limit // (1024 * 1024)} MiB)"
            )
        with file.open("rb") as stream:
            return read_limited(stream, path, limit, what), path
    except IsADirectoryError as exc:
        raise InputError(f"{path} is a folder, not a file") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def show(
    diag: Diagnosis,
    snap: Snapshot,
    rules: Ruleset,
    options: Options,
    *,
    heading: str,
    checks: bool = True,
) -> int:
    """Print the diagnosis as the options ask and return the exit code."""
    from tffix.diagnosis import exit_code
    from tffix.report import render_json, render_text
    from tffix.term import Style, use_colour

    if options.json:
        sys.stdout.write(render_json(diag))
    else:
        style = Style(use_colour(sys.stdout, os.environ))
        sys.stdout.write(
            render_text(
                diag,
                snap,
                rules=rules,
                verbose=options.verbose,
                show_unsafe=options.unsafe,
                style=style,
                heading=heading,
                checks=checks,
            )
        )
    return int(exit_code(diag))


def run(options: Options) -> int:
    """``tffix diagnose``: a saved snapshot, or the live target without ``--snapshot``."""
    if not options.snapshot:
        return run_live(options)
    from tffix.diagnosis import diagnose
    from tffix.document import MAX_DOCUMENT_BYTES, parse_snapshot_text
    from tffix.ruleset import load_rules

    data, name = read_input(
        options.snapshot, limit=MAX_DOCUMENT_BYTES, what="a snapshot is a few KiB of JSON"
    )
    snap = parse_snapshot_text(data, name=name)
    rules = load_rules()
    diag = diagnose(snap, rules)
    return show(diag, snap, rules, options, heading=f"tffix diagnosis of {name}")


Collector = Callable[["Options"], "Snapshot"]


def collect_live(options: Options) -> Snapshot:
    """Resolve the target and collect its snapshot (the probes do the reading).

    The TensorFlow child starts as soon as the target is known (``tffix.headstart``): the
    probes, the diagnosis engine and the rules are imported and loaded while it imports.
    """
    from tffix.headstart import start_snapshot
    from tffix.probes.target import resolve_target

    target = resolve_target(venv=options.venv, python=options.python)
    started = start_snapshot(target, environ=os.environ)
    from tffix.collect import collect_snapshot

    return collect_snapshot(target, environ=os.environ, meanwhile=prepare, started=started)


ENGINE = (
    "tffix.diagnosis",
    "tffix.report",
    "tffix.term",
    "tffix.commands.scan",
    "tffix.effects.journal",
    "packaging.requirements",
)
"""The modules a live diagnosis needs once the snapshot is in, imported while TensorFlow
imports in the probe's child (``prepare``)."""


def prepare() -> None:
    """Load the rules and import the diagnosis engine and the report (``ENGINE``): the work
    of ``run_live`` that does not need the snapshot, done while the look waits for it."""
    from tffix.ruleset import load_rules

    load_rules()
    for name in ENGINE:
        importlib.import_module(name)


def scan_findings(args: Options | argparse.Namespace, snap: Snapshot) -> tuple[Finding, ...]:
    """Findings of the code scan of the current folder, when it looks like a project."""
    from tffix.options import Options

    if Options.of(args).no_scan or importlib.util.find_spec("tffix.scan") is None:
        return ()
    from tffix.commands.scan import bound_notes
    from tffix.scan import DEFAULT_MAX_SECONDS, looks_like_project, scan_project

    cwd = Path.cwd()
    if not looks_like_project(cwd):
        return ()
    result = scan_project(cwd, gpu_count=len(snap.gpus) if snap.gpus else None)
    for note in bound_notes(result, max_seconds=DEFAULT_MAX_SECONDS):
        print(f"tffix: code scan: {note}", file=sys.stderr)
    return tuple(result.findings)


def run_live(args: Options | argparse.Namespace, *, collect: Collector = collect_live) -> int:
    """``tffix --dry-run`` (and ``tffix diagnose`` without a snapshot): the live target.

    *collect* is the seam that reads the target (the probes by default). The engine is
    imported after it: the default collector imports it while TensorFlow imports."""
    from tffix.options import Options

    options = Options.of(args)
    snap = collect(options)
    from tffix.diagnosis import diagnose
    from tffix.ruleset import load_rules

    rules = load_rules()
    diag = diagnose(snap, rules, extra_findings=scan_findings(options, snap))
    where = snap.python.executable or "the target"
    code = show(diag, snap, rules, options, heading=f"tffix diagnosis of {where}")
    note = interrupted_note(snap.python.venv if isinstance(snap.python.venv, str) else None)
    if note:
        print(note, file=sys.stderr if options.json else sys.stdout)
    return code


def interrupted_note(prefix: str | None) -> str:
    """What a --dry-run says about an unfinished tffix run on the venv ("" when none): the
    next repair refuses to start until it is undone or resumed, so say so now."""
    if not prefix:
        return ""
    from tffix.effects.journal import Journal, journal_path, runs
    from tffix.errors import TffixError
    from tffix.term import clean

    path = journal_path(Path(prefix))
    if not path.is_file():
        return ""
    try:
        stories = runs(Journal(path).records())
    except TffixError as exc:  # a journal that fails its checks: the repair will refuse too
        return f"Note: {clean(exc)}"
    except OSError:
        return ""
    if not stories or not stories[-1].interrupted:
        return ""
    step = stories[-1].step_in_progress
    during = f"during step {step['step']}" if step else "between steps"
    return (
        f"Note: the last tffix run on this venv ({clean(stories[-1].run)}) was interrupted "
        f"{during}. A repair will not start until it is settled: `tffix undo` restores the "
        "state before that run; `tffix --resume` rolls back the unfinished step and repairs."
    )
