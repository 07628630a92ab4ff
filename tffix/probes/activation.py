"""The environment an activated shell really has: source ``bin/activate`` in a clean child.

Modelling activation (``VIRTUAL_ENV``, ``PATH``, tffix's own block) misses what users add to
the script themselves: an ``export CUDA_VISIBLE_DEVICES=-1`` at its end hides every GPU in
every activated shell, and only sourcing the script shows it. The script is the target
environment's own, which tffix trusts as it trusts the interpreter; it is sourced by
``bash --noprofile --norc`` (the user's start-up files are not what is measured here) in a
neutral folder, with the caller's environment, and the result read back with ``env -0``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tffix import _subprocess

TIMEOUT = 15.0

_SCRIPT = 'deactivate nondestructive 2>/dev/null; . "$1" >/dev/null 2>&1 </dev/null; exec env -0'


def sourced_environment(
    prefix: Path, environ: Mapping[str, str], *, shell: str | None = None
) -> tuple[dict[str, str] | None, str | None]:
    """(the environment after ``. PREFIX/bin/activate``, None) or (None, why not)."""
    script = prefix / "bin" / "activate"
    if not script.is_file():
        return None, f"{script} does not exist"
    sh = shell or shutil.which("bash", path=environ.get("PATH")) or shutil.which("bash")
    if sh is None:
        return None, "no bash to source the activate script with"
    with tempfile.TemporaryDirectory(prefix="tffix-activate-") as cwd:
        done = _subprocess.run(
            [sh, "--noprofile", "--norc", "-c", _SCRIPT, "tffix-activate", str(script)],
            env=dict(environ),
            cwd=cwd,
            timeout=TIMEOUT,
        )
    if not done.ok:
        why = done.describe_exit() or f"exit {done.returncode}"
        return None, f"sourcing {script} failed: {why}"
    env: dict[str, str] = {}
    for item in done.stdout.split("\0"):
        name, sep, value = item.partition("=")
        if sep and name:
            env[name] = value
    for noise in ("_", "SHLVL", "PWD", "OLDPWD"):
        if noise in environ:
            env[noise] = environ[noise]
        else:
            env.pop(noise, None)
    return env, None


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str | None]:
    """What activation changed: new or different values, and None for what it unset."""
    out: dict[str, str | None] = {k: v for k, v in after.items() if before.get(k) != v}
    out.update({k: None for k in before if k not in after})
    return out


def deactivated(environ: Mapping[str, str], prefix: Path) -> dict[str, str]:
    """*environ* as ``venv/bin/python`` run by path (cron, systemd, an IDE) would see it.

    When the venv is the caller's active one, activation's own traces are taken out
    (``VIRTUAL_ENV``, its ``bin`` on ``PATH``). Other variables the caller's shell exported
    are kept: a process started by path from that shell inherits them too. A process started
    by cron or systemd has neither, which is why its entry point is checked from a login
    environment, not from this one.
    """
    env = dict(environ)
    if os.path.realpath(env.get("VIRTUAL_ENV", "") or "/nonexistent") == os.path.realpath(prefix):
        env.pop("VIRTUAL_ENV", None)
        env.pop("VIRTUAL_ENV_PROMPT", None)
        bin_dir = str(prefix / "bin")
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if p.rstrip("/") != bin_dir
        )
    return env
