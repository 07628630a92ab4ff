"""``tffix report FILE|DIR…``: the fleet view over many hosts' documents.

Glue only: read each file (a folder gives its ``*.json`` files), name the host
(``tffix.fleet.host_name``), build the views and the aggregate (``tffix.fleet``), print text or
``--json``, write ``--html FILE``. Exit code: the worst host's (``fleet_exit_code``); an
unreadable or foreign document is a usage error naming the file, and nothing is written; a
``tffix.fleet/1`` aggregate found in a folder (an earlier ``--json`` saved there) is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tffix.document import MAX_DOCUMENT_BYTES
from tffix.errors import InputError, UsageError
from tffix.options import Options

MAX_FILES = 100_000
"""More documents than any fleet has; a guard against pointing the report at ``/``."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Positional FILE|DIR…, ``--html FILE``."""
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="FILE|DIR",
        help="tffix.diagnosis/1 or tffix.outcome/1 documents, one per host (named by the file, "
        "gpu01.json or gpu01.outcome.json, or by a 'host' field); a folder gives its *.json",
    )
    parser.add_argument(
        "--html",
        metavar="FILE",
        help="also write the report as one self-contained HTML page (no network)",
    )


def _files(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            out.extend(sorted(p for p in path.glob("*.json") if p.is_file()))
        elif path.exists():
            out.append(path)
        else:
            raise UsageError(f"{name}: no such file or folder")
        if len(out) > MAX_FILES:
            raise UsageError(f"more than {MAX_FILES} documents; name the folders of one fleet")
    if not out:
        raise UsageError("no documents: the folders given hold no *.json file")
    return out


def _load(path: Path) -> object:
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise InputError(f"{path} is {size // (1024 * 1024)} MiB; a tffix document is KiB")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from exc
    except RecursionError as exc:
        raise InputError(f"{path} is nested too deeply to be a tffix document") from exc


def build(paths: Sequence[Path]) -> dict[str, Any]:
    """The ``tffix.fleet/1`` aggregate of the documents under *paths*."""
    from tffix.fleet import FLEET_SCHEMA, aggregate, host_name, merge, read_view

    views = []
    named = {Path(p) for p in paths}
    for path in _files(paths):
        doc = _load(path)
        if path not in named and isinstance(doc, dict) and doc.get("schema") == FLEET_SCHEMA:
            continue  # an earlier `tffix report --json` saved beside the hosts' documents
        name = host_name(path.name, doc if isinstance(doc, dict) else {})
        views.append(read_view(name, str(path), doc))
    return aggregate(merge(views))


def run(options: Options | argparse.Namespace) -> int:
    """Print the fleet view; write the HTML page when asked; return the worst host's code."""
    opts = Options.of(options)
    doc = build(opts.paths)
    if opts.html:
        from tffix.fleet_html import render_html

        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        target = Path(opts.html)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(render_html(doc, generated=stamp), encoding="utf-8")
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if opts.json:
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        from tffix.fleet import render_text

        sys.stdout.write(render_text(doc))
        if opts.html:
            print(f"\nHTML report: {opts.html}")
    return int(doc["exit_code"])
