"""The exception hierarchy and the exit codes. Only ``tffix.cli.main`` catches these."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What the ``tffix`` process exits with (documented in README.md)."""

    OK = 0
    """TensorFlow sees the GPU, or every applied step was re-verified."""
    FIXABLE = 1
    """Problems remain that tffix can fix inside the venv (found, declined, or not applied)."""
    USAGE = 2
    """Usage error or bad input: a missing venv, an unreadable snapshot, a broken rule file."""
    OUTSIDE = 3
    """Problems remain that only an outside action can fix (driver, container, platform)."""
    ROLLBACK_INCOMPLETE = 4
    """A step failed and undoing it failed too: the message lists what is left changed."""
    INTERNAL = 5
    """A bug in tffix: a one-line message, the traceback in a log file."""
    INTERRUPTED = 130
    """Ctrl-C, after rolling back the step in progress."""


class TffixError(Exception):
    """An expected failure, reported as one line; ``exit_code`` says how the process ends."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(TffixError):
    """The command line or the target named something that cannot be used."""


class InputError(TffixError):
    """A document or log given to tffix cannot be read (not JSON, wrong schema, too big)."""


class RuleError(TffixError):
    """A file in ``rules/`` is invalid; the message names the file and key."""


class ApplyError(TffixError):
    """A step could not be applied; it was rolled back."""

    exit_code = ExitCode.FIXABLE


class RollbackIncomplete(TffixError):
    """A step failed and its rollback failed too."""

    exit_code = ExitCode.ROLLBACK_INCOMPLETE
