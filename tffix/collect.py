"""Collect a live snapshot: run every probe against a target and assemble a ``Snapshot``.

``collect_snapshot`` is the one function other code calls for a live snapshot (``tffix
snapshot``, ``tffix --dry-run``); ``observe_target`` is the repair's look (before the first step
and after each group): the same snapshot and the verification's op checks, from the one
TensorFlow child, which runs them after its own listing. It runs the probes that
do not depend on each other concurrently, in threads, starting the TensorFlow child first since
it is the long pole; the packages probe feeds the loader probe (which sonames, where TensorFlow
lives). Every probe failure lands in ``Snapshot.unknown[key]`` as "unknown, because …"; this
module never raises for the target's sake.

``target_environment`` gives the environment the target's children run in: the caller's
environment after really sourcing the venv's ``bin/activate`` in a clean bash
(``tffix.probes.activation``; modelled by ``tffix.probes.env.activated_env`` only when it
cannot be sourced), so a user's own ``export`` in the script counts. ``verify_gpu`` runs the
re-verification snippet in that environment. For a virtualenv, the snapshot also carries
every entry point (activated, plain, Jupyter kernels, VS Code) with the GPU check run the
way it runs the interpreter, and where the variables that matter are set
(``tffix.probes.entrycheck``). The TensorFlow child's own op checks answer for every entry
point whose interpreter and environment are its own but for
``tffix.probes.entrycheck.ACTIVATION_ONLY``; entry points that share an environment share one
child: a plain venv costs one TensorFlow import.

This module only orchestrates: the probes in ``tffix.probes`` do the reading.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from tffix.headstart import (
    HeadStart,
    NoAnswer,
    Pending,
    in_thread,
    snapshot_ops,
    start,
    target_environment,
)
from tffix.model import (
    UNKNOWN,
    Driver,
    EntryPointState,
    Gpu,
    Library,
    Platform,
    Provenance,
    PythonInfo,
    Snapshot,
    TensorFlowInfo,
    _Unknown,
    frozen_map,
)
from tffix.probes import entrycheck
from tffix.probes import env as env_probe
from tffix.probes import gpu as gpu_probe
from tffix.probes import host as host_probe
from tffix.probes import loader as loader_probe
from tffix.probes import packages as packages_probe
from tffix.probes import tensorflow as tf_probe
from tffix.probes import toolkit as toolkit_probe
from tffix.probes import verify as verify_probe
from tffix.probes.target import Target, TargetKind

__all__ = ["HeadStart", "collect_snapshot", "observe_target", "start", "target_environment"]
"""``start`` and ``target_environment`` live in ``tffix.headstart`` (imported before the rest,
so that a live look's TensorFlow child starts first); they stay importable from here."""

_T = TypeVar("_T")
_D = TypeVar("_D")

DEFAULT_TF_TIMEOUT = tf_probe.DEFAULT_TIMEOUT

DRIVER_TIMEOUT = 30.0
"""Seconds NVML may take to answer (it answers in milliseconds unless the driver is sick)."""


def _python_info(target: Target) -> PythonInfo:
    return PythonInfo(
        version=target.version,
        executable=str(target.python),
        venv=str(target.venv) if target.venv is not None else None,
        kind=str(target.kind),
        implementation=target.implementation,
    )


def _guarded(key: str, unknown: dict[str, str], future: Pending[_T], default: _D) -> _T | _D:
    """The probe's result, or *default* with the failure recorded under *key*."""
    try:
        return future.result()
    except Exception as exc:  # a probe bug must cost one section, not the snapshot
        unknown[key] = f"the {key} probe failed: {type(exc).__name__}: {exc}"
        return default


def _match_loaded(soname: str, lib: Library, loaded: Mapping[str, str]) -> str | None:
    """The file TensorFlow had mapped for *soname*: a candidate's real file, else a file of
    that soname (``libcudart.so.12.5.82`` for ``libcudart.so.12``), else the only file of that
    library (``libcuda.so.550.54.14`` for ``libcuda.so.1``)."""
    # /proc/self/maps names the real file; report it under the name the loader searched for
    # (libcuda.so.1 -> libcuda.so.550.54.14 is one library, not a shadowing copy).
    searched = [lib.path] if isinstance(lib.path, str) else []
    reals = {os.path.realpath(c): c for c in reversed([*searched, *lib.candidates])}
    for path in loaded.values():
        if path in reals:
            return reals[path]
    for name, path in loaded.items():
        if name == soname or name.startswith(soname + "."):
            return path
    stem = soname.split(".so")[0] + ".so."
    same = [path for name, path in loaded.items() if name.startswith(stem)]
    return same[0] if len(same) == 1 else None


def shell_python_mismatch(environ: Mapping[str, str], prefix: Path) -> str | None:
    """When the venv at *prefix* is the active one, a ``python`` on ``PATH`` that is not its own.

    Activation puts the venv's ``bin`` first, but a later ``PATH`` change (conda's hook, a
    shell rc file) can put another interpreter ahead of it: the user then runs TensorFlow from
    somewhere else. Only meaningful for the caller's own environment, before tffix overlays
    the venv's activation.
    """
    active = environ.get("VIRTUAL_ENV")
    if not active or os.path.realpath(active) != os.path.realpath(prefix):
        return None
    own = os.path.realpath(prefix / "bin")
    for name in ("python", "python3"):
        found = shutil.which(name, path=environ.get("PATH", ""))
        if found is not None and os.path.realpath(os.path.dirname(found)) != own:
            return (
                f"the venv is active, but `{name}` on PATH is {found}, not "
                f"{prefix / 'bin' / name}: something put another interpreter ahead of it"
            )
    return None


def _ptxas(env: Mapping[str, str], nvidia_dirs: tuple[str, ...]) -> dict[str, object]:
    found = shutil.which("ptxas", path=env.get("PATH", ""))
    wheel = [
        str(Path(d).parent / "bin" / "ptxas")
        for d in nvidia_dirs
        if (Path(d).parent / "bin" / "ptxas").is_file()
    ]
    return {"on_path": found, "in_wheels": wheel}


SYSROOT_VARIABLE = "TFFIX_SYSROOT"
"""Where the probes read the machine's ``/etc``, ``/proc`` and ``/dev`` (default ``/``)."""


def _toolkits(root: Path, unknown: dict[str, str]) -> dict[str, object]:
    """``{"cuda_toolkits": [...]}`` for the system CUDA toolkits under *root* (empty when
    there are none); a folder that cannot be listed costs this fact alone."""
    try:
        found = toolkit_probe.probe_toolkits(root)
    except OSError as exc:
        unknown["cuda_toolkits"] = f"cannot list the CUDA toolkits: {exc}"
        return {}
    return {"cuda_toolkits": found} if found else {}


def _wsl_lib(root: Path, platform: Platform) -> dict[str, object]:
    """``{"wsl_lib_dir": ...}`` on WSL2, which mounts the Windows driver's libcuda there (the
    plan names it as found); empty elsewhere."""
    wsl_lib = root / "usr/lib/wsl/lib"
    return {"wsl_lib_dir": str(wsl_lib)} if platform.wsl and wsl_lib.is_dir() else {}


def _driver_result(
    future: Pending[gpu_probe.DriverReport], unknown: dict[str, str]
) -> gpu_probe.DriverReport | None:
    """The driver probe's report, or None with the reason under ``unknown["driver"]``."""
    try:
        return future.result(timeout=DRIVER_TIMEOUT)
    except NoAnswer:
        unknown["driver"] = f"NVML did not answer within {DRIVER_TIMEOUT:g}s (nvmlInit hung)"
    except Exception as exc:  # a probe bug must cost one section, not the snapshot
        unknown["driver"] = f"the driver probe failed: {type(exc).__name__}: {exc}"
    return None


def _package_sections(
    pkg_result: tuple[packages_probe.PackagesReport, loader_probe.LoaderReport | Exception] | None,
    extra: dict[str, object],
    unknown: dict[str, str],
) -> tuple[Mapping[str, str] | None, Mapping[str, Library], tuple[str, ...]]:
    """The packages, libraries and wheel library folders of the two probes' results (what
    they could not tell goes into *unknown*, what else they saw into *extra*)."""
    packages: Mapping[str, str] | None = None
    libraries: Mapping[str, Library] = frozen_map()
    nvidia_dirs: tuple[str, ...] = ()
    if pkg_result is not None:
        report, lib_report = pkg_result
        packages = report.packages
        nvidia_dirs = report.nvidia_lib_dirs
        extra["tensorflow_owners"] = list(report.tensorflow_owners)
        extra["nvidia_lib_dirs"] = list(report.nvidia_lib_dirs)
        extra["packages_source"] = report.source
        if report.unknown:
            unknown["packages"] = report.unknown
        if isinstance(lib_report, Exception):
            unknown["libraries"] = (
                f"the loader probe failed: {type(lib_report).__name__}: {lib_report}"
            )
        else:
            libraries = lib_report.libraries
            extra["loader"] = dict(lib_report.extra)
            if lib_report.unknown:
                unknown["libraries"] = lib_report.unknown
    return packages, libraries, nvidia_dirs


def _tf_sections(
    tf_report: tf_probe.TensorFlowReport | None,
    libraries: Mapping[str, Library],
    extra: dict[str, object],
    unknown: dict[str, str],
) -> tuple[TensorFlowInfo | _Unknown | None, tuple[str, ...], Mapping[str, Library]]:
    """The TensorFlow section, its log, and the libraries with what TensorFlow had mapped."""
    if tf_report is None:
        return UNKNOWN, (), libraries
    if tf_report.stage:
        extra["tensorflow_stage"] = tf_report.stage
    if tf_report.unknown:
        unknown["tensorflow"] = tf_report.unknown
    if tf_report.loaded:
        extra["tensorflow_loaded"] = dict(tf_report.loaded)
        libraries = frozen_map(
            {
                soname: replace(lib, loaded=_match_loaded(soname, lib, tf_report.loaded))
                for soname, lib in libraries.items()
            }
        )
    return tf_report.info, tf_report.log, libraries


EntryPointReport = tuple[tuple[EntryPointState, ...], Provenance]


def _entry_points(
    target: Target,
    environ: Mapping[str, str],
    env: Mapping[str, str],
    timeout: float,
    known: Callable[[], verify_probe.DeepVerification | None],
    looks: entrycheck.Looks | None = None,
) -> EntryPointReport:
    """Every entry point with the GPU check run there, and where the variables are set.

    *known* waits for the TensorFlow probe's own op checks, run in *env* (the activated
    environment): an entry point that starts the target's interpreter in an environment the
    same but for ``ACTIVATION_ONLY`` takes that answer instead of a child of its own, and
    entry points that share an environment share one child. *looks*: the repair's memory of
    its last look (``tffix.probes.entrycheck.Looks``), whose answers stand where nothing an
    entry point's check depends on changed.
    """
    project = Path(environ["PWD"]) if environ.get("PWD") else None
    points = entrycheck.discover(target.prefix, target.python, environ, project=project)
    states = entrycheck.check_all(
        points,
        environ,
        target.prefix,
        target.python,
        env,
        timeout=timeout,
        known=known,
        looks=looks,
    )
    wanted = [
        v for v in entrycheck.TRACED if v in environ or v in env or any(v in s.adds for s in states)
    ]
    where = entrycheck.trace(
        wanted,
        environ=environ,
        prefix=target.prefix,
        site_dirs=target.site_packages,
        kernelspecs=[Path(p.source) for p in points if p.kind == "kernel" and p.source],
        project=project or target.prefix.parent,
        extra=[o for p in points for o in p.origins],
    )
    return states, where


def collect_snapshot(
    target: Target,
    *,
    environ: Mapping[str, str],
    tf_timeout: float = DEFAULT_TF_TIMEOUT,
    nvml: Any = None,
    host_root: Path | None = None,
    with_tensorflow: bool = True,
    meanwhile: Callable[[], object] | None = None,
    started: HeadStart | None = None,
) -> Snapshot:
    """Everything tffix sees about *target*, as a ``Snapshot``; never raises for the target.

    *environ* is the caller's environment (normally ``os.environ``); *nvml* replaces the NVML
    binding (tests); *host_root* is where the platform and driver probes read ``/etc``,
    ``/proc`` and ``/dev``: by default ``$TFFIX_SYSROOT`` or ``/`` (a simulated machine's root
    in tests, or a mounted image of a broken machine's root). ``with_tensorflow=False`` skips the
    TensorFlow child (the fast health check): the snapshot then has no ``tensorflow`` section.
    *meanwhile* is the caller's own work (loading the rules), run in this thread once every
    probe has started, while TensorFlow imports in its child: it then costs no wall time of
    its own. Its exceptions (a Ctrl-C) propagate. *started* is the look begun by
    ``tffix.headstart.start_snapshot`` with the same target and arguments (the TensorFlow
    child already running while the caller imported this module); ``ValueError`` when it was
    begun for another look.
    """
    checks = snapshot_ops(target, with_tensorflow=with_tensorflow)
    if started is not None and (
        started.target != target
        or started.environ != environ
        or (started.ops, started.tf_timeout) != (checks, tf_timeout)
        or started.with_tensorflow != with_tensorflow
    ):
        raise ValueError("collect_snapshot: *started* was begun for another look")
    return _collect(
        target,
        environ=environ,
        tf_timeout=tf_timeout,
        nvml=nvml,
        host_root=host_root,
        with_tensorflow=with_tensorflow,
        ops=checks,
        meanwhile=meanwhile,
        started=started,
    )[0]


def observe_target(
    target: Target,
    *,
    environ: Mapping[str, str],
    tf_timeout: float = DEFAULT_TF_TIMEOUT,
    nvml: Any = None,
    host_root: Path | None = None,
    looks: entrycheck.Looks | None = None,
    meanwhile: Callable[[], object] | None = None,
) -> tuple[Snapshot, verify_probe.DeepVerification]:
    """A snapshot and the op checks (listing, an op, a ``conv2d``, an XLA op on ``/GPU:0``),
    from one TensorFlow import: the probe's child runs the checks after its own listing, in
    the activated environment, where the verification child would have run them. The
    repair's look after each step; never raises for the target. *looks* carries the entry
    points' answers from one look to the next (``tffix.probes.entrycheck.Looks``);
    *meanwhile* runs while TensorFlow imports, as for ``collect_snapshot``."""
    snapshot, verification = _collect(
        target,
        environ=environ,
        tf_timeout=max(tf_timeout, verify_probe.DEFAULT_TIMEOUT),
        nvml=nvml,
        host_root=host_root,
        with_tensorflow=True,
        ops="xla",
        looks=looks,
        meanwhile=meanwhile,
    )
    if verification is None:  # the probe's thread failed: say so, as a failed check
        why = snapshot.unknown.get("tensorflow", "the TensorFlow probe failed")
        verification = verify_probe.DeepVerification(error=why)
    return snapshot, verification


def _remember(
    looks: entrycheck.Looks,
    target: Target,
    env: Mapping[str, str],
    report: tf_probe.TensorFlowReport | None,
    started: HeadStart,
) -> None:
    """Keep this look's own report for the next look, and say when it was the last look's."""
    looks.remember(target.python, env, report)
    if started.carried:  # said with the entry points' (Session.collect)
        own = "TensorFlow in the activated environment"
        looks.carried = {own: started.carried, **looks.carried}


def _collect(
    target: Target,
    *,
    environ: Mapping[str, str],
    tf_timeout: float,
    nvml: Any,
    host_root: Path | None,
    with_tensorflow: bool,
    ops: str | None,
    looks: entrycheck.Looks | None = None,
    meanwhile: Callable[[], object] | None = None,
    started: HeadStart | None = None,
) -> tuple[Snapshot, verify_probe.DeepVerification | None]:
    if host_root is None:
        host_root = Path(environ.get(SYSROOT_VARIABLE) or "/")
    unknown: dict[str, str] = {}
    extra: dict[str, object] = {}
    # The TensorFlow child (the long pole) first, in the activated environment: the caller
    # may have started it before importing this module (tffix.headstart).
    if started is None:
        started = start(
            target,
            environ=environ,
            tf_timeout=tf_timeout,
            with_tensorflow=with_tensorflow,
            ops=ops,
            earlier=None if looks is None else partial(looks.earlier_report, target.python),
        )
    env, activate, tf_future = started.env, started.activate, started.tensorflow
    if activate:
        extra["activate"] = activate
    sys_path = target.sys_path or tuple(str(p) for p in target.site_packages)

    def packages_then_libraries() -> tuple[
        packages_probe.PackagesReport, loader_probe.LoaderReport | Exception
    ]:
        report = packages_probe.probe_packages(target.python, sys_path)
        try:
            libraries: loader_probe.LoaderReport | Exception = loader_probe.probe_libraries(
                python=target.python,
                machine=target.machine,
                env=env,
                tf_dir=report.tensorflow_dir,
                tf_version=packages_probe.tensorflow_version(report),
                library_owners=report.library_owners,
            )
        except Exception as exc:
            libraries = exc
        return report, libraries

    def known() -> verify_probe.DeepVerification | None:
        try:
            report = tf_future.result()
        except Exception:  # counted under "tensorflow" below
            return None
        return None if report is None else report.verification

    # Each other probe runs in a daemon thread of its own too (tffix.headstart.Pending). Daemon
    # threads, not a pool: Ctrl-C must not wait for a child's time limit, and NVML runs in
    # this process, where a sick driver can hang nvmlInit for minutes.
    pkg_future = in_thread(packages_then_libraries, name="tffix-packages")
    drv_future = in_thread(
        lambda: gpu_probe.probe_driver(
            nvml=nvml,
            proc_version=str(host_root / "proc/driver/nvidia/version"),
            dev_dir=str(host_root / "dev"),
            pci_dir=str(host_root / "sys/bus/pci/devices"),
        ),
        name="tffix-nvml",
    )
    ep_future: Pending[EntryPointReport] | None = None
    if target.kind is TargetKind.VENV and with_tensorflow:  # the fast check runs no TF child
        ep_future = in_thread(
            lambda: _entry_points(target, environ, env, tf_timeout, known, looks),
            name="tffix-entry-points",
        )
    host_future = in_thread(
        lambda: host_probe.probe_platform(
            sys_platform=target.platform, machine=target.machine, environ=env, root=host_root
        ),
        name="tffix-host",
    )
    if meanwhile is not None:  # every probe runs: the caller's work hides behind the import
        meanwhile()
    platform = _guarded("platform", unknown, host_future, Platform(os=None))
    extra.update(_toolkits(host_root, unknown))
    extra.update(_wsl_lib(host_root, platform))
    pkg_result = _guarded("packages", unknown, pkg_future, None)
    if pkg_result is None:
        unknown["libraries"] = "the loader probe needs the packages probe, which failed"
    tf_report = _guarded("tensorflow", unknown, tf_future, None)
    drv = _driver_result(drv_future, unknown)
    entry: EntryPointReport | None = None
    if ep_future is not None:
        entry = _guarded("entry_points", unknown, ep_future, None)
    if looks is not None:
        _remember(looks, target, env, tf_report, started)

    # driver
    driver: Driver | _Unknown | None = UNKNOWN
    gpus: tuple[Gpu, ...] | None = None
    if drv is not None:
        driver, gpus = drv.driver, drv.gpus
        extra.update(drv.extra)

    # packages and libraries
    packages, libraries, nvidia_dirs = _package_sections(pkg_result, extra, unknown)
    extra["ptxas"] = _ptxas(env, nvidia_dirs)
    if (mismatch := shell_python_mismatch(environ, target.prefix)) is not None:
        extra["wrong_interpreter"] = mismatch

    # TensorFlow
    tensorflow, log, libraries = _tf_sections(tf_report, libraries, extra, unknown)

    snapshot = Snapshot(
        platform=platform,
        python=_python_info(target),
        packages=packages,
        env=frozen_map(env_probe.select_env(env)),
        driver=driver,
        gpus=gpus,
        libraries=libraries,
        tensorflow=tensorflow,
        log=log,
        extra=frozen_map(extra),
        unknown=frozen_map(unknown),
        entry_points=None if entry is None else entry[0],
        provenance=None if entry is None else entry[1],
    )
    return snapshot, None if tf_report is None else tf_report.verification


def verify_gpu(
    target: Target,
    *,
    environ: Mapping[str, str],
    timeout: float = DEFAULT_TF_TIMEOUT,
) -> tf_probe.VerifyResult:
    """Re-verify in a fresh child: list GPUs and run one op on ``/GPU:0`` (never raises).

    The child runs in ``target_environment(target, environ)``, so edits just written to the
    venv's activate script count, as they will for the user.
    """
    env, _ = target_environment(target, environ)
    return tf_probe.verify_gpu(target.python, env, timeout=timeout)
