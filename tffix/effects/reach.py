"""The actions of the steps that reach past the activate scripts: a kernelspec's ``env``, the
import hook, a line of the user's start-up file.

Each follows the transaction's protocol (``check() -> str | None``, ``apply()``, ``revert()
-> list[str]``) and, once applied, holds the ``Saved`` bytes it replaced (``saved``), which
the journal records so that ``tffix undo`` restores the files exactly, even from another
process. ``for_step`` returns the action for a step of these kinds, or None for any other.
"""

from __future__ import annotations

from pathlib import Path

from tffix.effects import hookfiles, kernelspec, startup
from tffix.effects.safepath import PathEscape
from tffix.effects.saved import Saved
from tffix.envedit import EditOp, EnvEdit
from tffix.errors import ApplyError
from tffix.model import PlanStep, Safety, StepKind

KINDS = (StepKind.KERNELSPEC_ENV, StepKind.IMPORT_HOOK, StepKind.STARTUP_EDIT)


class FileAction:
    """A step that edits files and records the bytes it replaced."""

    def __init__(self, step: PlanStep) -> None:
        self.step = step
        self.saved: Saved | None = None

    def check(self) -> str | None:
        """Why the step cannot run here (None: it can)."""
        return None

    def _apply(self) -> Saved:
        raise NotImplementedError

    def apply(self) -> None:
        """Make the edit; ``ApplyError`` (nothing changed) when it cannot."""
        try:
            self.saved = self._apply()
        except PathEscape as exc:
            raise ApplyError(str(exc)) from exc

    def revert(self) -> list[str]:
        """Put the files back byte for byte; returns what could not be restored."""
        return [] if self.saved is None else self.saved.restore()


_OPS = {
    "set": EditOp.SET,
    "unset": EditOp.UNSET,
    "prepend": EditOp.PREPEND,
    "remove": EditOp.REMOVE,
}


class KernelspecEnv(FileAction):
    """Edit one kernelspec's ``env``."""

    def check(self) -> str | None:
        step = self.step
        if not step.path or step.op not in _OPS or not step.variable:
            return "the step does not name a kernelspec, an operation and a variable"
        if not Path(step.path).is_file():
            return f"{step.path} no longer exists"
        return None

    def _apply(self) -> Saved:
        step = self.step
        op = _OPS[step.op or ""]
        value = step.entry if op in (EditOp.PREPEND, EditOp.REMOVE) else step.value
        edit = EnvEdit(op, step.variable or "", None if op is EditOp.UNSET else value)
        return kernelspec.edit_env(Path(step.path or "").parent, edit)


class ImportHook(FileAction):
    """Add settings to the import hook in the interpreter's site-packages."""

    def __init__(self, step: PlanStep, site_dir: Path) -> None:
        super().__init__(step)
        self.site_dir = site_dir

    def check(self) -> str | None:
        if not self.site_dir.is_dir():
            return f"{self.site_dir} is not a folder"
        if not (self.step.preload or self.step.variable):
            return "the step sets nothing"
        return None

    def _apply(self) -> Saved:
        step = self.step
        set_vars: dict[str, str] = {}
        unset: list[str] = []
        if step.variable and step.op == "unset":
            unset.append(step.variable)
        elif step.variable:
            set_vars[step.variable] = step.value or ""
        return hookfiles.install(
            self.site_dir, set_vars=set_vars, unset_vars=unset, preload=step.preload
        )


class StartupEdit(FileAction):
    """Comment out one line of a user's start-up file (unsafe steps only)."""

    def check(self) -> str | None:
        step = self.step
        if step.safety is not Safety.UNSAFE:
            return "a start-up file is only edited by an unsafe step"
        if not (step.path and step.line and step.before is not None):
            return "the step does not name a file, a line and its text"
        return None

    def _apply(self) -> Saved:
        step = self.step
        return startup.comment_out(Path(step.path or ""), step.line or 0, step.before or "")


def for_step(step: PlanStep, site_dir: Path) -> FileAction | None:
    """The action for *step* when it is one of ``KINDS`` (None otherwise)."""
    if step.kind is StepKind.KERNELSPEC_ENV:
        return KernelspecEnv(step)
    if step.kind is StepKind.IMPORT_HOOK:
        return ImportHook(step, site_dir)
    if step.kind is StepKind.STARTUP_EDIT:
        return StartupEdit(step)
    return None
