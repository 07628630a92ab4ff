"""Entry-point causes: TensorFlow works in an activated shell but not where the user runs it,
and a bad variable set by the user's own start-up file.

**What it does.** ``entry-point-gpu-unusable`` fires for a Jupyter kernel, a plain
``venv/bin/python`` run, a VS Code configuration, a cron job or a systemd unit whose GPU
check failed (no GPU listed, or the op or ``conv2d`` did not run on it) while the activated
shell's passed — or while the kernelspec itself sets a traced variable. It names the
variable that differs, its value there and where that value comes from (the kernelspec's
``env``, ``~/.bashrc`` line 12, a module file, the project's ``.env`` line 2, a crontab line,
a unit's ``Environment=`` line), or that tffix found no origin. ``variable-from-startup-file``
fires when a masking ``CUDA_VISIBLE_DEVICES`` (or another traced variable the activated shell
overrides) is set by one of the user's own start-up files or by the project's ``.env`` (VS
Code's ``python.envFile``).

**Why is this bad?** Most training never sources ``activate``: a kernel, an IDE run or a
service starts the interpreter by path with the environment it has. A repair that lands in
the activate scripts does nothing there, and "TensorFlow sees the GPU" in a fresh activated
shell is not what the user sees.

**Fix safety.** Chosen per variable by what TensorFlow reads and when:
``CUDA_VISIBLE_DEVICES`` / ``XLA_FLAGS`` are read at CUDA/XLA initialisation, after the import
starts, so the kernelspec's ``env`` (for a kernel) or the import hook (``tffix.hook``, every
process of the interpreter) sets them: safe. Loader paths cannot change in a running process,
so, in this order: a release whose RUNPATH finds the wheels (2.16.2 over 2.16.1), preloading
the wheel's libraries by full path from the hook, or the ``LD_LIBRARY_PATH`` entry in the
kernelspec: safe. Commenting out the user's own start-up line is unsafe (the line may be
there on purpose): shown exactly, applied only with ``--unsafe``, with a backup; the same for
the line of the project's ``.env``. A crontab or a unit file is named, never edited (they
change through ``crontab -e`` and ``systemctl edit`` plus a reload); the import hook reaches
their processes anyway.

**References.** jupyter_client ``KernelManager`` (a kernel's environment is the server's plus
the kernelspec ``env``); glibc ``dlopen`` returns an already loaded object of the same soname.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from tffix.causes.base import Alternative, Cause, Detection, Family, Section, detection, payload
from tffix.causes.steps import and_cuda, installable
from tffix.facts import Facts
from tffix.model import (
    ENTRY_POINT_VARIABLES,
    EntryPointState,
    Finding,
    Origin,
    PlanStep,
    Provenance,
    Safety,
    Snapshot,
    StepKind,
)
from tffix.record import record

ORDER = ENTRY_POINT_VARIABLES
"""The variables that can make an entry point differ, most decisive first."""

READ_AT_INIT = {"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "XLA_FLAGS", "TF_XLA_FLAGS"}
"""Read by CUDA's ``cuInit`` or XLA's initialisation, after ``import tensorflow`` starts:
the import hook can still set them in the process."""

LOADER = {"LD_LIBRARY_PATH", "LD_PRELOAD"}
USER_FILES = {"shell", "login", "dotenv"}
"""Origins whose line tffix may offer to comment out (unsafe): the user's shell start-up
files and a project's ``.env`` (VS Code's ``python.envFile``); a crontab or a unit file is
changed through ``crontab -e`` / ``systemctl edit`` and a reload, so they are named only."""
REACH = {
    "shell": "every shell started from now on, and everything run from one, has it",
    "login": "every login session from now on, and everything run from one, has it",
    "dotenv": "VS Code's Python extension loads it into every run, debug session, test and "
    "notebook of the project",
}
COMMENT = "# disabled by tffix (`tffix undo` restores it): "
PRELOAD_ORDER = (
    "cudart",
    "cublasLt",
    "cublas",
    "cufft",
    "curand",
    "cusolver",
    "cusparse",
    "nvJitLink",
    "cudnn",
    "nccl",
)


def masks(value: str | None) -> bool:
    """Whether a ``CUDA_VISIBLE_DEVICES`` value hides every GPU whatever the machine."""
    if value is None:
        return False
    text = value.strip()
    first = text.split(",")[0].strip()
    return text == "" or text.lower() in {"none", "nodevfiles", "void"} or first.startswith("-")


def entries(value: str | None) -> list[str]:
    return [e.rstrip("/") for e in (value or "").split(os.pathsep) if e]


@record
class Reach:
    """An entry point where TensorFlow does not get the GPU, and the variable that differs."""

    kind: str
    name: str
    source: str | None
    variable: str | None
    value: str | None
    """Its value there (None: unset there)."""
    wanted: str | None
    """Its value in the activated shell, where the check passed (None: unset there)."""
    in_spec: bool
    """The entry point's own file (the kernelspec's ``env``) sets it."""


@record
class StartupLine:
    """A line of the user's start-up file that sets a traced variable to a bad value."""

    variable: str
    origin: Origin


# --------------------------------------------------------------------------- where values come from


def where(origin: Origin) -> str:
    """``~/.bashrc line 12`` style text for an origin."""
    if origin.line is None:
        return f"{origin.file} ({origin.kind} env)" if origin.kind == "kernelspec" else origin.file
    return f"{origin.file} line {origin.line}"


def origin_of(
    prov: Provenance | None, variable: str, value: str | None, *, activated: bool = True
) -> Origin | None:
    """The place that most likely gave *variable* its *value*: the last line (in load order)
    that mentions the value or one of its entries, else the last line that sets it. Without
    *activated*, the activate scripts are no candidates (that process never sourced them)."""
    if prov is None:
        return None
    found = tuple(o for o in prov.origins.get(variable, ()) if activated or o.kind != "activate")
    if not found:
        return None
    wanted = [value.strip()] if value else []
    wanted += entries(value) if variable in LOADER else []
    for o in reversed(found):
        if any(w and w in o.text for w in wanted):
            return o
    return found[-1]


def _not_found(prov: Provenance | None, variable: str) -> str:
    if prov is None:
        return ""
    looked = list(prov.searched)
    shown = ", ".join(looked[:8]) + (f" and {len(looked) - 8} more" if len(looked) > 8 else "")
    return f"tffix found no file that sets {variable}; it looked in {shown}."


def annotate(findings: Sequence[Finding], snap: Snapshot) -> tuple[Finding, ...]:
    """Every finding that cites a traced variable (``env.V``), with where its value comes from.

    A named origin joins the title (``… from ~/.bashrc line 12``); when none was found, the
    detail says so and where tffix looked.
    """
    prov = snap.provenance
    if prov is None:
        return tuple(findings)
    out = []
    for f in findings:
        cited = [e[4:] for e in f.evidence if e.startswith("env.") and e[4:] in ORDER]
        var = cited[0] if cited else ""
        if not cited or f"({var} from " in f.title:
            out.append(f)
            continue
        origin = origin_of(prov, var, snap.env.get(var))
        if origin is not None:
            out.append(
                replace(
                    f,
                    title=f"{f.title} ({var} from {where(origin)})",
                    evidence=(*f.evidence, f"provenance.origins.{var}"),
                )
            )
        else:
            note = _not_found(prov, var)
            out.append(replace(f, detail=f"{f.detail} {note}".strip()))
    return tuple(out)


# --------------------------------------------------------------------------- detection


def _label(ep: EntryPointState) -> str:
    if ep.kind == "kernel":
        return f"the Jupyter kernel {ep.name!r}"
    if ep.kind == "plain":
        return f"{ep.python or 'the interpreter'} run without activation"
    if ep.kind == "vscode":
        return "VS Code's Python extension"  # the finding's location names the settings
    return ep.name


def _difference(ep: EntryPointState, act: EntryPointState | None) -> str | None:
    """The most decisive traced variable that differs from the activated shell (or that the
    kernelspec sets), if any."""
    for var in ORDER:
        here = ep.values.get(var)
        there = act.values.get(var) if act is not None else None
        if (act is not None and here != there) or (var in ep.adds and ep.kind == "kernel"):
            return var
    return None


def _title(f: Facts, ep: EntryPointState, var: str | None, act: EntryPointState | None) -> str:
    label = _label(ep)
    if var is None:
        return f"{label} does not get the GPU ({ep.error or 'no GPU listed'})"
    value = ep.values.get(var)
    origin: Origin | None = None
    from_spec = ep.kind == "kernel" and var in ep.adds
    if from_spec:
        origin = None
    elif value is not None:
        culprit = value
        if var in LOADER and act is not None:
            extra = [e for e in entries(value) if e not in entries(act.values.get(var))]
            culprit = os.pathsep.join(extra) or value
        origin = origin_of(f.snap.provenance, var, culprit, activated=False)
    said = f"{var}={value!r} there" if value is not None else f"{var} is not set there"
    if value is None and act is not None and act.values.get(var) is not None:
        said = f"the activated shell's {var} does not reach it"
    came = f", from {where(origin)}" if origin is not None and value is not None else ""
    if from_spec and value is not None:
        came = ", from its kernelspec's env"
    return f"{label} does not get the GPU: {said}{came}"


def _detail(f: Facts, ep: EntryPointState, var: str | None, title: str) -> str:
    parts = [f"The check there ended with: {ep.error}."] if ep.error else []
    if var is not None and ep.values.get(var) is not None and ", from " not in title:
        parts.append(_not_found(f.snap.provenance, var))
    return " ".join(p for p in parts if p)


def check_entry_points(f: Facts) -> Iterable[Detection]:
    """entry-point-gpu-unusable."""
    points = f.snap.entry_points or ()
    act = next((e for e in points if e.kind == "activated"), None)
    for i, ep in enumerate(points):
        if ep.kind == "activated" or ep.usable is not False:
            continue
        var = _difference(ep, act)
        in_spec = var is not None and ep.kind == "kernel" and var in ep.adds
        if not ((act is not None and act.usable) or in_spec):
            continue  # broken everywhere: the other causes say why
        ev = [f"entry_points[{i}]"]
        if var is not None:
            ev.append(f"provenance.origins.{var}")
        title = _title(f, ep, var, act)
        found = detection(
            f,
            "entry-point-gpu-unusable",
            title,
            ev,
            detail=_detail(f, ep, var, title),
            payload=Reach(
                ep.kind,
                ep.name,
                ep.source,
                var,
                ep.values.get(var) if var else None,
                # the activated shell's value is the one to copy only where the GPU works
                # there; otherwise (CUDA_VISIBLE_DEVICES=-1 in it too) the kernelspec's own
                # setting is simply removed
                act.values.get(var) if (var and act is not None and act.usable) else None,
                in_spec,
            ),
        )
        location = ep.source if ep.kind in ("kernel", "vscode", "cron", "systemd") else None
        yield replace(found, finding=replace(found.finding, location=location))


def check_startup_files(f: Facts) -> Iterable[Detection]:
    """variable-from-startup-file."""
    prov = f.snap.provenance
    if prov is None:
        return
    for var in ORDER:
        value = f.snap.env.get(var)
        if value is None and not any(var in e.values for e in f.snap.entry_points or ()):
            continue
        bad = _bad_value(f, var)
        if bad is None:
            continue
        origin = origin_of(prov, var, bad)
        if origin is None or origin.kind not in USER_FILES or origin.line is None:
            continue
        yield detection(
            f,
            "variable-from-startup-file",
            f"{var}={bad!r} is set by {where(origin)}: {REACH[origin.kind]}",
            [f"provenance.origins.{var}"],
            payload=StartupLine(var, origin),
        )


def _bad_value(f: Facts, var: str) -> str | None:
    """The value of *var* that keeps an entry point off the GPU, if one does."""
    for ep in f.snap.entry_points or ():
        value = ep.values.get(var)
        if var == "CUDA_VISIBLE_DEVICES" and masks(value):
            return value
        if ep.usable is False and value is not None and ep.kind != "activated":
            act = next((e for e in f.snap.entry_points or () if e.kind == "activated"), None)
            if act is not None and act.usable and act.values.get(var) != value:
                return value
    value = f.snap.env.get(var)
    if var == "CUDA_VISIBLE_DEVICES" and masks(value) and f.scheduler is None:
        return value
    return None


# --------------------------------------------------------------------------- steps


def kernelspec_step(
    path: str, op: str, variable: str, value: str | None, why: str, cause: str
) -> PlanStep:
    """Edit one kernelspec's ``env``."""
    verb = {
        "unset": f"Remove {variable} from",
        "set": f"Set {variable}={value} in",
        "remove": f"Remove {value} from {variable} in",
        "prepend": f"Put {value} first on {variable} in",
    }[op]
    return PlanStep(
        kind=StepKind.KERNELSPEC_ENV,
        summary=f"{verb} the kernelspec's env ({why})",
        safety=Safety.SAFE,
        resolves=(cause,),
        variable=variable,
        value=value if op == "set" else None,
        entry=value if op in ("remove", "prepend") else None,
        op=op,
        path=path,
        commands=(f'in {path}: {verb[0].lower()}{verb[1:]} "env"',),
    )


def hook_step(
    op: str,
    variable: str | None,
    value: str | None,
    why: str,
    cause: str,
    preload: Sequence[str] = (),
) -> PlanStep:
    """Set or unset a variable, or preload libraries, when TensorFlow is imported."""
    if preload:
        what = f"Preload {len(preload)} CUDA libraries of the wheels by full path"
    elif op == "unset":
        what = f"Unset {variable}"
    else:
        what = f"Set {variable}={value}"
    return PlanStep(
        kind=StepKind.IMPORT_HOOK,
        summary=f"{what} when TensorFlow is imported, activated or not ({why})",
        safety=Safety.SAFE,
        resolves=(cause,),
        variable=variable,
        value=value if op == "set" else None,
        op=op if not preload else "set",
        preload=tuple(preload),
        commands=("adds tffix-hook.pth and _tffix_hook.py to the interpreter's site-packages",),
    )


def startup_step(origin: Origin, cause: str) -> PlanStep:
    """Comment out the user's own start-up line (unsafe, with a backup)."""
    after = COMMENT + origin.text
    whose = "the project's env file" if origin.kind == "dotenv" else "your own start-up file"
    return PlanStep(
        kind=StepKind.STARTUP_EDIT,
        summary=f"Comment out {where(origin)} ({whose}; a backup is kept)",
        safety=Safety.UNSAFE,
        resolves=(cause,),
        path=origin.file,
        line=origin.line,
        before=origin.text,
        after=after,
        commands=(f"{where(origin)}:", f"-{origin.text}", f"+{after}"),
    )


def _wheel_libraries(f: Facts) -> list[str]:
    """The CUDA libraries the activated shell resolves from the venv's nvidia wheels, in
    dependency order (the runtime before what needs it)."""
    dirs = f.snap.extra.get("nvidia_lib_dirs")
    inside = tuple(str(d).rstrip("/") + "/" for d in dirs) if isinstance(dirs, list) else ()
    found = [
        lib.path
        for lib in f.snap.libraries.values()
        if isinstance(lib.path, str) and inside and lib.path.startswith(inside)
    ]

    def rank(path: str) -> int:
        name = os.path.basename(path)
        return next((i for i, k in enumerate(PRELOAD_ORDER) if name.startswith(f"lib{k}.")), 99)

    return sorted(dict.fromkeys(found), key=lambda p: (rank(p), p))


def _runpath_release(f: Facts) -> str | None:
    """The release whose RUNPATH finds the wheels, when the installed one's does not."""
    version = f.tf_version
    for bad in f.rules.known_bad:
        if version in bad.releases and bad.cause == "cuda-libs-not-found":
            release = f.rules.release(bad.fixed_in)
            if release is not None and installable(f, release):
                return and_cuda(release, version)
    return None


def _loader_fix(f: Facts, p: Reach, cause: str) -> Alternative:
    var = p.variable or "LD_LIBRARY_PATH"
    extra = [e for e in entries(p.value) if e not in entries(p.wanted)]
    missing = [e for e in entries(p.wanted) if e not in entries(p.value)]
    if p.kind == "kernel" and p.in_spec and p.source and extra:
        return tuple(
            kernelspec_step(p.source, "remove", var, e, "it shadows the wheel's libraries", cause)
            for e in extra
        )
    release = _runpath_release(f) if missing else None
    if release is not None:
        return (
            PlanStep(
                kind=StepKind.PIP_INSTALL,
                summary=f"Install {release}: its RUNPATH finds the pip CUDA libraries without "
                "LD_LIBRARY_PATH, in every process",
                safety=Safety.SAFE,
                resolves=(cause,),
                requirements=(release,),
            ),
        )
    libs = _wheel_libraries(f)
    if libs:
        why = "loader paths cannot change in a running process; a library loaded by full path "
        why += "is what TensorFlow's dlopen then gets"
        return (hook_step("set", None, None, why, cause, preload=libs),)
    if p.kind == "kernel" and p.source and p.wanted:
        return (
            kernelspec_step(
                p.source, "set", var, p.wanted, "the only loader path a kernel reads", cause
            ),
        )
    return ()


def fix_entry_point(f: Facts, detected: Detection) -> list[Alternative]:
    p = payload(detected, Reach)
    cause = detected.id
    var = p.variable
    if var is None:
        return []
    if var in READ_AT_INIT:
        op = "unset" if p.wanted is None else "set"
        if p.kind == "kernel" and p.source and p.in_spec:
            why = "what the kernel's processes start with"
            return [(kernelspec_step(p.source, op, var, p.wanted, why, cause),)]
        why = f"{var} is read when CUDA/XLA initialise, after the import starts"
        return [(hook_step(op, var, p.wanted, why, cause),)]
    if var in LOADER:
        alt = _loader_fix(f, p, cause)
        return [alt] if alt else []
    return []


def fix_startup_line(f: Facts, detected: Detection) -> list[Alternative]:
    line = payload(detected, StartupLine)
    return [(startup_step(line.origin, detected.id),)]


def _short(p: EntryPointState) -> str:
    if p.kind in ("vscode", "cron", "systemd"):
        return p.name  # "VS Code (…/settings.json)", "cron job '…' (… line 3)", "systemd …"
    return {"activated": "activated shell", "plain": "plain run"}.get(
        p.kind, f"{p.kind} {p.name!r}"
    )


def seen(snap: Snapshot) -> str | tuple[str, str] | None:
    """The report line when no entry-point cause fired: where the check passed. Entry points
    where the GPU is not usable for a reason the other checks give have no problem of their
    own: the line says so, marked as not checked here, never ``[ok]`` beside "not usable"
    (the GPU line below the checks says where it is not usable)."""
    points = snap.entry_points
    if not points:
        return None
    ok = [_short(p) for p in points if p.usable]
    if len(ok) == len(points):
        return f"usable at every entry point ({', '.join(ok)})"
    failing = [_short(p) for p in points if p.usable is False]
    parts = [f"usable at {', '.join(ok)}"] if ok else []
    if failing:
        parts.append(f"nothing of their own at {', '.join(failing)} (the checks above say why)")
    words = {True: "usable", False: "not usable", None: "not checked"}
    parts.extend(_state_text(p, words) for p in points if p.usable is None)
    text = "; ".join(parts)
    return ("skipped", text) if failing else text


def _state_text(p: EntryPointState, words: Mapping[bool | None, str]) -> str:
    """``name: usable``; one that was not checked also says why (its note)."""
    why = f" ({p.error})" if p.usable is None and p.error else ""
    return f"{_short(p)}: {words[p.usable]}{why}"


def usable_lines(points: Sequence[EntryPointState] | None, mark: Callable[[str], str]) -> list[str]:
    """The report line listing each entry point as usable or not, when one is not (none when
    every one is, or none was checked); *mark* renders the state mark."""
    if not points or all(p.usable is not False for p in points):
        return []  # one that could not be checked says why in "Where TensorFlow runs"
    words = {True: "usable", False: "NOT usable", None: "not checked"}
    text = "; ".join(_state_text(p, words) for p in points)
    return [f"  {mark('error')} GPU usable where TensorFlow runs: {text}"]


FAMILY = Family(
    "entrypoints",
    (check_entry_points, check_startup_files),
    (
        Cause("entry-point-gpu-unusable", Section.ENTRY_POINTS, fix_entry_point),
        Cause("variable-from-startup-file", Section.ENTRY_POINTS, fix_startup_line),
    ),
)
