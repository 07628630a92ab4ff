"""Installs and removes distributions in the target environment with its own pip (or uv).

pip always runs as ``<target python> -m pip`` with the user's environment, so their
configuration applies untouched: ``pip.conf``, ``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``,
``PIP_FIND_LINKS``, ``PIP_NO_INDEX``, proxies (``HTTPS_PROXY`` …), certificates.

Which one installs (``PackageManager.choice``, said in the plan with the reason):

1. uv (``uv pip install --python <target python>``) when ``uv`` is on ``PATH``, the caller
   allows it and no pip configuration *file* applies (uv does not read ``pip.conf``; the
   ``PIP_*`` variables are translated to uv's flags);
2. otherwise pip, when the environment has it;
3. otherwise (a venv made by ``uv venv`` has no pip) uv, with the index settings of the pip
   configuration files and ``PIP_*`` variables translated to uv's flags (settings uv has no
   flag for are named in the reason);
4. otherwise ``python -m ensurepip`` first, then pip.

Reading the installed distributions is here too, because effects record it before every
change: the first listing asks the target interpreter, later ones read the metadata on its
``sys.path`` directly while that path cannot have changed (``PackageManager.installed``).
No listing runs pip or uv. The package-manager runs kept for reading are ``tffix undo``'s own
check (``pip freeze`` beside an import of each restored module, in
``tffix.commands.undo.differences``): it exists to compare what pip and an import see with
the metadata, so reading the metadata instead would check nothing.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import field, replace
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from tffix import _subprocess, shellquote
from tffix.errors import ApplyError
from tffix.record import record
from tffix.term import clean

LIST_TIMEOUT = 60.0
_LIST_CODE = r"""
import json, sys, importlib.metadata as md
seen = {}
for dist in md.distributions():
    if getattr(getattr(dist, "_path", None), "name", "").startswith("~"):
        continue  # pip's stash of a distribution it was removing when it was killed
    name = dist.metadata["Name"]
    if name and name not in seen:
        seen[name] = dist.version
print(json.dumps({"dists": seen, "path": sys.path}))
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


_TRUE = ("1", "true", "yes", "on")
_TRANSLATED = {"index-url", "extra-index-url", "find-links", "no-index", "trusted-host"}
_HARMLESS = {
    "disable-pip-version-check",
    "no-cache-dir",
    "no-compile",
    "quiet",
    "verbose",
    "timeout",
}


def uv_flags(environ: Mapping[str, str]) -> list[str]:
    """uv flags for the ``PIP_*`` index settings in *environ* (uv reads ``UV_*`` itself)."""
    return _flags(_env_settings(environ))


def _env_settings(environ: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for key in _TRANSLATED:
        value = environ.get("PIP_" + key.upper().replace("-", "_"))
        if value:
            out[key] = value
    return out


def _flags(settings: Mapping[str, str]) -> list[str]:
    flags: list[str] = []
    if settings.get("index-url"):
        flags += ["--index-url", settings["index-url"]]
    for url in settings.get("extra-index-url", "").split():
        flags += ["--extra-index-url", url]
    for link in settings.get("find-links", "").split():
        flags += ["--find-links", link]
    if settings.get("no-index", "").lower() in _TRUE:
        flags.append("--no-index")
    for host in settings.get("trusted-host", "").split():
        flags += ["--allow-insecure-host", host]
    return flags


def pip_settings(environ: Mapping[str, str], prefix: Path) -> tuple[dict[str, str], list[str]]:
    """pip's index settings as pip would read them (files in order, then ``PIP_*``), and the
    keys of the files that have no uv flag. Unreadable files are skipped."""
    settings: dict[str, str] = {}
    untranslated: list[str] = []
    for path in _pip_config_files(environ, prefix):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            untranslated.append(f"{path} (unreadable)")
            continue
        for section in ("global", "install"):
            if not parser.has_section(section):
                continue
            for key, value in parser.items(section):
                key = key.replace("_", "-")
                if key in _TRANSLATED:
                    settings[key] = " ".join(value.split())
                elif key not in _HARMLESS:
                    untranslated.append(f"{key} ({path})")
    settings.update(_env_settings(environ))
    return settings, untranslated


@record
class Choice:
    """Which tool installs, and why (shown with the plan)."""

    tool: str
    """``uv``, ``pip``, or ``ensurepip`` (pip, after ``python -m ensurepip``)."""
    why: str
    uv: str | None = None
    flags: tuple[str, ...] = ()
    """uv's index flags (the user's pip settings, translated)."""


RAW_PROGRESS_PIP = (24, 1)
"""The first pip with ``--progress-bar raw`` ("Progress DONE of TOTAL" lines on stdout)."""
REPORT_PIP = (23, 0)
"""The first pip whose ``install --dry-run --report`` is stable (added in 22.2)."""
DRY_RUN_TIMEOUT = 20.0
"""At most this long for pip to resolve what a plan would download (it fetches metadata)."""
SIZE_TIMEOUT = 5.0
"""At most this long for the sizes of the files it would download (HTTP ``HEAD``)."""


def pip_version(prefix: Path) -> tuple[int, ...] | None:
    """The version of the pip installed at *prefix*, from its ``dist-info`` folder name."""
    patterns = ("lib/python*/site-packages/pip-*.dist-info", "Lib/site-packages/pip-*.dist-info")
    for pattern in patterns:
        for info in prefix.glob(pattern):
            text = info.name.removeprefix("pip-").removesuffix(".dist-info")
            parts = [int(p) for p in text.split(".")[:3] if p.isdigit()]
            if parts:
                return tuple(parts)
    return None


def _path_stamp(prefix: Path, path: Sequence[str]) -> tuple[tuple[str, int, int], ...]:
    """(file, size, mtime in ns) of ``pyvenv.cfg`` and of every ``.pth`` file in *path*'s
    folders, and whether each folder a ``.pth`` line names exists (``site`` adds only those):
    what decides the interpreter's ``sys.path`` under ``-I``."""
    out = []
    files = [os.path.join(prefix, "pyvenv.cfg")]
    for folder in dict.fromkeys(path):
        with contextlib.suppress(OSError):
            files += [e.path for e in os.scandir(folder) if e.name.endswith(".pth")]
    for name in files:
        try:
            st = os.stat(name)
        except OSError:
            continue
        out.append((name, st.st_size, st.st_mtime_ns))
        if name.endswith(".pth"):
            out += [(line, int(os.path.isdir(line)), 0) for line in _pth_folders(name)]
    return tuple(sorted(out))


def _pth_folders(pth: str) -> list[str]:
    """The folders a ``.pth`` file's plain lines name (as ``site.addpackage`` reads them)."""
    try:
        with open(pth, encoding="utf-8", errors="replace") as fh:
            lines = [line.rstrip() for line in fh]
    except OSError:
        return []
    base = os.path.dirname(pth)
    return [
        os.path.join(base, line)
        for line in lines
        if line and not line.startswith(("#", "import ", "import\t"))
    ]


def has_pip(prefix: Path) -> bool:
    """True when the environment at *prefix* has pip installed."""
    patterns = ("lib/python*/site-packages/pip/__init__.py", "Lib/site-packages/pip/__init__.py")
    return any(any(prefix.glob(p)) for p in patterns)


@record
class PackageManager:
    """pip (or uv) bound to one target interpreter and the user's environment."""

    python: Path
    prefix: Path
    environ: Mapping[str, str]
    allow_uv: bool = True
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)
    listing: list[tuple[tuple[str, ...], tuple[tuple[str, int, int], ...]]] = field(
        default_factory=list, compare=False, repr=False
    )
    """The target's ``sys.path`` at its last listing, and ``_path_stamp`` of it then."""

    def _env(self) -> dict[str, str]:
        env = dict(self.environ)
        env.pop("PYTHONHOME", None)
        env.pop("PYTHONPATH", None)
        env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        return env

    def choice(self) -> Choice:
        """Which tool installs here and why (see the module docstring for the order)."""
        found = shutil.which("uv", path=self.environ.get("PATH")) if self.allow_uv else None
        files = _pip_config_files(self.environ, self.prefix)
        if found and not files:
            why = "uv is on PATH (the PIP_* index settings are passed as uv flags)"
            return Choice("uv", why, found, tuple(uv_flags(self.environ)))
        if has_pip(self.prefix):
            why = "the environment has pip"
            if found and files:
                why += f"; uv is not used because pip reads {files[0]}"
            return Choice("pip", why)
        if found:
            settings, untranslated = pip_settings(self.environ, self.prefix)
            why = "the environment has no pip; uv installs, with pip's index settings as flags"
            if untranslated:
                why += " (no uv flag for: " + ", ".join(untranslated) + ")"
            return Choice("uv", why, found, tuple(_flags(settings)))
        why = "the environment has no pip and uv is not on PATH: python -m ensurepip first"
        if not self.allow_uv:
            why = "the environment has no pip and uv is not allowed: python -m ensurepip first"
        return Choice("ensurepip", why)

    @property
    def uv(self) -> str | None:
        """The uv binary tffix will use, or None (pip installs)."""
        return self.choice().uv

    @property
    def tool(self) -> str:
        """``uv`` or ``pip``: what installs."""
        return "uv" if self.uv else "pip"

    def _ensure_pip(self) -> None:
        """``python -m ensurepip`` when the environment has no pip (and uv is not used)."""
        if has_pip(self.prefix):
            return
        self.say(f"  $ {self.python} -m ensurepip (the environment has no pip)")
        done = _subprocess.run([str(self.python), "-m", "ensurepip"], env=self._env())
        if not done.ok or not has_pip(self.prefix):
            tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["?"]
            raise ApplyError(
                f"{self.prefix} has no pip, uv is not on PATH, and `{self.python} -m ensurepip` "
                f"failed ({tail[-1]}): install uv, or pip into the environment, and run tffix again"
            )

    def know_path(self, path: Sequence[str]) -> None:
        """Take *path* as the target interpreter's ``sys.path`` under ``-I`` now (what resolving
        the target asked it), so that even the first listing needs no process (an empty
        *path* is no answer: the first listing then asks)."""
        if path:
            self.listing[:] = [(tuple(path), _path_stamp(self.prefix, path))]

    def installed(self) -> dict[str, str]:
        """Canonical name -> version of every distribution the target interpreter sees.

        The first listing runs the target interpreter (``-I``: what ``import`` sees) and keeps
        its ``sys.path``; later listings read the distributions' metadata on that path
        directly (``tffix.probes.packages.read_metadata``: the first of a name on the path
        wins, as in the interpreter), with no process. That is exact while the path is the
        same, and under ``-I`` the path changes only with ``pyvenv.cfg`` and the ``.pth`` files
        of its folders: their names, sizes and times are compared first, and any difference
        (an install that added a ``.pth``) asks the interpreter again.
        """
        if self.listing:
            path, stamp = self.listing[0]
            if _path_stamp(self.prefix, path) == stamp:
                from tffix.probes.packages import read_metadata

                try:
                    found = read_metadata(path)[0]
                except Exception:  # a corrupt METADATA: let the interpreter say
                    pass
                else:
                    return dict(sorted(found.items()))
        done = _subprocess.run(
            [str(self.python), "-I", "-c", _LIST_CODE], env=self._env(), timeout=LIST_TIMEOUT
        )
        if not done.ok:
            raise ApplyError(
                f"cannot list the distributions of {self.python}: "
                + (done.describe_exit() or done.stderr.strip().splitlines()[-1:] or ["?"])[-1]
            )
        data = json.loads(done.stdout.strip().splitlines()[-1])
        path = tuple(str(p) for p in data["path"])
        self.listing[:] = [(path, _path_stamp(self.prefix, path))]
        return {str(canonicalize_name(k)): str(v) for k, v in sorted(data["dists"].items())}

    def _argv(self, verb: str, args: Sequence[str], choice: Choice) -> list[str]:
        if choice.uv is not None:
            extra = list(choice.flags) if verb == "install" else []
            return [choice.uv, "pip", verb, "--python", str(self.python), *extra, *args]
        yes = ["-y"] if verb == "uninstall" else []
        # -I: `-m` would put the current folder (the user's project) first on sys.path.
        return [str(self.python), "-I", "-m", "pip", verb, *yes, *args]

    def _run(self, verb: str, args: Sequence[str]) -> float:
        choice = self.choice()
        if choice.tool == "ensurepip":
            self._ensure_pip()
        argv = self._argv(verb, args, choice)
        shown = shellquote.join(["uv" if choice.uv else "pip", verb, *args])
        self.say(f"  $ {shown}")
        start = time.monotonic()
        version = pip_version(self.prefix) if choice.uv is None else None
        if verb == "install" and _terminal() and version and version >= RAW_PROGRESS_PIP:
            # pip's own byte counts, drawn here as one line; its other output is kept as is
            progress = Progress(sys.stderr)
            argv = [*argv[:5], "--progress-bar", "raw", *argv[5:]]
            done = _subprocess.run(argv, env=self._env(), on_line=progress.feed)
            progress.close()
            done = replace(done, stdout=progress.without_progress(done.stdout))
        else:
            with _ticker(f"    {shown.split()[0]} is working"):
                done = _subprocess.run(argv, env=self._env())
        seconds = time.monotonic() - start
        if not done.ok:
            tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-6:]
            why = done.describe_exit() or f"exit status {done.returncode}"
            raise ApplyError(f"{shown} failed ({why}):\n    " + "\n    ".join(tail))
        self.say(f"    done in {seconds:.1f}s")
        return seconds

    def download_size(self, requirements: Sequence[str]) -> tuple[int, int] | None:
        """(bytes, files) that installing *requirements* would download, or ``None`` when that
        cannot be known in a few seconds (no pip, a pip without ``--report``, offline, an
        index that does not say a file's size).

        pip resolves against the user's own index settings (``install --dry-run --report``
        names each file it would fetch, but not its size); a local file's size is read from
        the disk, a remote one's from an HTTP ``HEAD``. Files already in pip's cache are
        counted too: the figure is an upper bound.
        """
        version = pip_version(self.prefix)
        if not requirements or version is None or version < REPORT_PIP:
            return None
        argv = [str(self.python), "-I", "-m", "pip", "install", "--dry-run", "--quiet"]
        argv += ["--report", "-", "--retries", "0", "--timeout", "5", *requirements]
        done = _subprocess.run(argv, env=self._env(), timeout=DRY_RUN_TIMEOUT)
        if not done.ok:
            return None
        try:
            report = json.loads(done.stdout)
            urls = [item["download_info"]["url"] for item in report.get("install", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        sizes = _file_sizes([u for u in urls if isinstance(u, str)], SIZE_TIMEOUT)
        if sizes is None or len(sizes) != len(urls):
            return None
        return sum(sizes), len(sizes)

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


def _file_sizes(urls: Sequence[str], timeout: float) -> list[int] | None:
    """The size of each file named by *urls* (``file:`` from the disk, ``http(s):`` from a
    ``HEAD``, several at once), or ``None`` when one is unknown after *timeout* seconds."""
    import urllib.parse
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as Late

    def size(url: str) -> int | None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "file":
            try:
                return os.stat(urllib.request.url2pathname(parts.path)).st_size
            except OSError:
                return None
        if parts.scheme not in ("http", "https"):
            return None
        request = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                length = reply.headers.get("Content-Length")
        except (OSError, ValueError):
            return None
        return int(length) if length and length.isdigit() else None

    if not urls:
        return []
    pool = ThreadPoolExecutor(max_workers=min(8, len(urls)))
    try:
        found = list(pool.map(size, urls, timeout=timeout))
    except Late:
        return None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return None if any(s is None for s in found) else [s for s in found if s is not None]


def _terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def megabytes(count: int) -> str:
    """*count* bytes as pip itself prints them ("12.3 MB", decimal units)."""
    if count < 1e6:
        return f"{count / 1e3:.0f} kB"
    return f"{count / 1e6:.1f} MB" if count < 1e9 else f"{count / 1e9:.2f} GB"


class Progress:
    """Draws pip's ``--progress-bar raw`` lines ("Progress DONE of TOTAL") as one line on a
    terminal: the file, bytes so far of the total, and the rate; other lines pass by."""

    PREFIX = "Progress "

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._file = ""
        self._start = time.monotonic()
        self._drawn = False

    def feed(self, line: str) -> None:
        """One line of pip's stdout."""
        text = line.strip()
        if text.startswith(("Downloading ", "Collecting ")):
            self._file = text.split()[1]
            self._start = time.monotonic()
            return
        if not text.startswith(self.PREFIX):
            return
        numbers = text.removeprefix(self.PREFIX).split(" of ")
        if len(numbers) != 2 or not all(n.isdigit() for n in numbers):
            return
        done, total = int(numbers[0]), int(numbers[1])
        rate = done / max(time.monotonic() - self._start, 1e-3)
        shown = f"    {clean(self._file)}: {megabytes(done)} of {megabytes(total)}"
        shown += f", {megabytes(int(rate))}/s"
        self._stream.write("\r\x1b[K" + shown)
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Clear the progress line."""
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._stream.flush()

    def without_progress(self, output: str) -> str:
        """*output* without the progress lines (the rest is what a log keeps)."""
        return "".join(
            line
            for line in output.splitlines(keepends=True)
            if not line.strip().startswith(self.PREFIX)
        )


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
