"""The loader probe: which file the dynamic loader picks, for TensorFlow, for each CUDA soname.

It computes the answer in the loader's own order and then proves it:

1. libraries named in ``LD_PRELOAD`` (``via: preloaded``);
2. ``DT_RPATH`` of TensorFlow's libraries, only where they have no ``DT_RUNPATH``;
3. ``LD_LIBRARY_PATH``;
4. ``DT_RUNPATH`` of TensorFlow's own libraries (``libtensorflow_framework.so.2``, whose code
   calls ``dlopen``, then ``_pywrap_tensorflow_internal.so``), ``$ORIGIN`` expanded;
5. ``/etc/ld.so.cache`` (through ``ldconfig -p``);
6. the default folders.

Then one child process of the target interpreter, in the target's environment, ``dlopen``s
every resolved file, reads back what got mapped from ``/proc/self/maps``, and asks each
library its version through its real entry point (``cudnnGetVersion``, ``cudaRuntimeGetVersion``,
``cublasGetProperty``, …). A load failure becomes ``Library.error`` (the ``dlerror()`` text).

Held against ld.so(8) and glibc's ``elf/dl-load.c``:

- an empty entry of ``LD_LIBRARY_PATH`` (leading ``:/x``, trailing ``/x:``, or ``::``) or of a
  RUNPATH is the current folder, and so is a relative entry taken from it;
- the dynamic string tokens ``$ORIGIN``, ``$LIB`` and ``$PLATFORM`` (also as ``${…}``) are
  expanded in ``LD_LIBRARY_PATH``, ``DT_RPATH`` and ``DT_RUNPATH`` (``$ORIGIN`` is the folder of
  the object whose search list it is: the program's for ``LD_LIBRARY_PATH``); an entry with a
  token that cannot be expanded is dropped;
- under every folder searched, the ``glibc-hwcaps`` subfolders this CPU supports (and, before
  glibc 2.37, the legacy ``tls``/platform ones) come first, in priority order.

``$LIB``, ``$PLATFORM`` and the subfolders are measured, not assumed: one run of the target
interpreter with ``LD_DEBUG=libs`` and a marker folder on ``LD_LIBRARY_PATH`` prints the search
list the loader built (``measure_rules``).

Which sonames to look at is data: ``rules/sonames.toml``, chosen by the TensorFlow version.
The search itself (``resolve``) is pure, given a function that says whether a file exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field, replace
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from tffix import _subprocess
from tffix.model import Library, frozen_map
from tffix.probes.elf import ElfError, read_dynamic
from tffix.record import record
from tffix.resources import rules_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

PROOF_TIMEOUT = 30.0
"""Seconds the proving child may take; loading eight CUDA libraries takes about one."""

LDCONFIG_TIMEOUT = 10.0

TF_LIBRARIES = ("libtensorflow_framework.so.2", "python/_pywrap_tensorflow_internal.so")
"""TensorFlow's own libraries whose search paths count, relative to the ``tensorflow/`` folder.
The framework library comes first: TensorFlow's ``dlopen`` calls live in its code."""

_ARCH_TAGS = {
    "x86_64": "x86-64",
    "amd64": "x86-64",
    "aarch64": "AArch64",
    "arm64": "AArch64",
    "ppc64le": "64bit",
}
"""``ldconfig -p`` flag per machine (``(libc6,x86-64)``), so 32-bit entries are skipped."""

_MULTIARCH = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}


# --------------------------------------------------------------------------- soname table


@record
class Era:
    """One row of ``rules/sonames.toml``."""

    tf: SpecifierSet
    cuda: str
    sonames: tuple[str, ...]
    optional: tuple[str, ...] = ()


def parse_soname_table(text: str, *, name: str = "sonames.toml") -> tuple[Era, ...]:
    """Parse the soname table; ``ValueError`` naming the key when it is malformed."""
    data = tomllib.loads(text)
    eras = []
    for i, row in enumerate(data.get("era", [])):
        try:
            eras.append(
                Era(
                    tf=SpecifierSet(str(row["tf"])),
                    cuda=str(row.get("cuda", "")),
                    sonames=tuple(str(s) for s in row["sonames"]),
                    optional=tuple(str(s) for s in row.get("optional", [])),
                )
            )
        except (KeyError, TypeError, InvalidSpecifier) as exc:  # noqa: PERF203  # names the row
            raise ValueError(f"{name}: era[{i}] is invalid ({exc})") from exc
    return tuple(eras)


def load_soname_table() -> tuple[Era, ...]:
    """The shipped table."""
    return parse_soname_table(rules_dir().joinpath("sonames.toml").read_text(encoding="utf-8"))


def era_for(tf_version: str | None, eras: Sequence[Era]) -> Era | None:
    """The era whose specifier admits *tf_version* (pre-releases and nightlies included)."""
    if not tf_version:
        return None
    try:
        version = Version(tf_version)
    except InvalidVersion:
        return None
    # tf-nightly 2.23.0.dev… and 2.22.0rc0 belong to the era of 2.22/2.23.
    release = Version(".".join(str(p) for p in version.release))
    for era in eras:
        if era.tf.contains(release, prereleases=True):
            return era
    return None


# --------------------------------------------------------------------------- search path


@record
class SearchPath:
    """Everything the loader consults for TensorFlow, in order."""

    preload: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()
    ld_library_path: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    cache: Mapping[str, tuple[str, ...]] = field(default_factory=frozen_map)
    default_dirs: tuple[str, ...] = ()
    subdirs: tuple[str, ...] = ("",)
    """Searched under every folder first (``glibc-hwcaps/x86-64-v3``, …), then ``""``."""


def _dedupe(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def split_ld_library_path(value: str | None, cwd: str | None = None) -> tuple[str, ...]:
    """``LD_LIBRARY_PATH`` entries in order (``:`` or ``;`` separated, as glibc splits it).

    An empty entry is the current folder (*cwd*), as glibc reads it; without *cwd* it is ``.``.
    A variable that is unset or empty has no entries.
    """
    if not value:
        return ()
    return tuple(absolute_entry(e, cwd) for e in re.split(r"[:;]", value))


def absolute_entry(entry: str, cwd: str | None) -> str:
    """A search folder as the loader opens it: empty or relative ones from the current folder."""
    if entry == "":
        return cwd or "."
    if cwd and not os.path.isabs(entry):
        return os.path.normpath(os.path.join(cwd, entry))
    return entry


@record
class LoaderRules:
    """What this machine's loader does that ld.so(8) leaves to the build and the CPU."""

    lib: str | None = None
    """``$LIB``: ``lib/x86_64-linux-gnu`` on Debian, ``lib64`` on Fedora; None: unknown."""
    platform: str | None = None
    """``$PLATFORM`` (``AT_PLATFORM``): ``x86_64``, ``aarch64``, …; None: unknown."""
    subdirs: tuple[str, ...] = ("",)
    """Subfolders searched under every folder, in order; ``""`` is the folder itself."""


_TOKEN = re.compile(r"\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))")


def expand_tokens(entry: str, origin: str | None, rules: LoaderRules) -> str | None:
    """*entry* with ``$ORIGIN``/``$LIB``/``$PLATFORM`` expanded; None (dropped, as glibc does)
    when one of them has no known value."""
    values = {"ORIGIN": origin, "LIB": rules.lib, "PLATFORM": rules.platform}
    missing = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing
        value = values[match.group(1) or match.group(2)]
        if value is None:
            missing = True
            return ""
        return value

    out = _TOKEN.sub(sub, entry)
    return None if missing else out


def expand_entries(
    entries: Sequence[str], origin: str | None, rules: LoaderRules, cwd: str | None
) -> tuple[str, ...]:
    """Search entries with their tokens expanded, empty and relative ones made absolute."""
    out = []
    for entry in entries:
        value = expand_tokens(entry, origin, rules)
        if value is not None:
            out.append(os.path.normpath(absolute_entry(value, cwd)))
    return tuple(out)


_MARKER = "/@tffix-ld-marker@/$LIB/@@/$PLATFORM"
MEASURE_TIMEOUT = 10.0


def parse_rules(debug_output: str) -> LoaderRules | None:
    """The rules from ``LD_DEBUG=libs`` output for a run with ``LD_LIBRARY_PATH=<marker>``."""
    head = _MARKER.split("/$LIB")[0]
    for line in debug_output.splitlines():
        if "search path=" not in line or head not in line or "(LD_LIBRARY_PATH)" not in line:
            continue
        text = line.split("search path=", 1)[1].split("\t")[0].strip()
        entries = [e for e in text.split(":") if e.startswith(head)]
        base = entries[-1]
        lib, _, platform = base[len(head) + 1 :].partition("/@@/")
        subdirs = tuple(
            dict.fromkeys(e[len(base) :].lstrip("/") for e in entries if e.startswith(base))
        )
        return LoaderRules(lib=lib or None, platform=platform or None, subdirs=subdirs or ("",))
    return None


def measure_rules(python: Path, env: Mapping[str, str]) -> tuple[LoaderRules, str | None]:
    """This loader's ``$LIB``, ``$PLATFORM`` and subfolders, from one run of *python*."""
    probe_env = {k: v for k, v in env.items() if k not in ("LD_PRELOAD", "LD_DEBUG_OUTPUT")}
    probe_env.update({"LD_DEBUG": "libs", "LD_LIBRARY_PATH": _MARKER})
    result = _subprocess.run(
        [str(python), "-I", "-S", "-c", "pass"], env=probe_env, timeout=MEASURE_TIMEOUT
    )
    rules = parse_rules(result.stderr)
    if rules is None:
        why = result.describe_exit() or "its LD_DEBUG output named no search path"
        return LoaderRules(), f"the loader's $LIB, $PLATFORM and hwcaps folders are unknown ({why})"
    return rules, None


def ld_library_path_dirs(
    value: str | None, python: Path, rules: LoaderRules, cwd: str | None
) -> tuple[str, ...]:
    """``LD_LIBRARY_PATH`` as the loader searches it for *python*: tokens expanded (``$ORIGIN``
    is the program's folder), empty and relative entries from *cwd*, duplicates once."""
    if not value:
        return ()
    origin = os.path.dirname(os.path.realpath(python))
    entries = re.split(r"[:;]", value)
    return _dedupe(expand_entries(entries, origin, rules, cwd))


def split_preload(value: str | None) -> tuple[str, ...]:
    """``LD_PRELOAD`` entries (space or colon separated)."""
    if not value:
        return ()
    return tuple(e for e in re.split(r"[\s:]+", value) if e)


def parse_ldconfig(text: str, machine: str) -> dict[str, tuple[str, ...]]:
    """Parse ``ldconfig -p`` output into soname -> paths (cache order), for *machine* only."""
    tag = _ARCH_TAGS.get(machine.lower())
    out: dict[str, list[str]] = {}
    pattern = re.compile(r"^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(.+?)\s*$")
    for line in text.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        soname, flags, path = match.groups()
        if tag is not None and tag not in flags.split(","):
            continue
        out.setdefault(soname, []).append(path)
    return {k: tuple(v) for k, v in out.items()}


def read_ld_cache(
    machine: str, environ: Mapping[str, str]
) -> tuple[dict[str, tuple[str, ...]], str | None]:
    """The loader cache via ``ldconfig -p``: (mapping, None) or ({}, why it is unknown)."""
    ldconfig = None
    for candidate in ("/sbin/ldconfig", "/usr/sbin/ldconfig"):
        if os.path.exists(candidate):
            ldconfig = candidate
            break
    ldconfig = ldconfig or shutil.which("ldconfig", path=environ.get("PATH"))
    if ldconfig is None:
        return {}, "ldconfig not found"
    result = _subprocess.run([ldconfig, "-p"], env=dict(environ), timeout=LDCONFIG_TIMEOUT)
    if not result.ok:
        why = result.describe_exit() or (result.stderr.strip() or f"exit {result.returncode}")
        return {}, f"ldconfig -p failed: {why}"
    return parse_ldconfig(result.stdout, machine), None


def default_dirs(machine: str, *, is_dir: Callable[[str], bool] = os.path.isdir) -> tuple[str, ...]:
    """The loader's built-in folders for *machine* (Debian multiarch ones first)."""
    dirs = []
    triplet = _MULTIARCH.get(machine.lower())
    if triplet:
        dirs += [f"/lib/{triplet}", f"/usr/lib/{triplet}"]
    if machine.lower() in ("x86_64", "aarch64", "ppc64le", "s390x"):
        dirs += ["/lib64", "/usr/lib64"]
    dirs += ["/lib", "/usr/lib"]
    return tuple(d for d in dirs if is_dir(d))


@record
class TfSearchDirs:
    """What TensorFlow's own libraries add to the search, and any reason it is incomplete."""

    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()
    """The TensorFlow library files read."""
    problems: tuple[str, ...] = ()


def tensorflow_search_dirs(
    tf_dir: Path, rules: LoaderRules | None = None, cwd: str | None = None
) -> TfSearchDirs:
    """Read ``DT_RUNPATH``/``DT_RPATH`` of TensorFlow's libraries under *tf_dir*, tokens
    expanded (an empty entry is the current folder)."""
    rules = rules or LoaderRules()
    rpath: list[str] = []
    runpath: list[str] = []
    read: list[str] = []
    problems: list[str] = []
    for relative in TF_LIBRARIES:
        path = tf_dir / relative
        if not path.exists():
            continue
        try:
            dyn = read_dynamic(path)
        except (OSError, ElfError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        read.append(str(path))
        origin = str(path.parent)
        if dyn.runpath:
            runpath += expand_entries(dyn.runpath, origin, rules, cwd)
        else:  # DT_RPATH counts only when the object has no DT_RUNPATH
            rpath += expand_entries(dyn.rpath, origin, rules, cwd)
    if not read and not problems:
        problems.append(f"no TensorFlow shared library under {tf_dir}")
    return TfSearchDirs(_dedupe(rpath), _dedupe(runpath), tuple(read), tuple(problems))


# --------------------------------------------------------------------------- resolution


_VERSION_IN_NAME = re.compile(r"\.so\.(\d+(?:\.\d+)+)$")


def version_from_filename(path: str) -> str | None:
    """``libcudart.so.12.5.82`` -> ``12.5.82``; None when the name carries only the major."""
    match = _VERSION_IN_NAME.search(os.path.basename(path))
    if match and "." in match.group(1):
        return match.group(1)
    return None


def _in_folders(
    dirs: Sequence[str], subdirs: Sequence[str], soname: str, is_file: Callable[[str], bool]
) -> list[str]:
    out = []
    for folder in dirs:
        for sub in subdirs or ("",):
            candidate = os.path.join(folder, sub, soname) if sub else os.path.join(folder, soname)
            if is_file(candidate):
                out.append(candidate)
    return out


def resolve(
    soname: str,
    search: SearchPath,
    *,
    is_file: Callable[[str], bool] = os.path.isfile,
    preload_sonames: Mapping[str, str] | None = None,
) -> Library:
    """Which file the loader picks for *soname*, and every candidate in the loader's order.

    *preload_sonames* maps each ``LD_PRELOAD`` file to its ``DT_SONAME`` (when readable).
    """
    found: list[tuple[str, str]] = []  # (path, via)
    names = preload_sonames or {}
    found.extend(
        (entry, "preloaded")
        for entry in search.preload
        if os.path.basename(entry) == soname or names.get(entry) == soname
    )
    for via, dirs in (
        ("RPATH", search.rpath),
        ("LD_LIBRARY_PATH", search.ld_library_path),
        ("RUNPATH", search.runpath),
    ):
        found.extend((c, via) for c in _in_folders(dirs, search.subdirs, soname, is_file))
    found.extend((path, "ld.so.cache") for path in search.cache.get(soname, ()) if is_file(path))
    found.extend(
        (c, "default") for c in _in_folders(search.default_dirs, search.subdirs, soname, is_file)
    )

    seen: dict[str, str] = {}
    for path, via in found:
        key = os.path.normpath(path)
        seen.setdefault(key, via)
    candidates = tuple(seen)
    if not candidates:
        return Library(path=None, candidates=())
    first = candidates[0]
    return Library(path=first, via=seen[first], candidates=candidates)


# --------------------------------------------------------------------------- proof


_PROOF_MARK = "@@tffix-proof "

_PROOF_SCRIPT = r"""
import ctypes, json, os, sys
MARK = "@@tffix-proof "
if sys.platform.startswith("linux"):  # die with tffix (PR_SET_PDEATHSIG, SIGKILL)
    try:
        ctypes.CDLL(None).prctl(1, 9)
    except Exception:
        pass

def out(obj):
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()

def prop(fn):
    vals = []
    for kind in (0, 1, 2):  # libraryPropertyType: MAJOR, MINOR, PATCH
        v = ctypes.c_int()
        if fn(kind, ctypes.byref(v)) != 0:
            return None
        vals.append(v.value)
    return ".".join(str(x) for x in vals)

def intout(fn):
    v = ctypes.c_int()
    return v.value if fn(ctypes.byref(v)) == 0 else None

def cuda_ver(v):
    return None if v is None else "%d.%d" % (v // 1000, (v % 1000) // 10)

def cudnn(lib):
    f = lib.cudnnGetVersion
    f.restype = ctypes.c_size_t
    v = f()
    if v >= 90000:
        return "%d.%d.%d" % (v // 10000, (v % 10000) // 100, v % 100)
    return "%d.%d.%d" % (v // 1000, (v % 1000) // 100, v % 100)

def cublaslt(lib):
    f = lib.cublasLtGetVersion
    f.restype = ctypes.c_size_t
    v = f()
    return "%d.%d.%d" % (v // 10000, (v // 100) % 100, v % 100)

def nccl(lib):
    v = intout(lib.ncclGetVersion)
    if v is None:
        return None
    if v >= 20900:
        return "%d.%d.%d" % (v // 10000, (v // 100) % 100, v % 100)
    return "%d.%d.%d" % (v // 1000, (v // 100) % 10, v % 100)

def nvjitlink(lib):
    a, b = ctypes.c_uint(), ctypes.c_uint()
    if lib.nvJitLinkVersion(ctypes.byref(a), ctypes.byref(b)) != 0:
        return None
    return "%d.%d" % (a.value, b.value)

READERS = {
    "libcudnn.so": cudnn,
    "libcudart.so": lambda lib: cuda_ver(intout(lib.cudaRuntimeGetVersion)),
    "libcuda.so": lambda lib: cuda_ver(intout(lib.cuDriverGetVersion)),
    "libcublas.so": lambda lib: prop(lib.cublasGetProperty),
    "libcublasLt.so": cublaslt,
    "libcufft.so": lambda lib: prop(lib.cufftGetProperty),
    "libcusolver.so": lambda lib: prop(lib.cusolverGetProperty),
    "libcusparse.so": lambda lib: prop(lib.cusparseGetProperty),
    "libcurand.so": lambda lib: prop(lib.curandGetProperty),
    "libnccl.so": nccl,
    "libnvJitLink.so": nvjitlink,
}

results = []
for soname, path in json.loads(sys.argv[1]):
    out({"start": soname})
    item = {"soname": soname, "path": path}
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        item["error"] = str(exc)
        out(item)
        continue
    reader = READERS.get(soname.split(".so")[0] + ".so")
    if reader is not None:
        try:
            item["version"] = reader(lib)
        except Exception as exc:  # a missing entry point: no version, still loaded
            item["version_error"] = "%s: %s" % (type(exc).__name__, exc)
    results.append(item)
    out(item)

mapped = set()
try:
    with open("/proc/self/maps") as fh:
        for line in fh:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                mapped.add(parts[5].strip())
except OSError:
    mapped = None
for item in results:
    real = os.path.realpath(item["path"])
    seen = None if mapped is None or real not in mapped else real
    out({"soname": item["soname"], "mapped": seen})
out({"done": True})
"""


@record
class Proof:
    """What the proving child saw for one soname."""

    loaded: bool = False
    mapped: str | None = None
    version: str | None = None
    error: str | None = None


def parse_proof_output(stdout: str) -> tuple[dict[str, Proof], str | None, bool]:
    """(proof per soname, the soname being loaded when output stopped, whether it finished)."""
    proofs: dict[str, Proof] = {}
    current: str | None = None
    done = False
    for line in stdout.splitlines():
        if not line.startswith(_PROOF_MARK):
            continue
        try:
            item = json.loads(line[len(_PROOF_MARK) :])
        except json.JSONDecodeError:
            continue
        if "start" in item:
            current = str(item["start"])
        elif item.get("done"):
            done = True
            current = None
        elif "mapped" in item:
            soname = str(item["soname"])
            proofs[soname] = replace(proofs.get(soname, Proof()), mapped=item["mapped"])
        elif "soname" in item:
            soname = str(item["soname"])
            error = item.get("error")
            proofs[soname] = Proof(
                loaded=error is None,
                version=item.get("version"),
                error=None if error is None else str(error),
            )
            current = None
    return proofs, current, done


def prove(
    python: Path, env: Mapping[str, str], libraries: Mapping[str, Library], *, timeout: float
) -> tuple[dict[str, Proof], str | None]:
    """Load every resolved library in one child of *python*; (proofs, problem or None)."""
    todo = [[soname, lib.path] for soname, lib in libraries.items() if isinstance(lib.path, str)]
    if not todo:
        return {}, None
    result = _subprocess.run(
        [str(python), "-I", "-S", "-c", _PROOF_SCRIPT, json.dumps(todo)],
        env=dict(env),
        timeout=timeout,
    )  # in the user's working folder: an empty LD_LIBRARY_PATH entry means that folder
    proofs, current, done = parse_proof_output(result.stdout)
    problem = None
    if not done:
        how = result.describe_exit() or f"exit status {result.returncode}"
        tail = (result.stderr.strip().splitlines() or [""])[-1]
        problem = f"the loading child ended early ({how})" + (f": {tail}" if tail else "")
        if current is not None:
            proofs[current] = Proof(loaded=False, error=f"loading it ended the child: {how}")
    return proofs, problem


# --------------------------------------------------------------------------- the probe


@record
class LoaderReport:
    """The loader probe's answer."""

    libraries: Mapping[str, Library]
    extra: Mapping[str, object]
    unknown: str | None = None
    """Why the answer is incomplete, when it is."""


def _preload_sonames(entries: Sequence[str]) -> dict[str, str]:
    out = {}
    for entry in entries:
        try:
            dyn = read_dynamic(entry)
        except (OSError, ElfError):
            continue
        if dyn.soname:
            out[entry] = dyn.soname
    return out


def _no_era(tf_version: str | None) -> LoaderReport:
    why = (
        "TensorFlow's version is unknown"
        if not tf_version
        else f"no soname table entry for TensorFlow {tf_version}"
    )
    return LoaderReport(
        frozen_map(), frozen_map(), f"{why}, so which libraries it needs is unknown"
    )


def _version_of(
    lib: Library, proof: Proof | None, owners: Mapping[str, tuple[str, str]]
) -> tuple[str | None, str | None]:
    """(version, where it came from): the entry point, the file name, or the wheel."""
    if proof is not None and proof.version is not None:
        return proof.version, "entry point"
    if not isinstance(lib.path, str):
        return None, None
    real = os.path.realpath(lib.path)
    version = version_from_filename(real)
    if version is not None:
        return version, "file name"
    if real in owners:
        dist, version = owners[real]
        return version, f"wheel {dist}"
    return None, None


def _with_versions(
    resolved: Mapping[str, Library],
    proofs: Mapping[str, Proof],
    owners: Mapping[str, tuple[str, str]],
) -> tuple[dict[str, Library], dict[str, str]]:
    libraries: dict[str, Library] = {}
    sources: dict[str, str] = {}
    for soname, lib in resolved.items():
        proof = proofs.get(soname)
        version, source = _version_of(lib, proof, owners)
        if source is not None:
            sources[soname] = source
        error = proof.error if proof is not None else None
        libraries[soname] = replace(lib, version=version, error=error)
    return libraries, sources


def _search_path(
    python: Path,
    machine: str,
    env: Mapping[str, str],
    tf_dir: Path | None,
    cwd: str | None,
    rules: LoaderRules | None,
) -> tuple[SearchPath, TfSearchDirs, LoaderRules, list[str]]:
    """Everything the loader consults for TensorFlow here, and what could not be read."""
    problems: list[str] = []
    cwd = os.getcwd() if cwd is None else cwd
    rules, rules_problem = measure_rules(python, env) if rules is None else (rules, None)
    if rules_problem:
        problems.append(rules_problem)
    tf_dirs = TfSearchDirs()
    if tf_dir is not None:
        tf_dirs = tensorflow_search_dirs(tf_dir, rules, cwd)
        problems += tf_dirs.problems
    cache, cache_problem = read_ld_cache(machine, env)
    if cache_problem:
        problems.append(cache_problem)
    preload = split_preload(env.get("LD_PRELOAD"))
    search = SearchPath(
        preload=preload,
        rpath=tf_dirs.rpath,
        ld_library_path=ld_library_path_dirs(env.get("LD_LIBRARY_PATH"), python, rules, cwd),
        runpath=tf_dirs.runpath,
        cache=frozen_map(cache),
        default_dirs=default_dirs(machine),
        subdirs=rules.subdirs,
    )
    return search, tf_dirs, rules, problems


def probe_libraries(
    *,
    python: Path,
    machine: str,
    env: Mapping[str, str],
    tf_dir: Path | None,
    tf_version: str | None,
    eras: Sequence[Era] | None = None,
    library_owners: Mapping[str, tuple[str, str]] | None = None,
    timeout: float = PROOF_TIMEOUT,
    cwd: str | None = None,
    rules: LoaderRules | None = None,
) -> LoaderReport:
    """Resolve and prove every soname TensorFlow *tf_version* needs, in environment *env*.

    A library's version comes from its own entry point (in the proving child), else from its
    file name (``libcudart.so.12.5.82``), else from the ``nvidia-*`` wheel that installed it
    (*library_owners*: real path -> (distribution, version)). *cwd* is the folder the
    program runs in (empty search entries mean it; default: this process's), *rules* the
    loader's token values and subfolders (default: measured with *python*).
    """
    if not sys.platform.startswith("linux"):
        return LoaderReport(
            frozen_map(),
            frozen_map(),
            f"the loader probe follows ld.so's search order; this is {sys.platform}",
        )
    if eras is None:
        eras = load_soname_table()
    if not tf_version and tf_dir is None:
        # Nothing to load for: not a gap in what tffix knows.
        return LoaderReport(frozen_map(), frozen_map({"skipped": "no TensorFlow installed"}))
    era = era_for(tf_version, eras)
    if era is None:
        return _no_era(tf_version)
    search, tf_dirs, rules, problems = _search_path(python, machine, env, tf_dir, cwd, rules)
    preload = search.preload
    names = _preload_sonames(preload)
    resolved = {s: resolve(s, search, preload_sonames=names) for s in (*era.sonames, *era.optional)}
    proofs, proof_problem = prove(python, env, resolved, timeout=timeout)
    if proof_problem:
        problems.append(proof_problem)
    libraries, sources = _with_versions(resolved, proofs, library_owners or {})
    extra: dict[str, object] = {
        "era": {"tf": str(era.tf), "cuda": era.cuda},
        "optional": list(era.optional),
        "search": {
            "LD_PRELOAD": list(search.preload),
            "RPATH": list(search.rpath),
            "LD_LIBRARY_PATH": list(search.ld_library_path),
            "RUNPATH": list(search.runpath),
            "default": list(search.default_dirs),
        },
        "tensorflow_libraries": list(tf_dirs.libraries),
        "rules": {"LIB": rules.lib, "PLATFORM": rules.platform, "subdirs": list(rules.subdirs)},
        "proven": sorted(s for s, p in proofs.items() if p.loaded),
        "version_sources": sources,
    }
    if problems:
        extra["problems"] = problems
    unknown = "; ".join(problems) if proof_problem else None
    return LoaderReport(frozen_map(libraries), frozen_map(extra), unknown)
