"""Where a variable's value comes from: the file and line that set it.

A bad ``LD_LIBRARY_PATH`` or ``CUDA_VISIBLE_DEVICES`` can only be removed at its source, and
users rarely know it: ``~/.bashrc`` line 12, ``/etc/profile.d/cuda.sh``, an HPC module, a
conda env's config vars, a ``.env`` file, a kernelspec's ``env``. ``origins`` reads the usual
places (shell code is read as text, never run) and names every line that assigns or extends
the variable; ``where_set`` is the list of places looked in, so that "not found" can say where
tffix looked.

Each syntax tffix recognises:

* POSIX shells (bash, zsh, sh, ``/etc/profile.d/*.sh``, conda's ``activate.d/*.sh``):
  ``export V=…``, ``V=…`` (followed by ``export V`` or not), ``declare -x V=…``;
* fish: ``set -gx V …`` / ``set -x V …`` / ``set --export V …``;
* csh/tcsh: ``setenv V …``;
* ``/etc/environment`` and ``environment.d/*.conf``: ``V=…``;
* Environment Modules / Lmod: ``prepend_path("V", …)``, ``append_path``, ``setenv("V", …)``
  (Lua) and ``prepend-path V …``, ``append-path``, ``setenv V …`` (Tcl), for the module files
  named in ``_LMFILES_``;
* conda env config vars: ``conda-meta/state`` (``conda env config vars set``);
* Python start-up code (``sitecustomize.py``, ``usercustomize.py``, ``*.pth``):
  ``os.environ["V"] = …``, ``os.environ.setdefault("V", …)``, ``os.putenv("V", …)``;
* JSON: a kernelspec's ``env``; ``.env`` files: ``V=…``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from tffix.record import record

MAX_FILE_BYTES = 1024 * 1024
"""Start-up files are small; a larger one is read only this far."""


@record
class Origin:
    """One place that sets (or extends) a variable."""

    variable: str
    file: str
    line: int | None
    """1-based; None where the format has no lines that matter (a JSON ``env`` map)."""
    text: str
    """The line as written (or ``"V": "value"`` for JSON)."""
    kind: str
    """``shell``, ``login``, ``system``, ``module``, ``conda``, ``python``, ``kernelspec``,
    ``dotenv``, ``activate``; the entry points add ``vscode`` (a ``settings.json`` line),
    ``cron`` (a crontab setting) and ``systemd`` (``Environment=`` or an environment file)."""


def _sh(var: str) -> re.Pattern[str]:
    v = re.escape(var)
    return re.compile(
        rf"^\s*(?:export\s+|declare\s+-x\s+|typeset\s+-x\s+|local\s+-x\s+)?{v}(?:\+)?=|"
        rf"^\s*export\s+(?:\w+\s+)*{v}\b"
    )


def _fish(var: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*set\s+(?:-\w+\s+|--\w+\s+)*{re.escape(var)}\b")


def _csh(var: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*setenv\s+{re.escape(var)}\b")


def _plain(var: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(?:export\s+)?{re.escape(var)}\s*=")


def _module(var: str) -> re.Pattern[str]:
    v = re.escape(var)
    return re.compile(
        rf"""(?:prepend_path|append_path|setenv|pushenv)\s*\(\s*["']{v}["']|"""
        rf"^\s*(?:prepend-path|append-path|setenv|pushenv)\s+(?:--\S+\s+)*{v}\b"
    )


def _python(var: str) -> re.Pattern[str]:
    v = re.escape(var)
    return re.compile(
        rf"""os\.environ\s*\[\s*["']{v}["']\s*\]\s*=|"""
        rf"""os\.environ\.(?:setdefault|update)\s*\(\s*(?:\{{\s*)?["']{v}["']|"""
        rf"""os\.putenv\s*\(\s*["']{v}["']|"""
        rf"""environ\[\s*["']{v}["']\s*\]\s*="""
    )


_SYNTAX = {
    "sh": _sh,
    "fish": _fish,
    "csh": _csh,
    "plain": _plain,
    "module": _module,
    "python": _python,
}


def syntax_of(path: Path) -> str:
    """Which assignment syntax a start-up file uses, from its name."""
    name = path.name
    if name.endswith(".fish"):
        return "fish"
    if name.endswith((".csh", ".tcsh")) or name in {".cshrc", ".tcshrc", ".login"}:
        return "csh"
    if name in {"environment"} or name.endswith(".conf") or name.startswith(".env"):
        return "plain"
    if name.endswith((".py", ".pth")):
        return "python"
    if name.endswith(".lua") or "modulefiles" in path.parts or "modules" in path.parts:
        return "module"
    return "sh"


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """The text of *path* (its first *max_bytes*), or None: absent, unreadable, or not a
    regular file (a FIFO among ``/etc/profile.d/*``, planted as a crontab or in a project,
    must not block the run)."""
    try:
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            return handle.read(max_bytes).decode("utf-8", errors="replace")
    except OSError:
        return None


def scan_file(path: Path, variables: Iterable[str], kind: str) -> list[Origin]:
    """Every line of *path* that sets one of *variables* (comments skipped)."""
    text = read_text(path)
    if text is None:
        return []
    syntax = syntax_of(path)
    patterns = {v: _SYNTAX[syntax](v) for v in variables}
    out: list[Origin] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip()
        if stripped.startswith(("#", "--", "//")) or not stripped:
            continue
        for var, pattern in patterns.items():
            if pattern.search(line):
                out.append(Origin(var, str(path), number, line.rstrip(), kind))
    return out


def scan_json_env(path: Path, variables: Iterable[str], kind: str) -> list[Origin]:
    """The ``env`` map of a JSON file (a kernelspec) or conda's ``conda-meta/state``."""
    text = read_text(path)
    if text is None:
        return []
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return []
    env = doc.get("env") or doc.get("env_vars") if isinstance(doc, dict) else None
    if not isinstance(env, dict):
        return []
    return [
        Origin(v, str(path), None, f"{json.dumps(v)}: {json.dumps(env[v])}", kind)
        for v in variables
        if v in env
    ]


def start_up_files(home: Path, shell: str | None) -> list[tuple[Path, str]]:
    """The shell start-up files that may export a variable, with their kind, in load order."""
    name = Path(shell).name if shell else "bash"
    system: list[tuple[Path, str]] = [(Path("/etc/environment"), "system")]
    system += [(Path("/etc/profile"), "system")]
    system += [(p, "system") for p in sorted(Path("/etc/profile.d").glob("*.sh"))]
    user: list[tuple[Path, str]] = [
        (p, "login") for p in sorted((home / ".config" / "environment.d").glob("*.conf"))
    ]
    if name == "zsh":
        system += [
            (Path(p), "system")
            for p in ("/etc/zshenv", "/etc/zsh/zshenv", "/etc/zshrc", "/etc/zsh/zshrc")
        ]
        user += [(home / f, "shell") for f in (".zshenv", ".zprofile", ".zshrc", ".zlogin")]
    elif name == "fish":
        system += [(Path("/etc/fish/config.fish"), "system")]
        user += [(home / ".config" / "fish" / "config.fish", "shell")]
        user += [(p, "shell") for p in sorted((home / ".config/fish/conf.d").glob("*.fish"))]
    elif name in {"csh", "tcsh"}:
        system += [(Path("/etc/csh.cshrc"), "system"), (Path("/etc/csh.login"), "system")]
        user += [(home / f, "shell") for f in (".tcshrc", ".cshrc", ".login")]
    else:
        system += [(Path("/etc/bash.bashrc"), "system"), (Path("/etc/bashrc"), "system")]
        user += [
            (home / f, "shell") for f in (".bash_profile", ".bash_login", ".profile", ".bashrc")
        ]
    return system + user


def module_files(environ: Mapping[str, str]) -> list[Path]:
    """The module files Environment Modules / Lmod loaded (``_LMFILES_``, colon-separated)."""
    raw = environ.get("_LMFILES_", "")
    if not raw:
        # Lmod splits a long list into _LMFILES__001, _LMFILES__002, …
        parts = sorted(k for k in environ if k.startswith("_LMFILES__"))
        raw = "".join(environ[k] for k in parts)
    return [Path(p) for p in raw.split(":") if p]


def python_start_up(site_dirs: Iterable[Path]) -> list[Path]:
    """``sitecustomize.py``, ``usercustomize.py`` and ``*.pth`` files of these site folders."""
    out: list[Path] = []
    for folder in site_dirs:
        out += [folder / n for n in ("sitecustomize.py", "usercustomize.py")]
        out += sorted(folder.glob("*.pth"))
    return [p for p in out if p.is_file()]


@record
class Places:
    """Where to look: every argument may be empty."""

    home: Path | None = None
    shell: str | None = None
    environ: Mapping[str, str] | None = None
    prefix: Path | None = None
    """The target environment (its activate scripts, conda config, activate.d)."""
    site_dirs: tuple[Path, ...] = ()
    kernelspecs: tuple[Path, ...] = ()
    project: Path | None = None
    """A project folder whose ``.env`` files count."""


def _places(where: Places) -> list[tuple[Path, str, bool]]:
    """(file, kind, is_json) for every place to look, in the order the user's session loads
    them."""
    out: list[tuple[Path, str, bool]] = []
    if where.home is not None:
        out += [(p, k, False) for p, k in start_up_files(where.home, where.shell)]
    out += [(p, "module", False) for p in module_files(where.environ or {})]
    if where.prefix is not None:
        prefix = where.prefix
        out += [(prefix / "conda-meta" / "state", "conda", True)]
        out += [(p, "conda", False) for p in sorted((prefix / "etc/conda/activate.d").glob("*"))]
        out += [
            (prefix / "bin" / s, "activate", False)
            for s in ("activate", "activate.fish", "activate.csh")
        ]
    out += [(p, "python", False) for p in python_start_up(where.site_dirs)]
    out += [(p, "kernelspec", True) for p in where.kernelspecs]
    if where.project is not None:
        out += [(p, "dotenv", False) for p in sorted(where.project.glob(".env*")) if p.is_file()]
    return out


def where_set(where: Places) -> list[str]:
    """The files tffix looks in (existing or not), for "set somewhere else" messages."""
    return [str(p) for p, _, _ in _places(where)]


def origins(variables: Iterable[str], where: Places) -> list[Origin]:
    """Every place among *where* that sets one of *variables*, in load order."""
    wanted = tuple(dict.fromkeys(variables))
    out: list[Origin] = []
    for path, kind, is_json in _places(where):
        if not os.path.isfile(path):
            continue
        if is_json:
            out += scan_json_env(path, wanted, kind)
        else:
            out += scan_file(path, wanted, kind)
    return out
