"""Installs and removes distributions in the target environment with its own pip (or uv).

pip always runs as ``<target python> -m pip`` with the user's environment, so their
configuration applies untouched: ``pip.conf``, ``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``,
``PIP_FIND_LINKS``, ``PIP_NO_INDEX``, proxies (``HTTPS_PROXY`` …), certificates.

uv (``uv pip install --python <target python>``) is used when ``uv`` is on ``PATH`` and the
caller allows it. uv does not read ``pip.conf``: the ``PIP_*`` variables above are translated
to uv's flags, and when a pip configuration *file* is in effect tffix uses pip instead, so an
index configured there is never silently ignored.

Reading the installed distributions is here too (it runs the target interpreter), because
effects record it before every change.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from tffix import _subprocess
from tffix.errors import ApplyError

LIST_TIMEOUT = 60.0
_LIST_CODE = r"""
import json, importlib.metadata as md
seen = {}
for dist in md.distributions():
    if getattr(getattr(dist, "_path", None), "name", "").startswith("~"):
        continue  # pip's stash of a distribution it was removing when it was killed
    name = dist.metadata["Name"]
    if name and name not in seen:
        seen[name] = dist.version
print(json.dumps(seen))
"""


def _pip_config_files(environ: Mapping[str, str], prefix: Path) -> list[Path]:
    """pip configuration files that would apply (see pip's ``configuration`` docs)."""
    named = environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:  # pip's documented way to load no configuration file at all
        return []
    if named:
        return [Path(named)]
    home = Path(environ.get("HOME", "~")).expanduser()
    xdg = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    dirs = [Path(d) for d in environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":") if d]
    candidates = [
        *(d / "pip" / "pip.conf" for d in dirs),
        Path("/etc/pip.conf"),
        home / ".pip" / "pip.conf",
        xdg / "pip" / "pip.conf",
        prefix / "pip.conf",
    ]
    return [c for c in candidates if c.is_file()]


def uv_flags(environ: Mapping[str, str]) -> list[str]:
    """uv flags for the ``PIP_*`` index settings in *environ* (uv reads ``UV_*`` itself)."""
    flags: list[str] = []
    if environ.get("PIP_INDEX_URL"):
        flags += ["--index-url", environ["PIP_INDEX_URL"]]
    for url in environ.get("PIP_EXTRA_INDEX_URL", "").split():
        flags += ["--extra-index-url", url]
    for link in environ.get("PIP_FIND_LINKS", "").split():
        flags += ["--find-links", link]
    if environ.get("PIP_NO_INDEX", "").lower() in ("1", "true", "yes", "on"):
        flags.append("--no-index")
    return flags


@dataclass(frozen=True, slots=True)
class PackageManager:
    """pip (or uv) bound to one target interpreter and the user's environment."""

    python: Path
    prefix: Path
    environ: Mapping[str, str]
    allow_uv: bool = True
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)

    def _env(self) -> dict[str, str]:
        env = dict(self.environ)
        env.pop("PYTHONHOME", None)
        env.pop("PYTHONPATH", None)
        env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        return env

    @property
    def uv(self) -> str | None:
        """The uv binary tffix will use, or None (not found, not allowed, or pip.conf in use)."""
        if not self.allow_uv:
            return None
        found = shutil.which("uv", path=self.environ.get("PATH"))
        if found is None or _pip_config_files(self.environ, self.prefix):
            return None
        return found

    @property
    def tool(self) -> str:
        """``uv`` or ``pip``: what installs."""
        return "uv" if self.uv else "pip"

    def installed(self) -> dict[str, str]:
        """Canonical name -> version of every distribution the target interpreter sees."""
        done = _subprocess.run(
            [str(self.python), "-I", "-c", _LIST_CODE], env=self._env(), timeout=LIST_TIMEOUT
        )
        if not done.ok:
            raise ApplyError(
                f"cannot list the distributions of {self.python}: "
                + (done.describe_exit() or done.stderr.strip().splitlines()[-1:] or ["?"])[-1]
            )
        data = json.loads(done.stdout.strip().splitlines()[-1])
        return {str(canonicalize_name(k)): str(v) for k, v in sorted(data.items())}

    def _argv(self, verb: str, args: Sequence[str]) -> list[str]:
        uv = self.uv
        if uv is not None:
            extra = uv_flags(self.environ) if verb == "install" else []
            return [uv, "pip", verb, "--python", str(self.python), *extra, *args]
        yes = ["-y"] if verb == "uninstall" else []
        return [str(self.python), "-m", "pip", verb, *yes, *args]

    def _run(self, verb: str, args: Sequence[str]) -> float:
        argv = self._argv(verb, args)
        shown = " ".join([self.tool, verb, *args])
        self.say(f"  $ {shown}")
        start = time.monotonic()
        with _ticker(f"    {self.tool} is working"):
            done = _subprocess.run(argv, env=self._env())
        seconds = time.monotonic() - start
        if not done.ok:
            tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-6:]
            why = done.describe_exit() or f"exit status {done.returncode}"
            raise ApplyError(f"{shown} failed ({why}):\n    " + "\n    ".join(tail))
        self.say(f"    done in {seconds:.1f}s")
        return seconds

    def install(self, requirements: Sequence[str], *, no_deps: bool = False) -> float:
        """Install *requirements* (PEP 508 strings); returns the package manager's seconds."""
        return self._run("install", [*(["--no-deps"] if no_deps else []), *requirements])

    def uninstall(self, packages: Sequence[str]) -> float:
        """Remove *packages*; returns the package manager's seconds."""
        return self._run("uninstall", list(packages))

    def restore(self, before: Mapping[str, str]) -> list[str]:
        """Bring the installed set back to *before* exactly; returns what still differs.

        Distributions added since are removed; changed or removed ones are installed again at
        their recorded version without dependencies (the recorded set is already complete).
        Reinstalling needs the index (or the user's find-links) to still offer that version.
        """
        problems: list[str] = []
        try:
            now = self.installed()
        except ApplyError as exc:
            return [str(exc)]
        extra = sorted(set(now) - set(before))
        wanted = [f"{n}=={v}" for n, v in sorted(before.items()) if now.get(n) != v]
        for verb, args in (("uninstall", extra), ("install", wanted)):
            if not args:
                continue
            try:
                if verb == "uninstall":
                    self.uninstall(args)
                else:
                    self.install(args, no_deps=True)
            except ApplyError as exc:
                problems.append(str(exc).splitlines()[0])
        try:
            after = self.installed()
        except ApplyError as exc:
            return [*problems, str(exc)]
        diff = [
            f"{n}: {after.get(n, 'absent')} (was {before.get(n, 'absent')})"
            for n in sorted(set(after) | set(before))
            if after.get(n) != before.get(n)
        ]
        return diff and [*problems, *diff]


@contextlib.contextmanager
def _ticker(label: str) -> Iterator[None]:
    """On a terminal, a one-line elapsed-time counter while a long download runs."""
    if not sys.stderr.isatty():
        yield
        return
    stop = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not stop.wait(1.0):
            sys.stderr.write(f"\r{label}… {time.monotonic() - start:.0f}s")
            sys.stderr.flush()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


def environment_python(prefix: Path) -> Path:
    """The interpreter inside an environment folder (``bin/python`` or ``python.exe``)."""
    for name in ("bin/python", "bin/python3", "Scripts/python.exe", "python.exe"):
        if (prefix / name).exists():
            return prefix / name
    return prefix / "bin" / "python"
