"""The user's shell environment as it was before activating the venv's tffix block. Pure.

Both ``tffix`` (repair) and ``tffix undo`` start from it, so it lives here rather than in
either command: ``from tffix.shellenv import pre_activation_environ``.
"""

from __future__ import annotations

from collections.abc import Mapping


def pre_activation_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """*environ* with tffix's activate-block settings undone (what ``deactivate`` restores).

    The block exports ``_TFFIX_SET_<VAR>`` / ``_TFFIX_OLD_<VAR>``, so the values a user had
    before activating can be rebuilt exactly; re-activating then applies the new block.
    """
    env = dict(environ)
    for key in [k for k in env if k.startswith("_TFFIX_SET_")]:
        name = key[len("_TFFIX_SET_") :]
        flag = env.pop(key)
        old = env.pop(f"_TFFIX_OLD_{name}", "")
        if flag == "1":
            env[name] = old
        elif flag == "0":
            env.pop(name, None)
    return env
