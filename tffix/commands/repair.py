"""A bare ``tffix`` (without ``--dry-run``): diagnose, confirm, repair, re-verify, report.

Glue only: it resolves the target, takes the environment's lock, deals with an interrupted
earlier run (offer undo or resume; ``--resume`` without a terminal), collects and diagnoses,
then hands ``tffix.transaction.repair`` its real collaborators: the questionary ``Confirm`` (or
``--yes``), the effects of ``tffix.effects.steps``, a fresh snapshot + diagnosis in a new
process of the target interpreter after every step, and the journal.

A system Python or conda base is never changed without ``--allow-system``; ``--create-venv
DIR`` makes a fresh virtualenv with the TensorFlow the diagnosis calls for instead. With no
terminal and no ``--yes``, tffix prints the plan and refuses (exit 2, naming ``--yes``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from tffix import shellquote, term
from tffix import transaction as core
from tffix.effects.activate import check_files
from tffix.effects.journal import Journal, RunRecorder, journal_path, runs
from tffix.effects.lock import hold
from tffix.effects.pip import PackageManager
from tffix.effects.stash import sweeping
from tffix.effects.steps import Action, Noted, Workspace
from tffix.envedit import EditOp, apply_edits
from tffix.errors import ApplyError, ExitCode, RollbackIncomplete, UsageError
from tffix.model import Diagnosis, Finding, PlanStep, Snapshot, StepKind
from tffix.options import Options
from tffix.probes.target import Target, TargetKind, resolve_target
from tffix.shellenv import pre_activation_environ
from tffix.term import clean, clean_output

__all__ = ["pre_activation_environ", "run"]
"""``pre_activation_environ`` stays importable from here; it lives in ``tffix.shellenv``."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The repair flags live in ``tffix.commands.fix`` (a bare ``tffix``)."""


def _err(text: str) -> None:
    print(clean_output(text), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- environment


def conversation(args: Options) -> TextIO | None:
    """Where to ask (``tffix.term.conversation``): stdout when it is the terminal and carries
    the human report, else the controlling terminal; ``None`` when stdin is no terminal."""
    return term.conversation(report_on_stdout=not getattr(args, "json", False))


def interactive(args: Options) -> bool:
    """True when tffix may ask questions: stdin is a terminal and there is one to ask on
    (also with stdout redirected, piped, or carrying ``--json``)."""
    return conversation(args) is not None


# --------------------------------------------------------------------------- collaborators


def load_diagnoser(
    extra: tuple[Finding, ...] = (),
) -> Callable[[Snapshot], Diagnosis]:
    """The pure diagnosis with the shipped rules (``tffix.diagnosis`` + ``tffix.ruleset``).

    *extra* are findings from outside the snapshot (the code scan): the same on every
    re-observation, since a venv change does not change the user's code.
    """
    try:
        from tffix import diagnosis as diagnose_mod
        from tffix import ruleset
    except ImportError as exc:  # pragma: no cover  # only while the package is incomplete
        raise UsageError(f"diagnosis is not available in this build ({exc})") from exc
    rules = ruleset.load_rules()
    rules.compile_patterns()  # a bad cached pattern stops the repair before it changes anything
    return lambda snapshot: diagnose_mod.diagnose(snapshot, rules, extra_findings=extra)


def show_diagnosis(args: Options, diagnosis: Diagnosis, snapshot: Snapshot) -> str:
    """The report ``tffix --dry-run`` prints (checks, verdict, plan), or a plain plan."""
    try:
        from tffix import report, ruleset
    except ImportError:  # pragma: no cover  # only while the package is incomplete
        return core.render_plan(diagnosis, unsafe=args.unsafe)
    where = snapshot.python.executable or "the target"
    return report.render_text(
        diagnosis,
        snapshot,
        rules=ruleset.load_rules(),
        verbose=getattr(args, "verbose", 0) or 0,
        show_unsafe=args.unsafe,
        heading=f"tffix diagnosis of {where}",
    )


def _rules() -> object:
    """Load the shipped rules (once per process: ``tffix.ruleset.load_rules`` keeps them),
    while a look's TensorFlow child imports."""
    from tffix.ruleset import load_rules

    rules = load_rules()
    rules.compile_patterns()  # here, behind the import, rather than after it
    return rules


def scan_findings(args: Options, snapshot: Snapshot) -> tuple[Finding, ...]:
    """The code scan's findings for the current project (none with ``--no-scan``)."""
    try:
        from tffix.commands.diagnose import scan_findings as scan
    except ImportError:  # pragma: no cover
        return ()
    return tuple(scan(args, snapshot))


class Session:
    """The real collaborators for one target."""

    def __init__(self, target: Target, environ: Mapping[str, str], *, allow_uv: bool) -> None:
        self.target = target
        self.environ = pre_activation_environ(environ)
        # a system Python (with --allow-system) has no activate script: env steps are skipped
        self.conda = target.kind in (TargetKind.CONDA, TargetKind.CONDA_BASE)
        self.workspace = Workspace(
            target.prefix,
            self.conda,
            PackageManager(target.python, target.prefix, self.environ, allow_uv=allow_uv, say=_err),
            site_dir=target.site_packages[0] if target.site_packages else None,
        )
        from tffix.probes.entrycheck import Looks  # with the probes, not at start-up

        self.looks = Looks()
        """The entry points' answers from the last look (``tffix.probes.entrycheck.Looks``)."""
        self.carried: list[tuple[Diagnosis, dict[str, str]]] = []
        """Each diagnosis observed, with the entry points whose answer its look carried over."""
        self._diagnose: Callable[[Snapshot], Diagnosis] | None = None
        self.extra: tuple[Finding, ...] = ()
        """Code-scan findings, found once before the repair."""

    def diagnose(self, snapshot: Snapshot) -> Diagnosis:
        """The pure diagnosis (rules loaded on first use)."""
        if self._diagnose is None:
            self._diagnose = load_diagnoser(self.extra)
        return self._diagnose(snapshot)

    def collect(self) -> tuple[Snapshot, Any]:
        """A fresh snapshot and the op checks, from one TensorFlow import: new processes of
        the target interpreter, the re-activated env (``tffix.collect.observe_target``)."""
        from tffix.collect import observe_target

        found = observe_target(
            self.target, environ=self.child_environ(), looks=self.looks, meanwhile=_rules
        )
        for name, why in self.looks.carried.items():
            _err(f"tffix: {name}: {why}")
        return found

    def action(self, step: PlanStep) -> Action:
        """The action for *step*, noting for the next look what it may change."""
        looks = self.looks
        return Noted(self.workspace.action(step), looks.changed, looks.edited, looks.unsets)

    def carried_notes(self, diagnosis: Diagnosis) -> tuple[str, ...]:
        """Which entry points of *diagnosis* kept an earlier look's answer, and why."""
        for seen, carried in self.carried:
            if seen is diagnosis:
                return tuple(f"{name}: {why}" for name, why in carried.items())
        return ()

    def child_environ(self) -> dict[str, str]:
        """The environment a user has after re-activating (tffix's block applied)."""
        if self.conda:  # conda's activate.d edits; a venv's are applied by collect itself
            return apply_edits(self.environ, self.workspace.edits())
        return dict(self.environ)

    def observe(self) -> core.Observation:
        """A fresh snapshot, diagnosed, with the op check (TensorFlow lists the GPU; an op, a
        cuDNN op and an XLA op run there) from the same child."""
        snapshot, verification = self.collect()
        diagnosis = self.diagnose(snapshot)
        if self.looks.carried:
            self.carried.append((diagnosis, dict(self.looks.carried)))
        return core.Observation(diagnosis, verification)


# --------------------------------------------------------------------------- interrupted runs


def _handle_interrupted(
    args: Options, session: Session, journal: Journal
) -> dict[str, Any] | None:
    """Deal with a run that never finished; returns the base state when resuming."""
    stories = runs(journal.records())
    if not stories or not stories[-1].interrupted:
        return None
    last = stories[-1]
    step = last.step_in_progress
    where = f" during step {step['step']}" if step else " between steps"
    what = f"The last tffix run on {session.target.prefix} ({last.run}) was interrupted{where}."
    if getattr(args, "resume", False):
        choice = "resume"
    elif interactive(args) and not args.yes:
        from tffix import prompt

        choice = prompt.ask_interrupted(what, output=conversation(args))
    else:
        raise UsageError(
            what + " Run `tffix undo` to restore the state before it, "
            "or `tffix --resume` to roll back the unfinished step and repair from there"
        )
    if choice == "quit":
        raise UsageError(what + " Nothing changed; run `tffix undo` or `tffix --resume`")
    if choice == "undo":
        from tffix.commands.undo import undo_story

        undo_story(session.workspace, journal, last, say=_err)
        return {}
    if step is not None:
        problems = session.workspace.restore(step["state"])
        if problems:
            raise RollbackIncomplete(
                "could not roll back the unfinished step: " + "; ".join(problems)
            )
        _err(f"tffix: rolled back the unfinished step {step['step']} of run {last.run}")
    journal.append({"type": "run-end", "run": last.run, "status": "resumed", "exit_code": 130})
    return last.base_state


# --------------------------------------------------------------------------- reporting


def user_dialect(environ: Mapping[str, str]) -> shellquote.Dialect:
    """How to quote commands for the shell the user runs tffix from."""
    from tffix.probes.host import user_shell

    return shellquote.for_shell(user_shell(environ))


def activate_command(prefix: Path, *, conda: bool, active: bool, shell: shellquote.Dialect) -> str:
    """The command that (re-)activates the environment at *prefix* in *shell*."""
    if conda:
        return "conda deactivate && " + shellquote.join(["conda", "activate", str(prefix)], shell)
    script = shellquote.source(shellquote.activate_script(str(prefix / "bin"), shell), shell)
    return f"deactivate && {script}" if active else script


def reactivate_lines(
    session: Session, outcome: core.Outcome, environ: Mapping[str, str]
) -> list[str]:
    """How the user picks up environment changes in the shell they are in."""
    env_kinds = {
        StepKind.ENV_SET,
        StepKind.ENV_UNSET,
        StepKind.ENV_PATH_PREPEND,
        StepKind.ENV_PATH_REMOVE,
    }
    applied = [
        s for s in outcome.steps if s.status is core.StepStatus.APPLIED and s.step.kind in env_kinds
    ]
    if not applied:
        return []
    prefix = session.target.prefix
    shell = user_dialect(environ)
    active = os.path.realpath(environ.get("VIRTUAL_ENV") or "/nonexistent") == (
        os.path.realpath(prefix)
    )
    what = "environment" if session.conda else "venv"
    again = "Re-activate" if session.conda or active else "Activate"
    lines = [
        f"{again} the {what} to use the new settings: "
        + activate_command(prefix, conda=session.conda, active=active, shell=shell)
    ]
    for s in applied:
        var = s.step.variable
        if s.step.kind is StepKind.ENV_UNSET and var and var in environ:
            lines.append(f"  (or, in this shell only: {shellquote.unset_variable(var, shell)})")
    edits = session.workspace.edits()
    if any(e.op is EditOp.SET and e.variable in environ for e in edits):
        lines.append(
            "  Your shell exports some of these variables itself (~/.bashrc?): "
            "the venv's settings win while it is active."
        )
    return lines


def package_manager_line(session: Session, diagnosis: Diagnosis) -> str:
    """Which tool the plan's pip steps use, and why ("" when the plan has none)."""
    kinds = {StepKind.PIP_INSTALL, StepKind.PIP_UNINSTALL}
    if not any(step.kind in kinds for step in diagnosis.plan):
        return ""
    choice = session.workspace.pip.choice()
    return f"Installs with {choice.tool}: {choice.why}."


def _print_outcome(args: Options, outcome: core.Outcome) -> None:
    if args.json:
        print(json.dumps(core.outcome_to_dict(outcome), indent=2, sort_keys=True))
    else:
        print(clean_output(core.render_outcome(outcome)))


# --------------------------------------------------------------------------- commands


def _refuse_system(args: Options, target: Target, environ: Mapping[str, str]) -> int:
    """A system Python or conda base without ``--allow-system``: show, change nothing."""
    snapshot = _collect(target, pre_activation_environ(environ))
    diagnosis = load_diagnoser(scan_findings(args, snapshot))(snapshot)
    if not args.json:
        print(show_diagnosis(args, diagnosis, snapshot))
    if not core.offered_steps(diagnosis, unsafe=args.unsafe):
        return core.exit_code_for(diagnosis)
    raise UsageError(
        f"{target.python} is a {target.kind} Python: tffix does not change it without "
        "--allow-system; run `tffix --create-venv DIR` to get a fresh virtualenv with a "
        "working TensorFlow instead"
    )


def _confirm(
    args: Options, diagnosis: Diagnosis, snapshot: Snapshot, session: Session
) -> core.Confirm:
    """``--yes``, the questions on a terminal, or a refusal (exit 2) without either."""
    offered = core.offered_steps(diagnosis, unsafe=args.unsafe)
    talk = conversation(args)
    if offered and not args.yes and talk is None:
        if args.json:
            print(json.dumps({"schema": core.OUTCOME_SCHEMA, "refused": "no --yes"}))
        raise UsageError(
            "no terminal to ask for confirmation: run `tffix --yes` to apply the safe "
            "steps (add --unsafe for the unsafe ones), or `tffix --dry-run` to only look"
        )
    if args.yes:
        return core.AutoConfirm()
    from tffix.prompt import QuestionaryConfirm

    if offered and talk is not sys.stdout:  # the report went elsewhere: ask with the plan in view
        print(_plan_text(args, diagnosis, snapshot), file=talk, flush=True)
    line = download_line(session, diagnosis, offered) if offered else ""
    if line:
        print(line, file=talk, flush=True)
    return QuestionaryConfirm(output=talk)


DOWNLOAD_SIZE_BUDGET = 20.0
"""Seconds after which no further step's download is sized (the figure is then left out)."""


def download_line(session: Session, diagnosis: Diagnosis, offered: tuple[int, ...]) -> str:
    """"About N MB to download …" for the offered pip installs, or "" when unknown (offline,
    no pip to ask, more than a few seconds): said before asking, as apt does."""
    numbers = [n for n in offered if diagnosis.plan[n - 1].kind is StepKind.PIP_INSTALL]
    total = files = 0
    start = time.monotonic()
    for n in numbers:
        late = time.monotonic() - start > DOWNLOAD_SIZE_BUDGET
        pip = session.workspace.pip
        size = None if late else pip.download_size(diagnosis.plan[n - 1].requirements)
        if size is None:
            return ""
        total, files = total + size[0], files + size[1]
    if not numbers:
        return ""
    from tffix.effects.pip import megabytes

    which = f"step {numbers[0]}" if len(numbers) == 1 else "steps " + ", ".join(map(str, numbers))
    if not files:
        return f"Nothing to download for {which} (everything it needs is installed)."
    noun = "file" if files == 1 else "files"
    return f"About {megabytes(total)} to download for {which} ({files} {noun})."


def _plan_text(args: Options, diagnosis: Diagnosis, snapshot: Snapshot) -> str:
    """Findings, verdict and plan, for a terminal that does not see the report."""
    try:
        from tffix import report
    except ImportError:  # pragma: no cover  # only while the package is incomplete
        return clean_output(core.render_plan(diagnosis, unsafe=args.unsafe))
    return report.render_text(diagnosis, snapshot, show_unsafe=args.unsafe, checks=False)


def _report(
    args: Options,
    session: Session,
    outcome: core.Outcome,
    environ: Mapping[str, str],
    extra: Mapping[str, Any],
) -> int:
    """Print the outcome with how to pick up the changes; returns its exit code."""
    from dataclasses import replace

    lines = reactivate_lines(session, outcome, environ)
    # The text report printed which tool installs above the plan; the JSON outcome says it here.
    installs = (extra["installs"],) if extra["installs"] and args.json else ()
    notes = (*outcome.notes, *installs)
    notes = (*notes, *session.carried_notes(outcome.after))
    if not outcome.changed and not any(
        s.status in (core.StepStatus.FAILED, core.StepStatus.REVERTED) for s in outcome.steps
    ):
        notes = ("Nothing changed.", *notes)  # a note: `reactivate` holds only commands
    laps: core.Laps = extra["laps"]
    laps.lap("render")
    outcome = replace(outcome, reactivate=tuple(lines), notes=notes)
    outcome = replace(outcome, timings=laps.account(outcome.timings))
    if not args.json:
        print()
    _print_outcome(args, outcome)
    return outcome.exit_code


def process_started() -> float:
    """When this process started, on the ``time.monotonic`` clock."""
    from tffix.probes.host import process_age

    return time.monotonic() - process_age()


def run(args: Options) -> int:
    """Repair the target (or make a fresh venv with ``--create-venv``)."""
    laps = core.Laps(process_started())
    environ = dict(os.environ)
    target = resolve_target(venv=args.venv, python=args.python, environ=environ)
    if args.create_venv:
        return create_venv(args, target, environ)
    if not target.is_modifiable and not args.allow_system:
        return _refuse_system(args, target, environ)
    session = Session(target, environ, allow_uv=not getattr(args, "no_uv", False))
    with hold(target.prefix):
        session.workspace.pip.know_path(target.sys_path)  # the listings read metadata, no process
        check_files(target.prefix, conda=session.conda)  # no activate script linking out
        journal = Journal(journal_path(target.prefix))
        base = _handle_interrupted(args, session, journal)
        laps.lap("prepare")
        try:
            done = _repair(args, session, journal, base, laps)
        finally:
            session.workspace.end_ahead()
    if isinstance(done, int):
        return done
    outcome, extra = done
    return _report(args, session, outcome, environ, extra)


def _repair(
    args: Options, session: Session, journal: Journal, base: dict[str, Any] | None, laps: core.Laps
) -> int | tuple[core.Outcome, dict[str, Any]]:
    """Diagnose, confirm and repair under the lock: the outcome and the report's extras, or
    the exit code of an interrupted run."""
    # while the first look's child imports TensorFlow: the snapshot a first step will need,
    # and the deletion of what earlier runs dropped (tffix.effects.stash)
    session.workspace.keep_ahead()
    sweeper = sweeping(session.target.prefix)
    snapshot, verification = session.collect()
    sweeper.join()
    laps.lap("first_diagnosis")
    session.extra = scan_findings(args, snapshot)
    diagnosis = session.diagnose(snapshot)
    session.workspace.reach(diagnosis.plan)  # kernelspecs, start-up files: journaled too
    extra: dict[str, Any] = {"laps": laps}
    extra["installs"] = package_manager_line(session, diagnosis)
    laps.lap("plan")
    if not args.json:
        print(show_diagnosis(args, diagnosis, snapshot), flush=True)
        if extra["installs"]:
            print(extra["installs"], flush=True)
    confirm = _confirm(args, diagnosis, snapshot, session)
    recorder = RunRecorder(
        journal, base=base or None, argv=sys.argv[1:], lister=session.workspace.pip.installed
    )
    laps.lap("render")
    try:
        outcome = core.repair(
            core.Observation(diagnosis, verification),
            confirm=confirm,
            actions=session.action,
            observe=session.observe,
            recorder=recorder,
            capture=session.workspace.capture,
            unsafe=args.unsafe,
            say=_err,
        )
    except core.Interrupted as exc:
        _print_outcome(args, exc.outcome)
        if exc.outcome.left_changed:
            return int(ExitCode.ROLLBACK_INCOMPLETE)
        _err("tffix: interrupted; the step in progress was rolled back")
        exec("")  # clears CPython's "unhandled Ctrl-C" note: see tffix.cli._interrupted
        return int(ExitCode.INTERRUPTED)
    laps.lap("run")
    return outcome, extra


def tensorflow_requirement(diagnosis: Diagnosis, snapshot: Snapshot) -> str:
    """The TensorFlow requirement a fresh venv should get, from the plan or what is there."""
    for step in diagnosis.plan:
        for req in step.requirements:
            if req.replace("_", "-").lower().startswith(("tensorflow[", "tensorflow==")):
                return req
    version = (snapshot.packages or {}).get("tensorflow")
    return f"tensorflow[and-cuda]=={version}" if version else "tensorflow[and-cuda]"


def create_venv(args: Options, target: Target, environ: Mapping[str, str]) -> int:
    """``--create-venv DIR``: a fresh venv with the right TensorFlow, verified."""
    dest = Path(args.create_venv or ".").absolute()
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f"--create-venv {dest}: the folder exists and is not empty")
    env = pre_activation_environ(environ)
    snapshot = _collect(target, env)
    requirement = tensorflow_requirement(load_diagnoser()(snapshot), snapshot)
    _make_venv(target.python, dest, env, allow_uv=not getattr(args, "no_uv", False))
    fresh = resolve_target(venv=str(dest), environ=env)
    manager = PackageManager(
        fresh.python, fresh.prefix, env, allow_uv=not getattr(args, "no_uv", False), say=_err
    )
    try:
        manager.install([requirement])
    except ApplyError as exc:
        first, *tail = str(exc).splitlines() or [""]
        for line in tail:  # what pip said, before the one-line error
            _err(line)
        shell = user_dialect(environ)
        remove = (
            ["Remove-Item", "-Recurse", "-Force", "-LiteralPath", str(dest)]
            if shell is shellquote.Dialect.POWERSHELL
            else ["rm", "-rf", "--", str(dest)]
        )
        raise ApplyError(
            f"{first} (the new venv {dest} is left as it is; remove it with "
            f"{shellquote.join(remove, shell)})"
        ) from exc
    result = _settle_fresh(fresh, environ, allow_uv=not getattr(args, "no_uv", False))
    ok = bool(result.ok)
    doc = {
        "schema": core.OUTCOME_SCHEMA,
        "created": str(dest),
        "requirement": requirement,
        "verification": {
            "ok": ok,
            "gpus": list(result.gpus),
            "op_device": result.op_device,
            "error": result.error,
        },
        "exit_code": 0 if ok else 1,
    }
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        shell = user_dialect(environ)
        print(f"Created {dest} with {requirement}.")
        if ok:
            print(
                f"Verified: TensorFlow lists {clean(', '.join(result.gpus))}; a test op ran on "
                f"{clean(result.op_device)}."
            )
        else:
            print(
                "Verified: TensorFlow does NOT use the GPU there"
                + (f" ({clean(result.error)})" if result.error else "")
                + f"; run `{shellquote.join(['tffix', '--venv', str(dest)], shell)}` to see why."
            )
        script = shellquote.activate_script(str(dest / "bin"), shell)
        print(f"Use it: {shellquote.source(script, shell)}")
    return 0 if ok else int(ExitCode.FIXABLE)


_VENV_SUPPORT = """\
import importlib.util, sys
print("%d.%d" % sys.version_info[:2])
try:
    print(int(all(importlib.util.find_spec(m) for m in ("venv", "ensurepip"))))
except ImportError:
    print(0)
"""
"""Prints the interpreter's X.Y, then 1 when it has both ``venv`` and ``ensurepip``."""


def venv_support(python: Path, env: Mapping[str, str]) -> tuple[str, bool]:
    """(``X.Y``, whether ``python -m venv`` can make a venv with pip) for *python*.

    Debian and Ubuntu ship ``ensurepip`` apart, in ``python3.X-venv``; without it ``python3
    -m venv`` stops half-way ("ensurepip is not available").
    """
    from tffix import _subprocess

    done = _subprocess.run(
        [str(python), "-I", "-c", _VENV_SUPPORT], env=env, timeout=60, neutral_cwd=True
    )
    lines = done.stdout.split()
    if not done.ok or len(lines) != 2:
        return "", True  # cannot tell: let `python -m venv` say what is wrong
    return lines[0], lines[1] == "1"


def _make_venv(python: Path, dest: Path, env: Mapping[str, str], *, allow_uv: bool) -> None:
    """``python -m venv DEST``, or ``uv venv`` when the interpreter has no ``ensurepip``; with
    neither, a refusal naming the exact package to install (tffix never runs apt)."""
    import shutil

    from tffix import _subprocess

    version, able = venv_support(python, env)
    uv = shutil.which("uv", path=env.get("PATH")) if allow_uv else None
    if able:
        _err(f"tffix: creating {dest} with {python}")
        # -I: `-m` would put the current folder first on sys.path (a `venv.py` there would run)
        argv = [str(python), "-I", "-m", "venv", str(dest)]
    elif uv is not None:
        _err(f"tffix: {python} has no ensurepip module; creating {dest} with uv venv instead")
        argv = [uv, "venv", "--python", str(python), str(dest)]
    else:
        raise UsageError(_no_ensurepip(python, version, dest, user_dialect(env)))
    made = _subprocess.run(argv, env=env)
    if not made.ok:
        raise UsageError(f"cannot create a venv at {dest}: {made.stderr.strip() or made}")


def _no_ensurepip(python: Path, version: str, dest: Path, shell: shellquote.Dialect) -> str:
    """Why no venv can be made with *python*, and the exact ways out."""
    again = shellquote.join(["tffix", "--python", str(python), "--create-venv", str(dest)], shell)
    text = f"{python} cannot create a venv: its ensurepip module is missing"
    if Path("/etc/debian_version").exists() and version:
        package = f"python{version}-venv"
        text += (
            f" (Debian and Ubuntu ship it in {package}): install it with "
            f"`{shellquote.join(['sudo', 'apt', 'install', package], shell)}`"
        )
    else:
        text += f": install the venv/ensurepip package of Python {version or '3'}"
    return (
        text + f", or install uv (https://docs.astral.sh/uv/), which makes venvs without it; "
        f"then run `{again}` again"
    )


def _settle_fresh(fresh: Target, environ: Mapping[str, str], *, allow_uv: bool) -> Any:
    """Repair what the install revealed in a fresh venv (its safe steps, as ``--yes`` would:
    the 2.21.0 wheel's RUNPATH misses the cuSOLVER folder), then verify."""
    session = Session(fresh, environ, allow_uv=allow_uv)
    with hold(fresh.prefix):
        seen = session.observe()
        if core.offered_steps(seen.diagnosis, unsafe=False):
            recorder = RunRecorder(Journal(journal_path(fresh.prefix)), argv=["--create-venv"])
            outcome = core.repair(
                seen,
                confirm=core.AutoConfirm(),
                actions=session.action,
                observe=session.observe,
                recorder=recorder,
                capture=session.workspace.capture,
                say=_err,
            )
            seen = core.Observation(outcome.after, outcome.verification)
    return seen.verification


def _collect(target: Target, environ: Mapping[str, str]) -> Snapshot:
    from tffix.collect import collect_snapshot

    return collect_snapshot(target, environ=environ)
