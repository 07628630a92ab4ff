"""`tffix undo`: restore the environment to its state before the last tffix run.

The journal (``<env>/.tffix/journal.jsonl``) holds the state before each run: the installed
distributions with their versions and the bytes of every file tffix writes. Undo brings pip's
set back (removing what was added, reinstalling recorded versions without dependencies) and
writes the recorded bytes back atomically, then compares the result with the record. It works
after a completed run and after an interrupted one. Undoing twice finds nothing to undo.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from tffix.effects.journal import Journal, RunStory, journal_path, runs
from tffix.effects.lock import hold
from tffix.effects.pip import PackageManager
from tffix.effects.steps import Workspace, decode_files
from tffix.errors import RollbackIncomplete, UsageError
from tffix.probes.target import TargetKind, resolve_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--no-uv``: restore with pip even when uv is available."""
    parser.add_argument("--no-uv", action="store_true", help="use pip even when uv is on PATH")


def _differences(ws: Workspace, state: dict[str, Any]) -> list[str]:
    now = ws.pip.installed()
    before = state.get("packages", {})
    out = [
        f"{n}: {now.get(n, 'absent')} (recorded {before.get(n, 'absent')})"
        for n in sorted(set(now) | set(before))
        if now.get(n) != before.get(n)
    ]
    files = decode_files(state.get("files", {}))
    for name, data in files.items():
        try:
            current: bytes | None = (ws.prefix / name).read_bytes()
        except FileNotFoundError:
            current = None
        if current != data:
            out.append(f"{ws.prefix / name}: differs from the recorded bytes")
    return out


def undo_story(
    ws: Workspace, journal: Journal, story: RunStory, *, say: Callable[[str], None]
) -> list[str]:
    """Restore *story*'s base state, journal it, and check it; ``RollbackIncomplete`` if not."""
    state = story.base_state
    say(f"tffix: restoring {ws.prefix} to its state before run {story.run}")
    problems = ws.restore(state)
    left = _differences(ws, state)
    journal.append({"type": "undo", "run": story.run, "problems": problems + left})
    if story.interrupted:
        journal.append({"type": "run-end", "run": story.run, "status": "undone", "exit_code": 0})
    if left:
        raise RollbackIncomplete("undo incomplete; still different: " + "; ".join(left))
    return problems


def run(args: argparse.Namespace) -> int:
    """Undo the last run that changed the target."""
    environ = dict(os.environ)
    target = resolve_target(venv=args.venv, python=args.python, environ=environ)
    if not target.is_modifiable and not journal_path(target.prefix).exists():
        raise UsageError(f"{target.python} is a {target.kind} Python: tffix never changed it")
    from tffix.commands.repair import pre_activation_environ

    env = pre_activation_environ(environ)
    ws = Workspace(
        target.prefix,
        target.kind in (TargetKind.CONDA, TargetKind.CONDA_BASE),
        PackageManager(
            target.python,
            target.prefix,
            env,
            allow_uv=not args.no_uv,
            say=lambda text: print(text, file=sys.stderr, flush=True),
        ),
    )
    with hold(target.prefix):
        journal = Journal(journal_path(target.prefix))
        changed = [s for s in runs(journal.records()) if s.changed or s.interrupted]
        if not changed or changed[-1].undone is not None:
            print(f"Nothing to undo: no tffix run has changed {target.prefix} since the last undo.")
            return 0
        story = changed[-1]
        undo_story(ws, journal, story, say=lambda text: print(text, file=sys.stderr))
    count = len(story.base_state.get("packages", {}))
    files = len(story.base_state.get("files", {}))
    print(
        f"Restored {target.prefix} to its state before run {story.run}: "
        f"{count} distributions and {files} activate files checked against the journal."
    )
    if environ.get("VIRTUAL_ENV") and os.path.realpath(environ["VIRTUAL_ENV"]) == (
        os.path.realpath(target.prefix)
    ):
        print(f"Re-activate the venv: deactivate && source {target.prefix}/bin/activate")
    return 0
