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
  ``python.envFile`` and ``terminal.integrated.env.linux``.

Reading only: nothing here starts a kernel or edits a file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

MAX_JSON_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class EntryPoint:
    """One way the interpreter is started, and what that adds to the environment."""

    kind: str
    """``activated``, ``plain``, ``kernel`` or ``vscode``."""
    name: str
    """A name a person recognises: the kernel's display name, the settings file, …"""
    source: str | None = None
    """The file that defines it (kernel.json, settings.json), if any."""
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables this entry point sets on top of the environment it starts from."""
    env_file: str | None = None
    """A ``.env`` file the entry point loads (VS Code's ``python.envFile``)."""


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


def _load_json(path: Path, *, comments: bool = False) -> object:
    try:
        with path.open("rb") as handle:
            text = handle.read(MAX_JSON_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    if comments:
        text = _strip_jsonc(text)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


_JSONC = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', re.S)


def _strip_jsonc(text: str) -> str:
    """VS Code's settings are JSON with comments and trailing commas."""
    text = _JSONC.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "", text)
    return re.sub(r",(\s*[}\]])", r"\1", text)


def _same_python(candidate: str, python: Path, prefix: Path) -> bool:
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
            if not _same_python(argv[0], python, prefix):
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


def vscode_settings(project: Path, python: Path, prefix: Path) -> list[EntryPoint]:
    """The project's VS Code settings, when they select this interpreter."""
    settings = project / ".vscode" / "settings.json"
    doc = _load_json(settings, comments=True)
    if not isinstance(doc, dict):
        return []
    chosen = doc.get("python.defaultInterpreterPath") or doc.get("python.pythonPath")
    if isinstance(chosen, str):
        chosen = chosen.replace("${workspaceFolder}", str(project))
        if not Path(chosen).is_absolute():
            chosen = str(project / chosen)
    if not (isinstance(chosen, str) and _same_python(chosen, python, prefix)):
        return []
    env_file = doc.get("python.envFile")
    if isinstance(env_file, str):
        env_file = env_file.replace("${workspaceFolder}", str(project))
    else:
        env_file = str(project / ".env") if (project / ".env").is_file() else None
    terminal = doc.get("terminal.integrated.env.linux")
    env = {str(k): str(v) for k, v in terminal.items()} if isinstance(terminal, dict) else {}
    return [
        EntryPoint(
            kind="vscode",
            name=f"VS Code ({settings})",
            source=str(settings),
            argv=(chosen,),
            env=env,
            env_file=env_file,
        )
    ]


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
