"""The actions of the steps that reach past the activate scripts: a kernelspec's ``env``, the
import hook, a line of the user's start-up file.

Each follows the transaction's protocol (``check() -> str | None``, ``apply()``, ``revert()
-> list[str]``) and, once applied, holds the ``Saved`` bytes it replaced (``saved``), which
the journal records so that ``tffix undo`` restores the files exactly, even from another
process. ``for_step`` returns the action for a step of these kinds, or None for any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tffix import hook
from tffix.effects import hookfiles, kernelspec, saved, startup
from tffix.effects.safepath import PathEscape
from tffix.effects.saved import Saved
from tffix.envedit import EditOp, EnvEdit
from tffix.errors import ApplyError, InputError
from tffix.model import PlanStep, Safety, StepKind, frozen_map

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


# --------------------------------------------------------------------------- journal state

STARTUP_NAMES = frozenset(
    {
        ".bashrc",
        ".bash_profile",
        ".bash_login",
        ".profile",
        ".zshrc",
        ".zshenv",
        ".zprofile",
        ".zlogin",
        "config.fish",
        ".cshrc",
        ".tcshrc",
        ".login",
    }
)
"""The user start-up files a startup-edit step may change (and undo may write back)."""


def allowed(root: str, name: str) -> bool:
    """Whether a journal may name ``root/name`` as a file tffix wrote outside the venv: a
    kernelspec's ``kernel.json`` in a ``kernels/<name>`` folder, or a start-up file (or its
    backup). The journal is untrusted: undo never writes anywhere else."""
    folder = Path(root)
    if not folder.is_absolute() or "/" in name or name in ("", ".", ".."):
        return False
    if name == kernelspec.SPEC_FILE:
        return folder.parent.name == "kernels"
    base = name.removesuffix(startup.BACKUP_SUFFIX)
    return base in STARTUP_NAMES or startup.is_env_file_name(base, folder)


def outside_files(plan: Sequence[PlanStep]) -> list[tuple[str, str]]:
    """(folder, name) of every file outside the venv the steps of *plan* may change."""
    out: list[tuple[str, str]] = []
    for step in plan:
        if not step.path:
            continue
        path = Path(step.path)
        if step.kind is StepKind.KERNELSPEC_ENV:
            out.append((str(path.parent), path.name))
        elif step.kind is StepKind.STARTUP_EDIT:
            out += [
                (str(path.parent), path.name),
                (str(path.parent), path.name + startup.BACKUP_SUFFIX),
            ]
    return [f for f in dict.fromkeys(out) if allowed(*f)]


def capture_outside(files: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The journal's record of those files' bytes now (None: absent)."""
    by_root: dict[str, dict[str, bytes | None]] = {}
    for root, name in files:
        try:
            data = saved.read(Path(root), name)
        except (OSError, PathEscape):
            continue  # unreadable or a link out: no step will write it either
        by_root.setdefault(root, {})[name] = data
    return [Saved(root, frozen_map(found)).to_json() for root, found in by_root.items()]


def check_outside(value: object) -> list[Saved]:
    """The recorded outside files, checked (``InputError`` for a record undo must not act
    on: a file that is not a kernelspec or a start-up file)."""
    if not isinstance(value, list):
        raise InputError("`outside` must be a list")
    records = [Saved.from_json(item) for item in value]
    for record in records:
        for name in record.files:
            if not allowed(record.root, name):
                raise InputError(f"{record.root}/{name[:60]} is not a file tffix writes")
    return records


def restore_outside(value: object) -> list[str]:
    """Write the recorded outside files back; returns what could not be restored."""
    try:
        records = check_outside(value)
    except InputError as exc:
        return [str(exc)]
    return [p for record in records for p in record.restore()]


def hook_file_names(prefix: Path, site_dir: Path) -> list[str]:
    """The import hook's two files, relative to *prefix* (empty when the site folder is not
    inside it)."""
    try:
        rel = site_dir.relative_to(prefix)
    except ValueError:
        return []
    return [str(rel / hook.PTH_NAME), str(rel / hook.MODULE_NAME)]


def outside_differences(value: object) -> list[str]:
    """The recorded outside files whose bytes differ from the record now (or the reason the
    record is refused)."""
    try:
        records = check_outside(value)
    except InputError as exc:
        return [str(exc)]
    out: list[str] = []
    for record in records:
        for name, data in record.files.items():
            path = Path(record.root) / name
            try:
                now = saved.read(Path(record.root), name)
            except (OSError, PathEscape) as exc:
                out.append(f"{path}: {exc}")
                continue
            if now != data:
                out.append(str(path))
    return out
