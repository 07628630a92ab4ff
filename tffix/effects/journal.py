"""The journal: ``<env>/.tffix/journal.jsonl``, one JSON record per line, fsynced per record.

Records (``type``): ``run-start`` (the state before the run, or ``base`` when it resumes an
interrupted run), ``step-start`` (the state before the step), ``step-done``, ``step-reverted``,
``run-end`` (with the distributions seen at the end), ``undo`` and ``drop`` (the run's kept
files were removed). A run-start without a run-end is an interrupted run. A state names the
snapshot of kept files (``tffix.effects.stash``) that puts its distributions back without the
network.

Every record carries the schema version and a hash chain (``tffix.effects.journal_schema``);
reading checks all of it, and a journal that fails is refused whole (``InputError``: one line
naming the file, exit 2) before anything is changed. A last line torn by a power loss does not
decode and is ignored (and cut off before the next append).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tffix.effects import journal_schema as schema
from tffix.effects.lock import checked_state_dir, state_dir
from tffix.errors import ApplyError, InputError

JOURNAL_NAME = "journal.jsonl"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

Record = dict[str, Any]


def journal_path(prefix: Path) -> Path:
    """Where the journal of the environment at *prefix* lives."""
    return state_dir(prefix) / JOURNAL_NAME


def new_run_id() -> str:
    """A fresh run id: sortable by time, unique."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


class Journal:
    """Appends records durably (write, flush, fsync) to one journal file; reads them checked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: str | None = None
        """The chain value of the last record (None: not read yet)."""
        self._good_size = 0
        """Bytes up to the end of the last whole line."""

    def _check_folder(self) -> None:
        if self.path.parent.name == ".tffix":
            checked_state_dir(self.path.parent.parent)

    def append(self, record: Mapping[str, Any]) -> None:
        """Append *record* (with version, timestamp and chain); durable before returning.

        The record is checked against the schema first: tffix never writes what it would
        refuse to read back (``ApplyError``, so the step it precedes does not run).
        """
        if self._last is None or self._size() != self._good_size:  # written by another Journal
            self.records()
        data: Record = {"v": schema.SCHEMA_VERSION, "time": time.time(), **record}
        data["chain"] = schema.chain_hash(self._last or schema.GENESIS, data)
        try:
            schema.check_record(data, "new record")
        except schema.JournalInvalid as exc:
            raise ApplyError(f"refusing to journal an invalid record: {exc}") from exc
        line = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"
        try:
            self._write(line.encode("utf-8"))
        except OSError as exc:
            raise ApplyError(
                f"cannot write the journal {self.path}: {exc.strerror or exc}"
            ) from exc
        self._last = data["chain"]

    def _size(self) -> int:
        try:
            return os.stat(self.path, follow_symlinks=False).st_size
        except FileNotFoundError:
            return 0

    def _write(self, data: bytes) -> None:
        self._check_folder()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size > self._good_size:  # a torn last line: cut it off first
                os.ftruncate(fd, self._good_size)
                size = self._good_size
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(28, "short write")
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)  # no torn record left behind
                raise
            self._good_size = size + len(data)
        finally:
            os.close(fd)
        if new:
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def _read(self) -> bytes:
        self._check_folder()
        try:
            fd = os.open(self.path, os.O_RDONLY | _NOFOLLOW)
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise InputError(f"cannot read the journal {self.path}: {exc.strerror or exc}") from exc
        try:
            if os.fstat(fd).st_size > schema.MAX_FILE:
                raise InputError(
                    f"invalid journal {self.path}: larger than {schema.MAX_FILE >> 20} MiB"
                )
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def records(self) -> list[Record]:
        """Every record, checked (schema, chain, order); ``InputError`` when any fails."""
        raw = self._read()
        lines = raw.split(b"\n")
        torn = lines.pop()  # after the last newline: empty, or a torn record
        try:
            out = self._decode(lines)
            last = out[-1]["chain"] if out else schema.GENESIS
            self._good_size = len(raw) - len(torn)
            if torn:
                with contextlib.suppress(schema.JournalInvalid, UnicodeDecodeError):
                    rec = schema.decode_line(torn.decode("utf-8"), f"record {len(out) + 1}")
                    _check_chain(last, rec, len(out) + 1)
                    out.append(rec)
                    self._good_size = len(raw)
            schema.check_story(out)
        except schema.JournalInvalid as exc:
            raise InputError(
                f"invalid journal {self.path}: {exc}; nothing was changed (move the file "
                "aside to start a new journal; the runs it records can then not be undone)"
            ) from None
        self._last = out[-1]["chain"] if out else schema.GENESIS
        return out

    @staticmethod
    def _decode(lines: Sequence[bytes]) -> list[Record]:
        out: list[Record] = []
        last = schema.GENESIS
        for number, line in enumerate(lines, start=1):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                raise schema.JournalInvalid(f"record {number}: not UTF-8") from None
            rec = schema.decode_line(text, f"record {number}")
            _check_chain(last, rec, number)
            last = rec["chain"]
            out.append(rec)
        return out


def _check_chain(previous: str, rec: Mapping[str, Any], number: int) -> None:
    if schema.chain_hash(previous, rec) != rec["chain"]:
        raise schema.JournalInvalid(
            f"record {number} does not match the hash chain (edited, removed or reordered by hand)"
        )


# --------------------------------------------------------------------------- reading


@dataclass(slots=True)
class RunStory:
    """One run as the journal tells it."""

    run: str
    start: Record
    steps_started: list[Record] = field(default_factory=list)
    steps_done: list[Record] = field(default_factory=list)
    steps_reverted: list[Record] = field(default_factory=list)
    end: Record | None = None
    undone: Record | None = None
    dropped: Record | None = None

    @property
    def interrupted(self) -> bool:
        """True when the run never wrote its run-end (Ctrl-C handled writes one; kill -9 not)."""
        return self.end is None

    @property
    def base_state(self) -> Record:
        """The state before this run (or before the interrupted run it resumed).

        A step planned during the run may change a file outside the venv that the first plan
        did not name (a kernelspec, a start-up file): the run-start does not hold it, the
        start of the first step that may change it does. Those bytes are the file's before
        the run (the workspace journals a file from the first step that may change it, so no
        earlier step touched it), and they join the base state here.
        """
        base: Record = self.start.get("base") or self.start["state"]
        later = [r.get("state", {}).get("outside") for r in self.steps_started]
        merged = _first_seen_outside(base.get("outside"), later)
        return base if merged is None else {**base, "outside": merged}

    @property
    def resumes(self) -> str | None:
        """The interrupted run this one resumed, if any."""
        value = self.start.get("resumes")
        return str(value) if value else None

    @property
    def step_in_progress(self) -> Record | None:
        """The step-start with neither step-done nor step-reverted after it, if any."""
        finished = {r["step"] for r in self.steps_done + self.steps_reverted}
        open_steps = [r for r in self.steps_started if r["step"] not in finished]
        return open_steps[-1] if open_steps else None

    @property
    def changed(self) -> bool:
        """True when any step of the run was applied and kept (or may have been, if cut off)."""
        kept = {r["step"] for r in self.steps_done} - {r["step"] for r in self.steps_reverted}
        return bool(kept) or self.step_in_progress is not None

    @property
    def time(self) -> float:
        """When the run started (seconds since the epoch)."""
        return float(self.start.get("time", 0.0))

    def kept_ids(self) -> list[str]:
        """Every snapshot this run's records name."""
        states = [self.start.get("base"), self.start.get("state")]
        states += [r.get("state") for r in self.steps_started]
        out = [s["kept"] for s in states if isinstance(s, dict) and "kept" in s]
        return list(dict.fromkeys(out))

    def plan_names(self) -> set[str]:
        """Canonical names the run's plan steps name (requirements and packages)."""
        names: set[str] = set()
        for rec in self.steps_started:
            names |= schema.requirement_names(rec.get("plan_step", {}))
        return names


def _first_seen_outside(base: object, later: Sequence[object]) -> list[Record] | None:
    """*base*'s outside-file records plus each file the *later* ones name first (None when
    they name none that *base* lacks). Records of another shape are left for undo's own
    check (``tffix.effects.reach.check_outside``) to refuse."""
    seen = {
        (r.get("root"), name)
        for r in (base if isinstance(base, list) else [])
        if isinstance(r, dict) and isinstance(r.get("files"), dict)
        for name in r["files"]
    }
    added: dict[str, dict[str, object]] = {}
    for records in later:
        for r in records if isinstance(records, list) else []:
            files = r.get("files") if isinstance(r, dict) else None
            if not (isinstance(files, dict) and isinstance(r.get("root"), str)):
                continue
            for name, data in files.items():
                if (r["root"], name) not in seen:
                    seen.add((r["root"], name))
                    added.setdefault(r["root"], {})[name] = data
    if not added:
        return None
    first = list(base) if isinstance(base, list) else []
    return [*first, *({"root": root, "files": files} for root, files in added.items())]


def runs(records: list[Record]) -> list[RunStory]:
    """The runs the (checked) records tell of, oldest first."""
    stories: dict[str, RunStory] = {}
    for rec in records:
        kind, run = rec["type"], rec["run"]
        if kind == "run-start":
            stories[run] = RunStory(run=run, start=rec)
            continue
        story = stories[run]
        if kind == "step-start":
            story.steps_started.append(rec)
        elif kind == "step-done":
            story.steps_done.append(rec)
        elif kind == "step-reverted":
            story.steps_reverted.append(rec)
        elif kind == "run-end":
            story.end = rec
        elif kind == "undo":
            story.undone = rec
            for other in rec.get("also", []):
                stories[other].undone = rec
        elif kind == "drop":
            story.dropped = rec
    return list(stories.values())


# --------------------------------------------------------------------------- writing


def _default_lister(prefix: Path) -> Callable[[], Mapping[str, str]]:
    from tffix.effects.pip import PackageManager, environment_python

    manager = PackageManager(environment_python(prefix), prefix, dict(os.environ))
    return manager.installed


class RunRecorder:
    """Journals one run (``tffix.transaction.Recorder``); the run-start is written lazily, so a run
    that changes nothing leaves no trace and ``tffix undo`` keeps pointing at the last real one.

    At the run's end it records the distributions then installed (what the run changed is the
    difference from its base) and trims the kept files to the ones the run replaced.
    """

    def __init__(
        self,
        journal: Journal,
        *,
        run_id: str | None = None,
        base: Mapping[str, Any] | None = None,
        argv: list[str] | None = None,
        lister: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.journal = journal
        self.run = run_id or new_run_id()
        self.base = base
        self.argv = argv or []
        self.started = False
        self.prefix = journal.path.parent.parent
        self.lister = lister
        self.kept: list[str] = []

    def _resumed_run(self) -> str | None:
        if self.base is None:
            return None
        for story in reversed(runs(self.journal.records())):
            if story.end is not None and story.end["status"] == "resumed":
                return story.run if story.base_state == dict(self.base) else None
        return None

    def start_run(self, state: Mapping[str, Any]) -> None:
        """The run's first record, with the state before its first step."""
        from tffix import __version__

        record: Record = {
            "type": "run-start",
            "run": self.run,
            "state": dict(state),
            "tffix": __version__,
            "argv": [a[:4096] for a in self.argv[: schema.MAX_LIST]],
            "pid": os.getpid(),
        }
        if self.base is not None:
            record["base"] = dict(self.base)
            resumed = self._resumed_run()
            if resumed:
                record["resumes"] = resumed
        self.journal.append(record)
        self.started = True
        self._note_kept(state)

    def _note_kept(self, state: Mapping[str, Any]) -> None:
        kept = state.get("kept")
        if isinstance(kept, str) and kept not in self.kept:
            self.kept.append(kept)

    def step_start(self, number: int, step: Any, state: Mapping[str, Any]) -> None:
        """The state before step *number* (and the step itself)."""
        from tffix.document import step_to_dict

        self.journal.append(
            {
                "type": "step-start",
                "run": self.run,
                "step": number,
                "plan_step": step_to_dict(number, step),
                "state": dict(state),
            }
        )
        self._note_kept(state)

    def step_done(self, number: int, findings: Any) -> None:
        """Step *number* was applied and kept."""
        self.journal.append(
            {
                "type": "step-done",
                "run": self.run,
                "step": number,
                "findings": [{"id": f.id, "status": str(f.status)} for f in findings],
            }
        )

    def step_reverted(self, number: int, reason: str, problems: Any) -> None:
        """Step *number* was rolled back (*problems*: what could not be)."""
        self.journal.append(
            {
                "type": "step-reverted",
                "run": self.run,
                "step": number,
                "reason": reason[: schema.MAX_TEXT],
                "problems": [str(p)[: schema.MAX_TEXT] for p in problems][: schema.MAX_LIST],
            }
        )

    def end_run(self, status: str, exit_code: int) -> None:
        """The run's last record; then the kept files are trimmed to what the run changed."""
        record: Record = {
            "type": "run-end",
            "run": self.run,
            "status": status,
            "exit_code": exit_code,
        }
        with contextlib.suppress(ApplyError, ValueError, OSError):
            lister = self.lister or _default_lister(self.prefix)
            record["after"] = {"packages": dict(lister())}
        self.journal.append(record)
        self._trim()

    def _trim(self) -> None:
        """Keep the base snapshot (trimmed); drop the per-step ones."""
        from tffix.effects import stash

        stories = {s.run: s for s in runs(self.journal.records())}
        mine = stories.get(self.run)
        if mine is None:
            return
        base_kept = mine.base_state.get("kept")
        others = mine.kept_ids()
        if mine.resumes and mine.resumes in stories:
            others += stories[mine.resumes].kept_ids()
        for kept in dict.fromkeys(others):
            if kept != base_kept:
                stash.drop(self.prefix, kept)
        if isinstance(base_kept, str):
            with contextlib.suppress(ApplyError):  # unpruned, it still restores the same bytes
                stash.prune(self.prefix, base_kept)
