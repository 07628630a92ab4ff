"""Run the GPU check the way each entry point runs the interpreter, and trace the variables.

``tffix.probes.entrypoints`` finds how the target is started (activated shell, plain
``venv/bin/python``, Jupyter kernelspecs, VS Code settings); this module gives each one the
environment it really has and runs the verification child there
(``tffix.probes.verify.deep_verify``: list GPUs, an op and a ``conv2d`` on ``/GPU:0``):

* ``activated``: the environment obtained by really sourcing ``bin/activate``
  (``tffix.probes.activation``), which the caller passes in;
* ``plain``: the caller's environment without the venv's activation (``deactivated``): what
  ``venv/bin/python train.py`` run by path from this shell, an IDE or a service inherits;
* ``kernel``: the caller's environment without activation (the notebook server's), plus the
  kernelspec's ``env`` with ``${VAR}`` replaced as jupyter_client replaces it, run with the
  kernel's ``argv[0]``;
* ``vscode``: the caller's environment without activation, with the settings'
  ``terminal.integrated.env.linux`` (the terminal "Run Python File" uses), and the
  ``python.envFile`` merged over it as the Python extension merges it
  (``tffix.probes.entrypoints.vscode_merge``: the file's variables win, ``PATH`` and
  ``PYTHONPATH`` are the file's followed by the environment's);
* ``cron`` and ``systemd``: the environment the service manager builds
  (``tffix.probes.services``), not the caller's at all.

An entry point with a ``note`` (a settings file that does not parse, a unit that would not
start) is reported with the note and no check.

In a repair, ``Looks`` carries the answers from one look to the next: an entry point whose
interpreter and environment (worked out again from the files) are those of the last look, and
whose interpreter's files no step changed since, keeps its answer instead of a new child.

``trace`` asks ``tffix.probes.provenance`` where each variable that matters is set. Reading
and child processes only; nothing here writes a file.
"""

from __future__ import annotations

import contextlib
import os
import string
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tffix.model import ENTRY_POINT_VARIABLES, EntryPointState, Origin, Provenance, frozen_map
from tffix.probes import activation, entrypoints, provenance, services, verify
from tffix.probes.entrypoints import EntryPoint
from tffix.probes.env import select_env

if TYPE_CHECKING:
    from tffix.probes.tensorflow import TensorFlowReport

TRACED = ENTRY_POINT_VARIABLES
"""The variables whose origin is traced, when some entry point has them set."""

_QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2"}


SYSROOT_VARIABLE = "TFFIX_SYSROOT"
"""The machine root the probes read (``tffix.collect.SYSROOT_VARIABLE``): crontab spools,
``/etc/crontab``, ``/etc/systemd``, ``/etc/environment`` are read under it."""


def discover(
    prefix: Path,
    python: Path,
    environ: Mapping[str, str],
    *,
    project: Path | None,
    root: Path | None = None,
) -> list[EntryPoint]:
    """Every entry point of the venv at *prefix*: activated, plain, kernels, VS Code, cron
    jobs and systemd units (*root*: the machine root, by default ``$TFFIX_SYSROOT`` or
    ``/``)."""
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    if root is None:
        root = Path(environ.get(SYSROOT_VARIABLE) or "/")
    out = [
        EntryPoint("activated", f"a shell that sourced {prefix / 'bin' / 'activate'}"),
        EntryPoint("plain", f"{python} run without activation", argv=(str(python),)),
    ]
    others = [environ.get(k) for k in ("VIRTUAL_ENV", "CONDA_PREFIX") if environ.get(k)]
    prefixes = [prefix, *(Path(p) for p in others if p)]
    out += entrypoints.kernelspecs(
        entrypoints.jupyter_data_dirs(environ, home, prefixes), python, prefix
    )
    for folder in dict.fromkeys(p for p in (project, prefix.parent) if p is not None):
        found = entrypoints.vscode_settings(folder, python, prefix, environ=environ, home=home)
        out += [replace(ep, origins=tuple(entrypoints.vscode_origins(ep, TRACED))) for ep in found]
    # an unreadable service folder costs those entry points, not the snapshot
    with contextlib.suppress(OSError):
        out += services.entry_points(root, python, prefix, environ)
    return out


def kernel_env(base: Mapping[str, str], spec_env: Mapping[str, str]) -> dict[str, str]:
    """*base* plus a kernelspec's ``env``, ``${VAR}`` replaced from *base* (jupyter_client's
    ``string.Template.safe_substitute``)."""
    env = dict(base)
    for key, value in spec_env.items():
        env[key] = string.Template(value).safe_substitute(base)
    return env


def environment_for(
    ep: EntryPoint, environ: Mapping[str, str], prefix: Path, activated: Mapping[str, str]
) -> dict[str, str]:
    """The environment TensorFlow gets when started through *ep*."""
    if ep.kind == "activated":
        return dict(activated)
    if ep.complete:
        return dict(ep.env)
    base = activation.deactivated(environ, prefix)
    if ep.kind == "kernel":
        return kernel_env(base, ep.env)
    if ep.kind == "vscode":
        return vscode_env(ep, base)
    return base


def vscode_env(ep: EntryPoint, base: Mapping[str, str]) -> dict[str, str]:
    """What a process the Python extension starts gets: *base* with the terminal settings,
    then the ``python.envFile`` merged over it by the extension's rules."""
    env = {k: v for k, v in base.items() if k not in ep.unset}
    env.update(ep.env)
    text = _env_file_text(ep.env_file)
    if text is None:
        return env
    return entrypoints.vscode_merge(entrypoints.vscode_env_file(text, env), env)


def _env_file_text(path: str | None) -> str | None:
    return entrypoints.read_text(Path(path)) if path else None


def usable(result: verify.DeepVerification) -> bool:
    """A GPU listed, and both the op and the ``conv2d`` ran on it (XLA is judged elsewhere)."""
    on_gpu = [d for d in (result.op_device, result.dnn_device) if d and "GPU" in d.upper()]
    return bool(result.gpus) and len(on_gpu) == 2


_CUT_SHORT = ("timeout after ", "could not start: ", "killed by ")
"""How ``tffix._subprocess.Completed.describe_exit`` begins for a child that did not end on
its own."""


def answered(result: verify.DeepVerification) -> bool:
    """Whether *result* is a child's whole answer: it reported, and was not cut short (out of
    time, killed by a signal, never started). Only such an answer is worth reusing."""
    return result.imported is not None and not (result.error or "").startswith(_CUT_SHORT)


def _python_of(ep: EntryPoint, python: Path) -> Path:
    return Path(os.path.expanduser(ep.argv[0])) if ep.argv else python


def state(
    ep: EntryPoint,
    env: Mapping[str, str],
    environ: Mapping[str, str],
    result: verify.DeepVerification | None,
    python: Path,
) -> EntryPointState:
    """The snapshot's record of *ep*: what it changes, and the check's result (if run)."""
    mine, theirs = select_env(env), select_env(environ)
    adds = {k: v for k, v in activation.changes(theirs, mine).items() if k in TRACED or k in mine}
    ok = None if result is None else usable(result)
    error = ep.note
    if result is not None and not ok:
        error = result.dnn_error or result.error or "no GPU listed"
    return EntryPointState(
        kind=ep.kind,
        name=ep.name,
        source=ep.source,
        python=str(_python_of(ep, python)),
        adds=frozen_map(adds),
        values=frozen_map({k: env[k] for k in TRACED if k in env}),
        usable=ok,
        gpus=None if result is None else result.gpus,
        error=error,
    )


ACTIVATION_ONLY = frozenset(
    {
        "PATH",
        "PKG_CONFIG_PATH",
        "PS1",
        "VIRTUAL_ENV",
        "VIRTUAL_ENV_PROMPT",
        "_OLD_VIRTUAL_PATH",
        "_OLD_VIRTUAL_PS1",
        "_OLD_VIRTUAL_PYTHONHOME",
        "TF_CPP_MIN_LOG_LEVEL",
        "TF_CPP_MAX_VLOG_LEVEL",
    }
)
"""Variables that change what a shell shows or finds (virtualenv's activate sets these, and
``PKG_CONFIG_PATH``), not what TensorFlow loads or lists:
two entry points that differ only in these (and start the same interpreter) get the same
answer from the op checks, which run no program found on ``PATH`` (XLA's ``ptxas`` is, and
the entry points are judged without XLA: ``usable``)."""

_Key = tuple[str, tuple[tuple[str, str], ...]]


def same_check(python: Path, env: Mapping[str, str]) -> _Key:
    """What decides an entry point's check: the interpreter started and its environment."""
    return str(python), tuple(sorted((k, v) for k, v in env.items() if k not in ACTIVATION_ONLY))


@dataclass
class Looks:
    """What the entry points' checks answered at the last look, for the next look to reuse.

    A check's answer is decided by three things: the interpreter started and the environment
    it gets (``same_check``'s key), and the files that interpreter reads when it imports
    TensorFlow (its site-packages: the distributions, the ``.pth`` files, the import hook).
    The key is worked out again at every look from the files as they are then (the activate
    script sourced again, kernelspecs, settings and service files read again), so a step that
    changes an entry point's environment gives it a new key and a new check. The key cannot
    show a change to the interpreter's own files: ``changed`` says what may have changed them
    since the last look (a package step or an import hook, applied or rolled back), and while
    it says anything no answer is reused.

    ``answers`` holds only answers a child gave in full (``answered``: a child that ran out of
    time is asked again), and only those of the last look, each for the key it was given for.
    ``carried`` is what the last look reused: entry point -> why.
    """

    answers: dict[_Key, verify.DeepVerification] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    """Why the interpreter's files may differ from the last look (empty: they do not)."""
    edited: list[str] = field(default_factory=list)
    """The steps since the last look that edited only files environments are built from."""
    unsets: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    """The import-hook steps since the last look that only make TensorFlow's import unset
    variables (the step, those variables): they change nothing in a process whose
    environment sets none of them (``tffix.hook``: the module pops them, and does no more)."""
    carried: dict[str, str] = field(default_factory=dict)
    own: tuple[tuple[str, tuple[tuple[str, str], ...]], TensorFlowReport] | None = None
    """The look's own TensorFlow report at the last look, with the interpreter and the whole
    environment it ran in (``remember``)."""

    def stands(self, key: _Key) -> bool:
        """Whether an answer given for *key* at the last look still stands: nothing since may
        have changed the interpreter's files, but for unsets of variables *key* lacks."""
        if self.changed:
            return False
        names = {name for name, _ in key[1]}
        return not any(variables & names for _, variables in self.unsets)

    def reusable(self) -> dict[_Key, verify.DeepVerification]:
        """The answers the next look may reuse (``stands``)."""
        return {key: value for key, value in self.answers.items() if self.stands(key)}

    def remember(
        self, python: Path, env: Mapping[str, str], report: TensorFlowReport | None
    ) -> None:
        """Keep the look's own TensorFlow *report*, when its child answered in full."""
        if report is not None and report.verification and answered(report.verification):
            self.own = ((str(python), tuple(sorted(env.items()))), report)
        else:
            self.own = None

    def earlier_report(
        self, python: Path, env: Mapping[str, str]
    ) -> tuple[TensorFlowReport, str] | None:
        """The last look's own TensorFlow report and why it stands, when the next look's child
        would start the same interpreter in exactly the same environment (every variable, so
        PATH too: the XLA check finds ``ptxas`` there) and ``stands`` holds for it."""
        if self.own is None:
            return None
        key = (str(python), tuple(sorted(env.items())))
        if self.own[0] != key or not self.stands(same_check(python, env)):
            return None
        return self.own[1], self.why()

    def why(self) -> str:
        """Why an answer reused now still stands."""
        parts = []
        if self.edited:
            parts.append(
                "the steps since edited only files environments are built from: "
                + "; ".join(self.edited)
            )
        if self.unsets:
            names = sorted(set().union(*(variables for _, variables in self.unsets)))
            parts.append(
                "the import hook added since only unsets "
                + ", ".join(names)
                + ", which this environment does not set: "
                + "; ".join(text for text, _ in self.unsets)
            )
        since = " and ".join(parts) if parts else "no step ran since"
        return (
            "carried over from the previous look: it starts the same interpreter in the same "
            f"environment, and {since}"
        )


def check_all(
    points: Sequence[EntryPoint],
    environ: Mapping[str, str],
    prefix: Path,
    python: Path,
    activated: Mapping[str, str],
    *,
    timeout: float,
    known: Callable[[], verify.DeepVerification | None] | None = None,
    looks: Looks | None = None,
) -> tuple[EntryPointState, ...]:
    """Run the check for every entry point, at the same time (each is one child).

    Entry points that start the same interpreter in the same environment (five jobs of one
    crontab; ``same_check``) share one child: the result could not differ. *known* waits for
    the answer of a check already run for *python* in *activated* (the TensorFlow probe's own
    op checks): the entry points it covers take that answer instead of a child of their own.
    An entry point with a note could not be judged, and is not checked: the note says why.
    With *looks* (the repair's memory of its last look), an entry point whose key the last
    look answered keeps that answer while nothing changed the interpreter's files
    (``Looks``); *looks* then holds this look's answers.
    """
    envs = [environment_for(ep, environ, prefix, activated) for ep in points]
    keys = [
        None if ep.note is not None else same_check(_python_of(ep, python), envs[i])
        for i, ep in enumerate(points)
    ]
    runs = {k: i for i, k in reversed(list(enumerate(keys))) if k is not None}
    mine = same_check(python, activated) if known is not None else None
    results: dict[_Key, verify.DeepVerification] = {}
    earlier = looks.reusable() if looks is not None else {}
    carried = {key: earlier[key] for key in runs if key != mine and key in earlier}

    def run(key: _Key) -> None:
        i = runs[key]
        env = {**envs[i], **_QUIET}
        results[key] = verify.deep_verify(_python_of(points[i], python), env, timeout=timeout)

    def start(key: _Key) -> threading.Thread:
        thread = threading.Thread(target=run, args=(key,), daemon=True)
        thread.start()
        return thread

    results.update(carried)
    threads = [start(key) for key in runs if key != mine and key not in carried]
    if mine is not None and mine in runs and known is not None:
        own = known()
        if own is None:  # the probe's child ran no op checks: one of its own
            threads.append(start(mine))
        else:
            results[mine] = own
    for t in threads:
        t.join(timeout + 5)  # a child that did not answer: its points are "not checked"
    found = [None if key is None else results.get(key) for key in keys]
    if looks is not None:
        why = looks.why()
        looks.carried = {
            f"{ep.kind} {ep.name}": why
            for ep, key in zip(points, keys, strict=True)
            if key in carried
        }
        looks.answers = {k: v for k, v in results.items() if answered(v)}
        looks.changed.clear()
        looks.edited.clear()
        looks.unsets.clear()
    return tuple(state(ep, envs[i], environ, found[i], python) for i, ep in enumerate(points))


def trace(
    variables: Sequence[str],
    *,
    environ: Mapping[str, str],
    prefix: Path,
    site_dirs: Sequence[Path],
    kernelspecs: Sequence[Path],
    project: Path | None,
    extra: Sequence[provenance.Origin] = (),
) -> Provenance:
    """Where each of *variables* is set, and every place looked in; *extra*: the origins the
    entry points found in their own files (settings.json, envFile, crontab, unit files)."""
    where = provenance.Places(
        home=Path(environ["HOME"]) if environ.get("HOME") else None,
        shell=environ.get("SHELL"),
        environ=environ,
        prefix=prefix,
        site_dirs=tuple(site_dirs),
        kernelspecs=tuple(kernelspecs),
        project=project,
    )
    found: dict[str, list[Origin]] = {v: [] for v in variables}
    for o in [*provenance.origins(variables, where), *extra]:
        if o.variable in found:
            mine = Origin(o.file, o.line, o.text, o.kind)
            if mine not in found[o.variable]:
                found[o.variable].append(mine)
    searched = list(dict.fromkeys([*provenance.where_set(where), *(o.file for o in extra)]))
    return Provenance(frozen_map({k: tuple(v) for k, v in found.items()}), tuple(searched))
