"""``Options`` holds exactly the parser's options, so a command cannot read one that is not
there, and an option added to a parser without a field fails here."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from tffix.cli import build_parser
from tffix.options import Options


def _dests(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield action.dest, action
            for child in action.choices.values():
                yield from _dests(child)
        elif action.dest not in {"help", "version"}:
            yield action.dest, action


def test_every_option_of_every_command_is_a_field_and_every_field_an_option() -> None:
    fields = {f.name for f in dataclasses.fields(Options)}
    dests = {dest for dest, _action in _dests(build_parser())}
    assert sorted(dests - fields) == [], "an option without an Options field"
    assert sorted(fields - dests) == [], "an Options field no parser sets"


def test_the_field_defaults_are_the_parser_defaults() -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(Options)}
    for dest, action in _dests(build_parser()):
        if action.default not in (None, argparse.SUPPRESS) and dest in defaults:
            assert defaults[dest] == action.default, dest


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], Options()),
        (
            ["--json", "diagnose", "--snapshot", "s.json"],
            Options("diagnose", json=True, snapshot="s.json"),
        ),
        (
            ["scan", "a", "b", "--gpus", "2"],
            Options(
                "scan",
                paths=(Path("a"), Path("b")),
                gpus=2,
            ),
        ),
        (["snapshot", "-v", "--tf-timeout", "5"], Options("snapshot", verbose=1, tf_timeout=5.0)),
        (["--dry-run", "--unsafe"], Options(dry_run=True, unsafe=True)),
    ],
)
def test_parsed_arguments_become_options(argv: list[str], expected: Options) -> None:
    assert Options.of(build_parser().parse_args(argv)) == expected


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Options().json = True  # type: ignore[misc]
