"""Cron jobs and systemd units that run the target interpreter, with the environment each gets.

A job started by cron or systemd never sees the user's shell: neither ``bin/activate`` nor
``~/.bashrc`` nor an HPC module. Its environment is the service manager's, built by
documented rules, which this module follows (reading only; permission errors cost the file,
never the run):

**cron** (crontab(5), cron(8); Vixie/Debian cron). Each crontab line is a comment, an
environment setting ``NAME = VALUE`` (blanks around ``=`` dropped; a value in matching single
or double quotes keeps its blanks; *no* substitution: ``PATH=$PATH:/x`` is literal), or a job
(five time fields or an ``@reboot``/``@daily``… nickname, then the command; system crontabs,
``/etc/crontab`` and ``/etc/cron.d/*``, have a user field before the command). A job gets
``SHELL=/bin/sh``, ``PATH=/usr/bin:/bin``, ``HOME`` and ``LOGNAME`` from the owner's passwd
entry, then the settings written *above* it in the same crontab (cron copies the environment
as it reads each job). Debian's cron also loads ``/etc/environment`` through pam_env; those
variables do not override the ones above. The user's crontab is what ``crontab -l`` prints;
under a machine root other than ``/`` (``TFFIX_SYSROOT``), the spool files
``var/spool/cron/crontabs/<user>`` (Debian) and ``var/spool/cron/<user>`` (Red Hat) are read.

**systemd** (systemd.exec(5), systemd.unit(5), environment.d(5)). A service gets the
manager's environment: for the system manager a fixed ``PATH`` and, when ``User=`` is set,
``USER``/``LOGNAME``/``HOME``/``SHELL``; the user manager has those always, plus
``environment.d`` (``~/.config/environment.d/*.conf``, ``/etc/environment.d/*.conf``, and
``/etc/environment``). ``DefaultEnvironment=`` of ``system.conf``/``user.conf`` comes next, then
the unit's ``Environment=`` lines in order (an empty one resets the list), then its
``EnvironmentFile=`` files, which override ``Environment=``; ``UnsetEnvironment=`` removes
names last. Drop-ins (``<unit>.service.d/*.conf``) are read after the unit, in name order. A
unit runs the interpreter when its ``ExecStart=`` executable (after the ``@-:+!`` prefixes)
is the venv's python or a script in the venv's ``bin``.

What this cannot know is said, not guessed: a ``crontab -l`` that fails, a unit file that
cannot be read, an ``EnvironmentFile=`` without ``-`` that is missing (systemd would refuse
to start the unit).
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import shlex
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import field
from pathlib import Path

from tffix import _subprocess
from tffix.probes.entrypoints import EntryPoint
from tffix.probes.provenance import Origin, read_text
from tffix.record import record

MAX_FILE_BYTES = 256 * 1024
"""Crontabs and unit files are small; a larger one is read only this far."""
CRONTAB_TIMEOUT = 10.0

CRON_PATH = "/usr/bin:/bin"
"""crontab(5): "PATH is set to /usr/bin:/bin"."""
CRON_SHELL = "/bin/sh"
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
"""systemd.exec(5): the system manager's fixed ``$PATH`` (merged ``/usr``)."""

_NICKNAMES = {
    "@reboot",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
}
_CRON_ENV = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


@record
class Account:
    """Whom a job runs as: the name, home and shell of its passwd entry (or what is known)."""

    user: str
    home: str | None
    shell: str | None = None


def account(name: str | None, environ: Mapping[str, str], root: Path = Path("/")) -> Account:
    """The passwd entry of *name* (None: the current user, whose home is the caller's
    ``HOME``); under a machine root other than ``/``, that root's ``etc/passwd``."""
    if name is None:
        me = environ.get("USER") or environ.get("LOGNAME")
        try:
            entry = pwd.getpwuid(os.getuid())
            me = me or entry.pw_name
            return Account(me, environ.get("HOME") or entry.pw_dir, entry.pw_shell or None)
        except KeyError:
            return Account(me or str(os.getuid()), environ.get("HOME"))
    if root != Path("/"):
        for line in (_read(root / "etc" / "passwd") or "").splitlines():
            fields = line.split(":")
            if len(fields) >= 7 and fields[0] == name:
                return Account(name, fields[5] or None, fields[6] or None)
        return Account(name, "/root" if name == "root" else None)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return Account(name, "/root" if name == "root" else None)
    return Account(name, entry.pw_dir, entry.pw_shell or None)


def _read(path: Path) -> str | None:
    return read_text(path, MAX_FILE_BYTES)


def _list(folder: Path, pattern: str) -> list[Path]:
    try:
        return sorted(p for p in folder.glob(pattern) if p.is_file())
    except OSError:
        return []


def runs_venv(executable: str, python: Path, prefix: Path) -> bool:
    """Whether *executable* (a job's first word) runs the venv's interpreter: the python
    itself (by any path that resolves to it), or a script in the venv's ``bin`` (its shebang
    names that python)."""
    path = Path(os.path.expanduser(executable))
    if not path.is_absolute():
        return False  # found on PATH at run time: not this venv by name
    if path.parent == prefix / "bin":
        return True
    return _real(str(path)) == _real(str(python))


@functools.lru_cache(maxsize=1024)
def _real(path: str) -> str:
    """``realpath``, memoised for one discovery (``entry_points`` clears it first): hundreds
    of units compare their executable with the same interpreter."""
    return os.path.realpath(path)


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command, comments=False, posix=True)
    except ValueError:
        return command.split()


# --------------------------------------------------------------------------- environment files


def read_assignments(text: str, *, quotes: str = "'\"") -> Iterator[tuple[int, str, str, str]]:
    """``NAME=VALUE`` lines of an ``/etc/environment``, ``environment.d`` or
    ``EnvironmentFile=`` file: (line number, name, value, line); ``#``/``;`` comments, blank
    lines and a trailing ``\\`` continuation as systemd reads them."""
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = pending + raw
        if not pending:
            start = number
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        pending = ""
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("export "):
            stripped = stripped[7:].lstrip()
        name, sep, value = stripped.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in quotes:
            value = value[1:-1]
        yield start, name, value, raw.rstrip()


def _expand(value: str, env: Mapping[str, str]) -> str:
    """environment.d(5): ``${NAME}``, ``$NAME``, ``${NAME:-default}``, ``${NAME:+alt}``."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        have = env.get(name, "")
        if op == ":-":
            return have or arg
        if op == ":+":
            return arg if have else ""
        return have

    pattern = r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
    return re.sub(pattern, one, value)


def _file_env(
    path: Path, env: dict[str, str], origins: list[Origin], kind: str, *, expand: bool
) -> None:
    text = _read(path)
    if text is None:
        return
    for number, name, value, line in read_assignments(text):
        env[name] = _expand(value, env) if expand else value
        origins.append(Origin(name, str(path), number, line, kind))


# --------------------------------------------------------------------------- cron


@record
class CronJob:
    """One crontab line that runs the interpreter, with the environment cron gives it."""

    source: str
    """The crontab file, or ``crontab -l`` for the user's own read through the command."""
    line: int
    command: str
    user: str
    env: Mapping[str, str]
    origins: tuple[Origin, ...] = ()


def parse_crontab(
    text: str,
    *,
    source: str,
    owner: Account | None,
    base: Mapping[str, str],
    base_origins: Sequence[Origin] = (),
    python: Path,
    prefix: Path,
    environ: Mapping[str, str],
    root: Path = Path("/"),
) -> list[CronJob]:
    """The jobs of one crontab that run the venv's interpreter. *owner* None: a system
    crontab, whose lines name the user after the time fields."""
    settings: dict[str, str] = {}
    set_at: dict[str, Origin] = {}
    jobs: list[CronJob] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        setting = _CRON_ENV.match(line)
        fields = line.split()
        if setting:  # a job starts with a time field or "@…", never with NAME=
            name, value = setting.group(1), setting.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            settings[name] = value
            set_at[name] = Origin(name, source, number, raw.rstrip(), "cron")
            continue
        split = 1 if fields[0] in _NICKNAMES else 5
        if owner is None:
            split += 1
        if len(fields) <= split:
            continue
        who = owner or account(fields[split - 1], environ, root)
        command = line.split(None, split)[split]
        words = _words(command.split("%", 1)[0])
        if not words or not runs_venv(words[0], python, prefix):
            continue
        env = dict(base)  # pam_env's /etc/environment first: it overrides none of the rest
        env.update({"SHELL": CRON_SHELL, "PATH": CRON_PATH, "LOGNAME": who.user})
        if who.home:
            env["HOME"] = who.home
        env.update({k: v for k, v in settings.items() if k != "LOGNAME"})
        fixed = {"SHELL", "PATH", "LOGNAME", "HOME", *settings}  # what wins over pam_env
        origins = [o for o in base_origins if o.variable not in fixed] + list(set_at.values())
        jobs.append(CronJob(source, number, command, who.user, env, tuple(origins)))
    return jobs


def _etc_environment(root: Path) -> tuple[dict[str, str], list[Origin]]:
    env: dict[str, str] = {}
    origins: list[Origin] = []
    _file_env(root / "etc" / "environment", env, origins, "system", expand=False)
    return env, origins


def user_crontab(
    root: Path, me: Account, environ: Mapping[str, str]
) -> tuple[str, str] | tuple[None, str]:
    """(text, source) of the current user's crontab, or (None, why not)."""
    if root != Path("/"):
        for spool in ("var/spool/cron/crontabs", "var/spool/cron"):
            path = root / spool / me.user
            text = _read(path)
            if text is not None:
                return text, str(path)
        return None, "no crontab for this user under the machine root"
    crontab = shutil.which("crontab", path=environ.get("PATH")) or shutil.which("crontab")
    if crontab is None:
        return None, "no crontab command"
    done = _subprocess.run([crontab, "-l"], env=dict(environ), timeout=CRONTAB_TIMEOUT)
    if not done.ok:
        return None, (done.stderr.strip().splitlines() or ["crontab -l failed"])[0]
    return done.stdout, "crontab -l"


def cron_jobs(root: Path, python: Path, prefix: Path, environ: Mapping[str, str]) -> list[CronJob]:
    """Every cron job of the current user's crontab and of the system crontabs that runs the
    venv's interpreter."""
    base, base_origins = _etc_environment(root)
    me = account(None, environ)
    tables: list[tuple[str, str, Account | None]] = []
    text, source = user_crontab(root, me, environ)
    if text is not None:
        tables.append((text, source, me))
    for path in [root / "etc" / "crontab", *_list(root / "etc" / "cron.d", "*")]:
        body = _read(path)
        if body is not None:
            tables.append((body, str(path), None))
    out: list[CronJob] = []
    for body, where, owner in tables:
        out += parse_crontab(
            body,
            source=where,
            owner=owner,
            base=base,
            base_origins=base_origins,
            python=python,
            prefix=prefix,
            environ=environ,
            root=root,
        )
    return out


# --------------------------------------------------------------------------- systemd


@record
class Unit:
    """One systemd service that runs the interpreter, with the environment it gets."""

    source: str
    name: str
    scope: str
    """``user`` or ``system``."""
    exec_start: str
    env: Mapping[str, str]
    origins: tuple[Origin, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)
    """What would keep it from starting as tffix models it (a missing EnvironmentFile=)."""


def unit_lines(text: str) -> Iterator[tuple[int, str, str, str]]:
    """(line number, section, key, value) of a unit file: comments (``#``, ``;``) skipped,
    a trailing ``\\`` joins the next line."""
    section = ""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending:
            start = number
            if not stripped or stripped[0] in "#;":
                continue
            if stripped.startswith("[") and stripped.endswith("]"):
                section = stripped[1:-1]
                continue
        elif stripped[:1] in ("#", ";"):
            continue  # a comment inside a continued line is skipped, as systemd does
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        line = " ".join([*pending, stripped]) if pending else stripped
        pending = []
        key, sep, value = line.partition("=")
        if sep:
            yield start, section, key.strip(), value.strip()


def _specifiers(value: str, unit: str, who: Account, scope: str) -> str:
    """The ``%`` specifiers of systemd.unit(5) that a path or assignment commonly uses."""
    table = {
        "%": "%",
        "n": unit,
        "N": unit.rsplit(".", 1)[0],
        "u": who.user,
        "h": who.home or "",
        "U": str(os.getuid()) if scope == "user" else "0",
        "t": f"/run/user/{os.getuid()}" if scope == "user" else "/run",
    }
    return re.sub(r"%(.)", lambda m: table.get(m.group(1), m.group(0)), value)


def _assignments(value: str) -> list[str]:
    """``Environment=`` words: space-separated, quotes keep blanks."""
    try:
        return shlex.split(value, posix=True)
    except ValueError:
        return value.split()


def _manager_env(
    root: Path, scope: str, who: Account | None, home: Path | None
) -> tuple[dict[str, str], list[Origin]]:
    env: dict[str, str] = {"PATH": SYSTEMD_PATH}
    origins: list[Origin] = []
    if who is not None:
        env.update({"USER": who.user, "LOGNAME": who.user, "SHELL": who.shell or "/bin/sh"})
        if who.home:
            env["HOME"] = who.home
    if scope == "user":
        env["XDG_RUNTIME_DIR"] = f"/run/user/{os.getuid()}"
        files = [root / "etc" / "environment"]
        dirs = [root / "usr/lib/environment.d", root / "etc/environment.d"]
        if home is not None:
            dirs.append(home / ".config" / "environment.d")
        confs: dict[str, Path] = {}
        for folder in dirs:  # later folders win a file name; then all sorted by name
            for p in _list(folder, "*.conf"):
                confs[p.name] = p
        files += [confs[n] for n in sorted(confs)]
        for path in files:
            kind = "login" if home is not None and home in path.parents else "system"
            _file_env(path, env, origins, kind, expand=True)
    conf = root / "etc" / "systemd" / ("user.conf" if scope == "user" else "system.conf")
    text = _read(conf)
    for number, section, key, value in unit_lines(text or ""):
        if section == "Manager" and key == "DefaultEnvironment":
            for word in _assignments(value):
                name, sep, val = word.partition("=")
                if sep:
                    env[name] = val
                    origins.append(Origin(name, str(conf), number, f"{key}={value}", "systemd"))
    return env, origins


Setting = tuple[int, Path, str, str]
"""(line, file, key, value) of one ``[Service]`` assignment."""


def _service_settings(files: Sequence[Path]) -> list[Setting]:
    out: list[Setting] = []
    for path in files:
        for number, section, key, value in unit_lines(_read(path) or ""):
            if section == "Service":
                out.append((number, path, key, value))
    return out


def _runs_as(
    sets: Sequence[Setting], scope: str, environ: Mapping[str, str], root: Path
) -> Account | None:
    """The account the service runs as (None: root, with no ``HOME``/``USER`` set)."""
    me = account(None, environ)
    if scope == "user":
        return me
    user = next((v for _, _, k, v in reversed(sets) if k == "User"), None)
    if not user:
        return None
    return me if user == me.user else account(user, environ, root)


def _assigned(
    sets: Sequence[Setting], expand: Callable[[str], str]
) -> tuple[dict[str, tuple[str, Origin]], list[tuple[str, int, Path]], list[str]]:
    """The unit's ``Environment=`` values (by name, with where), ``EnvironmentFile=`` entries
    and ``UnsetEnvironment=`` names, each list reset by an empty assignment."""
    assigned: dict[str, tuple[str, Origin]] = {}
    env_files: list[tuple[str, int, Path]] = []
    unset: list[str] = []
    for number, path, key, value in sets:
        if key == "Environment" and not value:
            assigned.clear()
        elif key == "Environment":
            for word in _assignments(expand(value)):
                var, sep, val = word.partition("=")
                if sep and var:
                    where = Origin(var, str(path), number, f"{key}={value}", "systemd")
                    assigned[var] = (val, where)
        elif key == "EnvironmentFile":
            env_files = [*env_files, (expand(value), number, path)] if value else []
        elif key == "UnsetEnvironment":
            unset += _assignments(value)
    return assigned, env_files, unset


def _read_env_files(
    entries: Sequence[tuple[str, int, Path]],
    root: Path,
    env: dict[str, str],
    origins: list[Origin],
) -> list[str]:
    """Apply the ``EnvironmentFile=`` files in order; what would stop the unit starting."""
    problems: list[str] = []
    for raw, number, unit_file in entries:
        optional = raw.startswith("-")
        target = Path(raw.lstrip("-"))
        if not target.is_absolute():
            problems.append(f"{unit_file} line {number}: EnvironmentFile={raw} is not absolute")
            continue
        local = root / target.relative_to("/") if root != Path("/") else target
        if _read(local) is None:
            if not optional:
                problems.append(
                    f"{unit_file} line {number}: EnvironmentFile={raw} cannot be read "
                    "(systemd would not start the unit)"
                )
            continue
        _file_env(local, env, origins, "systemd", expand=False)
    return problems


def parse_unit(
    files: Sequence[Path],
    *,
    name: str,
    scope: str,
    root: Path,
    python: Path,
    prefix: Path,
    environ: Mapping[str, str],
) -> Unit | None:
    """The service made of *files* (the unit, then its drop-ins), when it runs the venv's
    interpreter; None otherwise."""
    sets = _service_settings(files)
    who = _runs_as(sets, scope, environ, root)
    as_account = who or Account("root", "/root")

    def expand(value: str) -> str:
        return _specifiers(value, name, as_account, scope)

    starts: list[str] = []
    for _, _, key, value in sets:
        if key == "ExecStart":
            starts = [*starts, value] if value else []
    chosen = next((s for s in starts if _exec_runs(expand(s), python, prefix)), None)
    if chosen is None:
        return None
    me = account(None, environ)
    home = Path(me.home) if scope == "user" and me.home else None
    env, origins = _manager_env(root, scope, who, home)
    assigned, env_files, unset = _assigned(sets, expand)
    for var, (value, where) in assigned.items():
        env[var] = value
        origins.append(where)
    problems = _read_env_files(env_files, root, env, origins)
    for word in unset:
        env.pop(word.partition("=")[0], None)
    return Unit(str(files[0]), name, scope, chosen, env, tuple(origins), tuple(problems))


def _exec_runs(value: str, python: Path, prefix: Path) -> bool:
    words = _assignments(value)
    if not words:
        return False
    first = words[0].lstrip("@-:+!")  # "@" keeps the executable first (argv[0] follows)
    return bool(first) and runs_venv(first, python, prefix)


def unit_folders(root: Path, home: Path | None) -> list[tuple[Path, str]]:
    """Where user and system units are written by people (not packages), in precedence
    order."""
    out: list[tuple[Path, str]] = []
    if home is not None:
        out.append((home / ".config" / "systemd" / "user", "user"))
    out.append((root / "etc" / "systemd" / "user", "user"))
    out.append((root / "etc" / "systemd" / "system", "system"))
    return out


def systemd_units(root: Path, python: Path, prefix: Path, environ: Mapping[str, str]) -> list[Unit]:
    """Every user or system service (``*.service`` with its drop-ins) that runs the venv's
    interpreter."""
    me = account(None, environ)
    home = Path(me.home) if me.home else None
    seen: set[tuple[str, str]] = set()
    out: list[Unit] = []
    for folder, scope in unit_folders(root, home):
        for path in _list(folder, "*.service"):
            if (path.name, scope) in seen:
                continue  # the first folder's unit of a name wins
            seen.add((path.name, scope))
            files = [path, *_list(folder / f"{path.name}.d", "*.conf")]
            unit = parse_unit(
                files,
                name=path.name,
                scope=scope,
                root=root,
                python=python,
                prefix=prefix,
                environ=environ,
            )
            if unit is not None:
                out.append(unit)
    return out


# --------------------------------------------------------------------------- entry points


def entry_points(
    root: Path, python: Path, prefix: Path, environ: Mapping[str, str]
) -> list[EntryPoint]:
    """The cron jobs and systemd units of the venv, as entry points whose environment is
    the whole environment they get."""
    _real.cache_clear()
    out = [
        EntryPoint(
            kind="cron",
            name=f"cron job {_short(job.command)!r}, line {job.line}",
            source=job.source,
            argv=(str(python),),
            env=dict(job.env),
            complete=True,
            origins=job.origins,
        )
        for job in cron_jobs(root, python, prefix, environ)
    ]
    for unit in systemd_units(root, python, prefix, environ):
        note = "; ".join(unit.problems) or None
        out.append(
            EntryPoint(
                kind="systemd",
                name=f"systemd {unit.scope} unit {unit.name}",
                source=unit.source,
                argv=(str(python),),
                env=dict(unit.env),
                complete=True,
                note=note,
                origins=unit.origins,
            )
        )
    return out


def _short(command: str, limit: int = 60) -> str:
    return command if len(command) <= limit else command[: limit - 1] + "…"


def origins_for(points: Iterable[EntryPoint]) -> list[Origin]:
    """Every origin the entry points carry, once each."""
    return list(dict.fromkeys(o for p in points for o in p.origins))
