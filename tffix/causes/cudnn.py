"""cuDNN causes: the wrong cuDNN wheel, another library shadowing the wheels through
LD_LIBRARY_PATH, and another framework's pins that exclude TensorFlow's.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence

from packaging.specifiers import SpecifierSet

from tffix import shellquote as sq
from tffix.causes.base import Alternative, Cause, Detection, Family, Section, detection, payload
from tffix.causes.steps import (
    and_cuda,
    env_step,
    exact_pin,
    manual,
    pip_install,
    shell,
    tf_install,
)
from tffix.facts import SYSTEM_CUDA, Facts, parse_version
from tffix.lazyre import lazy
from tffix.logparse import LogHit
from tffix.model import UNKNOWN, Library, Safety, Severity, StepKind
from tffix.record import record


@record
class Shadowing:
    """What the loader picks up ahead of TensorFlow's own libraries."""

    entries: tuple[str, ...]
    """The LD_LIBRARY_PATH entries that supply a wrong library, exactly as written there."""


def check_cudnn(f: Facts) -> Iterable[Detection]:
    """cudnn-version-mismatch, ld-library-path-shadowing, framework-pin-conflict (and
    cuda-version-mismatch for nvidia-* wheels that miss TensorFlow's pins)."""
    release = f.release
    pins = release.pins() if release else {}
    drift = _pin_drift(f, pins)
    conflicts = _framework_conflicts(f, pins)
    shadow_ev = _shadow_evidence(f, drift)
    shadowing = Shadowing(tuple(_shadowing_entries(f)))
    framework = _framework_pin_conflict(f, conflicts)
    if framework is not None:
        yield framework
    if shadow_ev:
        yield detection(
            f,
            "ld-library-path-shadowing",
            _shadow_title(f, shadow_ev),
            shadow_ev,
            payload=shadowing,
        )
    conflict_names = {n for _fw, _v, names in conflicts for n in names}
    cudnn_ev, title = _cudnn_mismatch(f, pins, drift, conflict_names)
    if not cudnn_ev and f.log.has("cudnn-init-failed") and not shadow_ev and not conflicts:
        cudnn_ev = [h.evidence for h in f.log.all("cudnn-init-failed")]
        title = "cuDNN failed to initialise (usually a cuDNN older than the one TF needs)"
    if cudnn_ev:
        yield detection(f, "cudnn-version-mismatch", title, cudnn_ev, payload=shadowing)
    # other nvidia drift that is not cuDNN and not a framework's doing
    other = {n: v for n, v in drift.items() if "cudnn" not in n and n not in conflict_names}
    if other and not f.log.has("pip-install-and-cuda"):
        names = sorted(other)
        yield detection(
            f,
            "cuda-version-mismatch",
            f"{', '.join(f'{n} {other[n]}' for n in names)} "
            f"{'does' if len(names) == 1 else 'do'} not match TensorFlow {f.tf_version}'s pins",
            [f"packages.{n}" for n in names] + [f.tf_version_evidence],
            severity=Severity.WARNING,
        )


def _pin_drift(f: Facts, pins: Mapping[str, SpecifierSet]) -> dict[str, str]:
    """Installed nvidia-* wheels that miss TensorFlow's pins -> their installed version."""
    drift: dict[str, str] = {}
    for name, spec in pins.items():
        have = f.packages.get(name)
        if have is not None and not spec.contains(have, prereleases=True):
            drift[name] = have
    return drift


def _shadow_evidence(f: Facts, drift: Mapping[str, str]) -> list[str]:
    """Evidence that another copy of a CUDA library is loaded ahead of TensorFlow's."""
    shadow_ev: list[str] = []
    for soname, lib in f.snap.libraries.items():
        preloaded = bool(lib.loaded and lib.loaded != lib.path)
        if (lib.via in {"LD_LIBRARY_PATH", "preloaded"} or preloaded) and wrong_library(
            f, soname, lib
        ):
            shadow_ev += [
                "env.LD_LIBRARY_PATH" if lib.via == "LD_LIBRARY_PATH" else "",
                f"libraries.{soname}",
            ]
    nvj = f.log.all("nvjitlink-symbol")
    if nvj and any(SYSTEM_CUDA.search(e) for e in f.env_list("LD_LIBRARY_PATH")):
        shadow_ev += ["env.LD_LIBRARY_PATH", *(h.evidence for h in nvj)]
    mism_hits = f.log.all("cudnn-runtime-mismatch")
    shadow_ev += _older_cudnn_ahead_of_wheel(f, mism_hits)
    right_wheel = next(
        (n for n in f.packages if re.fullmatch(r"nvidia-cudnn-cu\d+", n) and n not in drift), None
    )
    other_cudnn = next((n for n in ("cudnn",) if n in f.packages), None)
    if mism_hits and right_wheel and other_cudnn:
        # the right cuDNN wheel is installed, yet another one is loaded ahead of it
        hit = mism_hits[0]
        loaded: str | None = hit.groups.get("loaded", "")
        if parse_version(f.packages[other_cudnn]) == parse_version(loaded):
            shadow_ev += [f"packages.{other_cudnn}", f"packages.{right_wheel}", hit.evidence]
            if "LD_LIBRARY_PATH" in f.snap.env:
                shadow_ev.insert(0, "env.LD_LIBRARY_PATH")
    return [e for e in shadow_ev if e]


def _older_cudnn_ahead_of_wheel(f: Facts, mismatches: Sequence[LogHit]) -> list[str]:
    """The pip cuDNN wheel's folder is on LD_LIBRARY_PATH (the guide's recipe, pasted), yet
    TensorFlow loads a cuDNN older than its own: a copy found earlier is shadowing it."""
    recipe = f.log.all("cudnn-wheel-on-path")
    wanted = parse_version(f.tf_cudnn)
    if not recipe or wanted is None:
        return []
    for hit in mismatches:
        loaded = parse_version(hit.groups.get("loaded") or "")
        if loaded is not None and loaded.release[:2] < wanted.release[:2]:
            return [recipe[0].evidence, hit.evidence]
    return []


def _framework_pin_conflict(
    f: Facts, conflicts: Sequence[tuple[str, str, list[str]]]
) -> Detection | None:
    if conflicts:
        fw, fw_version, names = conflicts[0]
        return detection(
            f,
            "framework-pin-conflict",
            f"{fw} {fw_version} pins {', '.join(names)} to versions TensorFlow "
            f"{f.tf_version} cannot use",
            [f"packages.{fw}", *(f"packages.{n}" for n in names), f.tf_version_evidence]
            + [h.evidence for h in f.log.all("framework-pin")],
            detail="pip can only keep one version of each nvidia-* wheel. Either install "
            "TensorFlow's pins (torch may then misbehave), choose releases whose pins agree "
            "(e.g. tensorflow 2.20 with torch 2.8), or use one venv per framework.",
        )
    pin_hit = f.log.first("framework-pin")
    if pin_hit is None:
        return _framework_cuda_major(f)
    return detection(
        f,
        "framework-pin-conflict",
        f"{pin_hit.groups.get('framework')} {pin_hit.groups.get('framework_version')} requires "
        f"{pin_hit.groups.get('requirement')}, which TensorFlow's pins exclude",
        [pin_hit.evidence],
    )


_FRAMEWORK_CUDA = lazy(
    # JAX's install extras and plugin wheels (jax.readthedocs.io, installation):
    # jax[cuda12], jax[cuda12_pip], jax[cuda11_local], jax-cuda12-plugin, jaxlib==…+cuda11…
    r"\bjax\[cuda(?P<jax_major>1\d)(?:_pip|_local)?\]"
    r"|\bjax-cuda(?P<plugin_major>1\d)-(?:plugin|pjrt)\b"
    r"|\bjaxlib==\S*?\+cuda(?P<jaxlib_major>1\d)"
    # PyTorch's local version labels and wheel indexes (pytorch.org, get started):
    # torch==2.1.0+cu118, download.pytorch.org/whl/cu121
    r"|\btorch==\S*?\+cu(?P<torch_major>1\d)\d\b"
    r"|download\.pytorch\.org/whl/cu(?P<index_major>1\d)\d\b"
)


_FRAMEWORK_MAJORS = {
    "jax_major": "jax",
    "plugin_major": "jax",
    "jaxlib_major": "jax",
    "torch_major": "torch",
    "index_major": "torch",
}
"""The groups of ``_FRAMEWORK_CUDA`` and whose CUDA major each holds; a match fills one."""


def _framework_cuda_major(f: Facts) -> Detection | None:
    """framework-pin-conflict from CUDA majors: JAX or PyTorch installed (or asked for) in a
    CUDA variant of another major than the one this TensorFlow was built for. Their nvidia-*
    wheels (or local CUDA) then serve one major, and TensorFlow needs the other."""
    want = f.tf_cuda_major
    if want is None or f.gpu_visible is True:
        return None
    texts = [(line[:1024], f"log[{i}]") for i, line in enumerate(f.snap.log)]
    texts += [(f"{name}=={version}", f"packages.{name}") for name, version in f.packages.items()]
    for text, where in texts:
        for m in _FRAMEWORK_CUDA.finditer(text):
            group = next(g for g in _FRAMEWORK_MAJORS if m.group(g))
            fw, major = _FRAMEWORK_MAJORS[group], int(m.group(group))
            if major == want:
                continue
            return detection(
                f,
                "framework-pin-conflict",
                f"{m.group(0)} brings CUDA {major} libraries, but TensorFlow {f.tf_version} is "
                f"built for CUDA {f.tf_cuda}",
                [where, f.tf_version_evidence],
                detail=f"One environment serves one CUDA major to both frameworks. Install the "
                f"{fw} variant for CUDA {want} (or a TensorFlow built for CUDA {major}), or "
                "use one venv per framework.",
            )
    return None


def _cudnn_mismatch(
    f: Facts,
    pins: Mapping[str, SpecifierSet],
    drift: Mapping[str, str],
    conflict_names: set[str],
) -> tuple[list[str], str]:
    """Evidence and title of a cuDNN of the wrong version: the wheel, the log, the loader."""
    cudnn_ev: list[str] = []
    title = ""
    for name, have in sorted(drift.items()):
        if "cudnn" in name and name not in conflict_names:
            cudnn_ev.append(f"packages.{name}")
            title = (
                f"{name} {have} is installed, but TensorFlow {f.tf_version} needs "
                f"{name}{pins[name]}"
            )
    for hit in f.log.all("cudnn-runtime-mismatch"):
        # cuda_dnn.cc prints this line only when its own compatibility check failed; releases
        # before 1.13 wanted the very minor they were built with, later ones an equal or newer.
        loaded, compiled = hit.groups.get("loaded"), hit.groups.get("compiled")
        cudnn_ev.append(hit.evidence)
        if loaded and compiled:
            title = title or (
                f"TensorFlow loads cuDNN {loaded}, but it was compiled with cuDNN {compiled}, "
                "and rejects that pairing"
            )
        elif loaded and f.tf_cudnn:  # the paste stops before the version compiled with
            title = title or (
                f"TensorFlow loads cuDNN {loaded}, but TensorFlow {f.tf_version} was built with "
                f"cuDNN {f.tf_cudnn}, and rejects that pairing"
            )
    wanted = parse_version(f.tf_cudnn)
    for reported, where in f.cudnn_reported:
        if wanted is None or f.gpu_visible is True or f.nvidia_installed():
            break
        if reported.major != wanted.major or reported.release[:2] < wanted.release[:2]:
            cudnn_ev += [where, f.tf_version_evidence]
            title = title or (
                f"cuDNN {reported} is what is installed, but TensorFlow {f.tf_version} needs "
                f"cuDNN {f.tf_cudnn} (the same major, an equal or newer minor)"
            )
    found = f.library("cudnn")
    if found and f.tf_cudnn and found[1].version:
        lv, need = parse_version(found[1].version), parse_version(f.tf_cudnn)
        if lv and need and (lv.major != need.major or lv.minor < need.minor):
            cudnn_ev.append(f"libraries.{found[0]}")
            title = title or (
                f"the loader resolves cuDNN {found[1].version}, but TensorFlow "
                f"{f.tf_version} needs cuDNN {f.tf_cudnn}"
            )
    if cudnn_ev and not title:  # only the message's fixed second sentence was read
        title = (
            "TensorFlow rejects the cuDNN it loads: not the major version it was compiled "
            "with, or an older minor"
        )
    return cudnn_ev, title


def _shadow_title(f: Facts, evidence: Sequence[str]) -> str:
    # cuDNN first: TensorFlow checks its version strictly, while a CUDA runtime of another
    # minor is usually tolerated (minor-version compatibility), so it names the real harm.
    for pointer in sorted(evidence, key=lambda p: not p.startswith("libraries.libcudnn")):
        if not pointer.startswith("libraries."):
            continue
        soname = pointer.removeprefix("libraries.")
        lib = f.snap.libraries.get(soname)
        if lib is None or not isinstance(lib.path, str):
            continue
        version = f" {lib.version}" if lib.version else ""
        if lib.loaded and lib.loaded != lib.path:
            return (
                f"another import mapped {lib.loaded}{version} before TensorFlow could load "
                f"its own {soname}"
            )
        folder = lib.path.rsplit("/", 1)[0]
        return f"LD_LIBRARY_PATH puts {soname}{version} from {folder} ahead of " + _wanted_copy(
            f, soname, lib
        )
    recipe = f.log.first("cudnn-wheel-on-path")
    if recipe is not None and recipe.evidence in evidence:  # _older_cudnn_ahead_of_wheel's
        loaded = next(
            h.groups.get("loaded")
            for h in f.log.all("cudnn-runtime-mismatch")
            if h.evidence in evidence
        )
        return (
            f"the pip cuDNN wheel's folder is on LD_LIBRARY_PATH, but cuDNN {loaded} from a "
            f"folder searched before it is what TensorFlow {f.tf_version or ''} loads"
        ).replace("  ", " ")
    if f.log.has("nvjitlink-symbol"):
        return (
            "LD_LIBRARY_PATH puts a system CUDA's libnvJitLink ahead of the one the pip CUDA "
            "libraries need"
        )
    return "LD_LIBRARY_PATH puts another version of a CUDA library ahead of the one TF needs"


def _wanted_copy(f: Facts, soname: str, lib: Library) -> str:
    """The copy TensorFlow needs, named: its version (from the release's pins) and where it
    is (the pip wheel's file among the loader's candidates), as far as the snapshot shows."""
    need = f.tf_cudnn if soname.startswith("libcudnn") else None
    what = f"cuDNN {need}" if need else f"the {soname}"
    pip = next((c for c in lib.candidates if c != lib.path and "/site-packages/nvidia/" in c), None)
    if pip:
        return f"{what} TensorFlow needs, in {pip.rsplit('/', 1)[0]}"
    return f"{what} TensorFlow {f.tf_version or ''} needs".replace("  ", " ")


def wrong_library(f: Facts, soname: str, lib: Library) -> bool:
    """True when the file the loader resolves for *soname* is not one TensorFlow can use."""
    if lib.path is UNKNOWN or lib.path is None:
        return False
    later = [c for c in lib.candidates if c != lib.path]
    if "cudnn" in soname and f.tf_cudnn and lib.version:
        lv, need = parse_version(lib.version), parse_version(f.tf_cudnn)
        if lv and need and (lv.major != need.major or lv.minor < need.minor):
            return True
    if lib.error:
        return bool(later)
    if lib.loaded and lib.loaded != lib.path and "/nvidia/" not in lib.loaded:
        return True  # something imported earlier mapped another copy first
    if not (later and "/nvidia/" not in str(lib.path)):
        return False
    wheels = [c for c in later if "/nvidia/" in c]
    return bool(wheels) and not any(_same_version(f, lib.version, c) for c in wheels)


_WHEEL_DIR = lazy(r"/nvidia/(?P<name>[a-z_]+)/lib/")


def _same_version(f: Facts, version: str | None, candidate: str) -> bool:
    """Whether the library found first has the version of the wheel's copy behind it: then it
    supplies exactly what TensorFlow would have loaded, and nothing is shadowed."""
    match = _WHEEL_DIR.search(candidate)
    have = parse_version(version)
    if match is None or have is None:
        return False
    base = "nvidia-" + match["name"].replace("_", "-")
    wheel = next(
        (
            f.packages[n]
            for n in (f"{base}-cu12", f"{base}-cu11", f"{base}-cu13", base)
            if n in f.packages
        ),
        None,
    )
    want = parse_version(wheel)
    if want is None:
        return False
    n = min(len(have.release), len(want.release))
    return n >= 2 and have.release[:n] == want.release[:n]


def _framework_conflicts(
    f: Facts, pins: Mapping[str, SpecifierSet]
) -> list[tuple[str, str, list[str]]]:
    out = []
    for fw, versions in sorted(f.rules.frameworks.items()):
        have = f.packages.get(fw)
        if have is None or not pins:
            continue
        fw_pins = versions.get(have) or versions.get(have.split("+")[0])
        if fw_pins is None:
            continue
        names = []
        for name, spec_text in sorted(fw_pins.items()):
            if name not in pins:
                continue
            installed = f.packages.get(name)
            if installed is not None and pins[name].contains(installed, prereleases=True):
                continue  # TensorFlow's pin won: what the loader finds is what TF needs
            exact = re.fullmatch(r"==\s*([\w.]+)", spec_text)
            if exact and not pins[name].contains(exact.group(1), prereleases=True):
                names.append(name)
        if names:
            out.append((fw, have, names))
    return out


def _shadowing_entries(f: Facts) -> list[str]:
    """The LD_LIBRARY_PATH entries that supply a wrong library (exactly as written there).

    Every entry the loader would reach before TensorFlow's own copy, not only the one it
    resolves now: with two folders that each hold a cuDNN, taking off the first makes the
    loader take the second (``LD_LIBRARY_PATH`` is searched before TensorFlow's RUNPATH).
    """
    view = _SearchView.of(f)
    out: list[str] = []
    for soname, lib in f.snap.libraries.items():
        if lib.via != "LD_LIBRARY_PATH" or not isinstance(lib.path, str):
            continue
        if not wrong_library(f, soname, lib):
            continue
        for i, path in enumerate(_ahead_of_own_copy(lib.path, lib.candidates)):
            match = view.entry_holding(path, searched=i == 0)
            if match is not None and match not in out:
                out.append(match)
    if f.log.has("nvjitlink-symbol"):
        out += [e for e in f.env_list("LD_LIBRARY_PATH") if SYSTEM_CUDA.search(e) and e not in out]
    return out


def _ahead_of_own_copy(path: str, candidates: Sequence[str]) -> list[str]:
    """The files of one soname the loader takes before the pip wheel's copy, in its order:
    the one it resolves, and the candidates between it and the wheel's. Without a wheel's copy
    among the candidates, only the resolved one (what comes next is not known to be better)."""
    files = [path, *(c for c in candidates if c != path)]
    own = next((i for i, c in enumerate(files) if _WHEEL_DIR.search(c)), None)
    return files[: max(own, 1)] if own is not None else files[:1]


_TOKEN = lazy(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


@record
class _SearchView:
    """LD_LIBRARY_PATH as written, and what the loader probe recorded of how it reads it."""

    written: tuple[str, ...]
    """Every entry as written, empty ones included (glibc reads them as the current folder)."""
    searched: frozenset[str] | None
    """The folders the loader searches for it (tokens expanded, empty and relative entries
    made absolute); None when the snapshot does not say."""
    subdirs: tuple[str, ...]
    """Subfolders searched under every folder (``glibc-hwcaps/x86-64-v3``, …), measured."""
    tokens: Mapping[str, str]
    """``$LIB`` and ``$PLATFORM`` as measured."""

    @classmethod
    def of(cls, f: Facts) -> _SearchView:
        value = f.snap.env.get("LD_LIBRARY_PATH", "")
        loader = _mapping(f.snap.extra.get("loader"))
        rules, search = _mapping(loader.get("rules")), _mapping(loader.get("search"))
        dirs = search.get("LD_LIBRARY_PATH")
        subdirs = rules.get("subdirs")
        return cls(
            written=tuple(re.split(r"[:;]", value)) if value else (),
            searched=frozenset(d.rstrip("/") for d in dirs if isinstance(d, str))
            if isinstance(dirs, list)
            else None,
            subdirs=tuple(s.strip("/") for s in subdirs if isinstance(s, str) and s.strip("/"))
            if isinstance(subdirs, list)
            else (),
            tokens={k: v for k in ("LIB", "PLATFORM") if isinstance(v := rules.get(k), str)},
        )

    def _base(self, folder: str) -> list[str]:
        """*folder*, and the folder above it when it is a subfolder the loader searches."""
        out = [folder]
        out += [folder[: -len(sub) - 1] for sub in self.subdirs if folder.endswith("/" + sub)]
        hwcaps = re.search(r"/glibc-hwcaps/[^/]+$", folder)
        if hwcaps:
            out.append(folder[: hwcaps.start()])
        return [b for b in dict.fromkeys(out) if b]

    def entry_holding(self, path: str, *, searched: bool) -> str | None:
        """The entry (as written) that makes the loader find *path*, or None.

        An entry written as a plain folder matches that folder; one with ``$ORIGIN``,
        ``$LIB`` or ``$PLATFORM``, a relative one or an empty one (the current folder, ld.so(8))
        matches only a folder the loader is known to search for this variable (*searched*:
        the loader took *path* from it).
        """
        folder = posixpath.dirname(path).rstrip("/")
        bases = self._base(folder)
        known = searched or (self.searched is not None and any(b in self.searched for b in bases))
        best: tuple[int, int, str] | None = None
        for i, entry in enumerate(self.written):
            rank, pattern = self._pattern(entry)
            if rank > 0 and not known:
                continue
            if any(re.fullmatch(pattern, b) for b in bases) and (best is None or rank < best[0]):
                best = (rank, i, entry)
        return None if best is None else best[2]

    def _pattern(self, entry: str) -> tuple[int, str]:
        """How good a match *entry* is (0 a plain folder, then tokens, relative, empty) and
        the folders it can stand for."""
        if entry == "":
            return 3, r"/.*"
        if not _TOKEN.search(entry):
            if entry.startswith("/"):
                return 0, re.escape(posixpath.normpath(entry).rstrip("/") or "/")
            # read from the current folder: any folder, or one below it ("../" goes above)
            below = re.sub(r"^(?:\.\.(?:/|$))+", "", posixpath.normpath(entry))
            return 2, r"(?:/.*)?" + ("" if below in ("", ".") else "/" + re.escape(below))
        parts = []
        pos = 0
        origin = re.match(r"\$(?:\{ORIGIN\}|ORIGIN(?![A-Za-z0-9_]))(?:/\.\.)*", entry)
        if origin:
            parts.append(r"(?:/.*)?")  # the program's folder, or a folder above it
            pos = origin.end()
        for token in _TOKEN.finditer(entry, pos):
            parts.append(re.escape(re.sub(r"/+", "/", entry[pos : token.start()])))
            name = token.group(1) or token.group(2)
            known = self.tokens.get(name)
            parts.append(re.escape(known) if known else r"[^/]*(?:/[^/]+)*")
            pos = token.end()
        parts.append(re.escape(re.sub(r"/+", "/", entry[pos:])))
        return 1, "".join(parts).rstrip("/") or "/"


def fix_cudnn_version_mismatch(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    pin = exact_pin(f.release, "nvidia-cudnn")
    name, _, version = (pin or "").partition("==")
    if pin and f.packages.get(name) == version:
        # the right wheel is installed: another copy is loaded ahead of it, so removing
        # that copy from the search path is what fixes this finding too
        entries = payload(detected, Shadowing).entries
        return [
            tuple(
                env_step(StepKind.ENV_PATH_REMOVE, "LD_LIBRARY_PATH", cause, entry=e)
                for e in entries
            )
        ]
    if pin and (f.python is None or (f.release and f.python in f.release.python)):
        return [
            (
                pip_install(
                    [pin],
                    f"Install the cuDNN TensorFlow {f.tf_version} was built with",
                    Safety.SAFE,
                    cause,
                ),
            )
        ]
    if f.release is not None:
        return [tf_install(f, cause, "a cuDNN it accepts")]
    return []


_CUDNN_DIR = "import os, nvidia.cudnn; print(os.path.dirname(nvidia.cudnn.__file__))"


def _pip_cudnn_first(f: Facts) -> str:
    """Put the pip cuDNN's folder (asked of the target's interpreter) first on the loader path.

    The folder is found by running the interpreter, so the command substitutes its output;
    the interpreter's path and the Python text are quoted.
    """
    exe = f.snap.python.executable or "python"
    ask = sq.join([exe, "-c", _CUDNN_DIR], shell(f))
    if shell(f) is sq.Dialect.FISH:
        return f"set -gx LD_LIBRARY_PATH ({ask})/lib $LD_LIBRARY_PATH"
    if shell(f) is sq.Dialect.POWERSHELL:
        return f'$env:LD_LIBRARY_PATH = "$({ask})/lib:$env:LD_LIBRARY_PATH"'
    return f'export LD_LIBRARY_PATH="$({ask})/lib${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"'


def fix_ld_library_path_shadowing(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    entries = payload(detected, Shadowing).entries
    if entries:
        return [
            tuple(
                env_step(StepKind.ENV_PATH_REMOVE, "LD_LIBRARY_PATH", cause, entry=e)
                for e in entries
            )
        ]
    return [
        (
            manual(
                [_pip_cudnn_first(f)],
                "Put the pip cuDNN ahead of the other one on LD_LIBRARY_PATH",
                cause,
            ),
        )
    ]


def fix_framework_pin_conflict(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    if f.release is None or not f.release.pins():
        return []  # a release without nvidia-* pins loads the system's CUDA: no pip step helps
    return [
        (
            pip_install(
                [and_cuda(f.release)],
                f"Install TensorFlow {f.release.version}'s own nvidia-* pins, overriding "
                "the other framework's",
                Safety.UNSAFE,
                cause,
            ),
        )
    ]


FAMILY = Family(
    "cudnn",
    (check_cudnn,),
    (
        Cause("cudnn-version-mismatch", Section.CUDNN, fix_cudnn_version_mismatch),
        Cause("ld-library-path-shadowing", Section.CUDNN, fix_ld_library_path_shadowing),
        Cause("framework-pin-conflict", Section.LIBRARIES, fix_framework_pin_conflict),
    ),
)
