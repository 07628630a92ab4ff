"""The command line: argv -> a command module -> an exit code. The only place that catches.

``tffix`` with no subcommand diagnoses the target and offers to repair it; subcommands are
``snapshot``, ``diagnose``, ``explain``, ``scan`` and ``undo``. Each lives in
``tffix.commands.<name>`` and provides ``add_arguments(parser)`` and ``run(options) -> int``,
where *options* is the frozen ``tffix.options.Options`` read once from the parsed arguments.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from tffix import __version__
from tffix.errors import ExitCode, TffixError

# Nothing here imports a command, the diagnosis engine or dataclasses at start-up: `--version`,
# `--help` and shell completion (which runs tffix on every Tab) load only what they print.
# A command's module is imported when that command runs, or when its own --help is asked.

COMMANDS: dict[str, str] = {
    "snapshot": "Write what tffix sees as a tffix.snapshot/1 JSON document.",
    "diagnose": "Diagnose a saved snapshot (or the live target) and print the ranked plan.",
    "explain": "Read TensorFlow or pip log text and name the causes it shows.",
    "scan": "Find code that keeps TensorFlow off the GPU (CUDA_VISIBLE_DEVICES, tf.device, …).",
    "undo": "Restore the target venv to its state before the last tffix run.",
    "health": "Fast node check without importing TensorFlow (for Slurm, NHC, Kubernetes).",
    "report": "Fleet view over many hosts' diagnosis/outcome documents (text, --json, --html).",
    "completion": "Print the shell completion script for bash, zsh or fish.",
    "help": "Show the help of a command (`tffix help scan`).",
}
DEFAULT_COMMAND = "fix"
"""The module behind a bare ``tffix``: diagnose, confirm, apply, re-verify."""

_EPILOG = """\
exit codes:
  0  TensorFlow sees the GPU (or every applied step was re-verified)
  1  problems remain that tffix can fix in the venv
  2  usage error or unreadable input
  3  problems remain that only an outside action can fix (driver, container, platform)
  4  a step failed and could not be fully rolled back
  5  internal error (a bug; the traceback is written to a log file)
  130 interrupted
"""


def terminal_columns() -> int:
    """The width argparse formats help to, as ``shutil.get_terminal_size().columns`` gives it
    (``$COLUMNS``, else the terminal of standard output, else 80), without importing shutil
    (and with it bz2, lzma and zlib) on every run: argparse makes a formatter even to add an
    option."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    stdout = sys.__stdout__
    if stdout is None:
        return 80
    try:
        return os.get_terminal_size(stdout.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):  # no fileno, closed, not a terminal
        return 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, its width read by ``terminal_columns``."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


class _RawDescriptionHelpFormatter(_HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``argparse.RawDescriptionHelpFormatter``, its width read by ``terminal_columns``."""


def _add_target_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("target")
    group.add_argument(
        "--venv",
        metavar="DIR",
        default=default,
        help="the virtualenv to inspect (default: $VIRTUAL_ENV, $CONDA_PREFIX, ./.venv)",
    )
    group.add_argument(
        "--python",
        metavar="PATH",
        default=default,
        help="the interpreter of the environment to inspect",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--json",
        action="store_true",
        default=default if suppress else False,
        help="print a JSON document instead of text",
    )
    out.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default if suppress else 0,
        help="show the evidence behind each check",
    )


def _command_module(name: str) -> ModuleType:
    return importlib.import_module(f"tffix.commands.{name}")


_VALUE_OPTIONS = {"--venv", "--python", "--create-venv", "--snapshot", "--output", "-o"}


def chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in *argv* (the first word that is one), without importing any."""
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--":
            return None
        if word in _VALUE_OPTIONS:
            skip = True
            continue
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(only: str | bool | None = None) -> argparse.ArgumentParser:
    """The argument parser (also used to check README.md against ``--help``).

    With *only* (a command name, or False for none), the options of the other subcommands
    are left out so that their modules are not imported; the list of commands is complete.
    """
    parser = argparse.ArgumentParser(
        prog="tffix",
        description="Find out why TensorFlow does not use the GPU, and repair it.",
        epilog=_EPILOG,
        formatter_class=_RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tffix {__version__}")
    _add_target_options(parser, suppress=False)
    _command_module(DEFAULT_COMMAND).add_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        child = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=_HelpFormatter
        )
        if name in _BUILTIN:
            _BUILTIN[name](child)
            continue
        if only is None or only == name:  # argparse parses only the chosen command's options
            _add_target_options(child, suppress=True)
            _command_module(name).add_arguments(child)
    return parser


def _add_completion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell to complete in")


def _add_help_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "topic", nargs="?", metavar="COMMAND", help="the command to describe (default: all)"
    )


_BUILTIN = {"completion": _add_completion_arguments, "help": _add_help_arguments}


def completion_script(shell: str) -> str:
    """The script that makes *shell* complete tffix's commands and options (argcomplete)."""
    from argcomplete.shell_integration import shellcode

    return str(shellcode(["tffix"], shell=shell))


def _complete(argv: Sequence[str] | None) -> None:
    """Answer a shell's completion request (argcomplete's protocol) and exit; a no-op when
    the shell did not ask. Only the command being completed has its options loaded."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    words = os.environ.get("COMP_LINE", "").split()[1:]
    argcomplete.autocomplete(build_parser(chosen_command(words) or False))


def _help(parser: argparse.ArgumentParser, topic: str | None) -> int:
    if topic is None:
        parser.print_help()
        return int(ExitCode.OK)
    if topic not in COMMANDS:
        print(
            f"tffix: error: no command {topic!r} (commands: {', '.join(COMMANDS)})",
            file=sys.stderr,
        )
        return int(ExitCode.USAGE)
    return _parse_exit(build_parser(topic), [topic, "--help"])


def _parse_exit(parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return int(ExitCode.OK)


def _crash_log(exc: BaseException) -> Path | None:
    import tempfile
    import time
    import traceback

    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tffix"
    text = f"tffix {__version__}\npython {sys.version}\nargv {sys.argv}\n\n" + "".join(
        traceback.format_exception(exc)
    )
    for base in (folder, Path(tempfile.gettempdir())):
        try:
            base.mkdir(parents=True, exist_ok=True)
            path = base / f"tffix-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
        except OSError:
            continue
        return path
    return None


def _interrupted() -> int:
    """Say that the run was interrupted; the exit status for it (130).

    CPython 3.11 notes a ``KeyboardInterrupt`` that leaves an ``exec`` or ``eval`` of a string
    as "unhandled", even when it is caught further up, and then ends the process by
    re-raising ``SIGINT`` at exit instead of returning the exit status. Making a class (a
    dataclass, a named tuple) runs such an ``exec``, so a Ctrl-C during a lazy import of
    one of tffix's modules would end ``tffix`` killed by the signal. Any ``exec`` of a string
    clears that note: running an empty one here makes the exit status the one returned.
    """
    print("tffix: interrupted", file=sys.stderr)
    exec("")  # clears the interpreter's "unhandled Ctrl-C" note (above)
    return int(ExitCode.INTERRUPTED)


def _interrupted_inside(exc: BaseException) -> bool:
    """Whether *exc* wraps a Ctrl-C: Python 3.11 turns a ``KeyboardInterrupt`` raised while a
    class is made (``__set_name__``, in a dataclass of a module imported lazily) into a
    ``RuntimeError`` whose cause it is."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run tffix with *argv* (default: ``sys.argv[1:]``) and return the exit code."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # while the parser and the command's modules load
        return _interrupted()


def _main(argv: Sequence[str] | None) -> int:
    _complete(argv)
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(chosen_command(words) or False)
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.command == "help":
        return _help(parser, args.topic)
    if args.command == "completion":
        sys.stdout.write(completion_script(args.shell))
        return int(ExitCode.OK)
    from tffix.options import Options
    from tffix.term import clean

    options = Options.of(args)
    name = options.command or DEFAULT_COMMAND
    try:
        return int(_command_module(name).run(options))
    except TffixError as exc:
        # One line, whatever the message quotes (a snapshot key with a newline, an ESC).
        print(f"tffix: error: {clean(exc)}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        # `tffix ... | head`: the reader left; nothing more to say.
        sys.stderr.close()
        return int(ExitCode.OK)
    except Exception as exc:  # the one place that turns a bug into a message
        if _interrupted_inside(exc):
            return _interrupted()
        log = _crash_log(exc)
        where = f"; details in {log}" if log else ""
        print(
            f"tffix: internal error: {type(exc).__name__}: {clean(exc)}{clean(where)}",
            file=sys.stderr,
        )
        return int(ExitCode.INTERNAL)


if __name__ == "__main__":
    raise SystemExit(main())
