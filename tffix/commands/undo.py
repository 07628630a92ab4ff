"""`tffix undo` (not yet built)."""

from __future__ import annotations

import argparse

from tffix.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise UsageError("'undo' is not available yet")
