"""The command line's own contract: help, usage errors, one-line errors, exit codes."""

from __future__ import annotations

import pytest

from tffix.cli import main
from tffix.errors import ExitCode


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("snapshot", "diagnose", "explain", "scan", "undo"):
        assert command in out


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-such-flag"]) == ExitCode.USAGE
    assert "unrecognized arguments" in capsys.readouterr().err


def test_readme_lists_every_exit_code() -> None:
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} |" in readme, code


def test_readme_documents_every_command_and_repair_flag() -> None:
    from tests.conftest import ROOT
    from tffix.cli import COMMANDS, build_parser

    readme = (ROOT / "README.md").read_text()
    for command in COMMANDS:
        assert f"tffix {command}" in readme, command
    flags = {
        opt
        for action in build_parser()._actions  # argparse keeps no public list of its options
        for opt in action.option_strings
        if opt.startswith("--") and opt not in {"--help", "--version"}
    }
    missing = sorted(f for f in flags if f not in readme)
    assert not missing, f"README.md does not mention {missing}"
