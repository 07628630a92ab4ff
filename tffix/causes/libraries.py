"""CUDA library causes: the nvidia-* wheels missing, of the wrong CUDA version, not found by
the dynamic loader, and the Windows DLL search path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from packaging.version import Version

from tffix.causes.base import Alternative, Cause, Detection, Family, Section, detection, payload
from tffix.causes.steps import (
    and_cuda,
    env_step,
    installable,
    path_prepend,
    pip_install,
    pip_uninstall,
    tf_install,
)
from tffix.facts import SYSTEM_CUDA, Facts, parse_version, soname_cuda
from tffix.model import PlanStep, Safety, Severity, StepKind
from tffix.record import record
from tffix.ruleset import Ruleset


@record
class LibraryFolders:
    """The nvidia-* wheel folders that hold the libraries the loader did not find."""

    dirs: tuple[str, ...]
    """Empty when the snapshot does not say where the wheels are."""


def check_libraries(f: Facts) -> Iterable[Detection]:
    """cuda-libs-missing, cuda-libs-not-found, cuda-version-mismatch."""
    if f.is_cuda_build is not False:
        toolkit = _toolkit_mismatch(f)
        if toolkit is not None:
            yield toolkit
            return
    # macOS had CUDA builds up to TensorFlow 1.1: a report of one failing to load a CUDA
    # library (dyld's "Library not loaded") is read like Linux's
    cuda_mac = f.os == "macos" and bool(f.failed_sonames)
    if not f.linux and f.os is not None and not cuda_mac:
        if f.os == "windows":
            yield from _check_windows_dlls(f)
        return
    failed = _dlopen_failed(f)
    if f.is_cuda_build is False:
        return
    dependency = _dependency_missing(f)
    if dependency is not None:
        yield dependency
        return
    mism, other = _other_cuda(f, failed)
    if mism:
        yield detection(
            f,
            "cuda-version-mismatch",
            f"TensorFlow {f.tf_version} needs CUDA {f.tf_cuda} libraries, but CUDA "
            f"{other} is what is installed",
            [*mism, f.tf_version_evidence, *failed],
        )
        return
    if f.gpu_visible is True and not failed:
        return
    if failed and _explained_by_cudnn_version(f):
        return  # cudnn-version-mismatch says why: the cuDNN installed is another major
    image = _cuda_image_of_another_version(f, failed)
    if image is not None:
        yield image
        return
    state = _library_state(f, failed)
    if state is None:
        return
    kind, ev, title, detail = state
    if kind == "cuda-libs-missing":
        yield from _missing(f, title, ev, detail)
    else:
        folders = _library_folders(f) if kind == "cuda-libs-not-found" else None
        yield detection(f, kind, title, ev, detail=detail, payload=folders)


def _missing(f: Facts, title: str, ev: Sequence[str], detail: str = "") -> Iterable[Detection]:
    """cuda-libs-missing; or, when the report shows nothing of what is installed, the three
    readings of the versioned libraries that did not load (see ``_unseen_install``), the
    likeliest first."""
    kind = "cuda-libs-missing"
    versioned = _unseen_install(f)
    if not versioned:
        yield detection(f, kind, title, ev, detail=detail)
        return
    named = ", ".join(versioned[:3])
    look = _LOOK_WINDOWS if f.os == "windows" else _LOOK_LINUX
    unseen = "The report shows neither the CUDA libraries installed nor the loader's search path."
    if pinned := _minor_pinned(versioned):
        yield detection(
            f,
            "cuda-version-mismatch",
            f"TensorFlow loads exactly {pinned[0]}, which only CUDA {pinned[1]} has: most "
            "likely another CUDA release is installed",
            ev,
            detail=f"{unseen} {_PINNED_WHY} {soname_detail(f.rules, versioned)} {look}".strip(),
        )
        yield detection(
            f,
            kind,
            f"Or no CUDA is installed: {title}",
            ev,
            detail=f"{unseen} Ranked after cuda-version-mismatch, which explains the same "
            "failed load. " + detail,
            severity=Severity.INFO,
        )
        order = "cuda-version-mismatch and cuda-libs-missing"
    else:
        yield detection(f, kind, title, ev, detail=detail)
        yield detection(
            f,
            "cuda-version-mismatch",
            f"Or another CUDA release is installed: TensorFlow loads exactly {named}",
            ev,
            detail=f"{unseen} Ranked after cuda-libs-missing, which explains the same failed "
            f"load. {soname_detail(f.rules, versioned)}".strip(),
            severity=Severity.INFO,
        )
        order = "cuda-libs-missing and cuda-version-mismatch"
    yield detection(
        f,
        "cuda-libs-not-found",
        f"Or {named} is installed, but where the dynamic loader does not look",
        ev,
        detail=f"{unseen} Ranked after {order}, which explain the same failed load. {look}",
        severity=Severity.INFO,
    )


_PINNED_WHY = (
    "Up to CUDA 10.2 a library's file name carries the CUDA minor, so a CUDA installed of "
    "any other release fails to load it, and that is the likeliest reading: people who ask "
    "why the GPU is not used have most often installed a CUDA, just not this one. It may "
    "also be that no CUDA is installed, or that it is where the loader does not look."
)


def _unseen_install(f: Facts) -> list[str]:
    """The versioned CUDA libraries (not cuDNN) the log says did not load, when the report
    shows nothing of what is installed; empty otherwise. Such a failed load has three
    readings the report cannot tell apart: the library is not installed (cuda-libs-missing),
    another CUDA release is (cuda-version-mismatch: its libraries carry other numbers), or it
    is installed where the loader does not look (cuda-libs-not-found)."""
    if f.packages_complete or any(n.startswith("nvidia-") for n in f.packages):
        return []
    if any(lib.path for lib in f.snap.libraries.values()) or f.cuda_toolkits:
        return []
    sonames = _sonames_not_loaded(f)
    sonames += [s for s, lib in f.snap.libraries.items() if lib.path is None]
    return [s for s in dict.fromkeys(sonames) if _VERSIONED.search(s) and not _is_cudnn(s)]


def _minor_pinned(sonames: Sequence[str]) -> tuple[str, str] | None:
    """The first library whose file name carries the CUDA minor (``libcudart.so.10.1``,
    ``cudart64_92.dll``: CUDA 10.2 and earlier), and that CUDA: any other minor of the same
    CUDA installed fails to load it. From CUDA 11 one name serves every minor
    (``libcudart.so.11.0``), and only a CUDA of another major, or none, fails."""
    for soname in sonames:
        c = soname_cuda(soname)
        if c is not None and c[2] is not None:
            return soname, f"{c[1]}.{c[2]}"
    return None


def _sonames_not_loaded(f: Facts) -> list[str]:
    """The libraries the log says did not load: dso_loader's lines, then an import error's."""
    sonames = [h.groups["soname"] for h in f.log.all("dlopen-failed")]
    return sonames + [s for s, _where in f.failed_sonames]


_LOOK_LINUX = "Look with `ldconfig -p | grep cuda` and `ls /usr/local/cuda*/lib64`."
_LOOK_WINDOWS = (
    "Look with `where cudart64_*.dll` and at the `CUDA\\vX.Y\\bin` folders on PATH."
)
_VERSIONED = re.compile(r"\.so\.\d|\d\.dylib$|\d\.dll$", re.IGNORECASE)
"""A library file name with a version in it (``libcudart.so.10.1``, ``cublas64_11.dll``)."""


def _library_folders(f: Facts) -> LibraryFolders:
    """The payload of a cuda-libs-not-found finding: the wheel folders the loader does not see."""
    dirs = _lib_dirs(f)
    return LibraryFolders(tuple(_unfound_lib_dirs(f, dirs) if dirs else ()))


def _known_bad_why(f: Facts, bad_id: str) -> str:
    """The rules' explanation of the known defect *bad_id*."""
    return next(b.why for b in f.rules.known_bad if b.id == bad_id)


_CUDA_MAJOR_SONAME = re.compile(r"^lib(?:nvJitLink|cublasLt|cublas|cudart|nvrtc)\.so\.(\d+)")
"""Libraries whose soname's first number is the CUDA major they belong to (from CUDA 10 on)."""


def _dependency_missing(f: Facts) -> Detection | None:
    """cuda-version-mismatch or cuda-libs-not-found: the loader found a CUDA library TensorFlow
    asked for, but not a library that one links (see ``Facts.failed_dependencies``).

    A dependency of another CUDA major than TensorFlow's (libcusolver.so.11 needing
    libnvJitLink.so.12 under a CUDA 11 build: CUDA 12's cuSOLVER kept soname 11) means the copy
    found belongs to another CUDA; one of the same major means its folder is not all on the
    loader's path."""
    deps = f.failed_dependencies
    if not deps:
        return None
    asked, dep, where = deps[0]
    tf_major = f.tf_cuda_major
    major_ev = f.tf_version_evidence
    if tf_major is None and (shown := f.log_cuda_major) is not None:
        tf_major, major_ev = shown
    m = _CUDA_MAJOR_SONAME.match(dep)
    dep_major = int(m[1]) if m and int(m[1]) >= 10 else None
    if tf_major is not None and dep_major is not None and dep_major != tf_major:
        return detection(
            f,
            "cuda-version-mismatch",
            f"the {asked} the loader finds belongs to CUDA {dep_major} (it needs {dep}), but "
            f"TensorFlow loads CUDA {tf_major} libraries",
            [where, major_ev],
            detail=f"The loader opened {asked} but not {dep}, a library it links: that copy of "
            f"{asked} is CUDA {dep_major}'s. Put the CUDA {tf_major} libraries first on the "
            "loader's path (LD_LIBRARY_PATH), or install the ones this TensorFlow was built with.",
        )
    return detection(
        f,
        "cuda-libs-not-found",
        f"the loader finds {asked} but not {dep}, a library it needs",
        [where],
        detail=f"Put the folder holding {dep} on LD_LIBRARY_PATH beside the one holding {asked}.",
        payload=_library_folders(f),
    )


_NVIDIA_IMAGE_PATH = re.compile(r"^/usr/local/nvidia/lib(?:64)?/?$")


def _cuda_image_of_another_version(f: Facts, failed: Sequence[str]) -> Detection | None:
    """cuda-version-mismatch, likely, for a container built on NVIDIA's CUDA images.

    Those images set LD_LIBRARY_PATH to /usr/local/nvidia/lib:/usr/local/nvidia/lib64 and ship
    the CUDA runtime (every flavour) and its libraries (runtime, devel) on the loader's path.
    TensorFlow failing to open the CUDA runtime there means the image's CUDA is another version
    than the one it loads. cuDNN is left out: only the -cudnn images have it."""
    if f.container is None or not failed or f.nvidia_installed() or f.cuda_toolkits:
        return None
    if not any(_NVIDIA_IMAGE_PATH.match(e) for e in f.env_list("LD_LIBRARY_PATH")):
        return None
    runtime = [
        (soname, where)
        for soname, where in f.failed_sonames
        if (asked := soname_cuda(soname)) is not None and asked[0] == "cudart"
    ]
    if not runtime:
        return None
    want = f" (TensorFlow {f.tf_version} loads CUDA {f.tf_cuda})" if f.tf_cuda else ""
    return detection(
        f,
        "cuda-version-mismatch",
        f"the container's CUDA image has no {runtime[0][0]}: most likely it is built on "
        f"another CUDA version{want}",
        ["env.LD_LIBRARY_PATH", *(where for _s, where in runtime), *failed],
        detail="NVIDIA's CUDA images put their CUDA runtime on the loader's path; use the image "
        "tag of the CUDA this TensorFlow release was built for (or the tensorflow/tensorflow "
        "GPU image of the release).",
    )


def _explained_by_cudnn_version(f: Facts) -> bool:
    """True when every library the loader could not open is a cuDNN whose major no cuDNN the
    report shows installed has (``libcudnn.so.7`` asked for, cuDNN 8.0.2 installed): the
    library is not missing, it is another version, and check_cudnn names that."""
    if not f.failed_sonames or f.nvidia_installed():
        return False
    reported = {v.major for v, _ in f.cudnn_reported}
    if not reported:
        return False
    for soname, _where in f.failed_sonames:
        asked = soname_cuda(soname)
        if asked is None or asked[0] != "cudnn" or asked[1] in reported:
            return False
    return True


def built_cuda(f: Facts) -> tuple[Version, str] | None:
    """The CUDA TensorFlow was built for and where that is read: the build info or the release
    (``f.tf_cuda``), else the soname a failed load asked for (``libcudart.so.10.0`` is 10.0,
    ``cudart64_110.dll`` only says 11)."""
    v = parse_version(f.tf_cuda)
    if v is not None:
        return v, f.tf_version_evidence
    asked = f.asked_cuda
    if asked is None:
        return None
    major, minor, where = asked
    return Version(f"{major}.{minor}" if minor is not None else str(major)), where


def _toolkit_differs(built: Version, have: Version) -> bool:
    """True when a CUDA toolkit *have* cannot supply the libraries a build for *built* loads.

    Another major never can (every soname carries it). Up to CUDA 11.0 the sonames carry the
    minor too (``libcudart.so.10.1``, ``cudart64_100.dll``), so another minor cannot either.
    From 11.1 one soname serves every minor of a major (CUDA's minor version compatibility).
    """
    if have.major != built.major:
        return True
    if len(built.release) < 2:
        return False
    return built < Version("11.1") and have.release[:2] != built.release[:2]


def _toolkit_mismatch(f: Facts) -> Detection | None:
    """cuda-version-mismatch: the CUDA toolkit the report shows is not the one the build needs.

    Read across layers: what TensorFlow was built for (the release, or the soname it failed to
    load) against the toolkit the report shows (nvcc's banner, an answer line, a cuda-X.Y folder
    on a search path, conda's cudatoolkit). Only where the libraries come from the system: with
    the build's own nvidia-*-cuXX wheels installed, a system toolkit is not what it loads.
    """
    if f.gpu_visible is True or not f.cuda_toolkits:
        return None
    builds, where = _cuda_builds(f)
    if not builds or any(f.nvidia_installed(b.major) for b in builds):
        return None
    wrong = [(v, ev) for v, ev in f.cuda_toolkits if not _serves(v, builds)]
    right = [v for v, _ in f.cuda_toolkits if _serves(v, builds)]
    if not wrong or right:
        return None
    failed = [ev for _, ev in f.failed_sonames] + [
        h.evidence for h in f.log.all("dlopen-failed", "cannot-dlopen", "dll-not-found")
    ]
    have = wrong[0][0]
    label = f"TensorFlow {f.tf_version}" if f.tf_version else "this TensorFlow build"
    asked = f" (it asks for {f.failed_sonames[0][0]})" if f.failed_sonames else ""
    needs = " or ".join(str(b) for b in builds)
    return detection(
        f,
        "cuda-version-mismatch",
        f"{label} needs CUDA {needs}{asked}, but CUDA "
        f"{have.major}.{have.minor if len(have.release) > 1 else 0} is what is installed",
        [where, *(ev for _, ev in wrong), *failed],
        detail="A TensorFlow build loads the CUDA libraries of the version it was built with; "
        "install that CUDA (or the TensorFlow release built for the CUDA you have).",
    )


def _cuda_builds(f: Facts) -> tuple[list[Version], str]:
    """The CUDA versions the build may be for, and where that is read: the one ``built_cuda``
    knows, else those of the TensorFlow lines (rules/lines.toml) that load a CUDA library the
    loader could not open (libcusolver.so.10: CUDA 10.1 and 11.0), oldest first. Empty when
    neither says."""
    built = built_cuda(f)
    if built is not None:
        return [built[0]], built[1]
    failed = [(s, where) for s, where in f.failed_sonames if not _is_cudnn(s)]
    sonames = {s for s, _ in failed}
    found = {
        v
        for line in f.rules.lines.values()
        if sonames & set(line.sonames.values())
        if (v := parse_version(line.cuda)) is not None
    }
    return sorted(found), (failed[0][1] if failed else "")


def _serves(toolkit: Version, builds: Sequence[Version]) -> bool:
    """True when the CUDA *toolkit* supplies the libraries of one of *builds*."""
    return any(not _toolkit_differs(b, toolkit) for b in builds)


def _is_cudnn(soname: str) -> bool:
    return soname.startswith(("libcudnn", "cudnn"))


def _other_cuda(f: Facts, failed: Sequence[str]) -> tuple[list[str], str | None]:
    """Evidence of CUDA libraries of another version than TensorFlow's, and that version."""
    major = f.tf_cuda_major
    mism: list[str] = []
    other: str | None = None
    if major is not None:
        wrong = [n for n in f.nvidia_installed() if not n.endswith(f"-cu{major}")]
        right = f.nvidia_installed(major)
        if wrong and not right:
            mism += [f"packages.{n}" for n in wrong]
            other = wrong[0].rsplit("-cu", 1)[1]
        for name in ("cudatoolkit", "cuda-toolkit", "cuda-runtime", "cuda-cudart", "cuda"):
            cv = parse_version(f.packages.get(name))
            if cv is not None and cv.major != major and not right:
                mism.append(f"packages.{name}")
                other = other or f"{cv.major}.{cv.minor}"
        if failed:
            built = parse_version(f.tf_cuda)
            # Before CUDA 11.1 there was no minor-version compatibility: sonames such as
            # libcudart.so.10.1 or libcusolver.so.10 (CUDA 11.0) exist in one minor only.
            exact_minor = built is not None and built < Version("11.1")
            for entry in f.env_list("LD_LIBRARY_PATH"):
                m = SYSTEM_CUDA.search(entry)
                mv = parse_version(m.group("version")) if m and m.group("version") else None
                if mv is None or built is None:
                    continue
                if mv.major != major or (exact_minor and (mv.major, mv.minor) != built.release[:2]):
                    mism.append("env.LD_LIBRARY_PATH")
                    other = other or str(mv)
    return mism, other


def _dlopen_failed(f: Facts) -> list[str]:
    ev = [h.evidence for h in f.log.all("dlopen-failed", "cannot-dlopen")]
    # the loader's own words about a CUDA library (an ImportError of a 1.x build, which links
    # them: "libcublas.so.9.0: cannot open shared object file", ldd's "=> not found")
    ev += [where for _soname, where in f.failed_sonames if where not in ev]
    # cudart_stub.cc prints "Could not find cuda drivers" when libcudart cannot be opened: on a
    # machine without a GPU that is expected, on one with an NVIDIA GPU (listed, or a driver
    # answering) it is the CUDA runtime missing.
    if f.gpu_inventory or f.driver is not None:
        ev += [h.evidence for h in f.log.all("cudart-stub")]
    # Libraries TensorFlow opens only for some work (NCCL for multi-GPU, nvJitLink for JIT)
    # are looked up too, but their absence does not keep the GPU from TensorFlow.
    optional = f.optional_sonames or frozenset()
    for soname, lib in f.snap.libraries.items():
        if soname.startswith("libcuda.") or soname.startswith("libnvidia") or soname in optional:
            continue
        if lib.path is None or lib.error:
            ev.append(f"libraries.{soname}")
    return ev


def toolkits_off_loader_path(f: Facts) -> list[tuple[str, str | None, str]]:
    """System CUDA toolkits the probe found whose lib folder the loader does not search
    (not on LD_LIBRARY_PATH; ld.so.cache is not known to list it): (folder, version, lib)."""
    found = f.snap.extra.get("cuda_toolkits")
    if not isinstance(found, list):
        return []
    searched = {e.rstrip("/") for e in f.snap.env.get("LD_LIBRARY_PATH", "").split(":") if e}
    out = []
    for entry in found:
        if not isinstance(entry, dict):
            continue
        path, lib_dir, version = entry.get("path"), entry.get("lib_dir"), entry.get("version")
        libs = entry.get("libraries")
        if not (isinstance(path, str) and isinstance(lib_dir, str) and libs):
            continue
        if lib_dir.rstrip("/") in searched or entry.get("in_ld_cache") is True:
            continue
        out.append((path, version if isinstance(version, str) else None, lib_dir))
    return out


def _toolkit_title(f: Facts, tf_label: str) -> tuple[str, str] | None:
    """Title and detail when no CUDA wheel is installed but a system toolkit is there."""
    kits = toolkits_off_loader_path(f)
    if not kits:
        return None
    path, version, lib_dir = kits[0]
    named = f"the CUDA {version} toolkit in {path}" if version else f"the CUDA toolkit in {path}"
    title = (
        f"{tf_label} is a CUDA build and no nvidia-* CUDA wheels are installed; "
        f"{named} is not on the loader path, so TensorFlow does not use it"
    )
    detail = (
        f"TensorFlow opens its CUDA libraries by name through the dynamic loader, which "
        f"searches LD_LIBRARY_PATH, TensorFlow's RUNPATH (the pip wheels' nvidia/*/lib "
        f"folders) and ld.so.cache; {lib_dir} is on none of them."
    )
    need = f.tf_cuda_major
    have = parse_version(version)
    if need is not None and have is not None and have.major != need:
        detail += (
            f" It is CUDA {have.major}, and {tf_label} needs CUDA {need}: putting it on the "
            "path would not help."
        )
    else:
        detail += (
            " Installing the pinned wheels (tensorflow[and-cuda]) is the reliable fix; "
            f"putting {lib_dir} on LD_LIBRARY_PATH works only when its versions match the "
            "release's."
        )
    return title, detail


def _library_state(f: Facts, failed: list[str]) -> tuple[str, list[str], str, str] | None:
    major = f.tf_cuda_major
    release = f.release
    pins = release.pins() if release else {}
    nvidia_pins = [n for n in pins if n.startswith("nvidia-")]
    installed = [n for n in nvidia_pins if n in f.packages]
    absent = [n for n in nvidia_pins if n not in f.packages]
    requested = f.log.all("pip-install-and-cuda")
    bad = f.known_bad_hits("cuda-libs-not-found")
    candidates = [
        f"libraries.{s}"
        for s, lib in f.snap.libraries.items()
        if lib.path is None and lib.candidates and not s.startswith("libcuda.")
    ]
    system_cuda = [
        f"env.{v}"
        for v in ("CUDA_HOME", "CUDA_PATH", "PATH", "LD_LIBRARY_PATH")
        if SYSTEM_CUDA.search(f.snap.env.get(v, ""))
    ]
    tf_label = f"TensorFlow {f.tf_version}" if f.tf_version else "TensorFlow"
    if bad and (failed or f.tf_gpus == ()):
        have = installed or requested or not f.packages_complete
        if have:
            ev = [f.tf_version_evidence, *failed] + [f"packages.{n}" for n in installed[:1]]
            ev += [h.evidence for h in requested]
            why = _known_bad_why(f, bad[0])
            return (
                "cuda-libs-not-found",
                ev,
                f"{tf_label} does not find its pip-installed CUDA libraries (known RUNPATH "
                "regression)",
                why,
            )
    if failed or (f.tf_gpus == () and f.packages_complete and absent):
        elsewhere = _found_elsewhere(f, failed, candidates, installed, tf_label)
        if elsewhere is not None:
            return elsewhere
        if not installed and not f.packages_complete and _and_cuda_requested(f):
            return (
                "cuda-libs-not-found",
                [*failed, *(h.evidence for h in requested)],
                f"the [and-cuda] CUDA wheels were installed, but {tf_label} does not load them",
                "",
            )
        if installed and (not absent or not f.packages_complete):
            return (
                "cuda-libs-not-found",
                [*failed, *(f"packages.{n}" for n in installed)],
                f"the nvidia-* CUDA wheels are installed, but {tf_label} does not load them",
                "",
            )
        if not f.packages_complete and (f.snap.platform.wsl or system_cuda) and f.tf_version:
            ev = [*failed, *system_cuda] + (["platform.wsl"] if f.snap.platform.wsl else [])
            if f.tf_v is not None and f.tf_v < AND_CUDA_FROM:
                # before 2.14 there is no [and-cuda]: the system CUDA is the only source
                return (
                    "cuda-libs-not-found",
                    ev,
                    f"{tf_label} cannot load the CUDA libraries: the system CUDA they are in is "
                    "not on the loader path",
                    f"{tf_label} loads the CUDA libraries of a system CUDA {f.tf_cuda or ''} "
                    "install through the dynamic loader: put that CUDA's lib64 (and cuDNN's "
                    "folder) on LD_LIBRARY_PATH.".replace("  ", " "),
                )
            return (
                "cuda-libs-not-found",
                ev,
                f"{tf_label} cannot load the CUDA libraries: a system CUDA is not on the loader "
                "path and no nvidia-* wheels are shown",
                "Either put the system CUDA's lib64 on LD_LIBRARY_PATH or, better, install the "
                "pinned nvidia-* wheels with tensorflow[and-cuda].",
            )
        ev = list(failed)
        if f.packages_complete:
            ev.append("packages")
        kit = None if installed else _toolkit_title(f, tf_label)
        if absent and f.packages_complete and kit:
            return ("cuda-libs-missing", [*ev, "extra.cuda_toolkits"], *kit)
        if absent and f.packages_complete:
            title = (
                f"{tf_label} is a CUDA build, but {len(absent)} of its {len(nvidia_pins)} "
                "CUDA library wheels are not installed"
                if installed
                else f"{tf_label} is a CUDA build, but no CUDA libraries are installed "
                "(tensorflow without [and-cuda])"
            )
        else:
            title = f"{tf_label} cannot load the CUDA libraries it needs"
            sonames = _sonames_not_loaded(f)
            if sonames:
                title += f" ({', '.join(dict.fromkeys(sonames))})"
                return ("cuda-libs-missing", ev, title, soname_detail(f.rules, sonames))
        return ("cuda-libs-missing", ev, title, "")
    if (
        f.packages_complete
        and release is not None
        and major is not None
        and absent
        and not installed
        and f.is_cuda_build is not False
        and f.tf_gpus is None
        and f.linux
    ):
        kit = _toolkit_title(f, tf_label)
        if kit:
            return (
                "cuda-libs-missing",
                [f.tf_version_evidence, "packages", "extra.cuda_toolkits"],
                *kit,
            )
        return (
            "cuda-libs-missing",
            [f.tf_version_evidence, "packages"],
            f"{tf_label} is a CUDA build, but no CUDA libraries are installed "
            "(tensorflow without [and-cuda])",
            "",
        )
    return None


def _found_elsewhere(
    f: Facts, failed: list[str], candidates: list[str], installed: list[str], tf_label: str
) -> tuple[str, list[str], str, str] | None:
    """cuda-libs-not-found where the loader failed but the libraries are shown on the machine:
    the loader probe found them outside its search path, or the report shows them installed."""
    if candidates:
        return (
            "cuda-libs-not-found",
            [*candidates, *failed],
            "the CUDA libraries exist on this machine, but the loader does not find them",
            "",
        )
    shown = _failed_but_shown_installed(f)
    if not shown or installed:
        return None
    return (
        "cuda-libs-not-found",
        [*failed, *shown],
        "the report shows the CUDA libraries TensorFlow asks for installed, but the loader "
        "does not find them",
        f"{tf_label} opens its CUDA libraries through the dynamic loader, which searches "
        "LD_LIBRARY_PATH, the ld.so cache and RUNPATH only: put the folder that holds them (the "
        "toolkit's lib64, the conda environment's lib, cuDNN's folder) on LD_LIBRARY_PATH, or "
        "register it with ldconfig.",
    )


def _failed_but_shown_installed(f: Facts) -> list[str]:
    """Evidence that what the loader could not open is on the machine: a CUDA toolkit of the
    version the build loads (nvcc's banner, a cuda-X.Y folder, conda's cudatoolkit), a cuDNN
    of the major a failed libcudnn asks for, or a line listing the very file at a path."""
    out: list[str] = []
    builds, _where = _cuda_builds(f)
    cuda_failed = [s for s, _ in f.failed_sonames if not _is_cudnn(s)]
    if builds and (cuda_failed or not f.failed_sonames):
        out += [ev for v, ev in f.cuda_toolkits if _serves(v, builds)]
    for soname, _where in f.failed_sonames:
        asked = soname_cuda(soname)
        if asked is not None and asked[0] == "cudnn":
            out += [ev for v, ev in f.cudnn_reported if v.major == asked[1]]
        listed = re.compile(r"(?:^|\s)(?:[A-Za-z]:)?[\\/]\S*[\\/]" + re.escape(soname) + r"\s*$")
        out += [
            f"log[{i}]"
            for i, line in enumerate(f.snap.log)
            if listed.search(line[:512]) and not _LOADER_WORDS.search(line[:512])
        ]
    return list(dict.fromkeys(out))


_LOADER_WORDS = re.compile(
    r"cannot open|Could not|Couldn't|not found|No such file|failed|error", re.I
)


AND_CUDA_FROM = Version("2.14")
"""The first release with the ``[and-cuda]`` extra (the nvidia-* wheels as its CUDA)."""


def _and_cuda_requested(f: Facts) -> bool:
    """True when the log shows ``tensorflow[and-cuda]`` installed for a release that has the
    extra (2.14 and newer; before, pip only warns that the extra does not exist)."""
    for hit in f.log.all("pip-install-and-cuda"):
        version = hit.groups.get("version") or f.tf_version
        v = parse_version(version)
        if v is None or v >= Version("2.14"):
            return True
    return False


def soname_detail(rules: Ruleset, sonames: Sequence[str]) -> str:
    """Which TensorFlow lines (and CUDA versions) load these sonames, from rules/lines.toml."""
    parts = []
    for soname in dict.fromkeys(sonames):
        lines = [line for line in rules.lines.values() if soname in line.sonames.values()]
        if not lines:
            continue
        names = sorted(
            (line.name for line in lines), key=lambda n: parse_version(n) or Version("0")
        )
        cudas = sorted(
            {line.cuda for line in lines}, key=lambda c: parse_version(c) or Version("0")
        )
        span = names[0] if len(names) == 1 else f"{names[0]}–{names[-1]}"
        parts.append(f"{soname} is what TensorFlow {span} loads (CUDA {', '.join(cudas)})")
    return "; ".join(parts) + "." if parts else ""


def _check_windows_dlls(f: Facts) -> Iterable[Detection]:
    hits = [h.evidence for h in f.log.all("dll-not-found")]
    hits += [ev for name, ev in f.failed_sonames if name.endswith(".dll")]
    # A build asking for a CUDA DLL is a GPU build (≤ 2.10 on Windows), whatever the version.
    if not hits or (f.tf_v is not None and f.tf_v >= Version("2.11")):
        return
    hits = list(dict.fromkeys(hits))
    cuda_dirs = [e for e in f.env_list("PATH") if re.search(r"CUDA", e, re.I)]
    py = parse_version(f.python)
    if cuda_dirs and py is not None and py >= Version("3.8"):
        yield detection(
            f,
            "windows-dll-search-path",
            "the CUDA DLL folder is on PATH, but Python ≥ 3.8 no longer searches PATH for "
            "DLL dependencies",
            ["env.PATH", "python.version", *hits],
        )
    else:
        yield from _missing(
            f,
            "TensorFlow cannot load the CUDA DLLs it needs"
            + (
                f" ({', '.join(dict.fromkeys(n for n, _ in f.failed_sonames))})"
                if f.failed_sonames
                else ""
            ),
            hits,
        )


def _other_framework_needs(f: Facts, names: Sequence[str]) -> bool:
    for fw, versions in f.rules.frameworks.items():
        pins = versions.get(f.packages.get(fw, ""), {})
        if any(n in pins for n in names):
            return True
    return False


def _lib_dirs(f: Facts) -> list[str] | None:
    given = f.snap.extra.get("nvidia_lib_dirs")
    if isinstance(given, list) and given and all(isinstance(d, str) for d in given):
        return sorted(given)
    site = f.site_packages
    if site is None or f.release is None:
        return None
    dirs = []
    for name in f.release.pins():
        base = re.sub(r"-cu\d+$", "", name)
        sub = f.rules.fixes.wheel_lib_dirs.get(base)
        if sub:
            dirs.append(f"{site}/nvidia/{sub}/lib")
    return sorted(dirs) or None


def _unfound_lib_dirs(f: Facts, dirs: list[str]) -> list[str]:
    """Of *dirs*, the wheel folders of the libraries the loader did not find.

    Only those need a path entry: adding every ``nvidia/*/lib`` folder would make a dozen
    steps where a few do. Falls back to *dirs* when the snapshot does not say which failed.
    """
    failed = {h.groups["soname"] for h in f.log.all("dlopen-failed") if "soname" in h.groups}
    optional = f.optional_sonames
    if optional is not None:
        # The loader probe ran, so `libraries` lists every soname (a pasted report may list
        # only some: there an absent one is unknown, not found).
        failed |= {
            s for s, lib in f.snap.libraries.items() if lib.path is None and s not in optional
        }
    subs = {f.rules.fixes.soname_lib_dirs.get(s.split(".so")[0]) for s in failed} - {None}
    picked = [d for d in dirs if ["", *d.rstrip("/").split("/")][-2] in subs]
    return picked or dirs


_TF_LOG_LINE = re.compile(
    r"\b(?:tensorflow|xla|tsl)/\S+\.(?:cc|h):\d+\]"
    r"|^\s*[IWEF]\d{4} \d\d:\d\d:[\d.]+\s+\d+\s+\w+\.cc:\d+\]"
)
"""A line TensorFlow's C++ logging printed (glog/absl, with the file that printed it)."""


def best_guess(f: Facts) -> Detection | None:
    """cuda-libs-missing as the ranked best guess for a partial report that names nothing wrong.

    Only asked for by ``tffix.graph.build_graph`` when no other error was found and TensorFlow
    is not known to list a GPU. A CUDA build of TensorFlow (the release, hence the CUDA and
    cuDNN it loads, is known) on Linux or an unknown platform, a GPU setup shown (an NVIDIA GPU,
    a driver, or TensorFlow's own log lines), and nothing showing its CUDA libraries (no loader
    answers, no ``nvidia-*-cuXX`` wheel of its CUDA major): the libraries not being there is
    what keeps most such installs from the GPU (a pip ``tensorflow`` without ``[and-cuda]``
    from 2.14, or without the system CUDA/cuDNN of TensorFlow's tested build configurations
    before). The title says it is a guess and what would settle it.
    """
    if f.gpu_visible is True or f.is_cuda_build is False:
        return None
    if f.snap.libraries or f.import_error:
        return None
    if f.tf_version is None:
        return _guess_unknown_release(f)
    windows_gpu = (
        f.os == "windows"
        and not f.snap.platform.wsl
        and f.tf_v is not None
        and f.tf_v <= Version(f.rules.policy.windows_last_gpu)
    )
    if f.os not in {"linux", None} and not windows_gpu:
        return None
    if f.tf_dist == "tensorflow-cpu" or f.tf_cuda is None or f.tf_cuda_major is None:
        return None
    if f.nvidia_installed(f.tf_cuda_major):
        return None
    built = parse_version(f.tf_cuda)
    if built is not None and any(not _toolkit_differs(built, v) for v, _ in f.cuda_toolkits):
        return None  # the report shows the CUDA this release loads installed
    tf_lines = [f"log[{i}]" for i, line in enumerate(f.snap.log) if _TF_LOG_LINE.search(line[:512])]
    shown = [*f.gpu_inventory, *(["driver"] if f.driver is not None else [])]
    if f.os is not None:
        # the platform stated: a report about this TensorFlow on a platform with CUDA builds
        shown.append("platform.os" if not f.snap.platform.wsl else "platform.wsl")
    if not shown and not tf_lines:
        return None
    bad = f.known_bad_hits("cuda-libs-not-found")
    if bad and _and_cuda_requested(f):
        # the wheels were asked for, and this release is known not to find them
        why = _known_bad_why(f, bad[0])
        return detection(
            f,
            "cuda-libs-not-found",
            f"best guess from a partial report: TensorFlow {f.tf_version} was installed with "
            "[and-cuda], and this release does not find its pip-installed CUDA libraries "
            "(known RUNPATH regression)",
            [
                f.tf_version_evidence,
                *(h.evidence for h in f.log.all("pip-install-and-cuda")),
                *shown,
            ],
            detail=why,
            payload=_library_folders(f),
        )
    recipe = f.log.all("cudnn-wheel-on-path")
    if recipe:
        return detection(
            f,
            "cuda-libs-not-found",
            "best guess from a partial report: the pip cuDNN wheel's folder is put on "
            "LD_LIBRARY_PATH by hand, which holds only where the script setting it has run",
            [f.tf_version_evidence, *(h.evidence for h in recipe), *shown],
            detail="The report shows the nvidia-cudnn wheel pointed at through LD_LIBRARY_PATH "
            "(the TensorFlow 2.12-2.14 pip guide's conda activate.d recipe), so the wheel is "
            "installed; it is found only in a shell where that script ran, and only when the "
            "variables it uses (CUDNN_PATH) are set there too.",
            payload=_library_folders(f),
        )
    stub = [h.evidence for h in f.log.all("cudart-stub")]
    cudnn = f" and cuDNN {f.tf_cudnn}" if f.tf_cudnn else ""
    return detection(
        f,
        "cuda-libs-missing",
        f"best guess from a partial report: TensorFlow {f.tf_version} loads CUDA "
        f"{f.tf_cuda}{cudnn} libraries, and nothing in the report shows them installed",
        [f.tf_version_evidence, *stub, *shown, *(["packages"] if f.snap.packages else [])],
        detail="The report does not show which CUDA libraries the dynamic loader finds (no "
        "'Could not load dynamic library' lines, no nvidia-* wheels listed), and no other "
        "cause fits what it shows. For this release the missing CUDA libraries are the most "
        "likely reason: run tffix on the machine itself, or set TF_CPP_MIN_LOG_LEVEL=0 and "
        "look for 'Could not load dynamic library' / 'Cannot dlopen some GPU libraries' "
        "when TensorFlow lists the GPUs.",
    )


def _guess_unknown_release(f: Facts) -> Detection | None:
    """best_guess when the report does not say which TensorFlow: only on Linux (or an unstated
    platform) with an NVIDIA driver or GPU shown, or TensorFlow's own line that its CUDA
    runtime did not load, and no CUDA library, wheel or toolkit shown."""
    if f.os not in {"linux", None} or f.tf_dist == "tensorflow-cpu":
        return None
    if f.nvidia_installed() or f.cuda_toolkits or f.cudnn_reported:
        return None
    shown = [*f.gpu_inventory, *(["driver"] if f.driver is not None else [])]
    # TensorFlow's own word that its CUDA runtime would not load (cudart_stub.cc, printed
    # only by CUDA builds, when dlopen of libcudart fails): on a report of a GPU not used,
    # that is the CUDA libraries not being found, whichever release it is.
    stub = [h.evidence for h in f.log.all("cudart-stub")]
    shown += stub
    if not shown:
        return None
    return detection(
        f,
        "cuda-libs-missing",
        "best guess from a partial report: it does not say which TensorFlow release, and "
        + (
            "TensorFlow's log says its CUDA runtime (libcudart) did not load"
            if stub
            else "nothing in it shows the CUDA libraries TensorFlow loads"
        ),
        shown,
        detail="An NVIDIA driver is shown, so what TensorFlow needs beside it is its own CUDA and "
        "cuDNN libraries (the nvidia-* wheels of tensorflow[and-cuda] from 2.14, the system "
        "CUDA/cuDNN of the release's tested build before). Run tffix on the machine itself, or "
        "look for 'Could not load dynamic library' / 'Cannot dlopen some GPU libraries' when "
        "TensorFlow lists the GPUs (TF_CPP_MIN_LOG_LEVEL=0).",
    )


def fix_cuda_libs(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    if f.tf_version is None or (not f.linux and f.os is not None):
        return []
    steps: list[PlanStep] = []
    if cause == "cuda-version-mismatch" and f.tf_cuda_major is not None:
        wrong = [n for n in f.nvidia_installed() if not n.endswith(f"-cu{f.tf_cuda_major}")]
        if wrong and not _other_framework_needs(f, wrong):
            steps.append(
                pip_uninstall(
                    wrong,
                    f"Remove the CUDA {wrong[0].rsplit('-cu', 1)[1]} wheels TensorFlow cannot use",
                    Safety.SAFE,
                    cause,
                )
            )
    install = tf_install(f, cause, f"CUDA {f.tf_cuda}" if f.tf_cuda else "its CUDA libraries")
    if not install:
        return []
    return [(*steps, *install)]


def fix_cuda_libs_not_found(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    alts: list[Alternative] = []
    dirs = payload(detected, LibraryFolders).dirs
    known = [b for b in f.rules.known_bad if b.cause == cause and f.tf_version in b.releases]
    if dirs:
        alts.append((path_prepend("LD_LIBRARY_PATH", dirs, cause),))
    for bad in known:
        release = f.rules.release(bad.fixed_in)
        if release is not None and installable(f, release):
            alts.append(
                (
                    pip_install(
                        [and_cuda(release)],
                        f"Upgrade to TensorFlow {release.version}, which finds its CUDA wheels",
                        Safety.UNSAFE,
                        cause,
                    ),
                )
            )
    if not alts and f.tf_version and f.linux is not False:
        alts.append(tf_install(f, cause, "wheels on TensorFlow's own search path"))
    return [a for a in alts if a]


def fix_windows_dll_search_path(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    for entry in f.env_list("PATH"):
        if re.search(r"CUDA", entry, re.I) and re.search(r"[\\/]bin[\\/]?$", entry):
            root = re.sub(r"[\\/]bin[\\/]?$", "", entry)
            return [(env_step(StepKind.ENV_SET, "CUDA_PATH", cause, value=root),)]
    return []


FAMILY = Family(
    "libraries",
    (check_libraries,),
    (
        Cause("cuda-libs-missing", Section.LIBRARIES, fix_cuda_libs),
        Cause("cuda-version-mismatch", Section.LIBRARIES, fix_cuda_libs),
        Cause("cuda-libs-not-found", Section.LIBRARIES, fix_cuda_libs_not_found),
        Cause("windows-dll-search-path", Section.LIBRARIES, fix_windows_dll_search_path),
    ),
)
