"""What fixes are made of: step builders, and the choice of a TensorFlow release to install.

Pure. Shared by the cause families' fixes; versions come from the release matrix for the
target's Python, so a step never names a wheel that does not exist for it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from packaging.version import Version

from tffix import shellquote as sq
from tffix.causes.base import Alternative
from tffix.facts import Facts, cc_tuple, parse_version
from tffix.model import PlanStep, Safety, StepKind
from tffix.ruleset import Release


def pip_install(reqs: Sequence[str], summary: str, safety: Safety, cause: str) -> PlanStep:
    return PlanStep(
        kind=StepKind.PIP_INSTALL,
        summary=summary,
        safety=safety,
        resolves=(cause,),
        requirements=tuple(reqs),
    )


def pip_uninstall(pkgs: Sequence[str], summary: str, safety: Safety, cause: str) -> PlanStep:
    return PlanStep(
        kind=StepKind.PIP_UNINSTALL,
        summary=summary,
        safety=safety,
        resolves=(cause,),
        packages=tuple(pkgs),
    )


def env_step(
    kind: StepKind, variable: str, cause: str, *, value: str | None = None, entry: str | None = None
) -> PlanStep:
    """One edit of one variable in the venv's activate scripts."""
    verb = {
        StepKind.ENV_SET: f"Set {variable}={value}",
        StepKind.ENV_UNSET: f"Unset {variable}",
        StepKind.ENV_PATH_PREPEND: f"Put {entry} first on {variable}",
        StepKind.ENV_PATH_REMOVE: f"Remove {entry} from {variable}"
        if entry
        else f"Remove the empty entries (the current folder, as the loader reads them) from "
        f"{variable}",
    }[kind]
    return PlanStep(
        kind=kind,
        summary=f"{verb} in the venv's activate scripts",
        safety=Safety.SAFE,
        resolves=(cause,),
        variable=variable,
        value=value,
        entry=entry,
    )


def shell(f: Facts) -> sq.Dialect:
    """The quoting dialect of the user's shell, as the platform probe recorded it."""
    return sq.for_shell(f.snap.platform.shell)


def command(f: Facts, argv: Sequence[str], comment: str | None = None) -> str:
    """*argv* quoted for the user's shell, with an optional trailing ``# comment``."""
    text = sq.join(argv, shell(f))
    return f"{text}  # {comment}" if comment else text


def path_prepend(variable: str, folders: Sequence[str], cause: str) -> PlanStep:
    """Put *folders* first on the list variable *variable*, in order, as one edit."""
    folders = tuple(dict.fromkeys(folders))
    if len(folders) == 1:
        return env_step(StepKind.ENV_PATH_PREPEND, variable, cause, entry=folders[0])
    common = os.path.commonpath(folders) if all(d.startswith("/") for d in folders) else ""
    where = (
        f"{len(folders)} folders under {common}"
        if common not in ("", "/")
        else (f"{len(folders)} folders")
    )
    return PlanStep(
        kind=StepKind.ENV_PATH_PREPEND,
        summary=f"Put {where} first on {variable} in the venv's activate scripts",
        safety=Safety.SAFE,
        resolves=(cause,),
        variable=variable,
        entry=":".join(folders),
        entries=folders,
    )


def manual(commands: Sequence[str], summary: str, cause: str) -> PlanStep:
    return PlanStep(
        kind=StepKind.MANUAL,
        summary=summary,
        safety=Safety.MANUAL,
        resolves=(cause,),
        commands=tuple(commands),
    )


def installable(f: Facts, release: Release) -> bool:
    """``tensorflow[and-cuda]==release`` resolves for the target's Python on Linux x86_64."""
    if not release.and_cuda or not release.and_cuda_resolves:
        return False
    if f.python is not None and f.python not in release.python:
        return False
    for bad in f.rules.known_bad:
        if (
            bad.cause == "and-cuda-unresolvable"
            and release.version in bad.releases
            and (bad.python is None or f.python is None or f.python in bad.python)
        ):
            return False
    libc = parse_version((f.snap.platform.libc or "").replace("glibc", "").strip())
    need = re.fullmatch(r"manylinux_(\d+)_(\d+)", release.glibc or "")
    return not (libc and need and libc < Version(f"{need.group(1)}.{need.group(2)}"))


def fits_machine(f: Facts, release: Release) -> bool:
    """The release runs on this machine's GPUs (machine code) and driver, where known."""
    for _i, _where, cc in f.gpu_ccs:
        if cc is None:
            continue
        sass = [cc_tuple(c) for c in release.compute_capabilities]
        if not any(s and s[0] == cc[0] and s[1] <= cc[1] for s in sass):
            return False
    drv = f.driver
    if drv is not None and drv.version:
        dv = parse_version(drv.version)
        cv = parse_version(release.cuda)
        floor = next((m for m in f.rules.minimums if cv and m.cuda == str(cv.major)), None)
        if dv and floor and dv < Version(floor.linux):
            return False
    return True


def newest_release(f: Facts, *, fit: bool = True) -> Release | None:
    """The newest release installable here (and fitting the machine, when *fit*)."""
    for release in reversed(f.rules.releases):
        if installable(f, release) and (not fit or fits_machine(f, release)):
            return release
    return None


def same_or_newest(f: Facts, version: str | None) -> tuple[Release, Safety] | None:
    """Keep the installed release when possible (safe); else its post-release; else the newest
    one that fits (unsafe: it changes the TensorFlow release)."""
    if version:
        base = version.split("+")[0]
        same = f.rules.release(base)
        fixed = _known_bad_fix(f, base)
        if fixed is not None and installable(f, fixed):
            # reinstalling a release with a known defect would not help: take its fix
            return fixed, Safety.SAFE if fixed.version.startswith(f"{base}.post") else Safety.UNSAFE
        if same is not None and installable(f, same):
            return same, Safety.SAFE
        for release in f.rules.releases:
            if release.version.startswith(f"{base}.post") and installable(f, release):
                return release, Safety.SAFE
    newest = newest_release(f)
    if newest is None:
        return None
    installed = version is not None
    return newest, Safety.UNSAFE if installed else Safety.SAFE


def _known_bad_fix(f: Facts, version: str) -> Release | None:
    """The release that fixes a known defect of *version* that a reinstall would keep."""
    for bad in f.rules.known_bad:
        if (
            version in bad.releases
            and bad.requires is None
            and (bad.python is None or f.python is None or f.python in bad.python)
        ):
            return f.rules.release(bad.fixed_in)
    return None


def and_cuda(release: Release, installed: str | None = None) -> str:
    """``tensorflow[and-cuda]==V``; ``===V`` when *installed* is a local build of V.

    PEP 440 lets ``==2.17.0`` match ``2.17.0+cpu``, so pip would keep (or pick again) the
    local CPU build the plan means to replace; arbitrary equality matches the public
    release alone.
    """
    local = installed is not None and installed.split("+")[0] == release.version
    op = "===" if local and "+" in (installed or "") else "=="
    return f"tensorflow[and-cuda]{op}{release.version}"


def tf_install(f: Facts, cause: str, why: str, version: str | None = None) -> Alternative:
    choice = same_or_newest(f, version if version is not None else f.tf_version)
    if choice is None:
        return ()
    release, safety = choice
    keeps = version is not None and release.version.startswith(version.split("+")[0])
    verb = "Reinstall" if keeps else "Install"
    return (
        pip_install(
            [and_cuda(release, f.tf_version)],
            f"{verb} TensorFlow {release.version} with its pinned CUDA wheels ({why})",
            safety,
            cause,
        ),
    )


def exact_pin(release: Release | None, prefix: str) -> str | None:
    if release is None:
        return None
    from packaging.requirements import Requirement  # not at start-up: it imports packaging.tags

    for text in release.and_cuda:
        req = Requirement(text)
        if req.name.startswith(prefix):
            specs = list(req.specifier)
            if len(specs) == 1 and specs[0].operator == "==":
                return f"{req.name}=={specs[0].version}"
    return None
