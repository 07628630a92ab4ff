"""A bare ``tffix``: diagnose the target, then preview (``--dry-run``) or repair it.

The flags live here; the work is in ``tffix.commands.diagnose`` (the preview) and
``tffix.commands.repair`` (confirm, apply, re-verify).
"""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing itself is a tenth of `tffix --help`; mypy reads this as True
if TYPE_CHECKING:  # a bare `tffix --help` builds this parser: nothing heavy at import
    from tffix.options import Options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of a bare ``tffix``."""
    group = parser.add_argument_group("repair")
    mode = group.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run", action="store_true", help="show the diagnosis and plan; change nothing"
    )
    mode.add_argument(
        "--yes", "-y", action="store_true", help="apply the safe steps without asking"
    )
    group.add_argument(
        "--unsafe",
        action="store_true",
        help="also apply unsafe steps (another TensorFlow release, overriding pins)",
    )
    group.add_argument(
        "--no-scan",
        action="store_true",
        help="do not scan the current project's code for GPU-hiding settings",
    )
    group.add_argument(
        "--allow-system",
        action="store_true",
        help="allow changes to a system Python or conda base (not recommended)",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="after an interrupted run: roll back its unfinished step, then repair",
    )
    group.add_argument(
        "--no-uv", action="store_true", help="install with pip even when uv is on PATH"
    )
    group.add_argument(
        "--create-venv",
        metavar="DIR",
        help="make a fresh virtualenv with a working TensorFlow instead of repairing",
    )


def run(options: Options) -> int:
    """Dispatch to the preview or the repair."""
    if options.dry_run:
        from tffix.commands import diagnose

        return diagnose.run_live(options)
    from tffix.commands import repair

    return repair.run(options)
