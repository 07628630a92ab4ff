"""`tffix scan [PATH ...]`: find code that keeps TensorFlow off the GPU, and print the edits.

A thin adapter: arguments in, ``tffix.scan.scan_paths``/``scan_project`` called with typed
values, the result rendered as text or as a ``tffix.diagnosis/1`` document. tffix never
edits the scanned code; each finding says what to change. Exit code: 0 when no finding is an
error, 1 when at least one is (the user can fix it by the printed edit), 2 for a path that
does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tffix.document import diagnosis_to_dict
from tffix.errors import ExitCode, UsageError
from tffix.model import Diagnosis, Finding, Severity
from tffix.options import Options
from tffix.scan import (
    FILE_LIMIT,
    MAX_NOTEBOOK_CELLS,
    TIME_LIMIT,
    TOO_MANY_CELLS,
    ScanResult,
    scan_paths,
    scan_project,
)
from tffix.term import clean, clean_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``PATH ...`` and ``--gpus N``."""
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        type=Path,
        help="files or folders to scan (default: the current folder)",
    )
    parser.add_argument(
        "--gpus",
        metavar="N",
        type=_gpu_count,
        default=None,
        help="how many GPUs the machine that runs the code has; lets the scan judge GPU "
        "indices (CUDA_VISIBLE_DEVICES=1, tf.device('/GPU:3')); without it indices are not "
        "judged",
    )


def _gpu_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


MAX_SECONDS = 120.0
"""``tffix scan`` stops judging files after this long; the rest are reported as skipped."""


def bound_notes(result: ScanResult, *, max_seconds: float | None) -> list[str]:
    """One "skipped …, because …" line for each bound the scan reached."""
    why = {
        TIME_LIMIT: f"the scan stops judging files after {max_seconds or 0:g} s",
        FILE_LIMIT: "the scan of a folder that merely looks like a project stops at a file limit",
        TOO_MANY_CELLS: f"a notebook of more than {MAX_NOTEBOOK_CELLS} cells is not read",
    }
    notes = []
    for reason, text in why.items():
        count = result.skipped.get(reason, 0)
        if count:
            files = f"{count} file{'s' if count != 1 else ''}"
            notes.append(
                f"skipped {files}, because {text} "
                "(scan the folders that matter with `tffix scan PATH`)"
            )
    return notes


def scan_document(result: ScanResult) -> dict[str, Any]:
    """The ``tffix.diagnosis/1`` document for a scan, with a ``scan`` summary added."""
    doc = diagnosis_to_dict(Diagnosis(gpu_visible=None, findings=result.findings, plan=()))
    doc["scan"] = {
        "files": result.files,
        "skipped": dict(result.skipped),
        "seconds": round(result.seconds, 3),
    }
    return doc


def summary_line(result: ScanResult) -> str:
    """``scanned 42 files in 0.05 s (3 skipped: 2 syntax error, 1 too large)``."""
    files = f"{result.files} file{'s' if result.files != 1 else ''}"
    line = f"scanned {files} in {result.seconds:.2f} s"
    if result.skipped:
        parts = ", ".join(f"{count} {reason}" for reason, count in result.skipped.items())
        line += f" ({result.skipped_total} skipped: {parts})"
    return line


def render_text(
    result: ScanResult, *, verbose: int = 0, max_seconds: float | None = MAX_SECONDS
) -> str:
    """Human output: each finding with its code, why and the edit; then the summary."""
    lines: list[str] = []
    for finding in result.findings:
        lines.extend(_finding_lines(finding))
    if not result.findings:
        lines.append("nothing in the code keeps TensorFlow off the GPU")
    counts = _counts(result.findings)
    if counts:
        lines.append(counts)
    lines.append(summary_line(result))
    lines.extend(bound_notes(result, max_seconds=max_seconds))
    if verbose and result.findings:
        lines.append("tffix does not edit code: make the edits above, then run again")
    return clean_output("\n".join(lines) + "\n")  # file names and code are not tffix's


def _finding_lines(finding: Finding) -> list[str]:
    out = [f"{clean(finding.location)}: {finding.severity} [{finding.id}] {clean(finding.title)}"]
    out.extend(f"    {clean(line)}" for line in finding.detail.splitlines())
    return out


def _counts(findings: Sequence[Finding]) -> str:
    parts = []
    for severity in Severity:
        n = sum(1 for f in findings if f.severity is severity)
        if n:
            parts.append(f"{n} {severity}{'s' if n != 1 else ''}")
    return ", ".join(parts)


def run(options: Options) -> int:
    """Scan, print, and exit 1 when an error finding remains."""
    paths = list(options.paths)
    gpus = options.gpus
    if paths:
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise UsageError(f"no such file or folder: {missing[0]}")
        result = scan_paths(paths, gpu_count=gpus, max_seconds=MAX_SECONDS)
    else:
        result = scan_project(Path.cwd(), gpu_count=gpus, max_files=None, max_seconds=MAX_SECONDS)
    if options.json:
        sys.stdout.write(json.dumps(scan_document(result), indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result, verbose=options.verbose))
    if any(f.severity is Severity.ERROR for f in result.findings):
        return int(ExitCode.FIXABLE)
    return int(ExitCode.OK)
