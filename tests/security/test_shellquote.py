"""Printed commands, pasted into real shells, run exactly the argument list they were made
from: hostile paths (spaces, quotes, ``$(…)``, backticks, newlines, ``!``) stay data.

Each case writes the printed text to a file and feeds it to the shell as a person pasting it
would (interactive mode where the shell has one, so csh's history expansion is live), then
compares what the program received with the list; a planted ``touch PWNED`` must not run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tffix import shellquote as sq
from tffix.shellquote import Dialect

HOSTILE = [
    "/srv/my proj/new",
    "it's",
    'say "hi"',
    "$(touch PWNED)",
    "`touch PWNED`",
    "a;touch PWNED",
    "a && touch PWNED",
    "a | touch PWNED",
    "line one\nline two",
    "!!",
    "!touch",
    "a!b",
    "~",
    "~root",
    "*",
    "?",
    "[ab]",
    "{a,b}",
    "$HOME",
    "${HOME}",
    "%1",
    "=python3",
    "#not a comment",
    "back\\slash",
    "back\\'slash",
    "tab\there",
    "-n",
    "",
    "'",
    '"',
    "(x)",
    "^x",
    "é ünïcode ✓",
    "\u2019typographic\u2018",
    "@(x)",
    "a,b",
    "$env:PATH",
    "end\\",
]

SHELLS: dict[str, tuple[Dialect, list[str]]] = {
    "bash": (Dialect.POSIX, ["bash", "--norc", "--noprofile", "-i"]),
    "zsh": (Dialect.POSIX, ["zsh", "-f", "-i"]),
    "dash": (Dialect.POSIX, ["dash", "-i"]),
    "fish": (Dialect.FISH, ["fish", "--no-config", "-i"]),
    "tcsh": (Dialect.CSH, ["tcsh", "-f", "-i"]),
    "csh": (Dialect.CSH, ["csh", "-f", "-i"]),
    "pwsh": (Dialect.POWERSHELL, ["pwsh", "-NoProfile", "-NonInteractive", "-Command", "-"]),
}

SHOW = """\
import json, os, sys
out, kind, *rest = sys.argv[1:]
data = rest if kind == "args" else {k: os.environ.get(k) for k in rest}
with open(out, "w", encoding="utf-8") as fh:
    json.dump(data, fh)
"""


def _shell(name: str) -> tuple[Dialect, list[str]]:
    dialect, argv = SHELLS[name]
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed")
    return dialect, argv


def paste(name: str, lines: list[str], cwd: Path) -> None:
    """Feed *lines* to the shell *name* as pasted text, in *cwd*, with a plain environment."""
    _, argv = _shell(name)
    text = "\n".join(lines) + "\nexit\n"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
    }
    proc = subprocess.run(
        argv, input=text, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert not (cwd / "PWNED").exists(), f"{name} ran planted code:\n{text}\n{proc.stderr}"
    (cwd / "last-stderr").write_text(proc.stderr)


@pytest.fixture
def room(tmp_path: Path) -> tuple[Path, Path]:
    """(an empty working folder, the probe program beside it)."""
    work = tmp_path / "work"
    work.mkdir()
    show = tmp_path / "show.py"
    show.write_text(SHOW)
    return work, show


def _result(work: Path, out: Path) -> object:
    assert out.exists(), (work / "last-stderr").read_text()
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", list(SHELLS))
def test_arguments_arrive_exactly(name: str, room: tuple[Path, Path]) -> None:
    dialect, _ = _shell(name)
    work, show = room
    out = work.parent / "out.json"
    command = sq.join([sys.executable, str(show), str(out), "args", *HOSTILE], dialect)
    paste(name, [command], work)
    assert _result(work, out) == HOSTILE


@pytest.mark.parametrize("name", list(SHELLS))
def test_a_quoted_program_path_runs(name: str, room: tuple[Path, Path]) -> None:
    dialect, _ = _shell(name)
    work, _show = room
    folder = work.parent / "my $(touch PWNED) 'dir'"
    folder.mkdir()
    program = folder / "show it.py"
    program.write_text("#!" + sys.executable + "\n" + SHOW)
    program.chmod(0o755)
    out = work.parent / "out.json"
    paste(name, [sq.join([str(program), str(out), "args", "x y"], dialect)], work)
    assert _result(work, out) == ["x y"]


@pytest.mark.parametrize("name", list(SHELLS))
def test_variables_set_unset_and_prepend(name: str, room: tuple[Path, Path]) -> None:
    dialect, _ = _shell(name)
    work, show = room
    values = [v for v in HOSTILE if v and "\n" not in v]  # activate scripts refuse newlines too
    out = work.parent / "out.json"
    lines: list[str] = []
    expect: dict[str, str | None] = {}
    for i, value in enumerate(values):
        lines.append(sq.set_variable(f"V{i}", value, dialect))
        expect[f"V{i}"] = value
    lines.append(sq.set_variable("GONE", "x", dialect))
    lines.append(sq.unset_variable("GONE", dialect))
    expect["GONE"] = None
    entry = "/opt/my $(touch PWNED) 'lib'"
    lines.append(sq.set_variable("LD_LIBRARY_PATH", "/old/lib", dialect))
    lines.extend(sq.prepend_path("LD_LIBRARY_PATH", entry, dialect).splitlines())
    expect["LD_LIBRARY_PATH"] = f"{entry}:/old/lib"
    lines.append(sq.unset_variable("FRESH_PATH", dialect))
    lines.extend(sq.prepend_path("FRESH_PATH", entry, dialect).splitlines())
    expect["FRESH_PATH"] = entry
    lines.append(sq.join([sys.executable, str(show), str(out), "env", *expect], dialect))
    paste(name, lines, work)
    assert _result(work, out) == expect


SOURCED = {
    Dialect.POSIX: "export TFFIX_SOURCED=yes\n",
    Dialect.FISH: "set -gx TFFIX_SOURCED yes\n",
    Dialect.CSH: "setenv TFFIX_SOURCED yes\n",
    Dialect.POWERSHELL: "$env:TFFIX_SOURCED = 'yes'\n",
}


@pytest.mark.parametrize("name", list(SHELLS))
def test_source_an_activate_script_in_a_hostile_folder(name: str, room: tuple[Path, Path]) -> None:
    dialect, _ = _shell(name)
    work, show = room
    bin_dir = work.parent / "srv" / "my proj $(touch PWNED) `id` it's" / "bin"
    bin_dir.mkdir(parents=True)
    script = sq.activate_script(str(bin_dir), dialect)
    Path(script).write_text(SOURCED[dialect])
    out = work.parent / "out.json"
    paste(
        name,
        [
            sq.source(script, dialect),
            sq.join([sys.executable, str(show), str(out), "env", "TFFIX_SOURCED"], dialect),
        ],
        work,
    )
    assert _result(work, out) == {"TFFIX_SOURCED": "yes"}


@pytest.mark.parametrize(
    ("shell", "dialect"),
    [
        ("bash", Dialect.POSIX),
        ("/usr/bin/zsh", Dialect.POSIX),
        ("-bash", Dialect.POSIX),
        ("fish", Dialect.FISH),
        ("tcsh", Dialect.CSH),
        ("csh", Dialect.CSH),
        ("pwsh", Dialect.POWERSHELL),
        ("powershell.exe", Dialect.POWERSHELL),
        ("nu", Dialect.POSIX),
        (None, Dialect.POSIX),
    ],
)
def test_shell_names(shell: str | None, dialect: Dialect) -> None:
    assert sq.for_shell(shell) is dialect


def test_plain_words_stay_readable() -> None:
    argv = ["/home/u/.venv/bin/python", "-m", "pip", "install", "tensorflow==2.18.1"]
    assert sq.join(argv) == " ".join(argv)
    assert sq.join(["python", "-m", "pip", "install", "tensorflow[and-cuda]==2.18.1"]) == (
        "python -m pip install 'tensorflow[and-cuda]==2.18.1'"
    )
