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
* ``vscode``: the caller's environment without activation plus the ``python.envFile``.

``trace`` asks ``tffix.probes.provenance`` where each variable that matters is set. Reading
and child processes only; nothing here writes a file.
"""

from __future__ import annotations

import os
import string
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from tffix.model import EntryPointState, Origin, Provenance, frozen_map
from tffix.probes import activation, entrypoints, provenance, verify
from tffix.probes.entrypoints import EntryPoint
from tffix.probes.env import select_env

TRACED = (
    "CUDA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "XLA_FLAGS",
    "TF_XLA_FLAGS",
    "CUDA_HOME",
    "CUDNN_PATH",
    "NVIDIA_VISIBLE_DEVICES",
)
"""The variables whose origin is traced, when some entry point has them set."""

_QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def discover(
    prefix: Path, python: Path, environ: Mapping[str, str], *, project: Path | None
) -> list[EntryPoint]:
    """Every entry point of the venv at *prefix*: activated, plain, kernels, VS Code."""
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
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
        out += entrypoints.vscode_settings(folder, python, prefix)
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
    base = activation.deactivated(environ, prefix)
    if ep.kind == "kernel":
        return kernel_env(base, ep.env)
    if ep.kind == "vscode" and ep.env_file:
        return {**base, **entrypoints.read_dotenv(Path(ep.env_file))}
    return base


def usable(result: verify.DeepVerification) -> bool:
    """A GPU listed, and both the op and the ``conv2d`` ran on it (XLA is judged elsewhere)."""
    on_gpu = [d for d in (result.op_device, result.dnn_device) if d and "GPU" in d.upper()]
    return bool(result.gpus) and len(on_gpu) == 2


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
    error = None
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


def check_all(
    points: Sequence[EntryPoint],
    environ: Mapping[str, str],
    prefix: Path,
    python: Path,
    activated: Mapping[str, str],
    *,
    timeout: float,
) -> tuple[EntryPointState, ...]:
    """Run the check for every entry point, at the same time (each is one child)."""
    envs = [environment_for(ep, environ, prefix, activated) for ep in points]
    results: list[verify.DeepVerification | None] = [None] * len(points)

    def run(i: int) -> None:
        env = {**envs[i], **_QUIET}
        results[i] = verify.deep_verify(_python_of(points[i], python), env, timeout=timeout)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(points))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return tuple(state(ep, envs[i], environ, results[i], python) for i, ep in enumerate(points))


def trace(
    variables: Sequence[str],
    *,
    environ: Mapping[str, str],
    prefix: Path,
    site_dirs: Sequence[Path],
    kernelspecs: Sequence[Path],
    project: Path | None,
) -> Provenance:
    """Where each of *variables* is set, and every place looked in."""
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
    for o in provenance.origins(variables, where):
        found[o.variable].append(Origin(o.file, o.line, o.text, o.kind))
    return Provenance(
        frozen_map({k: tuple(v) for k, v in found.items()}),
        tuple(provenance.where_set(where)),
    )
