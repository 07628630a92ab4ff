"""``tffix health`` and ``tffix-health``: the fast node check for schedulers (no TensorFlow).

Glue only: resolve the target, collect a snapshot without the TensorFlow child
(``collect_snapshot(..., with_tensorflow=False)``), run the checks (``tffix.graph``), judge
(``tffix.health``), print one line (or, with ``--json``, the ``tffix.diagnosis/1`` document
with ``"mode": "health"``), return the exit code.

``tffix-health`` is the same check behind its own small argument parser: the ``tffix``
parser imports every command module, which costs more than the check itself, and a Slurm
prolog runs on every job start. Its errors follow ``tffix``'s: one line, the documented code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from tffix.errors import ExitCode, TffixError
from tffix.options import Options

PROG = "tffix-health"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No flags beyond the shared target and output ones."""


def run(options: Options | argparse.Namespace) -> int:
    """Check the target without importing TensorFlow; print one line; return the exit code."""
    from tffix.collect import collect_snapshot
    from tffix.graph import build_graph
    from tffix.health import BLIND, judge
    from tffix.probes.target import resolve_target
    from tffix.ruleset import load_rules

    opts = Options.of(options)
    target = resolve_target(venv=opts.venv, python=opts.python)
    snapshot = collect_snapshot(target, environ=os.environ, with_tensorflow=False)
    rules = load_rules()
    graph = build_graph(snapshot, rules)
    verdict = judge(graph.findings)
    if opts.json:
        from tffix.document import diagnosis_to_dict
        from tffix.model import Diagnosis
        from tffix.planner import make_plan

        doc = diagnosis_to_dict(Diagnosis(None, graph.findings, make_plan(graph)))
        doc.update(
            mode="health",
            exit_code=int(verdict.exit_code),
            reason=verdict.line,
            not_checked=sorted(BLIND),
        )
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        print(f"tffix health: {verdict.line}", flush=True)
        if opts.verbose:
            for finding in graph.findings:
                print(f"  [{finding.severity}] {finding.id}: {finding.title}")
    return int(verdict.exit_code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Fast GPU health check for TensorFlow (no TensorFlow import): packages, "
        "loader, NVML, environment. One line of reason; exit 0 ok, 1 venv-fixable, "
        "3 needs an outside action, 2 usage error, 5 internal error.",
    )
    parser.add_argument("--venv", metavar="DIR", help="the virtualenv to check")
    parser.add_argument("--python", metavar="PATH", help="the interpreter to check")
    parser.add_argument("--json", action="store_true", help="print the diagnosis document")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="list every finding")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``tffix-health`` console script."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return run(Options.of(args))
    except TffixError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        exec("")  # clears CPython's "unhandled Ctrl-C" note: see tffix.cli._interrupted
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # one line for the scheduler's log, never a traceback
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return int(ExitCode.INTERNAL)


if __name__ == "__main__":
    raise SystemExit(main())
