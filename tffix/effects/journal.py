"""The journal: ``<env>/.tffix/journal.jsonl``, one JSON record per line, fsynced per record.

Records (``type``): ``run-start`` (the state before the run, or ``base`` when it resumes an
interrupted run), ``step-start`` (the state before the step), ``step-done``, ``step-reverted``,
``run-end`` and ``undo``. A run-start without a run-end is an interrupted run. A last line
torn by a power loss does not decode and is ignored. Writing is all this module does; reading
the records into a story is :func:`runs`.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tffix.effects.lock import state_dir
from tffix.errors import ApplyError

JOURNAL_NAME = "journal.jsonl"


def journal_path(prefix: Path) -> Path:
    """Where the journal of the environment at *prefix* lives."""
    return state_dir(prefix) / JOURNAL_NAME


def new_run_id() -> str:
    """A fresh run id: sortable by time, unique."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


class Journal:
    """Appends records durably (write, flush, fsync) to one journal file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: Mapping[str, Any]) -> None:
        """Append *record* (with a timestamp) and make it durable before returning."""
        data = {"time": time.time(), **record}
        line = json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"
        new = not self.path.exists()
        try:
            self._write(line.encode("utf-8"), new)
        except OSError as exc:
            raise ApplyError(
                f"cannot write the journal {self.path}: {exc.strerror or exc}"
            ) from exc

    def _write(self, data: bytes, new: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(28, "short write")
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)  # no torn record left behind
                raise
        finally:
            os.close(fd)
        if new:
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def records(self) -> list[dict[str, Any]]:
        """Every record that decodes, in order."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and "type" in data:
                out.append(data)
        return out


@dataclass(slots=True)
class RunStory:
    """One run as the journal tells it."""

    run: str
    start: dict[str, Any]
    steps_started: list[dict[str, Any]] = field(default_factory=list)
    steps_done: list[dict[str, Any]] = field(default_factory=list)
    steps_reverted: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None
    undone: dict[str, Any] | None = None

    @property
    def interrupted(self) -> bool:
        """True when the run never wrote its run-end (Ctrl-C handled writes one; kill -9 not)."""
        return self.end is None

    @property
    def base_state(self) -> dict[str, Any]:
        """The state before this run (or before the interrupted run it resumed)."""
        return self.start.get("base") or self.start["state"]

    @property
    def step_in_progress(self) -> dict[str, Any] | None:
        """The step-start with neither step-done nor step-reverted after it, if any."""
        finished = {r["step"] for r in self.steps_done + self.steps_reverted}
        open_steps = [r for r in self.steps_started if r["step"] not in finished]
        return open_steps[-1] if open_steps else None

    @property
    def changed(self) -> bool:
        """True when any step of the run was applied and kept (or may have been, if cut off)."""
        kept = {r["step"] for r in self.steps_done} - {r["step"] for r in self.steps_reverted}
        return bool(kept) or self.step_in_progress is not None


def runs(records: list[dict[str, Any]]) -> list[RunStory]:
    """The runs the records tell of, oldest first."""
    stories: dict[str, RunStory] = {}
    for rec in records:
        kind, run = rec.get("type"), rec.get("run")
        if kind == "run-start" and isinstance(rec.get("state"), dict):
            stories[run] = RunStory(run=run, start=rec)
            continue
        story = stories.get(run)
        if story is None:
            continue
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
    return list(stories.values())


class RunRecorder:
    """Journals one run (``tffix.repair.Recorder``); the run-start is written lazily, so a run
    that changes nothing leaves no trace and ``tffix undo`` keeps pointing at the last real one.
    """

    def __init__(
        self,
        journal: Journal,
        *,
        run_id: str | None = None,
        base: Mapping[str, Any] | None = None,
        argv: list[str] | None = None,
    ) -> None:
        self.journal = journal
        self.run = run_id or new_run_id()
        self.base = base
        self.argv = argv or []
        self.started = False

    def start_run(self, state: Mapping[str, Any]) -> None:
        from tffix import __version__

        record: dict[str, Any] = {
            "type": "run-start",
            "run": self.run,
            "state": dict(state),
            "tffix": __version__,
            "argv": self.argv,
            "pid": os.getpid(),
        }
        if self.base is not None:
            record["base"] = dict(self.base)
        self.journal.append(record)
        self.started = True

    def step_start(self, number: int, step: Any, state: Mapping[str, Any]) -> None:
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

    def step_done(self, number: int, findings: Any) -> None:
        self.journal.append(
            {
                "type": "step-done",
                "run": self.run,
                "step": number,
                "findings": [{"id": f.id, "status": str(f.status)} for f in findings],
            }
        )

    def step_reverted(self, number: int, reason: str, problems: Any) -> None:
        self.journal.append(
            {
                "type": "step-reverted",
                "run": self.run,
                "step": number,
                "reason": reason,
                "problems": list(problems),
            }
        )

    def end_run(self, status: str, exit_code: int) -> None:
        self.journal.append(
            {"type": "run-end", "run": self.run, "status": status, "exit_code": exit_code}
        )
