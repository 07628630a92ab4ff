"""Findings -> the ranked plan: the fewest, smallest, safest steps that get TF onto the GPU.

Pure. Each cause has a fixer that proposes alternative step lists ("fixed by" edges); the
best alternative per finding is chosen with ``alternative_rank``; the chosen steps are merged
(identical steps resolve several findings; a ``tensorflow[and-cuda]==V`` install subsumes
installs of V's own pins), and ordered with ``step_rank``.

Versions in pip steps are exact and come from the release matrix for the target's Python, so
a plan never names a wheel that does not exist for it. Outside causes get ``manual`` steps
with the exact commands a person runs; tffix never runs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from packaging.requirements import Requirement
from packaging.version import Version

from tffix import stepdeps
from tffix.graph import (
    SYSTEM_CUDA,
    Facts,
    Graph,
    cc_tuple,
    driver_floor,
    parse_version,
    wrong_library,
)
from tffix.model import Finding, FixSide, PlanStep, Safety, Severity, StepKind
from tffix.ruleset import Release

SAFETY_ORDER = {Safety.SAFE: 0, Safety.UNSAFE: 1, Safety.MANUAL: 2}
KIND_PHASE = {
    StepKind.MANUAL: 0,
    StepKind.PIP_UNINSTALL: 1,
    StepKind.PIP_INSTALL: 2,
    StepKind.ENV_UNSET: 3,
    StepKind.ENV_SET: 3,
    StepKind.ENV_PATH_REMOVE: 3,
    StepKind.ENV_PATH_PREPEND: 4,
}
NGC_IMAGE = "nvcr.io/nvidia/tensorflow:25.02-tf2-py3"
"""An NGC TensorFlow image built for every current architecture, Blackwell included."""
NUMPY_1 = "numpy==1.26.4"
"""The last NumPy 1.x release (wheels for CPython 3.9–3.12)."""
METAL = "tensorflow-metal==1.2.0"
NVIDIA_LIB_DIRS = {
    "nvidia-cublas": "cublas",
    "nvidia-cuda-cupti": "cuda_cupti",
    "nvidia-cuda-nvrtc": "cuda_nvrtc",
    "nvidia-cuda-runtime": "cuda_runtime",
    "nvidia-cudnn": "cudnn",
    "nvidia-cufft": "cufft",
    "nvidia-curand": "curand",
    "nvidia-cusolver": "cusolver",
    "nvidia-cusparse": "cusparse",
    "nvidia-nccl": "nccl",
    "nvidia-nvjitlink": "nvjitlink",
}

SONAME_LIB_DIRS = {
    "libcublas": "cublas",
    "libcublasLt": "cublas",
    "libcupti": "cuda_cupti",
    "libnvrtc": "cuda_nvrtc",
    "libcudart": "cuda_runtime",
    "libcudnn": "cudnn",
    "libcufft": "cufft",
    "libcurand": "curand",
    "libcusolver": "cusolver",
    "libcusparse": "cusparse",
    "libnccl": "nccl",
    "libnvJitLink": "nvjitlink",
}
"""Which ``nvidia/<folder>/lib`` of the wheels holds a library (by soname stem)."""

Alternative = tuple[PlanStep, ...]


# --------------------------------------------------------------------------- step builders


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
    verb = {
        StepKind.ENV_SET: f"Set {variable}={value}",
        StepKind.ENV_UNSET: f"Unset {variable}",
        StepKind.ENV_PATH_PREPEND: f"Put {entry} first on {variable}",
        StepKind.ENV_PATH_REMOVE: f"Remove {entry} from {variable}",
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


def manual(commands: Sequence[str], summary: str, cause: str) -> PlanStep:
    return PlanStep(
        kind=StepKind.MANUAL,
        summary=summary,
        safety=Safety.MANUAL,
        resolves=(cause,),
        commands=tuple(commands),
    )


# --------------------------------------------------------------------------- release choice


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
    op = "===" if local and "+" in installed else "=="
    return f"tensorflow[and-cuda]{op}{release.version}"


def _tf_install(f: Facts, cause: str, why: str, version: str | None = None) -> Alternative:
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


def _exact_pin(release: Release | None, prefix: str) -> str | None:
    if release is None:
        return None
    for text in release.and_cuda:
        req = Requirement(text)
        if req.name.startswith(prefix):
            specs = list(req.specifier)
            if len(specs) == 1 and specs[0].operator == "==":
                return f"{req.name}=={specs[0].version}"
    return None


# --------------------------------------------------------------------------- fixers


def _driver_commands(f: Facts, version: str | None) -> list[str]:
    if f.os == "windows" or f.snap.platform.wsl:
        return [
            f"start https://www.nvidia.com/Download/index.aspx  "
            f"# install the Windows driver{f' ≥ {version}' if version else ''}, then reboot"
        ]
    distro = (f.snap.platform.distro or "").lower()
    if "ubuntu" in distro or not distro:
        return ["sudo ubuntu-drivers install", "sudo reboot"]
    if "fedora" in distro or "rhel" in distro or "rocky" in distro:
        return ["sudo dnf install -y akmod-nvidia", "sudo reboot"]
    return ["sudo apt-get install -y nvidia-driver", "sudo reboot"]


def fix_platform(f: Facts, finding: Finding) -> list[Alternative]:
    cause = finding.id
    if cause == "windows-native-unsupported":
        newest = newest_release(f, fit=False)
        pin = f"=={newest.version}" if newest else ""
        return [
            (
                manual(
                    [
                        "wsl --install -d Ubuntu",
                        f"wsl -- python3 -m venv ~/tf && wsl -- ~/tf/bin/pip install "
                        f"'tensorflow[and-cuda]{pin}'",
                    ],
                    "Run TensorFlow inside WSL2 (native Windows has no GPU build since 2.11)",
                    cause,
                ),
            )
        ]
    if cause == "macos-needs-metal":
        py = parse_version(f.python)
        if py is not None and not (Version("3.9") <= py < Version("3.13")):
            return []
        return [
            (
                pip_install(
                    [METAL], "Install Apple's Metal plugin for TensorFlow", Safety.SAFE, cause
                ),
            )
        ]
    if cause == "platform-no-cuda-wheels":
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
                    [f"docker run --gpus all -it --rm {NGC_IMAGE}"],
                    "Use NVIDIA's NGC TensorFlow container (PyPI has no aarch64 CUDA wheels)",
                    cause,
                ),
            )
        ]
    if cause == "python-version-unsupported":
        newest = next(
            (r for r in reversed(f.rules.releases) if r.and_cuda and r.and_cuda_resolves), None
        )
        if newest is None:
            return []
        py = newest.python[-1]
        return [
            (
                manual(
                    [
                        f"python{py} -m venv .venv-tf",
                        ".venv-tf/bin/python -m pip install "
                        f"'tensorflow[and-cuda]=={newest.version}'",
                    ],
                    f"Make an environment with Python {py} (TensorFlow {newest.version} supports "
                    f"{', '.join(newest.python)})",
                    cause,
                ),
            )
        ]
    if cause == "wrong-interpreter":
        exe = f.snap.python.executable or "python"
        cmds = []
        if "PYTHONPATH" in f.snap.env:
            cmds.append("unset PYTHONPATH")
        if f.snap.extra.get("wrong_interpreter"):
            # the shell's PATH puts another python ahead of the active venv's
            bin_dir = exe.rsplit("/", 1)[0] if "/" in exe else "<venv>/bin"
            cmds += [f'export PATH="{bin_dir}:$PATH"; hash -r', "command -v python python3"]
        else:
            cmds.append(f"{exe} -m ipykernel install --user --name tffix-target")
        return [(manual(cmds, "Run TensorFlow with the target environment's interpreter", cause),)]
    return []


def fix_outside(f: Facts, finding: Finding) -> list[Alternative]:
    cause = finding.id
    if cause == "container-no-gpu":
        if f.container == "kubernetes" or f.scheduler == "kubernetes":
            cmds = [
                'kubectl patch deployment <name> --type=json -p \'[{"op":"add","path":'
                '"/spec/template/spec/containers/0/resources/limits/nvidia.com~1gpu",'
                '"value":1}]\''
            ]
        elif f.container == "podman":
            cmds = ["podman run --device nvidia.com/gpu=all …  # the same command, with the GPU"]
        else:
            cmds = [
                "docker run --rm --gpus all ubuntu nvidia-smi  # checks the host's NVIDIA runtime",
                "docker run --gpus all …  # restart this container with the GPU",
            ]
        return [(manual(cmds, "Restart the container with GPU access", cause),)]
    if cause == "container-toolkit-outdated":
        return [
            (
                manual(
                    [
                        "sudo apt-get install -y --only-upgrade nvidia-container-toolkit",
                        "sudo nvidia-ctk runtime configure --runtime=docker",
                        "sudo systemctl restart docker",
                    ],
                    "Upgrade the NVIDIA container toolkit on the host",
                    cause,
                ),
            )
        ]
    if cause == "no-nvidia-gpu":
        return [
            (
                manual(
                    ["lspci | grep -i nvidia"],
                    "Run on a machine with an NVIDIA GPU (this one shows none)",
                    cause,
                ),
            )
        ]
    if cause == "driver-not-loaded":
        libcuda = f.snap.libraries.get("libcuda.so.1")
        installed = libcuda is not None and isinstance(libcuda.path, str)
        if installed and not f.snap.platform.wsl and f.os != "windows":
            # The driver's libraries are here, only the kernel module is not running (after a
            # kernel update, or refused by Secure Boot): load it before reinstalling anything.
            cmds = [
                "sudo modprobe nvidia && nvidia-smi",
                "mokutil --sb-state  # if modprobe says 'Key was rejected by service'",
                *_driver_commands(f, None),
            ]
            return [
                (manual(cmds, "Load the NVIDIA kernel module (or reinstall the driver)", cause),)
            ]
        return [(manual(_driver_commands(f, None), "Install or load the NVIDIA driver", cause),)]
    if cause == "driver-library-mismatch":
        if f.container:
            cmds = ["nvidia-smi  # on the host: use an image whose CUDA this driver supports"]
        else:
            cmds = ["sudo reboot"]
        return [(manual(cmds, "Load the kernel module that matches the driver libraries", cause),)]
    if cause == "driver-nvml-missing":
        drv = f.driver
        major = drv.version.split(".")[0] if drv is not None and drv.version else "<driver major>"
        return [
            (
                manual(
                    [
                        f"sudo apt-get install --reinstall libnvidia-compute-{major}  "
                        "# Debian/Ubuntu: the driver's user-space libraries, NVML among them",
                        "ldconfig -p | grep libnvidia-ml.so.1  # then check the loader finds it",
                    ],
                    "Install the driver's NVML library (libnvidia-ml.so.1)",
                    cause,
                ),
            )
        ]
    if cause == "nvidia-uvm-unavailable":
        return [
            (
                manual(
                    ["sudo rmmod nvidia_uvm", "sudo modprobe nvidia_uvm"],
                    "Reload the nvidia_uvm kernel module",
                    cause,
                ),
            )
        ]
    if cause == "wsl-libcuda-not-found":
        return [
            (
                env_step(
                    StepKind.ENV_PATH_PREPEND,
                    "LD_LIBRARY_PATH",
                    cause,
                    entry=_wsl_lib_dir(f),
                ),
            )
        ]
    if cause == "driver-too-old":
        rec = None
        if f.tf_cuda:
            floor = driver_floor(f, f.tf_cuda)
            rec = floor[1] if floor else None
        alts: list[Alternative] = [
            (
                manual(
                    _driver_commands(f, rec),
                    f"Install NVIDIA driver ≥ {rec}" if rec else "Install a newer NVIDIA driver",
                    cause,
                ),
            )
        ]
        older = newest_release(f)
        if older is not None and f.tf_version and older.version != f.tf_version:
            alts.append(
                (
                    pip_install(
                        [and_cuda(older)],
                        f"Or switch to TensorFlow {older.version}, whose CUDA {older.cuda} this "
                        "driver runs",
                        Safety.UNSAFE,
                        cause,
                    ),
                )
            )
        return alts
    if cause == "gpu-arch-unsupported":
        below = "below" in finding.title
        alts = []
        if below:
            release = newest_release(f)
            if release is not None:
                alts.append(
                    (
                        pip_install(
                            [and_cuda(release)],
                            f"Switch to TensorFlow {release.version}, the newest release with "
                            "machine code for this GPU",
                            Safety.UNSAFE,
                            cause,
                        ),
                    )
                )
        alts.append(
            (
                manual(
                    [f"docker run --gpus all -it --rm {NGC_IMAGE}"],
                    "Use NVIDIA's NGC TensorFlow container, built for this GPU's architecture",
                    cause,
                ),
            )
        )
        return alts
    return []


def fix_distribution(f: Facts, finding: Finding) -> list[Alternative]:
    cause = finding.id
    if cause == "tf-not-installed":
        if f.os in {"windows"}:
            return []
        if f.os == "macos":
            return []
        return [_tf_install(f, cause, "TensorFlow is not installed")]
    if cause == "tf-gpu-stub":
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
    if cause == "tf-multiple-distributions":
        dists = list(f.tf_dists)
        version = f.packages.get("tensorflow") or (f.packages[dists[0]] if dists else None)
        install = _tf_install(f, cause, "one distribution owns tensorflow/ again", version)
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
    if cause == "tf-cpu-only-package":
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
        return [(*steps, *_tf_install(f, cause, "the GPU build", version))]
    if cause == "tf-cpu-only-build":
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
                            f"python -m pip install '{and_cuda(release)}'",
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
    if cause == "tf-import-error":
        if finding.fix == FixSide.OUTSIDE:
            return []
        if "NumPy" in finding.title:
            py = parse_version(f.python)
            if py is None or py < Version("3.13"):
                return [
                    (
                        pip_install(
                            [NUMPY_1],
                            "Install NumPy 1.x, which this TensorFlow was built for",
                            Safety.SAFE,
                            cause,
                        ),
                    )
                ]
        return []
    if cause == "and-cuda-unresolvable":
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
                release = f.rules.release(bad.fixed_in)
                if release is not None and installable(f, release):
                    same = version is not None and bad.fixed_in.startswith(f"{version}.post")
                    return [
                        (
                            pip_install(
                                [and_cuda(release)],
                                f"Install TensorFlow {release.version} instead ({bad.fixed_in} has "
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
    return []


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
        sub = NVIDIA_LIB_DIRS.get(base)
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
    subs = {SONAME_LIB_DIRS.get(s.split(".so")[0]) for s in failed} - {None}
    picked = [d for d in dirs if ["", *d.rstrip("/").split("/")][-2] in subs]
    return picked or dirs


def _wsl_lib_dir(f: Facts) -> str:
    """Where WSL2 mounts the Windows driver's libcuda: as the probe found it, else the default."""
    found = f.snap.extra.get("wsl_lib_dir")
    return found if isinstance(found, str) and found else "/usr/lib/wsl/lib"


def fix_libraries(f: Facts, finding: Finding) -> list[Alternative]:
    cause = finding.id
    if cause == "cuda-visible-devices-masked":
        sched = f.scheduler
        if finding.fix == FixSide.OUTSIDE and sched:
            cmds = {
                "slurm": ["srun --gres=gpu:1 --pty bash  # or #SBATCH --gres=gpu:1"],
                "kubernetes": ['kubectl describe pod "$HOSTNAME" | grep nvidia.com/gpu'],
                "ray": ["ray.remote(num_gpus=1)  # on the task or actor that runs TensorFlow"],
            }.get(sched, [])
            if not cmds:
                return []
            return [(manual(cmds, f"Ask {sched} for a GPU for this job", cause),)]
        return [(env_step(StepKind.ENV_UNSET, "CUDA_VISIBLE_DEVICES", cause),)]
    if cause in {"cuda-libs-missing", "cuda-version-mismatch"}:
        if f.tf_version is None or (not f.linux and f.os is not None):
            return []
        steps: list[PlanStep] = []
        if cause == "cuda-version-mismatch" and f.tf_cuda_major is not None:
            wrong = [n for n in f.nvidia_installed() if not n.endswith(f"-cu{f.tf_cuda_major}")]
            if wrong and not _other_framework_needs(f, wrong):
                steps.append(
                    pip_uninstall(
                        wrong,
                        f"Remove the CUDA {wrong[0].rsplit('-cu', 1)[1]} wheels TensorFlow "
                        "cannot use",
                        Safety.SAFE,
                        cause,
                    )
                )
        install = _tf_install(f, cause, f"CUDA {f.tf_cuda}" if f.tf_cuda else "its CUDA libraries")
        if not install:
            return []
        return [(*steps, *install)]
    if cause == "cuda-libs-not-found":
        alts: list[Alternative] = []
        dirs = _lib_dirs(f)
        dirs = _unfound_lib_dirs(f, dirs) if dirs else dirs
        known = [b for b in f.rules.known_bad if b.cause == cause and f.tf_version in b.releases]
        if dirs:
            alts.append(
                tuple(
                    env_step(StepKind.ENV_PATH_PREPEND, "LD_LIBRARY_PATH", cause, entry=d)
                    for d in dirs
                )
            )
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
            alts.append(_tf_install(f, cause, "wheels on TensorFlow's own search path"))
        return [a for a in alts if a]
    if cause == "cudnn-version-mismatch":
        pin = _exact_pin(f.release, "nvidia-cudnn")
        name, _, version = (pin or "").partition("==")
        if pin and f.packages.get(name) == version:
            # the right wheel is installed: another copy is loaded ahead of it, so removing
            # that copy from the search path is what fixes this finding too
            entries = _shadowing_entries(f)
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
            return [_tf_install(f, cause, "a cuDNN it accepts")]
        return []
    if cause == "ld-library-path-shadowing":
        entries = _shadowing_entries(f)
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
                    [
                        "export LD_LIBRARY_PATH=\"$(python -c 'import os, nvidia.cudnn; "
                        "print(os.path.dirname(nvidia.cudnn.__file__))')/lib:$LD_LIBRARY_PATH\"",
                    ],
                    "Put the pip cuDNN ahead of the other one on LD_LIBRARY_PATH",
                    cause,
                ),
            )
        ]
    if cause == "framework-pin-conflict":
        if f.release is None:
            return []
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
    if cause == "xla-cuda-tools-missing":
        steps = []
        pin = _exact_pin(f.release, "nvidia-cuda-nvcc")
        if "XLA_FLAGS" in f.snap.env and "xla_gpu_cuda_data_dir" in f.snap.env["XLA_FLAGS"]:
            steps.append(env_step(StepKind.ENV_UNSET, "XLA_FLAGS", cause))
        if pin:
            steps.append(
                pip_install([pin], "Install ptxas and libdevice for XLA", Safety.SAFE, cause)
            )
            return [tuple(steps)]
        return [
            (
                manual(
                    [
                        "sudo apt-get install -y nvidia-cuda-toolkit",
                        "export XLA_FLAGS=--xla_gpu_cuda_data_dir=/usr/lib/cuda",
                    ],
                    "Install the CUDA toolkit's nvcc and point XLA at it",
                    cause,
                ),
            )
        ]
    if cause == "windows-dll-search-path":
        for entry in f.env_list("PATH"):
            if re.search(r"CUDA", entry, re.I) and re.search(r"[\\/]bin[\\/]?$", entry):
                root = re.sub(r"[\\/]bin[\\/]?$", "", entry)
                return [(env_step(StepKind.ENV_SET, "CUDA_PATH", cause, value=root),)]
        return []
    return []


def _other_framework_needs(f: Facts, names: Sequence[str]) -> bool:
    for fw, versions in f.rules.frameworks.items():
        pins = versions.get(f.packages.get(fw, ""), {})
        if any(n in pins for n in names):
            return True
    return False


def _shadowing_entries(f: Facts) -> list[str]:
    """The LD_LIBRARY_PATH entries that supply a wrong library (exactly as written there)."""
    entries = f.env_list("LD_LIBRARY_PATH")
    out: list[str] = []
    for soname, lib in f.snap.libraries.items():
        if lib.via != "LD_LIBRARY_PATH" or not isinstance(lib.path, str):
            continue
        if not wrong_library(f, soname, lib):
            continue
        folder = lib.path.rsplit("/", 1)[0].rstrip("/")
        match = next((e for e in entries if e.rstrip("/") == folder), None)
        if match is not None and match not in out:
            out.append(match)
    if f.log.has("nvjitlink-symbol"):
        out += [e for e in entries if SYSTEM_CUDA.search(e) and e not in out]
    return out


FIXERS: dict[str, Callable[[Facts, Finding], list[Alternative]]] = {
    **dict.fromkeys(
        [
            "windows-native-unsupported",
            "macos-needs-metal",
            "platform-no-cuda-wheels",
            "python-version-unsupported",
            "wrong-interpreter",
        ],
        fix_platform,
    ),
    **dict.fromkeys(
        [
            "container-no-gpu",
            "container-toolkit-outdated",
            "no-nvidia-gpu",
            "driver-not-loaded",
            "driver-library-mismatch",
            "driver-nvml-missing",
            "nvidia-uvm-unavailable",
            "wsl-libcuda-not-found",
            "driver-too-old",
            "gpu-arch-unsupported",
        ],
        fix_outside,
    ),
    **dict.fromkeys(
        [
            "tf-not-installed",
            "tf-gpu-stub",
            "tf-multiple-distributions",
            "tf-cpu-only-package",
            "tf-cpu-only-build",
            "tf-import-error",
            "and-cuda-unresolvable",
        ],
        fix_distribution,
    ),
    **dict.fromkeys(
        [
            "cuda-visible-devices-masked",
            "cuda-libs-missing",
            "cuda-version-mismatch",
            "cuda-libs-not-found",
            "cudnn-version-mismatch",
            "ld-library-path-shadowing",
            "framework-pin-conflict",
            "xla-cuda-tools-missing",
            "windows-dll-search-path",
        ],
        fix_libraries,
    ),
}
"""cause id -> the function proposing its alternative fixes (the "fixed by" edges)."""


# --------------------------------------------------------------------------- ranking


def _step_size(step: PlanStep) -> int:
    return max(1, len(step.requirements) + len(step.packages) + len(step.commands))


def alternative_rank(steps: Alternative, finding: Finding) -> tuple[int, int, int, str]:
    """The key that picks one fix per finding (lower is better).

    Safest first: safe, then unsafe, then manual for a finding tffix can fix in the venv; for a
    finding only an outside action fixes, the manual fix is the real one and a venv workaround
    (an older TensorFlow) comes after it. Then the fewest steps, the smallest change, and the
    text, so that the choice is total.
    """
    worst = max((SAFETY_ORDER[s.safety] for s in steps), default=0)
    if finding.fix == FixSide.OUTSIDE:
        worst = {2: 0, 0: 1, 1: 2}[worst]
    size = sum(_step_size(s) for s in steps)
    return (worst, len(steps), size, repr([s.summary for s in steps]))


def step_rank(step: PlanStep, order: dict[str, int]) -> tuple[int, int, str]:
    """The key that orders the plan (lower runs first).

    By phase: manual steps (shown first: they unblock the rest), then uninstalls, installs and
    environment edits, so that applying in order never installs before removing; within a
    phase, by the rank of the first finding the step resolves; then the summary.
    """
    first = min((order.get(r, len(order)) for r in step.resolves), default=len(order))
    return (KIND_PHASE[step.kind], first, step.summary)


@dataclass(frozen=True, slots=True)
class _Key:
    kind: StepKind
    requirements: tuple[str, ...]
    packages: tuple[str, ...]
    variable: str | None
    value: str | None
    entry: str | None
    commands: tuple[str, ...]


def _key(step: PlanStep) -> _Key:
    return _Key(
        step.kind,
        step.requirements,
        step.packages,
        step.variable,
        step.value,
        step.entry,
        step.commands,
    )


def _add_resolves(step: PlanStep, more: Sequence[str]) -> PlanStep:
    return replace(step, resolves=tuple(dict.fromkeys(step.resolves + tuple(more))))


def _merge(steps: Sequence[PlanStep], facts: Facts) -> list[PlanStep]:
    """Identical steps become one; a later install of a package already installed by an
    earlier step is folded into it (when the earlier one pins the same version, or installs a
    TensorFlow release whose [and-cuda] pins include it)."""
    out: list[PlanStep] = []
    index: dict[_Key, int] = {}
    for step in steps:
        key = _key(step)
        if key in index:
            out[index[key]] = _add_resolves(out[index[key]], step.resolves)
            continue
        if step.kind == StepKind.PIP_INSTALL:
            target = _covering_install(out, step, facts)
            if target is not None:
                out[target] = _add_resolves(out[target], step.resolves)
                continue
        if step.kind == StepKind.PIP_UNINSTALL:
            # uninstalling what an earlier uninstall already removes is one step
            for i, prior in enumerate(out):
                if prior.kind == StepKind.PIP_UNINSTALL and set(step.packages) <= set(
                    prior.packages
                ):
                    out[i] = _add_resolves(prior, step.resolves)
                    break
            else:
                index[key] = len(out)
                out.append(step)
            continue
        index[key] = len(out)
        out.append(step)
    return out


def _covering_install(out: Sequence[PlanStep], step: PlanStep, facts: Facts) -> int | None:
    names = {Requirement(r).name for r in step.requirements}
    for i, prior in enumerate(out):
        if prior.kind != StepKind.PIP_INSTALL:
            continue
        prior_reqs = [Requirement(r) for r in prior.requirements]
        prior_names = {r.name for r in prior_reqs}
        if names & prior_names:
            return i  # the earlier (higher-ranked) install of the same package wins
        for req in prior_reqs:
            if req.name != "tensorflow":
                continue
            version = next((s.version for s in req.specifier if s.operator == "=="), None)
            release = facts.rules.release(version)
            if release is None:
                continue
            pins = release.pins()
            if all(
                Requirement(r).name in pins
                and all(
                    pins[Requirement(r).name].contains(s.version, prereleases=True)
                    for s in Requirement(r).specifier
                )
                for r in step.requirements
            ):
                return i
    return None


def make_plan(graph: Graph) -> tuple[PlanStep, ...]:
    """The ranked plan for the error and warning findings of *graph*.

    A warning is a GPU that works but is degraded or fragile (XLA without ptxas/libdevice):
    its fix is offered too, ranked after every error's.
    """
    facts = graph.facts
    order = {f.id: i for i, f in enumerate(graph.findings)}
    chosen: list[PlanStep] = []
    for finding in graph.findings:
        if finding.severity == Severity.INFO:
            continue
        fixer = FIXERS.get(finding.id)
        if fixer is None:
            continue
        alternatives = [a for a in fixer(facts, finding) if a]
        if not alternatives:
            continue
        best = min(alternatives, key=lambda a: alternative_rank(a, finding))
        chosen.extend(best)
    ordered = sorted(_merge(chosen, facts), key=lambda s: step_rank(s, order))
    return stepdeps.with_needs(ordered)
