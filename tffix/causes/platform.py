"""Platform and interpreter causes: native Windows, macOS, Linux aarch64/Jetson, the
Python version, and TensorFlow imported from outside the target environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from packaging.version import Version

from tffix import shellquote as sq
from tffix.causes.base import (
    Alternative,
    Cause,
    Detection,
    Family,
    Section,
    detection,
    payload,
)
from tffix.causes.steps import (
    command,
    env_step,
    manual,
    newest_release,
    pip_install,
    shell,
)
from tffix.facts import Facts, parse_version
from tffix.logparse import LogHit
from tffix.model import Safety, StepKind
from tffix.record import record

GPU_RUNTIME = (
    "dll-not-found",
    "dlopen-failed",
    "cannot-dlopen",
    "cudart-stub",
    "invalid-ptx",
    "ptx-jit",
    "cc-unknown",
    "gpu-listed",
    "gpu-found",
    "driver-insufficient",
    "cudnn-runtime-mismatch",
    "cudnn-loaded",
    "no-device",
)
"""Signals only a TensorFlow built with CUDA prints (its CUDA loader, device setup, cuDNN)."""


def check_platform(f: Facts) -> Iterable[Detection]:
    """windows-native-unsupported, macos-needs-metal, platform-no-cuda-wheels."""
    last = Version(f.rules.policy.windows_last_gpu)
    if f.os == "windows" and not f.snap.platform.wsl:
        newer = f.tf_v is None or (f.tf_v.major, f.tf_v.minor) > (last.major, last.minor)
        if f.tf_v is None and f.python and f.rules.releases:
            # the version left out of the report is bounded by the Python: no release after
            # the last Windows GPU build has a wheel for Python 3.6 or older
            newer = any(
                f.python in r.python
                for r in f.rules.releases
                if (r.key.major, r.key.minor) > (last.major, last.minor)
            )
        # A TensorFlow asking the loader for a CUDA DLL, or printing from its CUDA platform
        # code, is a GPU build, so of the era (≤ 2.10) when Windows had one: the version left
        # out of the report is not "≥ 2.11".
        gpu_build = f.tf_v is None and (
            bool(f.failed_sonames) or f.log.has(*GPU_RUNTIME) or bool(f.cuda_source_lines)
        )
        if newer and not gpu_build and f.gpu_visible is not True:
            ev = ["platform.os"]
            if f.tf_version:
                ev.append(f.tf_version_evidence)
            version = f"TensorFlow {f.tf_version}" if f.tf_version else "TensorFlow ≥ 2.11"
            yield detection(
                f,
                "windows-native-unsupported",
                f"{version} has no GPU build on native Windows (the last was {last})",
                ev,
                detail="Since 2.11, TensorFlow's Windows wheels are CPU-only. Run TensorFlow in "
                "WSL2 (pip install 'tensorflow[and-cuda]' there) or use TensorFlow ≤ 2.10 "
                "with Python ≤ 3.10 natively.",
            )
    metal = f.snap.packages is not None and f.has("tensorflow-metal")
    # TensorFlow up to 1.1 had CUDA builds for macOS (tested build configurations): one that
    # asks for a CUDA library is of that era, and Metal is not its answer.
    cuda_mac = bool(f.failed_sonames) or (f.tf_v is not None and f.tf_v < Version("1.2"))
    if f.os == "macos" and f.gpu_visible is not True and not metal and not cuda_mac:
        yield detection(
            f,
            "macos-needs-metal",
            "macOS has no CUDA; TensorFlow uses the GPU only through tensorflow-metal",
            ["platform.os", "packages"] if f.snap.packages is not None else ["platform.os"],
        )
    arch = (f.snap.platform.arch or "").lower()
    if f.linux and (arch in {"aarch64", "arm64"} or f.jetson) and f.gpu_visible is not True:
        # NVIDIA's Jetson builds carry a "+nvYY.MM" local version; one installed beside a
        # PyPI wheel is the GPU build (the overlap is tf-multiple-distributions' to say).
        nvidia_build = any(
            "+nv" in v for v in (f.tf_version or "", *map(f.packages.get, f.tf_dists)) if v
        )
        if not nvidia_build:
            ev = ["platform.arch"] if arch else []
            if f.jetson:
                ev += [f"gpus[{i}].name" for i, g in enumerate(f.snap.gpus or ()) if g.name]
                ev += ["platform.jetson"] if f.snap.platform.jetson else []
            yield detection(
                f,
                "platform-no-cuda-wheels",
                "the PyPI TensorFlow wheels for Linux aarch64"
                + (" (Jetson)" if f.jetson else "")
                + " are CPU-only",
                ev or ["platform"],
                detail="Use NVIDIA's TensorFlow build for Jetson (JetPack wheels from "
                "developer.download.nvidia.com) or an NVIDIA L4T/NGC container.",
            )


def release_pythons(f: Facts, version: str | None) -> tuple[str, ...]:
    """The Python versions TensorFlow *version* published wheels for (the matrix, else the
    release line's row of the tested build configurations); empty when not known."""
    release = f.rules.release(version)
    if release is not None:
        return tuple(release.python)
    line = f.rules.line_of(version)
    return line.python if line is not None else ()


def check_python(f: Facts) -> Iterable[Detection]:
    """python-version-unsupported.

    The era decides: with a TensorFlow version known (installed, or the one pip was asked
    for), the question is whether *that* release has wheels for this Python; only with none
    known is it whether any current GPU release has.
    """
    hits = [h for h in f.log.all("no-tensorflow-wheel") if _no_wheel(h)]
    hit = hits[0] if hits else None
    # the version pip was asked for, from whichever of its lines names it
    asked = next(
        (v for h in hits for v in (h.groups.get("version"), h.groups.get("asked")) if v), None
    )
    target = f.tf_version or asked
    pythons = release_pythons(f, target)
    if f.python and target and pythons:
        if f.python in pythons or (f.tf_version and f.gpu_visible):
            return
        ev = ["python.version", *([f.tf_version_evidence] if f.tf_version else [])]
        yield detection(
            f,
            "python-version-unsupported",
            f"TensorFlow {target} has no wheels for Python {f.python} "
            f"(it supports {pythons[0]}–{pythons[-1]})",
            [*ev, *([hit.evidence] if hit else [])],
        )
        return
    if f.python and f.tf_version and not pythons:
        return  # a release of unknown wheels, but installed: it had one for this Python
    gpu_releases = [r for r in f.rules.releases if r.key >= Version("2.12")]
    if f.python and not target:
        known = {p for r in f.rules.releases for p in r.python} | {
            p for line in f.rules.lines.values() for p in line.python
        }
        newest = max((parse_version(p) or Version("0") for p in known), default=None)
        py = parse_version(f.python)
        supported = any(f.python in r.python for r in gpu_releases)
        # An interpreter older than the current releases' had GPU wheels in an earlier era:
        # without a TensorFlow version there is nothing to say it is the problem.
        # A live probe that found no TensorFlow (``tensorflow: null``) asks about a fresh
        # install, which gets a current release.
        unknown_era = f.snap.tensorflow is not None and hit is None
        older = (
            unknown_era and py is not None and newest is not None and py < newest
        ) and f.python in known
        if supported and hit is not None and not f.gpu_visible:
            yield detection(
                f,
                "python-version-unsupported",
                f"pip found no TensorFlow wheel for this interpreter, though current releases "
                f"have wheels for Python {f.python}: a 32-bit Python, or a platform without "
                "TensorFlow wheels",
                ["python.version", hit.evidence],
                detail="Check `python -VV` (a 32-bit build says so) and the platform: there are "
                "no wheels for Alpine/musl, Windows on ARM, or Intel macOS after 2.16.",
            )
            return
        if not supported and not older and not f.gpu_visible:
            pythons_now = sorted(
                {p for r in gpu_releases for p in r.python},
                key=lambda p: parse_version(p) or Version("0"),
            )
            yield detection(
                f,
                "python-version-unsupported",
                f"no TensorFlow GPU release has wheels for Python {f.python} "
                f"(supported: {pythons_now[0]}–{pythons_now[-1]})",
                ["python.version", *([hit.evidence] if hit else [])],
            )
        return
    if hit is not None and f.os != "windows" and not f.python:
        yield detection(
            f,
            "python-version-unsupported",
            f"pip found no TensorFlow {asked} wheel for this interpreter (it has wheels for "
            f"Python {', '.join(pythons)})"
            if asked and pythons
            else "pip found no TensorFlow wheel for this interpreter",
            [hit.evidence],
            detail="pip lists no version at all when no release has a wheel for the Python "
            "version (or a 32-bit Python). Check `python -VV`.",
        )


def _no_wheel(hit: LogHit) -> bool:
    """False for pip's "from versions: …" list that does hold the version asked for (another
    constraint failed, not the wheel's absence)."""
    available = hit.groups.get("available")
    asked = hit.groups.get("asked")
    if not available or available.strip() == "none":
        return True
    listed = {v.strip() for v in available.split(",")}
    return asked is not None and asked not in listed


def check_interpreter(f: Facts) -> Iterable[Detection]:
    """wrong-interpreter."""
    venv = f.snap.python.venv
    tf_file = f.tf.file if f.tf else None
    flag = f.snap.extra.get("wrong_interpreter")
    if isinstance(flag, str) and flag:
        yield detection(f, "wrong-interpreter", flag, ["extra.wrong_interpreter"])
        return
    installed = [f"packages.{d}" for d in f.tf_dists] + list(f.log_tf_installed)
    if f.log_missing_tf and installed and f.gpu_visible is not True:
        # Python says there is no tensorflow to import, while the report shows one installed:
        # the code runs in another interpreter than the one pip installed into.
        yield detection(
            f,
            "wrong-interpreter",
            "the code's Python has no TensorFlow to import, though the report shows TensorFlow "
            "installed: it runs in another interpreter than the one pip installed into",
            [*f.log_missing_tf, *installed],
            detail='Compare `python -c "import sys; print(sys.executable)"` where the code '
            "runs (the notebook kernel, the IDE's interpreter setting) with `python -m pip -V` "
            "where TensorFlow was installed; install with that very interpreter "
            "(`python -m pip install …`) or select the environment that has it.",
        )
        return
    if isinstance(venv, str) and venv and tf_file and not tf_file.startswith(venv.rstrip("/")):
        yield detection(
            f,
            "wrong-interpreter",
            f"TensorFlow is imported from {tf_file}, outside the target environment {venv}",
            ["tensorflow.file", "python.venv"]
            + (["env.PYTHONPATH"] if "PYTHONPATH" in f.snap.env else []),
        )


_USER_SITE = re.compile(
    r"(?P<site>(?:/home/[^/\s]+|/Users/[^/\s]+|/root|~)/\.local/lib/python(?P<py>\d\.\d+)/"
    r"site-packages|[A-Za-z]:\\Users\\[^\\]+\\AppData\\Roaming\\Python\\Python(?P<wpy>\d{2,3})"
    r"\\site-packages|/Users/[^/\s]+/Library/Python/(?P<mpy>\d\.\d+)/lib/python/site-packages)"
    r"[\\/]tensorflow(?:[\\/]|$)"
)
"""A TensorFlow inside a user site (``python -m site --user-site``: ``~/.local/lib/pythonX.Y/
site-packages`` on Linux, ``%APPDATA%\\Python\\PythonXY\\site-packages`` on Windows,
``~/Library/Python/X.Y/lib/python/site-packages`` for a macOS framework build)."""
_ENV_INTERPRETER = re.compile(
    r"packaged by conda-forge|\| ?Anaconda|[\\/](?:envs|\.venv|venv|virtualenvs)[\\/]"
)


@record
class UserSite:
    """Where the user-site TensorFlow was seen, and the Python version that site is for."""

    python: str


def check_user_site(f: Facts) -> Iterable[Detection]:
    """tf-user-site-shadowing.

    Python's ``site`` module puts the user site on ``sys.path`` ahead of an environment's
    site-packages whenever user site is enabled (a conda env, a venv made with
    ``--system-site-packages``): a ``pip install --user`` TensorFlow there is the one
    imported, whatever the environment holds. A plain venv disables the user site, so seeing
    the user site's TensorFlow there means another interpreter (wrong-interpreter).
    """
    where: list[str] = []
    py = None
    tf_file = f.tf.file if f.tf else None
    if tf_file and (m := _USER_SITE.search(tf_file)):
        where.append("tensorflow.file")
        py = m.group("py") or m.group("mpy") or m.group("wpy")
    for i, line in enumerate(f.snap.log[:400]):
        m = _USER_SITE.search(line[:1024])
        if m:
            where.append(f"log[{i}]")
            py = py or m.group("py") or m.group("mpy") or m.group("wpy")
            break
    if not where:
        return
    env_ev = _environment_evidence(f)
    if not env_ev:
        return
    pyv = py if py and "." in py else (f"{py[0]}.{py[1:]}" if py else f.python or "3")
    yield detection(
        f,
        "tf-user-site-shadowing",
        f"TensorFlow is imported from the user site (~/.local, Python {pyv}), ahead of the "
        "environment's own",
        [*where, *env_ev],
        detail="Python puts the user site before an environment's site-packages when user site "
        "is enabled (conda envs, venvs with system site packages). The environment's "
        "TensorFlow, its CUDA wheels and its NumPy are then not the ones in use.",
        payload=UserSite(pyv),
    )


def _environment_evidence(f: Facts) -> list[str]:
    """Evidence that the interpreter run is an environment's (conda, or a venv), not the user's
    base Python whose own user site it would be."""
    if f.snap.python.kind in {"conda", "conda-base", "venv"} or f.snap.python.venv:
        return ["python.kind" if f.snap.python.kind else "python.venv"]
    for i, line in enumerate(f.snap.log[:400]):
        text = line[:1024]
        if _ENV_INTERPRETER.search(text) and not _USER_SITE.search(text):
            return [f"log[{i}]"]
    return []


def fix_tf_user_site_shadowing(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    site = payload(detected, UserSite)
    return [
        (env_step(StepKind.ENV_SET, "PYTHONNOUSERSITE", cause, value="1"),),
        (
            manual(
                [f"python{site.python} -s -m pip uninstall --yes tensorflow"],
                "Remove the user site's TensorFlow (run outside the environment)",
                cause,
            ),
        ),
    ]


def check_metal(f: Facts) -> Iterable[Detection]:
    """metal-plugin-incompatible: tensorflow-metal is installed but does not load or work with
    the installed TensorFlow."""
    if f.os not in {"macos", None}:
        return
    # TensorFlow loads site-packages/tensorflow-plugins/*.dylib at import; a plugin built
    # against another release's C API fails there (the signature in rules/logs.toml).
    hits = f.log.all("metal-plugin-load")
    if not hits:
        return
    metal = f.packages.get("tensorflow-metal")
    ev = [h.evidence for h in hits] + (["packages.tensorflow-metal"] if metal else [])
    tf = f"TensorFlow {f.tf_version}" if f.tf_version else "this TensorFlow"
    yield detection(
        f,
        "metal-plugin-incompatible",
        f"tensorflow-metal{' ' + metal if metal else ''} does not load with {tf}: the plugin was "
        "built for another TensorFlow release",
        ev,
    )


def fix_metal_plugin_incompatible(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    alts: list[Alternative] = []
    pin = f.rules.fixes.metal_for(f.tf_version)
    if pin and f.packages.get("tensorflow-metal") != pin.split("==")[-1]:
        what = f"the one built for TensorFlow {f.tf_version}" if f.tf_version else "the newest"
        alts.append(
            (
                pip_install(
                    [pin],
                    f"Install tensorflow-metal {pin.split('==')[-1]}, {what}",
                    Safety.SAFE,
                    cause,
                ),
            )
        )
    v = f.tf_v
    if v is not None:
        older = [
            r
            for r in f.rules.releases
            if (r.key.major, r.key.minor) == (v.major, v.minor - 1) and not r.key.is_prerelease
        ]
        if older:
            alts.append(
                (
                    pip_install(
                        [f"tensorflow=={older[-1].version}"],
                        f"Go back to TensorFlow {older[-1].version}, the release before the "
                        "one the plugin does not load with",
                        Safety.UNSAFE,
                        cause,
                    ),
                )
            )
    return alts


def fix_windows_native_unsupported(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    newest = newest_release(f, fit=False)
    pin = f"=={newest.version}" if newest else ""
    return [
        (
            manual(
                [
                    "wsl --install -d Ubuntu",
                    "wsl -- python3 -m venv ~/tf",
                    # the requirement goes through PowerShell (or cmd) and then WSL's bash:
                    # single quotes keep its brackets literal in both
                    "wsl -- ~/tf/bin/pip install " + sq.quote(f"tensorflow[and-cuda]{pin}"),
                ],
                "Run TensorFlow inside WSL2 (native Windows has no GPU build since 2.11)",
                cause,
            ),
        )
    ]


def fix_macos_needs_metal(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    py = parse_version(f.python)
    if py is not None and not (Version("3.9") <= py < Version("3.13")):
        return []
    pin = f.rules.fixes.metal_for(f.tf_version)
    if not pin:  # a TensorFlow older than the plugin
        return []
    return [
        (
            pip_install(
                [pin],
                "Install Apple's Metal plugin for TensorFlow"
                + (
                    f" (tensorflow-metal {pin.split('==')[-1]}, built for {f.tf_version})"
                    if f.tf_version
                    else ""
                ),
                Safety.SAFE,
                cause,
            ),
        )
    ]


def fix_platform_no_cuda_wheels(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    if f.jetson:
        return [
            (
                manual(
                    [
                        "python3 -m pip install --extra-index-url "
                        "https://developer.download.nvidia.com/compute/redist/jp/v61 "
                        "tensorflow==2.16.1+nv24.08",
                    ],
                    "Install NVIDIA's TensorFlow build for Jetson (JetPack 6.1) instead of "
                    "the PyPI wheel",
                    cause,
                ),
            )
        ]
    return [
        (
            manual(
                [f"docker run --gpus all -it --rm {f.rules.fixes.ngc_image}"],
                "Use NVIDIA's NGC TensorFlow container (PyPI has no aarch64 CUDA wheels)",
                cause,
            ),
        )
    ]


def fix_python_version_unsupported(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    newest = next(
        (r for r in reversed(f.rules.releases) if r.and_cuda and r.and_cuda_resolves), None
    )
    if newest is None:
        return []
    newest_py = newest.python[-1]
    return [
        (
            manual(
                [
                    command(f, [f"python{newest_py}", "-m", "venv", ".venv-tf"]),
                    command(
                        f,
                        [
                            ".venv-tf/bin/python",
                            "-m",
                            "pip",
                            "install",
                            f"tensorflow[and-cuda]=={newest.version}",
                        ],
                    ),
                ],
                f"Make an environment with Python {newest_py} "
                f"(TensorFlow {newest.version} supports "
                f"{', '.join(newest.python)})",
                cause,
            ),
        )
    ]


def fix_wrong_interpreter(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    exe = f.snap.python.executable or "python"
    dialect = shell(f)
    cmds = []
    if "PYTHONPATH" in f.snap.env:
        cmds.append(sq.unset_variable("PYTHONPATH", dialect))
    if f.snap.extra.get("wrong_interpreter"):
        # the shell's PATH puts another python ahead of the active venv's
        bin_dir = exe.rsplit("/", 1)[0] if "/" in exe else "<venv>/bin"
        cmds.append(sq.prepend_path("PATH", bin_dir, dialect))
        if dialect in (sq.Dialect.POSIX, sq.Dialect.CSH):
            cmds.append("hash -r" if dialect is sq.Dialect.POSIX else "rehash")
        cmds.append(command(f, ["command", "-v", "python", "python3"]))
    else:
        cmds.append(
            command(f, [exe, "-m", "ipykernel", "install", "--user", "--name", "tffix-target"])
        )
    return [(manual(cmds, "Run TensorFlow with the target environment's interpreter", cause),)]


FAMILY = Family(
    "platform",
    (
        check_platform,
        check_python,
        check_interpreter,
        check_user_site,
        check_metal,
    ),
    (
        Cause("windows-native-unsupported", Section.PLATFORM, fix_windows_native_unsupported),
        Cause("macos-needs-metal", Section.PLATFORM, fix_macos_needs_metal),
        Cause("platform-no-cuda-wheels", Section.PLATFORM, fix_platform_no_cuda_wheels),
        Cause("python-version-unsupported", Section.PYTHON, fix_python_version_unsupported),
        Cause("wrong-interpreter", Section.PYTHON, fix_wrong_interpreter),
        Cause("tf-user-site-shadowing", Section.PYTHON, fix_tf_user_site_shadowing),
        Cause("metal-plugin-incompatible", Section.PLATFORM, fix_metal_plugin_incompatible),
    ),
)
