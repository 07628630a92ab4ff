"""Shell completion from the argparse definition (argcomplete), run in real shells, and the
lazy start-up that keeps a Tab press fast: only the completed command's module is loaded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tffix.cli import COMMANDS, main

BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    return {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/")}


def _needs(shell: str) -> None:
    if shutil.which(shell) is None or shutil.which("tffix", path=str(BIN)) is None:
        pytest.skip(f"{shell} or the tffix script is not installed here")


BASH = """
source <(tffix completion bash)
ask() { COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; read -ra COMP_WORDS <<< "$1";
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=();
        _python_argcomplete tffix "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}";
        echo "[${COMPREPLY[*]}]"; }
ask "tffix sca"
ask "tffix diagnose --sn"
ask "tffix completion f"
"""


def test_bash_completes_commands_and_their_options() -> None:
    _needs("bash")
    out = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", BASH],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    assert "[scan ]" in out and "[--snapshot ]" in out and "[fish ]" in out, out


def test_fish_completes_commands_and_their_options() -> None:
    _needs("fish")
    script = 'tffix completion fish | source; complete -C "tffix sca"; complete -C "tffix undo --"'
    out = subprocess.run(
        ["fish", "--no-config", "-c", script],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    assert out.startswith("scan\t") and "--venv" in out, out


def test_zsh_script_is_valid_zsh() -> None:
    _needs("zsh")
    script = "autoload -U compinit; compinit -u; source <(tffix completion zsh); echo ok"
    proc = subprocess.run(
        ["zsh", "-f", "-c", script],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout.strip() == "ok" and proc.returncode == 0, proc.stderr


def test_help_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help", "scan"]) == 0
    assert capsys.readouterr().out.startswith("usage: tffix scan")
    assert main(["help"]) == 0
    assert "completion" in capsys.readouterr().out
    assert main(["help", "nope"]) == 2
    assert "no command 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "loaded"),
    [
        (["--version"], set()),
        (["--help"], set()),
        (["help", "scan"], {"tffix.commands.scan"}),
        (["completion", "bash"], set()),
    ],
)
def test_only_the_running_command_is_imported(argv: list[str], loaded: set[str]) -> None:
    code = (
        "import sys\nfrom tffix.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('tffix.commands.', 'tffix.di'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()[-1]
    assert set(eval(out)) == loaded | {"tffix.commands.fix"}, out  # our own list


def test_every_command_still_parses_its_options() -> None:
    from tffix.cli import build_parser, chosen_command

    for name in COMMANDS:
        assert chosen_command(["--venv", "x", name, "--json"]) == name
        parser = build_parser(name)
        argv = [name, "bash"] if name == "completion" else [name]
        assert parser.parse_args(argv).command == name
    assert chosen_command(["--python", "scan"]) is None
