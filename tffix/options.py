"""The command line's options as one frozen value, read once from argparse.

``tffix.cli.main`` turns the parsed ``argparse.Namespace`` into ``Options`` and hands that to
the command; a command reads typed fields instead of ``getattr(args, name, default)``. Every
option of every command is a field, with the default it has when the command does not take
it, so a command can never read an option that does not exist.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from tffix.record import record


@record
class Options:
    """What the user asked for (the argparse destinations of ``tffix.cli.build_parser``)."""

    command: str | None = None
    # target and output (every command)
    venv: str | None = None
    python: str | None = None
    json: bool = False
    verbose: int = 0
    # a bare tffix (repair) and diagnose/explain
    dry_run: bool = False
    yes: bool = False
    unsafe: bool = False
    no_scan: bool = False
    allow_system: bool = False
    resume: bool = False
    no_uv: bool = False
    create_venv: str | None = None
    # diagnose
    snapshot: str | None = None
    # explain
    file: str = "-"
    # scan, report
    paths: tuple[Path, ...] = ()
    gpus: int | None = None
    # snapshot
    output: str | None = None
    tf_timeout: float = 120.0
    redact_paths: bool = False
    # undo
    list_runs: bool = False
    drop_kept: int | None = None
    # report
    html: str | None = None
    # completion, help (answered by tffix.cli itself)
    shell: str | None = None
    topic: str | None = None

    @classmethod
    def of(cls, args: Options | argparse.Namespace) -> Options:
        """*args* as ``Options``: a namespace's known destinations, the defaults for the rest
        (an option another command defines is absent from this command's namespace)."""
        if isinstance(args, Options):
            return args
        given = vars(args)
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            if field.name in given and given[field.name] is not None:
                value = given[field.name]
                values[field.name] = tuple(value) if field.name == "paths" else value
        return cls(**values)  # type: ignore[arg-type]  # argparse has typed them
