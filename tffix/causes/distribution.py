"""TensorFlow distribution causes: not installed, the tensorflow-gpu stub, several
distributions, CPU-only packages and builds, import errors, and [and-cuda] that cannot resolve.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import cast

from packaging.version import Version

from tffix.causes.base import Alternative, Cause, Detection, Family, Section, detection, payload
from tffix.causes.steps import (
    and_cuda,
    command,
    installable,
    manual,
    newest_release,
    pip_install,
    pip_uninstall,
    same_or_newest,
    tf_install,
)
from tffix.facts import Facts, parse_version
from tffix.model import FixSide, PlanStep, Safety, Severity
from tffix.pkgname import canonicalize_name
from tffix.record import record


def check_distribution(f: Facts) -> Iterable[Detection]:
    """tf-not-installed, tf-gpu-stub, tf-multiple-distributions, tf-cpu-only-*."""
    policy = f.rules.policy
    yield from _check_stub(f)
    # not installed
    tf_none = f.snap.tensorflow is None
    missing_import = bool(f.import_error and "No module named 'tensorflow'" in f.import_error)
    missing_in_log = bool(f.log_missing_tf) and not f.log_tf_installed
    # A traceback through site-packages/tensorflow shows a TensorFlow a pasted package list
    # left out; a live probe's `tensorflow: null` is about the target itself and stands.
    seen = f.tf_imported_from is not None and not missing_import and not tf_none
    if (
        (tf_none or missing_import or missing_in_log or (f.packages_complete and not f.tf_dists))
        and not f.tf_dists
        and not seen
    ):
        ev = []
        if tf_none:
            ev.append("tensorflow")
        if missing_import:
            ev.append("tensorflow.import_error")
        if missing_in_log:
            ev.extend(f.log_missing_tf)
        if f.packages_complete:
            ev.append("packages")
        yield detection(f, "tf-not-installed", "no TensorFlow is installed in the target", ev)
    # several distributions
    dists = set(f.tf_dists)
    wrappers = {
        "windows": {"tensorflow", "tensorflow-intel"},
        "macos": {"tensorflow", "tensorflow-macos"},
    }
    arch = (f.snap.platform.arch or "").lower()
    expected = wrappers.get(f.os or "", set())
    if arch in {"aarch64", "arm64"}:
        expected = {"tensorflow", "tensorflow-cpu-aws"}
    two_channels = _channels(f)
    if _conda_package(f) and not two_channels:
        # conda's tensorflow / tensorflow-gpu / tensorflow-base are metapackages over one
        # tensorflow-base build: several names, one tensorflow/ folder. Rows of two channels
        # (conda-forge's beside defaults', or pip's) are two builds in that one folder.
        expected = expected | CONDA_METAPACKAGES
    owners = f.snap.extra.get("tensorflow_owners")
    many = len(dists) > 1 and not dists <= expected
    if many or (isinstance(owners, list) and len(owners) > 1):
        names = sorted(dists) if many else sorted(str(o) for o in cast("list[object]", owners))
        ev = [f"packages.{n}" for n in sorted(dists)] if many else []
        ev += two_channels if many else []
        if isinstance(owners, list) and len(owners) > 1:
            ev.append("extra.tensorflow_owners")
        yield detection(
            f,
            "tf-multiple-distributions",
            f"{' and '.join(names)} are installed together and overwrite each other's "
            "tensorflow/ folder"
            + (
                " (conda lists them from "
                + " and ".join(sorted({c for c, _ in f.tf_channels.values()}))
                + ")"
                if two_channels
                else ""
            ),
            ev,
        )
    # CPU-only package
    cpu_only = [
        n for n in f.tf_dists if n in {canonicalize_name(c) for c in policy.cpu_only_packages}
    ]
    if f.os == "windows":
        cpu_only = [n for n in cpu_only if n != "tensorflow-intel"]
    if arch in {"aarch64", "arm64"}:
        cpu_only = [n for n in cpu_only if n != "tensorflow-cpu-aws"]
    tf1 = f.packages.get("tensorflow")
    tf1_v = parse_version(tf1)
    if cpu_only:
        yield detection(
            f,
            "tf-cpu-only-package",
            f"{', '.join(cpu_only)} is a CPU-only TensorFlow distribution",
            [f"packages.{n}" for n in cpu_only],
        )
    elif (
        tf1_v is not None
        and _cpu_only_on_pypi(tf1_v)
        and not f.has("tensorflow-gpu")
        and f.gpu_visible is not True
        and not _conda_package(f)
    ):
        # PyPI's `tensorflow` had no GPU support in 1.x and 2.0 (GPU was `tensorflow-gpu`;
        # 1.15.2's `tensorflow` is CPU-only, tensorflow#36347); 2.1+ includes it.
        yield detection(
            f,
            "tf-cpu-only-package",
            f"tensorflow {tf1} is a CPU-only package on PyPI (the GPU build of that "
            "release was tensorflow-gpu)",
            ["packages.tensorflow"],
        )
    # CPU-only build
    build = _cpu_only_build(f)
    if build is not None:
        yield build


def _cpu_only_build(f: Facts) -> Detection | None:
    """tf-cpu-only-build: the build says it has no CUDA, or its log shows it never tried."""
    not_cuda = f.log.all("not-cuda-build")
    variant = conda_variant(f)
    cpu_variant = variant is not None and variant[0] in {"eigen", "mkl"}
    never = f.cuda_never_tried
    said_not_cuda = f.is_cuda_build is False or not_cuda or cpu_variant
    if (said_not_cuda or never) and f.gpu_visible is not True:
        read = f.cuda_build_read
        ev = [read[1]] if read is not None and read[0] is False else []
        ev += [h.evidence for h in not_cuda]
        ev += [variant[1]] if variant is not None and cpu_variant else []
        conda = f.has("tensorflow-base") or f.snap.python.kind in {"conda", "conda-base"}
        if said_not_cuda:
            title = f"TensorFlow {f.tf_version or ''} reports is_cuda_build: False"
        else:
            ev += list(never)
            title = (
                f"TensorFlow {f.tf_version or ''} is not a CUDA build: its log shows no GPU "
                "setup at all (no CUDA library, no cuInit, no GPU device) and the session "
                "maps no device"
            )
        return detection(
            f,
            "tf-cpu-only-build",
            title.replace("  ", " ") + (" (a conda CPU build)" if conda else ""),
            ev,
        )

    return None


def _check_stub(f: Facts) -> Iterable[Detection]:
    """tf-gpu-stub: PyPI's removed tensorflow-gpu (its legacy releases are the real thing)."""
    policy = f.rules.policy
    stub_hits = f.log.all("tf-gpu-removed")
    if f.has("tensorflow-gpu") or stub_hits:
        version = f.packages.get("tensorflow-gpu")
        legacy = version is not None and (parse_version(version) or Version("0")) <= Version(
            policy.tensorflow_gpu_last
        )
        ev = (["packages.tensorflow-gpu"] if version else []) + [h.evidence for h in stub_hits]
        if (legacy or _conda_package(f)) and not stub_hits:
            pass  # the real GPU package of its era (and conda's GPU metapackage): no problem
        elif legacy:
            yield detection(
                f,
                "tf-gpu-stub",
                f"tensorflow-gpu {version} is the legacy package (the last real one is "
                f"{policy.tensorflow_gpu_last}); use tensorflow[and-cuda]",
                ev,
                severity=Severity.WARNING,
            )
        else:
            yield detection(
                f,
                "tf-gpu-stub",
                "tensorflow-gpu was removed after 2.11: its 2.12 release is a stub that fails "
                "to build; install tensorflow instead",
                ev,
            )


CONDA_METAPACKAGES = frozenset(
    {"tensorflow", "tensorflow-gpu", "tensorflow-base", "tensorflow-gpu-base", "tensorflow-cpu"}
)
_CONDA_VARIANT = re.compile(
    r"^\s*(?:_tflow_\w*select|tensorflow(?:-base)?)\b:?\s+\d[\w.]*(?:-\w+)?"
    r"(?:\s*-->\s*\d[\w.]*)?[-\s]+(?P<variant>gpu|eigen|mkl)(?:_py\w*)?\s*$"
)
"""A conda line naming the TensorFlow build variant: ``_tflow_select 2.1.0 gpu``, ``conda list``'s
``tensorflow-base 1.15.0 mkl_py37h…``, or ``conda update``'s ``_tflow_180_select: 1.0-gpu -->
3.0-eigen`` (the variant after the arrow is the one installed)."""


def conda_variant(f: Facts) -> tuple[str, str] | None:
    """(variant, evidence) of the TensorFlow build conda installed: ``gpu``, ``eigen``, ``mkl``."""
    found = None
    for i, line in enumerate(f.snap.log):
        m = _CONDA_VARIANT.search(line[:512])
        if m:
            found = (m.group("variant"), f"log[{i}]")
    return found


def _cpu_only_on_pypi(version: Version) -> bool:
    """PyPI's ``tensorflow`` had no GPU build in 1.x and 2.0, except 1.15.0: its release notes
    ("tensorflow pip package will by default include GPU support (same as tensorflow-gpu
    now)", RELEASE.md, Release 1.15.0); 1.15.2's is CPU-only again (tensorflow#36347)."""
    if version.release[:3] == (1, 15, 0):
        return False
    return version.major == 1 or version.release[:2] == (2, 0)


def _channels(f: Facts) -> list[str]:
    """Evidence of pasted ``conda list`` rows that give the TensorFlow distributions more than
    one channel: two builds, not conda's metapackages over one."""
    rows = f.tf_channels.values()
    return [where for _channel, where in rows] if len({c for c, _ in rows}) > 1 else []


def _conda_package(f: Facts) -> bool:
    """True when TensorFlow comes from conda, whose ``tensorflow-gpu`` is a real metapackage
    (it selects the CUDA build of ``tensorflow-base``), not PyPI's removed stub."""
    if f.has("tensorflow-base") or f.snap.python.kind in {"conda", "conda-base"}:
        return True
    return any("conda-forge" in line or "Anaconda" in line for line in f.snap.log[:200])


@record
class ImportFailure:
    """Why ``import tensorflow`` fails, as far as the fix needs to know."""

    numpy: bool
    """The failure is NumPy's: the NumPy 2 ABI break, or NumPy named in the error itself."""


def check_import(f: Facts) -> Iterable[Detection]:
    """tf-import-error."""
    err = f.import_error
    hits = f.log.all("numpy2-abi", "glibc-too-old", "cpu-no-avx", "protobuf-mismatch")
    ev = (["tensorflow.import_error"] if err else []) + [h.evidence for h in hits]
    text = " ".join([err or ""] + [h.line for h in hits])
    if err and "No module named 'tensorflow'" in err:
        return
    if err and re.search(r"lib(cuda|cudnn|cublas|cudart|cufft|cusolver|cusparse)\w*\.so", err):
        return  # a CUDA library failing to load: the library checks say which
    known = f.known_bad_hits("tf-import-error")
    # a traceback cut short says where the import stopped, not why: with a CUDA library
    # failing to load in the same log, the library checks say which
    cut = f.truncated_tf_import if not err and not f.failed_sonames else None
    if cut is not None:
        ev.append(cut[1])
    if not ev and not known:
        return
    outside = bool(re.search(r"GLIBC_|Illegal instruction|AVX", text))
    numpy = f.packages.get("numpy")
    if known and numpy:
        ev += [f.tf_version_evidence, "packages.numpy"]
    if re.search(r"NumPy 1\.x|_ARRAY_API|multiarray", text) or known:
        title = (
            f"TensorFlow {f.tf_version or ''} was built for NumPy 1.x but NumPy "
            f"{numpy or '2'} is installed".replace("  ", " ")
        )
    elif outside:
        title = "import tensorflow fails: this machine's glibc or CPU is too old for the wheel"
    elif err or hits:
        title = "import tensorflow fails: " + (err or hits[0].line).strip().splitlines()[-1][:120]
    else:
        title = (
            "import tensorflow fails inside TensorFlow's own modules (the traceback stops at "
            f"{cut[0][:100] if cut else 'its import'}; its exception line is not shown)"
        )
    yield detection(
        f,
        "tf-import-error",
        title,
        ev,
        fix=FixSide.OUTSIDE if outside else None,
        payload=ImportFailure(numpy="NumPy" in title),
    )


def check_and_cuda(f: Facts) -> Iterable[Detection]:
    """and-cuda-unresolvable."""
    pins = f.log.all("pin-missing")
    requested = f.log.all("pip-install-and-cuda")
    asked = next((h.groups.get("version") for h in requested if h.groups.get("version")), None)
    version = asked or f.tf_version
    release = f.rules.release(version)
    ev = [h.evidence for h in requested if h.groups.get("version")] + [h.evidence for h in pins]
    bad = None
    for entry in f.rules.known_bad:
        if (
            entry.cause == "and-cuda-unresolvable"
            and version in entry.releases
            and (entry.python is None or (f.python and f.python in entry.python))
        ):
            bad = entry
    wants_cuda = bool(requested or pins)
    if pins and bad is None and release is None:
        hit = pins[0]
        yield detection(
            f,
            "and-cuda-unresolvable",
            f"pip cannot install {hit.groups.get('requirement', 'a pinned CUDA wheel')}, "
            "required by tensorflow[and-cuda]",
            ev,
        )
    elif bad is not None and wants_cuda:
        if not ev:
            ev = [f.tf_version_evidence] + (["python.version"] if bad.python else [])
        yield detection(f, "and-cuda-unresolvable", bad.why, ev)
    elif release is not None and not release.and_cuda_resolves and (requested or pins):
        yield detection(
            f,
            "and-cuda-unresolvable",
            f"tensorflow[and-cuda]=={release.version} does not resolve: "
            f"{release.and_cuda_error or 'a pinned wheel is not on the index'}",
            ev,
        )


def fix_tf_not_installed(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    if f.os in {"windows"}:
        return []
    if f.os == "macos":
        return []
    return [tf_install(f, cause, "TensorFlow is not installed")]


def fix_tf_gpu_stub(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    steps: list[PlanStep] = []
    if f.has("tensorflow-gpu"):
        steps.append(
            pip_uninstall(
                ["tensorflow-gpu"], "Remove the tensorflow-gpu package", Safety.SAFE, cause
            )
        )
    newest = newest_release(f)
    if newest is None:
        return [tuple(steps)] if steps else []
    replacing = f.has("tensorflow-gpu") or f.has("tensorflow")
    steps.append(
        pip_install(
            [and_cuda(newest)],
            f"Install tensorflow[and-cuda] {newest.version}, which replaces tensorflow-gpu",
            Safety.UNSAFE if replacing else Safety.SAFE,
            cause,
        )
    )
    return [tuple(steps)]


def fix_tf_multiple_distributions(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    dists = list(f.tf_dists)
    version = f.packages.get("tensorflow") or (f.packages[dists[0]] if dists else None)
    install = tf_install(f, cause, "one distribution owns tensorflow/ again", version)
    return [
        (
            pip_uninstall(
                dists,
                f"Remove every TensorFlow distribution ({', '.join(dists)})",
                Safety.SAFE,
                cause,
            ),
            *install,
        )
    ]


def fix_tf_cpu_only_package(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    cpu = [n for n in f.tf_dists if n != "tensorflow"]
    version = f.tf_version
    tf1 = parse_version(f.packages.get("tensorflow"))
    if tf1 is not None and tf1.major == 1:
        version = None
        newest = newest_release(f)
        if newest is None:
            return []
        return [
            (
                pip_install(
                    [and_cuda(newest)],
                    f"Upgrade to TensorFlow {newest.version} with CUDA (TF 1.x `tensorflow` "
                    "is CPU-only)",
                    Safety.UNSAFE,
                    cause,
                ),
            )
        ]
    steps = [pip_uninstall(cpu, f"Remove {', '.join(cpu)}", Safety.SAFE, cause)] if cpu else []
    return [(*steps, *tf_install(f, cause, "the GPU build", version))]


def fix_tf_cpu_only_build(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    choice = same_or_newest(f, f.tf_version)
    if choice is None:
        return []
    release, safety = choice
    if f.has("tensorflow-base") or f.snap.python.kind in {"conda", "conda-base"}:
        return [
            (
                manual(
                    [
                        "conda remove --force tensorflow tensorflow-base tensorflow-estimator",
                        command(f, ["python", "-m", "pip", "install", and_cuda(release)]),
                    ],
                    f"Replace the conda CPU build with TensorFlow {release.version} from PyPI",
                    cause,
                ),
            )
        ]
    steps = []
    if f.has("tensorflow"):
        steps.append(
            pip_uninstall(
                ["tensorflow"], "Remove the CPU-only TensorFlow build", Safety.SAFE, cause
            )
        )
    steps.append(
        pip_install(
            [and_cuda(release, f.tf_version)],
            f"Install the PyPI CUDA build of TensorFlow {release.version}",
            safety,
            cause,
        )
    )
    return [tuple(steps)]


def fix_tf_import_error(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    finding = detected.finding
    if finding.fix == FixSide.OUTSIDE:
        return []
    if payload(detected, ImportFailure).numpy:
        py = parse_version(f.python)
        if py is None or py < Version("3.13"):
            return [
                (
                    pip_install(
                        [f.rules.fixes.numpy_1],
                        "Install NumPy 1.x, which this TensorFlow was built for",
                        Safety.SAFE,
                        cause,
                    ),
                )
            ]
    return []


def fix_and_cuda_unresolvable(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    asked = next(
        (
            h.groups.get("version")
            for h in f.log.all("pip-install-and-cuda")
            if h.groups.get("version")
        ),
        None,
    )
    version = asked or f.tf_version
    for bad in f.rules.known_bad:
        if bad.cause == cause and version in bad.releases:
            fixed = f.rules.release(bad.fixed_in)
            if fixed is not None and installable(f, fixed):
                same = version is not None and bad.fixed_in.startswith(f"{version}.post")
                return [
                    (
                        pip_install(
                            [and_cuda(fixed)],
                            f"Install TensorFlow {fixed.version} instead ({bad.fixed_in} has "
                            "installable CUDA pins)",
                            Safety.SAFE if same or not f.tf_dists else Safety.UNSAFE,
                            cause,
                        ),
                    )
                ]
    newest = newest_release(f)
    if newest is None:
        return []
    return [
        (
            pip_install(
                [and_cuda(newest)],
                f"Install TensorFlow {newest.version}, whose CUDA pins resolve",
                Safety.UNSAFE if f.tf_dists else Safety.SAFE,
                cause,
            ),
        )
    ]


FAMILY = Family(
    "distribution",
    (
        check_distribution,
        check_import,
        check_and_cuda,
    ),
    (
        Cause("tf-not-installed", Section.PACKAGE, fix_tf_not_installed),
        Cause("tf-gpu-stub", Section.PACKAGE, fix_tf_gpu_stub),
        Cause("tf-multiple-distributions", Section.PACKAGE, fix_tf_multiple_distributions),
        Cause("tf-cpu-only-package", Section.PACKAGE, fix_tf_cpu_only_package),
        Cause("tf-cpu-only-build", Section.BUILD, fix_tf_cpu_only_build),
        Cause("tf-import-error", Section.BUILD, fix_tf_import_error),
        Cause("and-cuda-unresolvable", Section.PACKAGE, fix_and_cuda_unresolvable),
    ),
)
