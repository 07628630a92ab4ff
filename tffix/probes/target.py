"""Which environment tffix inspects and repairs, and what kind of environment it is.

The target is named by ``--python PATH``, ``--venv DIR``, ``VIRTUAL_ENV``, ``CONDA_PREFIX`` or a
``.venv`` folder in the current directory, in that order; failing all of those, the ``python3``
on ``PATH``. Everything about packages and TensorFlow is then learned through the target's own
interpreter, never tffix's (tffix may live in a pipx or uv tool environment of its own).
"""

from __future__ import annotations

import enum
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from tffix import _subprocess
from tffix.errors import UsageError
from tffix.record import record

INTERPRETER_TIMEOUT = 30.0
"""Seconds a bare interpreter may take to start; a slow NFS home can take several."""

_QUERY = r"""
import json, os, platform, sys
print(json.dumps({
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "version": platform.python_version(),
    "implementation": platform.python_implementation(),
    "platform": sys.platform,
    "machine": platform.machine(),
    "purelib": __import__("sysconfig").get_paths()["purelib"],
    "platlib": __import__("sysconfig").get_paths()["platlib"],
    "path": [p for p in sys.path if p],
}))
"""


class TargetKind(str, enum.Enum):
    """What kind of Python environment the target is."""

    VENV = "venv"
    """A virtualenv (``python -m venv``, virtualenv, uv, poetry, …): tffix may modify it."""
    CONDA = "conda"
    """A named conda environment: tffix may modify it (edits go to ``etc/conda``)."""
    CONDA_BASE = "conda-base"
    """conda's base environment: never modified without an explicit flag."""
    SYSTEM = "system"
    """A system or global interpreter: never modified without an explicit flag."""

    def __str__(self) -> str:
        return self.value


@record
class Target:
    """The environment under inspection."""

    python: Path
    """The interpreter to run (the target's, as named, not resolved through symlinks)."""
    prefix: Path
    """``sys.prefix`` of that interpreter: the venv or conda folder."""
    kind: TargetKind
    version: str
    implementation: str
    platform: str
    """``sys.platform``: ``linux``, ``win32``, ``darwin``."""
    machine: str
    site_packages: tuple[Path, ...]
    """purelib and platlib (usually one folder)."""
    sys_path: tuple[str, ...]
    named_by: str
    """How the target was chosen: ``--python``, ``--venv``, ``VIRTUAL_ENV``, …"""

    @property
    def is_modifiable(self) -> bool:
        """True when tffix may change this environment without an explicit flag."""
        return self.kind in (TargetKind.VENV, TargetKind.CONDA)

    @property
    def venv(self) -> Path | None:
        """The virtualenv folder, or None when the target is not a virtualenv."""
        return self.prefix if self.kind is TargetKind.VENV else None


def _interpreter_in(folder: Path) -> Path | None:
    for candidate in ("bin/python", "bin/python3", "Scripts/python.exe", "python.exe"):
        path = folder / candidate
        if path.exists() or path.is_symlink():
            return path
    return None


def _check_folder(folder: Path, how: str) -> Path:
    if not folder.exists():
        raise UsageError(f"{how} {folder}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"{how} {folder}: is a file, not a virtualenv folder")
    interp = _interpreter_in(folder)
    if interp is None:
        if not (folder / "pyvenv.cfg").exists() and not (folder / "conda-meta").is_dir():
            raise UsageError(f"{how} {folder}: not a virtualenv (no pyvenv.cfg, no bin/python)")
        raise UsageError(f"{how} {folder}: the environment has no bin/python")
    return interp


def _choose(
    venv: str | None, python: str | None, environ: Mapping[str, str], cwd: Path
) -> tuple[Path, str]:
    if python is not None:
        path = Path(python)
        if not path.exists():
            found = shutil.which(python)
            if found is None:
                raise UsageError(f"--python {python}: no such interpreter")
            path = Path(found)
        if path.is_dir():
            raise UsageError(f"--python {python}: is a folder; use --venv for a virtualenv folder")
        return path, "--python"
    if venv is not None:
        return _check_folder(Path(venv), "--venv"), "--venv"
    for variable in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        value = environ.get(variable)
        if value:
            return _check_folder(Path(value), variable), variable
    local = cwd / ".venv"
    if local.is_dir() and _interpreter_in(local) is not None:
        return _check_folder(local, ".venv"), "./.venv"
    found = shutil.which("python3", path=environ.get("PATH")) or shutil.which(
        "python", path=environ.get("PATH")
    )
    if found is None:
        raise UsageError("no target: activate a virtualenv, or pass --venv DIR or --python PATH")
    return Path(found), "PATH"


def classify(prefix: Path, base_prefix: Path) -> TargetKind:
    """Tell a virtualenv, a conda environment, conda's base and a system Python apart."""
    if (prefix / "pyvenv.cfg").exists() or prefix != base_prefix:
        return TargetKind.VENV
    if (prefix / "conda-meta").is_dir():
        # conda's base holds the other environments and conda itself.
        if (prefix / "condabin").is_dir() or (prefix / "envs").is_dir():
            return TargetKind.CONDA_BASE
        return TargetKind.CONDA
    return TargetKind.SYSTEM


def resolve_target(
    *,
    venv: str | None = None,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Target:
    """Find the target and ask its interpreter about itself; ``UsageError`` when it cannot run."""
    env = dict(os.environ if environ is None else environ)
    try:
        interp, named_by = _choose(venv, python, env, cwd or Path.cwd())
    except OSError as exc:  # a folder on the way that the user may not search (EACCES), ELOOP
        where = exc.filename or venv or python or "the target"
        raise UsageError(f"cannot look into {where}: {exc.strerror or exc}") from exc
    # PYTHONHOME/PYTHONPATH of tffix's own environment must not leak into the target's answer.
    # The script goes in on standard input, not as an argument: a program that is not Python
    # (`--python /bin/ls`) then has no script to echo back into the error message.
    result = _subprocess.run(
        [str(interp), "-I", "-"],
        env=env,
        env_overrides={"PYTHONHOME": None, "PYTHONPATH": None},
        timeout=INTERPRETER_TIMEOUT,
        stdin=_QUERY,
        neutral_cwd=True,
    )
    if not result.ok:
        last = (result.stderr.strip().splitlines() or [""])[-1].strip()[:200]
        why = result.describe_exit() or last or f"exit status {result.returncode}"
        raise UsageError(f"the interpreter {interp} does not run: {why}")
    try:
        info = json.loads(result.stdout.strip().splitlines()[-1])
        if not isinstance(info, dict):
            raise TypeError("not an object")
        prefix = Path(info["prefix"])
        site = tuple(dict.fromkeys(Path(info[k]) for k in ("purelib", "platlib")))
        return Target(
            python=interp,
            prefix=prefix,
            kind=classify(prefix, Path(info["base_prefix"])),
            version=str(info["version"]),
            implementation=str(info["implementation"]),
            platform=str(info["platform"]),
            machine=str(info["machine"]),
            site_packages=site,
            sys_path=tuple(str(p) for p in info["path"]),
            named_by=named_by,
        )
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise UsageError(
            f"{interp} is not a Python interpreter (it did not answer like one)"
        ) from exc
    except OSError as exc:
        raise UsageError(
            f"cannot look into {exc.filename or interp}: {exc.strerror or exc}"
        ) from exc
