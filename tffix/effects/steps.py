"""The effects of plan steps: each with ``check() -> str | None``, ``apply()``, ``revert()``.

``Workspace`` binds one modifiable environment (a virtualenv or a conda environment) to the
user's pip configuration; it captures the state the journal records (installed distributions,
the bytes of every file tffix may write), restores such a state, and makes the action for a
plan step. Actions record what they need to undo themselves when they apply.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from tffix import activate_text
from tffix.effects import activate, reach, stash
from tffix.effects.pip import PackageManager
from tffix.envedit import EditOp, EnvEdit
from tffix.errors import ApplyError
from tffix.model import PlanStep, StepKind
from tffix.record import record

_ENV_OPS = {
    StepKind.ENV_SET: EditOp.SET,
    StepKind.ENV_UNSET: EditOp.UNSET,
    StepKind.ENV_PATH_PREPEND: EditOp.PREPEND,
    StepKind.ENV_PATH_REMOVE: EditOp.REMOVE,
}


def edit_for(step: PlanStep) -> EnvEdit:
    """The environment edit an env-* plan step stands for."""
    op = _ENV_OPS[step.kind]
    value = step.entry if op in (EditOp.PREPEND, EditOp.REMOVE) else step.value
    return EnvEdit(op, step.variable or "", None if op is EditOp.UNSET else value)


def encode_files(files: Mapping[str, bytes | None]) -> dict[str, str | None]:
    """File bytes as JSON-safe base64 strings."""
    return {k: None if v is None else base64.b64encode(v).decode() for k, v in files.items()}


def decode_files(files: Mapping[str, str | None]) -> dict[str, bytes | None]:
    """The inverse of :func:`encode_files`."""
    return {k: None if v is None else base64.b64decode(v) for k, v in files.items()}


@record
class Workspace:
    """One environment tffix may change."""

    prefix: Path
    conda: bool
    pip: PackageManager
    captured: list[dict[str, Any]] = field(default_factory=list, compare=False, repr=False)
    """The last state :meth:`capture` recorded (the one a step about to apply reverts to)."""
    site_dir: Path | None = None
    """The interpreter's site-packages, where the import hook goes (None: no hook steps)."""
    outside: list[tuple[str, str]] = field(default_factory=list, compare=False, repr=False)
    """Files outside the environment the plan's steps may change (kernelspecs, the user's
    start-up files), as (folder, name): their bytes are journaled with every state."""
    ahead: list[stash.Ahead] = field(default_factory=list, compare=False, repr=False)
    """A snapshot started before the first capture needs it (:meth:`keep_ahead`): at most
    one, the list being the slot a frozen record can change."""

    def files(self) -> list[str]:
        """The files tffix may write here (relative to the prefix)."""
        names = list(activate.managed_files(self.prefix, conda=self.conda))
        if self.site_dir is not None:
            names += reach.hook_file_names(self.prefix, self.site_dir)
        return names

    def reach(self, plan: Sequence[PlanStep]) -> None:
        """Journal the files outside the environment that *plan*'s steps may change."""
        self.outside[:] = list(dict.fromkeys([*self.outside, *reach.outside_files(plan)]))

    def edits(self) -> tuple[EnvEdit, ...]:
        """The environment edits currently recorded in the tffix block."""
        return activate.current_edits(self.prefix, conda=self.conda)

    def capture(self) -> dict[str, Any]:
        """The state the journal records: distributions, file bytes (JSON-safe), and the kept
        files that put the distributions back without the network (``tffix.effects.stash``)."""
        state = {
            "packages": self.pip.installed(),
            "files": encode_files(activate.read_bytes(self.prefix, self.files())),
            "kept": self._keep(),
            "tilde": stash.tilde_entries(self.prefix),
        }
        if self.outside:
            state["outside"] = reach.capture_outside(self.outside)
        self.captured[:] = [state]
        return state

    def keep_ahead(self) -> None:
        """Start linking the distributions' files for the first capture now, in a thread."""
        self.end_ahead()
        self.ahead.append(stash.Ahead(self.prefix))

    def end_ahead(self) -> None:
        """Drop a snapshot started ahead that no capture took."""
        if self.ahead:
            self.ahead.pop().discard()

    def _keep(self) -> str:
        kept = self.ahead.pop().take() if self.ahead else None
        return kept if kept is not None else stash.keep(self.prefix)

    def state_for_step(self) -> dict[str, Any]:
        """The state captured just before a step applies (captured now if it was not)."""
        if self.captured and self.captured[0]["packages"] == self.pip.installed():
            return self.captured[0]
        return self.capture()

    def restore(
        self,
        state: Mapping[str, Any],
        *,
        touch: Collection[str] | None = None,
        files: bool = True,
    ) -> list[str]:
        """Bring the environment back to *state*; returns what could not be restored.

        *touch*: the distributions that may be changed (default: those that differ from
        *state*, except pip itself, which only a run that named it may remove).
        """
        problems = []
        if files:
            recorded = decode_files(state.get("files", {}))
            outside = stash.leading_outside(self.prefix, recorded)
            problems += [
                f"{self.prefix / n}: leads outside {self.prefix}; not restored" for n in outside
            ]
            inside = {n: b for n, b in recorded.items() if n not in outside}
            problems += activate.restore_bytes(self.prefix, inside)
            if "outside" in state:
                problems += reach.restore_outside(state["outside"])
        if "packages" in state:
            problems += stash.restore_packages(self.pip, self.prefix, state, touch=touch)
        return problems

    def action(self, step: PlanStep) -> Action:
        """The action that applies *step* here."""
        if step.kind is StepKind.PIP_INSTALL:
            return PipInstall(self, step)
        if step.kind is StepKind.PIP_UNINSTALL:
            return PipUninstall(self, step)
        if step.kind in _ENV_OPS:
            return EnvAction(self, step)
        if step.kind in reach.KINDS:
            self.reach([step])
            found = reach.for_step(step, self.site_dir or self.prefix)
            if found is not None:
                return found  # type: ignore[return-value]  # same check/apply/revert protocol
        return Manual(step)


class Action:
    """The protocol every step's effect follows (conda's verify/execute/reverse)."""

    step: PlanStep

    def check(self) -> str | None:
        """Why this step cannot or need not be applied now, or None."""
        return None

    def apply(self) -> None:
        """Change the environment; ``ApplyError`` when it did not work."""

    def revert(self) -> list[str]:
        """Undo :meth:`apply` (also a partial one); returns what could not be undone."""
        return []


class Manual(Action):
    """A step only a person can take: never applied."""

    def __init__(self, step: PlanStep) -> None:
        self.step = step

    def check(self) -> str | None:
        return "a manual step: run its commands yourself"


class PipInstall(Action):
    """``pip install`` of exact requirements."""

    def __init__(self, ws: Workspace, step: PlanStep) -> None:
        self.ws, self.step = ws, step
        self.before: dict[str, Any] | None = None

    def check(self) -> str | None:
        if not self.step.requirements:
            return "the step names no requirement"
        for text in self.step.requirements:
            try:
                Requirement(text)
            except InvalidRequirement as exc:
                return f"not a valid requirement {text!r}: {exc}"
            if text.lstrip().startswith("-"):
                return f"refusing a pip option as a requirement: {text!r}"
        return None

    def apply(self) -> None:
        self.before = self.ws.state_for_step()
        self.ws.pip.install(self.step.requirements)

    def revert(self) -> list[str]:
        if self.before is None:
            return []
        return self.ws.restore(self.before, touch=_changed(self.ws, self.before), files=False)


class PipUninstall(Action):
    """``pip uninstall`` of the named distributions that are installed."""

    def __init__(self, ws: Workspace, step: PlanStep) -> None:
        self.ws, self.step = ws, step
        self.before: dict[str, Any] | None = None

    def _present(self) -> list[str]:
        installed = self.ws.pip.installed()
        return [p for p in self.step.packages if str(canonicalize_name(p)) in installed]

    def check(self) -> str | None:
        if not self.step.packages:
            return "the step names no package"
        if not self._present():
            return "none of " + ", ".join(self.step.packages) + " is installed"
        return None

    def apply(self) -> None:
        self.before = self.ws.state_for_step()
        installed = self.before["packages"]
        present = [p for p in self.step.packages if str(canonicalize_name(p)) in installed]
        if present:
            self.ws.pip.uninstall(present)

    def revert(self) -> list[str]:
        if self.before is None:
            return []
        return self.ws.restore(self.before, touch=_changed(self.ws, self.before), files=False)


def _changed(ws: Workspace, state: Mapping[str, Any]) -> list[str]:
    """Distributions whose version differs now from *state* (pip included: this process saw
    the step change it)."""
    try:
        now = ws.pip.installed()
    except ApplyError:
        return sorted(state["packages"])
    before = state["packages"]
    return sorted(n for n in set(now) | set(before) if now.get(n) != before.get(n))


class EnvAction(Action):
    """An environment edit, written into the tffix block of the activate scripts."""

    def __init__(self, ws: Workspace, step: PlanStep) -> None:
        self.ws, self.step = ws, step
        self.edit = edit_for(step)
        self.before: dict[str, bytes | None] | None = None

    def check(self) -> str | None:
        try:
            activate_text.check_edit(self.edit)
        except ApplyError as exc:
            return str(exc)
        if not self.ws.conda and not self.ws.files():
            return f"{self.ws.prefix} has no activate script to record the setting in"
        current = self.ws.edits()
        if activate_text.merge(current, self.edit) == current:
            return "already set in the activate scripts"
        return None

    def apply(self) -> None:
        self.before = activate.read_bytes(self.ws.prefix, self.ws.files())
        new = activate_text.merge(self.ws.edits(), self.edit)
        activate.write_edits(self.ws.prefix, new, conda=self.ws.conda)

    def revert(self) -> list[str]:
        return [] if self.before is None else activate.restore_bytes(self.ws.prefix, self.before)


ENVIRONMENT_FILES_ONLY = frozenset(
    {
        StepKind.ENV_SET,
        StepKind.ENV_UNSET,
        StepKind.ENV_PATH_PREPEND,
        StepKind.ENV_PATH_REMOVE,
        StepKind.KERNELSPEC_ENV,
        StepKind.STARTUP_EDIT,
    }
)
"""Step kinds that write only files an entry point's environment is built from, none that a
Python interpreter reads when it starts or imports TensorFlow:

- the env-* steps write the tffix block of the activate scripts (``bin/activate*``, conda's
  ``etc/conda/activate.d``), read when a shell sources them;
- a kernelspec edit writes one ``kernel.json``, read by Jupyter when it starts the kernel;
- a start-up edit comments out a line of a shell's start-up file or of an environment file
  (``.env``, ``environment.d``), read by shells, editors and service managers.

The rest do write such files: pip steps the site-packages (distributions, ``.pth`` files,
the libraries TensorFlow loads), the import-hook step a module and ``.pth`` file there. A kind
not named here counts as one of them."""


def hook_unsets(step: PlanStep) -> frozenset[str] | None:
    """The variables an import-hook *step* makes TensorFlow's import unset, when that is all
    it does (None for any other step): a process whose environment sets none of them imports
    TensorFlow as before (``tffix.hook``: the module pops them, preloads nothing)."""
    unset_only = step.op == "unset" and not step.preload and step.value is None
    if step.kind is StepKind.IMPORT_HOOK and unset_only and step.variable:
        return frozenset({step.variable})
    return None


def changes_interpreter_files(kind: StepKind) -> bool:
    """Whether a step of *kind* may change a file the interpreter itself reads
    (``ENVIRONMENT_FILES_ONLY`` names the kinds that cannot)."""
    return kind not in ENVIRONMENT_FILES_ONLY


class Noted(Action):
    """*inner*, noting each apply and revert that may have changed the interpreter's files in
    *changed*, an import hook that only unsets variables in *unsets*, and the others in
    *edited* (``tffix.probes.entrycheck.Looks``), as it runs."""

    def __init__(
        self,
        inner: Action,
        changed: list[str],
        edited: list[str],
        unsets: list[tuple[str, frozenset[str]]] | None = None,
    ) -> None:
        self.inner, self.step = inner, inner.step
        self.changed, self.edited, self.unsets = changed, edited, unsets

    def _note(self, what: str) -> None:
        text = f"{what} {self.step.kind}: {self.step.summary}"
        variables = hook_unsets(self.step)
        if variables is not None and self.unsets is not None:
            self.unsets.append((text, variables))  # applied or rolled back: the same delta
        elif changes_interpreter_files(self.step.kind):
            self.changed.append(text)
        else:
            self.edited.append(text)

    def check(self) -> str | None:
        return self.inner.check()

    def apply(self) -> None:
        self._note("applied")  # before: a failed apply may have changed files too
        self.inner.apply()

    def revert(self) -> list[str]:
        self._note("rolled back")
        return self.inner.revert()
