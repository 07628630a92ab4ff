"""How the target interpreter is actually run: the entry points a repair must reach.

Most people who train with TensorFlow never source ``activate``: they run a Jupyter kernel, a
VS Code run configuration, ``venv/bin/python train.py`` from cron or systemd. Each of these
gives TensorFlow a different environment, so each is found here with the environment it
gives, for the TensorFlow check to run *there*:

* ``activated``: a shell that sourced ``bin/activate`` (the environment is obtained by really
  sourcing the script in a clean child shell, ``tffix.probes.activation``);
* ``plain``: ``venv/bin/python`` run without activation (the caller's environment less what
  the venv's activation added);
* ``kernel``: every Jupyter kernelspec whose ``argv`` runs this interpreter, from the user,
  system and ``sys.prefix`` data folders and ``JUPYTER_PATH``, with its ``env``;
* ``vscode``: a project's ``.vscode/settings.json`` that selects this interpreter, with its
  ``python.envFile`` (read by the Python extension's own rules, ``vscode_env_file``) and
  ``terminal.integrated.env.linux``;
* ``cron`` and ``systemd``: jobs and units that run it (``tffix.probes.services``).

Reading only: nothing here starts a kernel or edits a file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import field
from pathlib import Path

from tffix.probes import provenance
from tffix.probes.provenance import Origin
from tffix.record import record

MAX_JSON_BYTES = 1024 * 1024


@record
class EntryPoint:
    """One way the interpreter is started, and what that adds to the environment."""

    kind: str
    """``activated``, ``plain``, ``kernel``, ``vscode``, ``cron`` or ``systemd``."""
    name: str
    """A name a person recognises: the kernel's display name, the settings file, …"""
    source: str | None = None
    """The file that defines it (kernel.json, settings.json), if any."""
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables this entry point sets on top of the environment it starts from."""
    env_file: str | None = None
    """A ``.env`` file the entry point loads (VS Code's ``python.envFile``)."""
    unset: tuple[str, ...] = ()
    """Variables it removes (a ``null`` in ``terminal.integrated.env.linux``)."""
    complete: bool = False
    """*env* is the whole environment the process gets (cron, systemd), not additions to the
    caller's."""
    note: str | None = None
    """Why the entry point could not be judged (a settings file that does not parse); no
    check is run for it."""
    origins: tuple[Origin, ...] = ()
    """Where the variables it sets are written (file and line), for the provenance trace."""


def jupyter_data_dirs(
    environ: Mapping[str, str], home: Path, prefixes: Iterable[Path]
) -> list[Path]:
    """Jupyter's data folders in its own order: JUPYTER_PATH, user, env prefixes, system."""
    out = [Path(p) for p in environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    data_home = environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    out.append(Path(data_home) / "jupyter")
    out.append(home / "Library" / "Jupyter")  # macOS user folder
    out += [Path(p) / "share" / "jupyter" for p in prefixes]
    out += [Path("/usr/local/share/jupyter"), Path("/usr/share/jupyter")]
    return list(dict.fromkeys(out))


def _load_json(path: Path) -> object:
    text = read_text(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


_JSONC = re.compile(r'"(?:\\.|[^"\\\n])*"|//[^\n]*|/\*.*?\*/', re.S)
_TRAILING = re.compile(r'"(?:\\.|[^"\\\n])*"|,(?=\s*[}\]])')


def _strip_jsonc(text: str) -> str:
    """VS Code's settings are JSON with comments and trailing commas; both go (strings are
    kept as written, a comment's line breaks stay)."""

    def comment(m: re.Match[str]) -> str:
        found = m.group(0)
        return found if found.startswith('"') else "\n" * found.count("\n")

    text = _JSONC.sub(comment, text)
    return _TRAILING.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "", text)


def same_python(candidate: str, python: Path, prefix: Path) -> bool:
    """Whether *candidate* (argv[0] of a kernel, a settings path) runs the target."""
    if not candidate:
        return False
    path = Path(os.path.expanduser(candidate))
    if not path.is_absolute():
        return False  # "python", "python3": whatever PATH gives; not this venv by name
    try:
        if path.resolve() == python.resolve():
            return True
    except OSError:
        return False
    # another name for the venv's interpreter (python3 / python3.11 inside the same bin/)
    return path.parent == prefix / "bin" and path.name.startswith("python")


def kernelspecs(data_dirs: Iterable[Path], python: Path, prefix: Path) -> list[EntryPoint]:
    """Every kernelspec whose argv[0] is this interpreter."""
    out: list[EntryPoint] = []
    for folder in data_dirs:
        kernels = folder / "kernels"
        if not kernels.is_dir():
            continue
        for spec in sorted(kernels.glob("*/kernel.json")):
            doc = _load_json(spec)
            if not isinstance(doc, dict):
                continue
            argv = doc.get("argv")
            if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
                continue
            if not same_python(argv[0], python, prefix):
                continue
            env = doc.get("env") if isinstance(doc.get("env"), dict) else {}
            out.append(
                EntryPoint(
                    kind="kernel",
                    name=str(doc.get("display_name") or spec.parent.name),
                    source=str(spec),
                    argv=tuple(argv),
                    env={str(k): str(v) for k, v in (env or {}).items()},
                )
            )
    return out


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def substitute(value: str, *, project: Path, home: Path, environ: Mapping[str, str]) -> str:
    """VS Code's predefined variables in a setting's value: ``${workspaceFolder}``,
    ``${workspaceFolderBasename}``, ``${userHome}``, ``${env:NAME}`` (empty when unset),
    ``${pathSeparator}``, and a leading ``~``. Others are left as written."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("env:"):
            return environ.get(name[4:], "")
        known = {
            "workspaceFolder": str(project),
            "workspaceRoot": str(project),
            "workspaceFolderBasename": project.name,
            "userHome": str(home),
            "pathSeparator": "/",
        }
        return known.get(name, match.group(0))

    out = _VARIABLE.sub(one, value)
    if out == "~" or out.startswith("~/"):
        out = str(home) + out[1:]
    return out


def _interpreter(chosen: str, project: Path) -> str:
    """``python.defaultInterpreterPath`` as the extension reads it: relative to the workspace
    folder, and a folder meaning the interpreter inside it."""
    path = Path(chosen)
    if not path.is_absolute():
        path = project / path
    if path.is_dir():
        for inner in ("bin/python", "bin/python3", "python"):
            if (path / inner).exists():
                return str(path / inner)
    return str(path)


def _terminal_env(raw: object, sub: Callable[[str], str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """``terminal.integrated.env.linux``: (variables set, variables removed by ``null``)."""
    if not isinstance(raw, dict):
        return {}, ()
    env: dict[str, str] = {}
    unset: list[str] = []
    for key, value in raw.items():
        if value is None:
            unset.append(str(key))
        elif isinstance(value, (str, int, float)):
            env[str(key)] = sub(str(value))
    return env, tuple(unset)


def vscode_settings(
    project: Path,
    python: Path,
    prefix: Path,
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> list[EntryPoint]:
    """The project's VS Code settings, when they select this interpreter.

    A settings file that is not valid JSON with comments gives an entry point with a *note*
    (and no check), so the report says why VS Code could not be judged; one that selects
    another interpreter gives nothing.
    """
    environ = environ if environ is not None else {}
    home = home or Path(environ.get("HOME") or os.path.expanduser("~"))
    settings = project / ".vscode" / "settings.json"
    text = read_text(settings)
    if text is None:
        return []
    doc, error = parse_jsonc(text)
    name = f"VS Code ({settings})"
    if error is not None or not isinstance(doc, dict):
        why = error or "its top level is not an object"
        if str(prefix) not in text and prefix.name not in text:
            return []  # broken, but nothing in it names this venv
        return [EntryPoint("vscode", name, str(settings), note=f"{settings}: {why}")]

    def sub(value: str) -> str:
        return substitute(value, project=project, home=home, environ=environ)

    chosen = doc.get("python.defaultInterpreterPath") or doc.get("python.pythonPath")
    if not isinstance(chosen, str) or not chosen.strip():
        return []
    chosen = _interpreter(sub(chosen.strip()), project)
    if not same_python(chosen, python, prefix):
        return []
    raw_file = doc.get("python.envFile")
    if not isinstance(raw_file, str) or not raw_file.strip():
        raw_file = "${workspaceFolder}/.env"  # the extension's default
    env_file = sub(raw_file.strip())
    if not Path(env_file).is_absolute():
        env_file = str(project / env_file)
    env, unset = _terminal_env(doc.get("terminal.integrated.env.linux"), sub)
    return [
        EntryPoint(
            kind="vscode",
            name=name,
            source=str(settings),
            argv=(chosen,),
            env=env,
            unset=unset,
            env_file=env_file,
        )
    ]


def read_text(path: Path) -> str | None:
    """The text of a project file (``provenance.read_text``, at most ``MAX_JSON_BYTES``)."""
    return provenance.read_text(path, MAX_JSON_BYTES)


def parse_jsonc(text: str) -> tuple[object, str | None]:
    """JSON with comments and trailing commas (VS Code's settings): (value, None) or
    (None, "line L column C: what is wrong"). Comments become blanks of the same lines, so
    the position names the line as the user's editor shows it."""
    if text.startswith("\ufeff"):
        text = text[1:]
    cleaned = _strip_jsonc(text)
    try:
        return json.loads(cleaned), None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        return None, f"not valid JSON with comments: {where}: {exc.msg}"
    except RecursionError:
        return None, "nested too deeply to read"


_DOTENV = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def read_dotenv(path: Path) -> dict[str, str]:
    """A ``.env`` file as python-dotenv and VS Code read it (quotes stripped, no expansion)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = _DOTENV.match(line)
        if not match:
            continue
        name, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[name] = value
    return out


# --------------------------------------------------------------------------- VS Code's envFile
#
# The Python extension does not use python-dotenv: it has its own parser (vscode-python,
# src/client/common/variables/environment.ts, ``parseEnvFile``/``parseEnvLine``/
# ``substituteEnvVars``) and merge (environmentVariablesProvider.ts). Its rules, as written
# there:
# * a line is ``NAME=VALUE`` with NAME matching ``[a-zA-Z]\w*``; anything else is skipped,
#   which drops ``# comments`` and also ``export NAME=…`` lines;
# * the value is trimmed; a value wholly in matching single or double quotes loses them and
#   ``\n`` in it becomes a line break; there are no inline comments (``1 # x`` is the value);
# * ``${NAME}`` is replaced by NAME from the lines above, else from the extension's own
#   environment, else by nothing; ``\${`` is not replaced, and a malformed ``${…}`` keeps the
#   value as written; then ``\$`` becomes ``$``;
# * the file's variables win over the environment's, except ``PATH`` and ``PYTHONPATH``,
#   which are the file's value followed by the environment's.

_ENV_LINE = re.compile(r"^\s*([a-zA-Z]\w*)\s*=\s*(.*?)?\s*$")
_SUBST = re.compile(r"\$\{([a-zA-Z]\w*)?([^}\w].*)?\}")


def _env_line(line: str) -> tuple[str, str] | None:
    match = _ENV_LINE.match(line)
    if not match:
        return None
    name, value = match.group(1), match.group(2) or ""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1].replace("\\n", "\n")
    return name, value


def _substitute_env(value: str, local: Mapping[str, str], base: Mapping[str, str]) -> str:
    invalid = False

    def one(m: re.Match[str]) -> str:
        nonlocal invalid
        if m.start() > 0 and value[m.start() - 1] == "\\":
            return m.group(0)
        if m.group(2) or not m.group(1):
            invalid = True
            return m.group(0)
        return local.get(m.group(1)) or base.get(m.group(1)) or ""

    replaced = _SUBST.sub(one, value)
    if not invalid:
        value = replaced
    return value.replace("\\$", "$")


def vscode_env_file(text: str, base: Mapping[str, str]) -> dict[str, str]:
    """The variables of a ``python.envFile``, as the Python extension reads them (*base*: the
    environment its ``${NAME}`` falls back to)."""
    out: dict[str, str] = {}
    for line in text.split("\n"):
        found = _env_line(line)
        if found is not None:
            out[found[0]] = _substitute_env(found[1], out, base)
    return out


def vscode_merge(file_vars: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    """The environment the extension gives a process: the file's variables over *base*,
    ``PATH`` and ``PYTHONPATH`` the file's followed by *base*'s."""
    merged = dict(file_vars)
    for key, value in base.items():
        if key in ("PATH", "PYTHONPATH"):
            continue
        merged.setdefault(key, value)
    for key in ("PATH", "PYTHONPATH"):
        if base.get(key):
            merged[key] = f"{merged[key]}:{base[key]}" if merged.get(key) else base[key]
    return merged


def vscode_origins(ep: EntryPoint, variables: Iterable[str]) -> list[Origin]:
    """The lines of the settings file and the envFile that set one of *variables*."""
    wanted = set(variables)
    out: list[Origin] = []
    if ep.source:
        text = read_text(Path(ep.source)) or ""
        for number, line in enumerate(text.splitlines(), start=1):
            out.extend(
                Origin(var, ep.source, number, line.strip(), "vscode")
                for var in sorted(wanted)
                if re.search(rf'"{re.escape(var)}"\s*:', line)
            )
    if ep.env_file:
        text = read_text(Path(ep.env_file)) or ""
        for number, line in enumerate(text.split("\n"), start=1):
            found = _env_line(line)
            if found is not None and found[0] in wanted:
                out.append(Origin(found[0], ep.env_file, number, line.rstrip("\r"), "dotenv"))
    return out
