"""`tffix undo`: step the environment back one tffix run at a time, with nothing from outside.

The journal (``<env>/.tffix/journal.jsonl``, checked whole before anything is read from it)
holds the state before each run: the installed distributions, the bytes of every file tffix
writes, and a snapshot of kept files (``tffix.effects.stash``) holding every file a step
removed or replaced. Undo removes what the run added, links the kept files back and writes the
recorded bytes back, so it needs neither the network nor an index that still offers the old
versions. It changes only the distributions the journal records the run as changing (pip
itself only when a step of the run named it), then checks the result the way a user would:
``pip freeze --all`` (or ``uv pip freeze``), an import of each restored distribution's modules,
and the recorded file bytes.

Repeated, ``undo`` steps back through the runs, newest first, to the state before the first.
``--list`` shows the runs and the disk their kept files hold; ``--dry-run`` shows what would
change; on a terminal undo asks first (``--yes`` skips the question); ``--drop-kept N`` removes
the kept files of all but the newest N runs (those older runs can no longer be undone).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from packaging.utils import canonicalize_name

from tffix import _subprocess
from tffix.effects import reach, stash
from tffix.effects.journal import Journal, Record, RunStory, journal_path, runs
from tffix.effects.lock import checked_state_dir, hold
from tffix.effects.pip import PackageManager
from tffix.effects.steps import Workspace, decode_files
from tffix.errors import ApplyError, RollbackIncomplete, UsageError
from tffix.options import Options
from tffix.probes.target import Target, TargetKind, resolve_target
from tffix.record import record

UNDO_SCHEMA = "tffix.undo/1"
CHECK_TIMEOUT = 120.0
_FIND_SPEC = (
    "import importlib.util, json, sys\n"
    "out = {}\n"
    "for name in sys.argv[1:]:\n"
    "    try:\n"
    "        out[name] = importlib.util.find_spec(name) is not None\n"
    "    except Exception:\n"
    "        out[name] = False\n"
    "print(json.dumps(out))\n"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``tffix undo``."""
    parser.add_argument("--no-uv", action="store_true", help="use pip even when uv is on PATH")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--list",
        dest="list_runs",
        action="store_true",
        help="list the runs undo can step back",
    )
    mode.add_argument(
        "--dry-run", action="store_true", help="show what undoing the last run would change"
    )
    mode.add_argument(
        "--drop-kept",
        metavar="N",
        type=int,
        help="remove the kept files of all but the newest N runs (older runs: no more undo)",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="undo without asking")


# --------------------------------------------------------------------------- pure parts


def undoable(stories: list[RunStory]) -> list[RunStory]:
    """The runs undo can step back through, oldest first (it takes the last one).

    A run that changed something (or was cut off) and is not undone yet; a run resumed by a
    later run is covered by that one (whose base is its base); the stack stops at a run whose
    kept files were dropped.
    """
    covered = {s.resumes for s in stories if s.resumes}
    out: list[RunStory] = []
    for story in stories:
        if story.dropped is not None:
            out = []
            continue
        if story.undone is None and (story.changed or story.interrupted):
            out.append(story)
    live = {s.run for s in out}
    return [s for s in out if not (s.run in covered and _resumer_live(stories, s.run, live))]


def _resumer_live(stories: list[RunStory], run: str, live: set[str]) -> bool:
    return any(s.resumes == run and s.run in live for s in stories)


def _diff(a: Mapping[str, str], b: Mapping[str, str]) -> set[str]:
    return {n for n in set(a) | set(b) if a.get(n) != b.get(n)}


def touched(story: RunStory, now: Mapping[str, str], resumed: RunStory | None = None) -> set[str]:
    """The distributions undo may change for *story*: those the journal records the run as
    changing (from its base to its end, or to now when it was cut off). pip itself only when
    a step of the run named it: a journal claiming pip was absent cannot make undo remove it.
    """
    base = story.base_state.get("packages", {})
    after = story.end.get("after", {}).get("packages") if story.end is not None else None
    names = _diff(base, after if after is not None else now)
    named = story.plan_names() | (resumed.plan_names() if resumed is not None else set())
    if "pip" not in named:
        names.discard("pip")
    return names


@record
class Change:
    """One thing undo would change."""

    what: str
    now: str
    then: str


def planned_changes(
    story: RunStory, now: Mapping[str, str], files_now: Mapping[str, bytes | None], names: set[str]
) -> list[Change]:
    """What restoring *story*'s base would change (distributions and tffix's files)."""
    base = story.base_state.get("packages", {})
    out = [
        Change(n, now.get(n, "absent"), base.get(n, "absent"))
        for n in sorted(names)
        if now.get(n) != base.get(n)
    ]
    for name, data in sorted(decode_files(story.base_state.get("files", {})).items()):
        if files_now.get(name) != data:
            out.append(Change(name, "changed by tffix", "recorded bytes"))
    outside = reach.outside_differences(story.base_state.get("outside", []))
    out += [Change(p, "changed by tffix", "recorded bytes") for p in outside]  # kernelspecs …
    return out


# --------------------------------------------------------------------------- checks


def freeze(ws: Workspace) -> dict[str, str] | None:
    """What ``pip freeze --all`` (or ``uv pip freeze``) lists: name -> version; None when
    neither can run."""
    env = {k: v for k, v in ws.pip.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    argvs = [[str(ws.pip.python), "-m", "pip", "freeze", "--all"]]
    uv = shutil.which("uv", path=env.get("PATH"))
    if uv:
        argvs.append([uv, "pip", "freeze", "--python", str(ws.pip.python)])
    for argv in argvs:
        done = _subprocess.run(argv, env=env, timeout=CHECK_TIMEOUT, cwd=ws.prefix)
        if done.ok:
            return _parse_freeze(done.stdout)
    return None


def _parse_freeze(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        if not sep:
            name, version = line.partition(" @ ")[0], "(direct)"
        out[str(canonicalize_name(name.strip()))] = version.strip()
    return out


def importable(ws: Workspace, modules: list[str]) -> dict[str, bool]:
    """Whether the target interpreter finds each top-level module (nothing is executed)."""
    if not modules:
        return {}
    env = {k: v for k, v in ws.pip.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    done = _subprocess.run(
        [str(ws.pip.python), "-I", "-c", _FIND_SPEC, *modules],
        env=env,
        timeout=CHECK_TIMEOUT,
        cwd=ws.prefix,
    )
    if not done.ok:
        return dict.fromkeys(modules, False)
    try:
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return dict.fromkeys(modules, False)
    return {m: bool(data.get(m)) for m in modules}


def differences(
    ws: Workspace,
    state: Mapping[str, Any],
    names: set[str],
    *,
    also_import: Collection[str] = (),
) -> list[str]:
    """What still differs from *state*, as metadata, pip and an import see it, and in bytes.

    *also_import*: distributions whose files undo put back (a folder shared with a changed
    one), whose modules must import too."""
    before: Mapping[str, str] = state.get("packages", {})
    try:
        meta = ws.pip.installed()
    except ApplyError as exc:
        return [str(exc)]
    seen = freeze(ws)
    out = []
    for n in sorted(names):
        want = before.get(n)
        if meta.get(n) != want:
            out.append(f"{n}: {meta.get(n, 'absent')} (recorded {want or 'absent'})")
        elif seen is not None and seen.get(n) != want and not (want and seen.get(n) == "(direct)"):
            out.append(f"{n}: pip freeze shows {seen.get(n, 'nothing')} (recorded {want})")
    modules = {
        m: n
        for n in sorted(names | set(also_import))
        if n in before
        for m in stash.top_level_modules(ws.prefix, n)
    }
    for module, found in importable(ws, sorted(modules)).items():
        if not found:
            out.append(
                f"{modules[module]} {before[modules[module]]}: `import {module}` finds nothing"
            )
    for name, data in decode_files(state.get("files", {})).items():
        try:
            current: bytes | None = (ws.prefix / name).read_bytes()
        except FileNotFoundError:
            current = None
        except OSError as exc:
            out.append(f"{ws.prefix / name}: {exc.strerror or exc}")
            continue
        if current != data:
            out.append(f"{ws.prefix / name}: differs from the recorded bytes")
    out += [
        f"{p}: differs from the recorded bytes"
        for p in reach.outside_differences(state.get("outside", []))
    ]
    return out


# --------------------------------------------------------------------------- undo


def _stories(journal: Journal) -> dict[str, RunStory]:
    return {s.run: s for s in runs(journal.records())}


def undo_story(
    ws: Workspace, journal: Journal, story: RunStory, *, say: Callable[[str], None]
) -> list[str]:
    """Restore *story*'s base state, journal it, and check it; ``RollbackIncomplete`` if not."""
    state = story.base_state
    resumed = _stories(journal).get(story.resumes or "")
    say(f"tffix: restoring {ws.prefix} to its state before run {story.run}")
    try:
        now = ws.pip.installed()
    except ApplyError as exc:
        raise RollbackIncomplete(f"undo not started: {exc}") from exc
    names = touched(story, now, resumed)
    problems = ws.restore(state, touch=names)
    kept = state.get("kept")
    owners = stash.owners_of_kept(ws.prefix, kept) if isinstance(kept, str) else set()
    left = differences(ws, state, names, also_import=owners)
    if left:  # not journalled: the run stays on the stack, and undo can be tried again
        raise RollbackIncomplete("undo incomplete; still different: " + "; ".join(left))
    record: Record = {"type": "undo", "run": story.run, "problems": problems[:1000]}
    if resumed is not None:
        record["also"] = [resumed.run]
    journal.append(record)
    if story.interrupted:
        journal.append({"type": "run-end", "run": story.run, "status": "undone", "exit_code": 0})
    for kept in story.kept_ids() + (resumed.kept_ids() if resumed is not None else []):
        stash.drop(ws.prefix, kept)
    return problems


def _workspace(target: Target, environ: Mapping[str, str], args: Options) -> Workspace:
    from tffix.shellenv import pre_activation_environ

    env = pre_activation_environ(environ)
    return Workspace(
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


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]  # float from here on, for the figure only
    return f"{n} B"


def run_rows(prefix: Any, stories: list[RunStory]) -> list[dict[str, Any]]:
    """One row per run, newest first, for ``--list``."""
    stack = {s.run for s in undoable(stories)}
    rows = []
    for s in reversed(stories):
        state = (
            "undoable"
            if s.run in stack
            else "undone"
            if s.undone
            else "dropped"
            if s.dropped
            else "unchanged"
        )
        rows.append(
            {
                "run": s.run,
                "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.time)),
                "status": s.end["status"] if s.end else "interrupted",
                "steps_kept": len(
                    {r["step"] for r in s.steps_done} - {r["step"] for r in s.steps_reverted}
                ),
                "undo": state,
                "kept_bytes": stash.held_bytes(prefix, s.kept_ids()),
            }
        )
    return rows


def _print(args: Options, doc: dict[str, Any], text: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps({"schema": UNDO_SCHEMA, **doc}, indent=2, sort_keys=True))
    else:
        print("\n".join(text))


def _list(args: Options, target: Target, stories: list[RunStory]) -> int:
    rows = run_rows(target.prefix, stories)
    text = (
        [f"tffix runs on {target.prefix} (newest first):"]
        if rows
        else [f"No tffix run is recorded for {target.prefix}."]
    )
    text += [
        f"  {r['run']}  {r['started']}  {r['status']:<11}  steps kept: {r['steps_kept']}  "
        f"{r['undo']}  kept files: {_size(r['kept_bytes'])}"
        for r in rows
    ]
    total = sum(r["kept_bytes"] for r in rows)
    if rows:
        text.append(f"Disk held by kept files: {_size(total)} (tffix undo --drop-kept N frees it)")
    _print(args, {"prefix": str(target.prefix), "runs": rows, "kept_bytes": total}, text)
    return 0


def _drop(args: Options, target: Target, journal: Journal) -> int:
    assert args.drop_kept is not None  # the caller's condition
    if args.drop_kept < 0:
        raise UsageError("--drop-kept N: N must be 0 or more")
    stories = runs(journal.records())
    stack = undoable(stories)
    keep = [s.run for s in stack[len(stack) - args.drop_kept :]] if args.drop_kept else []
    first = next((i for i, s in enumerate(stories) if s.run in keep), len(stories))
    dropped = [s for s in stories[:first] if s.dropped is None]  # the stack stops at the last
    freed = 0
    for s in dropped:
        freed += stash.held_bytes(target.prefix, s.kept_ids())
        for kept in s.kept_ids():
            stash.drop(target.prefix, kept)
        journal.append({"type": "drop", "run": s.run})
    named = {k for s in stories for k in s.kept_ids()}
    for orphan in stash.snapshots(target.prefix):  # left by a run cut off before its record
        if orphan.removesuffix(".part") not in named or orphan.endswith(".part"):
            stash.drop(target.prefix, orphan.removesuffix(".part"))
    text = [f"Dropped the kept files of {len(dropped)} run(s); freed {_size(freed)}."]
    _print(args, {"dropped": [s.run for s in dropped], "freed_bytes": freed}, text)
    return 0


def _confirm(args: Options, question: str, preview: list[str]) -> bool:
    """Ask on the terminal (``tffix.term.conversation``: also when stdout is a file, a pipe
    or ``--json``), after showing *preview* there; with no terminal the command itself is the
    request."""
    if args.yes or args.dry_run:
        return True
    from tffix.term import clean_output, conversation

    talk = conversation(report_on_stdout=not getattr(args, "json", False))
    if talk is None:
        return True
    print(clean_output("\n".join(preview)), file=talk)  # journal text: untrusted
    print(f"{question} [y/N] ", end="", file=talk, flush=True)
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def run(args: Options) -> int:
    """Undo the last run that changed the target (or list, preview, drop)."""
    environ = dict(os.environ)
    target = resolve_target(venv=args.venv, python=args.python, environ=environ)
    checked_state_dir(target.prefix)
    if not target.is_modifiable and not journal_path(target.prefix).exists():
        raise UsageError(f"{target.python} is a {target.kind} Python: tffix never changed it")
    journal = Journal(journal_path(target.prefix))
    if args.list_runs:
        return _list(args, target, runs(journal.records()))
    ws = _workspace(target, environ, args)
    with hold(target.prefix):
        if args.drop_kept is not None:
            return _drop(args, target, journal)
        stack = undoable(runs(journal.records()))
        if not stack:
            text = f"Nothing to undo: no tffix run has changed {target.prefix} since the last undo."
            _print(args, {"undone": None, "nothing_to_undo": True}, [text])
            return 0
        story = stack[-1]
        return _undo_one(args, ws, journal, story, len(stack))


def _undo_one(args: Options, ws: Workspace, journal: Journal, story: RunStory, depth: int) -> int:
    now = ws.pip.installed()
    resumed = _stories(journal).get(story.resumes or "")
    names = touched(story, now, resumed)
    from tffix.effects import activate

    files_now = activate.read_bytes(
        ws.prefix, list(decode_files(story.base_state.get("files", {})))
    )
    changes = planned_changes(story, now, files_now, names)
    held = stash.held_bytes(ws.prefix, story.kept_ids())
    lines = [f"Undo run {story.run} ({depth} run(s) can be undone; kept files: {_size(held)}):"]
    lines += [f"  {c.what}: {c.now} -> {c.then}" for c in changes] or ["  (no difference left)"]
    doc: dict[str, Any] = {
        "run": story.run,
        "changes": [{"what": c.what, "now": c.now, "then": c.then} for c in changes],
        "kept_bytes": held,
        "undoable_runs": depth,
    }
    if args.dry_run:
        _print(args, {**doc, "dry_run": True}, [*lines, "Nothing changed (--dry-run)."])
        return 0
    if not _confirm(args, f"Undo run {story.run}?", lines):
        _print(args, {**doc, "undone": False}, ["Nothing changed."])
        return 1
    problems = undo_story(ws, journal, story, say=lambda text: print(text, file=sys.stderr))
    text = [
        f"Restored {ws.prefix} to its state before run {story.run}: "
        f"{len(changes)} change(s) undone; pip freeze, imports and "
        f"{len(story.base_state.get('files', {}))} activate files checked against the journal."
    ]
    if depth > 1:
        text.append(f"{depth - 1} earlier run(s) can still be undone (tffix undo --list).")
    venv = ws.pip.environ.get("VIRTUAL_ENV") or os.environ.get("VIRTUAL_ENV")
    if venv and os.path.realpath(venv) == os.path.realpath(ws.prefix):
        text.append(f"Re-activate the venv: deactivate && source {ws.prefix}/bin/activate")
    _print(args, {**doc, "undone": True, "notes": problems}, text)
    return 0
