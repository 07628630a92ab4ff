"""Install, extend and remove the import hook's two files in an interpreter's site-packages.

The hook (``tffix.hook``) is ``tffix-hook.pth`` plus ``_tffix_hook.py``; both live in the
target's own site-packages, so every process of that interpreter (a kernel, an IDE's run,
cron, ``venv/bin/python train.py``) gets the settings when it imports TensorFlow, activated
or not. Settings accumulate: installing the hook for ``CUDA_VISIBLE_DEVICES`` when it already
preloads cuDNN keeps the preload. A ``_tffix_hook.py`` that tffix did not write is never
overwritten. Every write stays inside the site folder (``safepath``) and returns the
``Saved`` bytes that undo restores exactly (an absent file is removed again).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import field
from pathlib import Path

from tffix import hook
from tffix.effects import saved
from tffix.effects.saved import Saved
from tffix.errors import ApplyError
from tffix.model import frozen_map
from tffix.record import record


@record
class HookSettings:
    """What the hook does when TensorFlow is imported."""

    set_vars: Mapping[str, str] = field(default_factory=frozen_map)
    unset_vars: tuple[str, ...] = ()
    preload: tuple[str, ...] = ()

    def merged(self, other: HookSettings) -> HookSettings:
        """*other*'s settings added to these (a variable set by one and unset by the other
        takes *other*'s choice; preloads keep their order, first seen first)."""
        set_vars = {k: v for k, v in self.set_vars.items() if k not in other.unset_vars}
        set_vars.update(other.set_vars)
        unset = [v for v in self.unset_vars if v not in other.set_vars]
        unset += [v for v in other.unset_vars if v not in unset]
        preload = tuple(dict.fromkeys([*self.preload, *other.preload]))
        return HookSettings(frozen_map(set_vars), tuple(unset), preload)


_LINE = re.compile(r"^(SET|UNSET|PRELOAD) = (.*)$", re.M)


def parse_module(text: str) -> HookSettings | None:
    """The settings of a ``_tffix_hook.py`` tffix wrote (None: not ours, or unreadable)."""
    if not hook.is_ours(text):
        return None
    try:
        values = {name: json.loads(literal) for name, literal in _LINE.findall(text)}
    except json.JSONDecodeError:
        return None
    set_vars, unset, preload = values.get("SET"), values.get("UNSET"), values.get("PRELOAD")
    if not (
        isinstance(set_vars, dict)
        and isinstance(unset, list)
        and isinstance(preload, list)
        and all(isinstance(v, str) for v in [*set_vars.values(), *unset, *preload])
    ):
        return None
    return HookSettings(frozen_map(set_vars), tuple(unset), tuple(preload))


def current(site_dir: Path) -> HookSettings | None:
    """The installed hook's settings (None when there is none)."""
    data = saved.read(site_dir, hook.MODULE_NAME)
    return None if data is None else parse_module(data.decode("utf-8", errors="replace"))


def install(
    site_dir: Path,
    *,
    set_vars: Mapping[str, str] | None = None,
    unset_vars: Sequence[str] = (),
    preload: Sequence[str] = (),
) -> Saved:
    """Add these settings to the hook in *site_dir* (installing it when absent).

    Returns the bytes both files held before. ``ApplyError`` when a ``_tffix_hook.py`` is
    there that tffix did not write, or a file cannot be written.
    """
    before = {name: saved.read(site_dir, name) for name in (hook.PTH_NAME, hook.MODULE_NAME)}
    old_module = before[hook.MODULE_NAME]
    have = HookSettings()
    if old_module is not None:
        parsed = parse_module(old_module.decode("utf-8", errors="replace"))
        if parsed is None:
            raise ApplyError(
                f"{site_dir / hook.MODULE_NAME} exists and was not written by tffix; "
                "tffix leaves it alone"
            )
        have = parsed
    want = have.merged(
        HookSettings(frozen_map(dict(set_vars or {})), tuple(unset_vars), tuple(preload))
    )
    try:
        text = hook.render_module(
            set_vars=want.set_vars, unset_vars=want.unset_vars, preload=want.preload
        )
    except ValueError as exc:
        raise ApplyError(str(exc)) from exc
    record = Saved(str(site_dir), frozen_map(before))
    try:
        saved.write(site_dir, hook.MODULE_NAME, text.encode("utf-8"))
        saved.write(site_dir, hook.PTH_NAME, hook.PTH_TEXT.encode("utf-8"))
    except OSError as exc:
        problems = record.restore()
        raise ApplyError(
            f"cannot write the import hook in {site_dir}: {exc.strerror}"
            + (f" (and could not restore: {'; '.join(problems)})" if problems else "")
        ) from exc
    return record


def remove(site_dir: Path) -> Saved:
    """Remove the hook tffix installed in *site_dir* (a foreign ``_tffix_hook.py`` stays)."""
    before = {name: saved.read(site_dir, name) for name in (hook.PTH_NAME, hook.MODULE_NAME)}
    module = before[hook.MODULE_NAME]
    if module is not None and parse_module(module.decode("utf-8", errors="replace")) is None:
        raise ApplyError(f"{site_dir / hook.MODULE_NAME} was not written by tffix")
    for name in before:
        saved.write(site_dir, name, None)
    return Saved(str(site_dir), frozen_map(before))
