"""Driver causes: no NVIDIA GPU, no driver loaded, a driver/library mismatch, NVML or
nvidia-uvm missing, WSL2 libcuda not found, and a driver too old for TensorFlow's CUDA.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from packaging.version import Version

from tffix import shellquote as sq
from tffix.causes.base import Alternative, Cause, Detection, Family, Section, detection
from tffix.causes.steps import (
    and_cuda,
    command,
    env_step,
    manual,
    newest_release,
    pip_install,
    shell,
)
from tffix.facts import Facts, parse_version
from tffix.model import Safety, Severity, StepKind


def check_driver(f: Facts) -> Iterable[Detection]:
    """no-nvidia-gpu, driver-not-loaded, driver-library-mismatch, nvidia-uvm, wsl-libcuda."""
    cvd_set = "CUDA_VISIBLE_DEVICES" in f.snap.env
    drv = f.driver
    # The PCI bus lists GPUs whatever the driver's state, except under WSL2 (paravirtualised).
    pci = None if f.snap.platform.wsl else f.snap.extra.get("pci_nvidia_devices")
    pci_none = pci == 0 or pci == []
    no_device = f.log.first("no-device")
    driver_unloaded = "DRIVER_NOT_LOADED" in str(f.snap.extra.get("driver_probe", ""))
    # An empty GPU list is a fact when a driver answered or when the report says so (a pasted
    # report's `gpus: []`); with the driver absent, NVML could not have listed any.
    listed_none = f.snap.gpus == () and not f.driver_absent
    if listed_none or (pci_none and f.snap.gpus in ((), None)):
        ev = ["gpus"] if f.snap.gpus == () else []
        ev += ["driver.version"] if drv is not None else []
        ev += ["extra.pci_nvidia_devices"] if pci_none else []
        yield detection(f, "no-nvidia-gpu", "no NVIDIA GPU is present on this machine", ev)
        return
    only_others = _only_other_vendors(f)
    if only_others is not None:
        yield only_others
        return
    if (
        no_device
        and not cvd_set
        and f.container is None
        and not f.snap.gpus
        and not pci
        and not driver_unloaded
        and not f.log.has("smi-no-driver")
        and not f.gpu_node_present
    ):
        yield detection(
            f,
            "no-nvidia-gpu",
            "the driver reports no CUDA-capable device",
            [no_device.evidence],
        )
        if f.snap.gpus is None and not f.packages_complete:
            # the report shows neither the GPUs nor the variable: the same line is what a
            # GPU machine prints when CUDA_VISIBLE_DEVICES (a script's os.environ, the
            # shell, a scheduler) names no GPU that exists
            yield detection(
                f,
                "cuda-visible-devices-masked",
                "Or the machine has a GPU and CUDA_VISIBLE_DEVICES hides it: the report shows "
                "neither the GPUs nor that variable",
                [no_device.evidence],
                detail="CUDA_ERROR_NO_DEVICE is also what the driver answers when "
                "CUDA_VISIBLE_DEVICES is empty, -1, or names only GPUs that do not exist (\"1\" "
                "on a one-GPU machine). Look with `nvidia-smi -L` and `echo "
                "$CUDA_VISIBLE_DEVICES`, and in the script for os.environ settings.",
                severity=Severity.INFO,
            )
    seen = _listed_but_not_initialised(f)
    if seen is not None:
        yield seen
    mismatch = _driver_library_mismatch(f)
    if mismatch is not None:
        yield mismatch
        return
    # driver-not-loaded / wsl-libcuda-not-found
    wsl = bool(f.snap.platform.wsl)
    nl: list[str] = []
    if f.driver_absent:
        nl.append("driver")
    if drv is not None and drv.error:
        nl.append("driver.error")
    nl += [h.evidence for h in f.log.all("smi-no-driver", "toolkit-no-driver")]
    nl += f.libcuda_failed
    if nl and f.gpu_visible is not True and f.snap.gpus != ():
        if wsl:
            yield detection(
                f,
                "wsl-libcuda-not-found",
                "WSL2: the loader does not see the driver's libcuda in /usr/lib/wsl/lib",
                ["platform.wsl", *nl],
            )
        elif f.container is None or f.snap.gpus or f.log.has("toolkit-no-driver"):
            yield detection(
                f,
                "driver-not-loaded",
                "no working NVIDIA kernel driver answers"
                + (f" ({drv.error})" if drv is not None and drv.error else ""),
                nl,
            )
    uvm: list[str] = [h.evidence for h in f.log.all("uvm")]
    nodes = f.device_nodes or ()
    if any(re.fullmatch(r"nvidia\d+", n) for n in nodes) and "nvidia-uvm" not in nodes:
        uvm.append("extra.device_nodes")
    if uvm and f.gpu_visible is not True:
        yield detection(
            f,
            "nvidia-uvm-unavailable",
            "the nvidia_uvm kernel module is missing or broken (CUDA cannot initialise)",
            uvm,
            detail="Common after suspend/resume: reload the module (or reboot). Inside LXC, the "
            "host must load nvidia_uvm and pass /dev/nvidia-uvm through.",
        )


def _only_other_vendors(f: Facts) -> Detection | None:
    """no-nvidia-gpu: every GPU the report lists is another vendor's (an Intel iGPU, a Radeon),
    and nothing shows an NVIDIA one (no NVIDIA driver, no GPU TensorFlow created). CUDA builds
    of TensorFlow use NVIDIA GPUs only; macOS has its own cause (the Metal plug-in), and the
    ROCm and DirectML builds use other vendors' GPUs on purpose."""
    others = f.other_vendor_gpus
    gpus = f.snap.gpus or ()
    if not gpus or len(others) != len(gpus) or f.os == "macos":
        return None
    if f.driver is not None or f.gpu_inventory or f.gpu_visible is True:
        return None
    if any(d.startswith(("tensorflow-rocm", "tensorflow-directml")) for d in f.tf_dists):
        return None
    names = ", ".join(name for _ev, name in others)
    return detection(
        f,
        "no-nvidia-gpu",
        f"the only GPU{'s' if len(others) > 1 else ''} the report shows "
        f"({names}) {'are' if len(others) > 1 else 'is'} not NVIDIA's: TensorFlow's GPU "
        "support needs an NVIDIA GPU with CUDA",
        [ev for ev, _name in others] + [h.evidence for h in f.log.all("no-device")],
    )


def _listed_but_not_initialised(f: Facts) -> Detection | None:
    """driver-not-loaded: NVML, nvidia-smi or the report lists an NVIDIA GPU, yet cuInit says
    there is no CUDA device.

    The two layers disagree: the GPU is there (NVML reads it through the kernel module's
    control device), so "no NVIDIA GPU" is ruled out. What remains is a driver that does not
    give CUDA the device, or a CUDA_VISIBLE_DEVICES set where the report does not show it.
    On a container or with the variable shown, their own checks explain it better.
    """
    got = f.cuinit_error
    if got is None or "NO_DEVICE" not in got[0] or not f.gpu_inventory:
        return None
    if "CUDA_VISIBLE_DEVICES" in f.snap.env or f.container is not None or f.gpu_visible:
        return None
    if f.gpu_node_present:
        return None  # the driver's own files are there: masking is what is left
    return detection(
        f,
        "driver-not-loaded",
        "an NVIDIA GPU is listed, but the driver gives CUDA no device "
        "(cuInit: CUDA_ERROR_NO_DEVICE)",
        [*f.gpu_inventory, got[1]],
        detail="The GPU list and the CUDA driver disagree, so the GPU is present and it is the "
        "driver's side that fails: check `nvidia-smi` and `dmesg | grep -i nvrm` for a driver "
        "that is not bound to the device, and that CUDA_VISIBLE_DEVICES is not set in the shell "
        "or by a launcher (it hides every GPU from cuInit with this same error).",
    )


def _driver_library_mismatch(f: Facts) -> Detection | None:
    """driver-library-mismatch: the kernel module and the user-space libraries differ."""
    drv = f.driver
    mism: list[str] = []
    if drv is not None and drv.error and "mismatch" in drv.error.lower():
        mism.append("driver.error")
    if drv is not None and drv.kernel_module and drv.version:
        kv, uv = parse_version(drv.kernel_module), parse_version(drv.version)
        if kv and uv and kv != uv:
            mism += ["driver.kernel_module", "driver.version"]
    mism += [h.evidence for h in f.log.all("kernel-dso-mismatch", "driver-library-mismatch")]
    if mism:
        hit = f.log.first("kernel-dso-mismatch")
        if hit and "kernel" in hit.groups:
            title = (
                f"the kernel module (driver {hit.groups['kernel']}) and the user-space driver "
                f"library ({hit.groups['dso']}) differ"
            )
        else:
            title = "the NVIDIA kernel module and the user-space driver libraries differ"
        return detection(
            f,
            "driver-library-mismatch",
            title,
            mism,
            detail="After a driver upgrade the old kernel module stays loaded until a reboot; "
            "in a container, a CUDA compat libcuda newer than the host driver has the same "
            "effect (use an image whose CUDA matches the host driver).",
        )
    return None


def check_driver_version(f: Facts) -> Iterable[Detection]:
    """driver-too-old."""
    ev: list[str] = [h.evidence for h in f.log.all("driver-insufficient")]
    drv = f.driver
    cuda = f.tf_cuda
    title = "the NVIDIA driver is too old for TensorFlow's CUDA runtime"
    if drv is not None and drv.version and cuda:
        floor = driver_floor(f, cuda)
        dv = parse_version(drv.version)
        if floor and dv is not None and dv < Version(floor[0]):
            ev = ["driver.version", f.tf_version_evidence, *ev]
            title = (
                f"driver {drv.version} is older than {floor[0]}, the minimum for CUDA "
                f"{(parse_version(cuda) or Version('0')).major}.x "
                f"(TensorFlow {f.tf_version} uses CUDA {cuda})"
            )
        elif (
            drv.cuda
            and f.tf_cuda_major
            and (parse_version(drv.cuda) or Version("0")).major < (f.tf_cuda_major)
        ):
            ev = ["driver.cuda", f.tf_version_evidence, *ev]
            title = (
                f"the driver supports CUDA {drv.cuda}, but TensorFlow {f.tf_version} needs "
                f"CUDA {cuda}"
            )
    elif ev and drv is not None and drv.version:
        ev.insert(0, "driver.version")
        title = f"driver {drv.version} is too old for the CUDA runtime TensorFlow loads"
    if ev:
        yield detection(f, "driver-too-old", title, ev)


def check_nvml(f: Facts) -> Iterable[Detection]:
    """driver-nvml-missing: libcuda resolves, libnvidia-ml does not, and TensorFlow needs it.

    The loader probe asks for ``libnvidia-ml.so.1`` only for releases that load it (2.21+),
    so its presence in ``libraries`` is the "TensorFlow needs it" part.
    """
    nvml = f.snap.libraries.get("libnvidia-ml.so.1")
    cuda = f.snap.libraries.get("libcuda.so.1")
    if nvml is None or nvml.path is not None or f.gpu_visible is True:
        return
    if cuda is None or not isinstance(cuda.path, str):
        return
    yield detection(
        f,
        "driver-nvml-missing",
        f"the driver's libcuda is here but its NVML library (libnvidia-ml.so.1) is not: "
        f"TensorFlow {f.tf_version or ''} lists no GPU without it, and says nothing".replace(
            "  ", " "
        ),
        ["libraries.libnvidia-ml.so.1", "libraries.libcuda.so.1"],
        detail="TensorFlow 2.21 and newer ask NVML about each GPU before listing it. A driver "
        "installed without its user-space NVML library (a minimal install, or a container "
        "that mounts libcuda alone) leaves TensorFlow silent and GPU-less.",
    )


def driver_floor(f: Facts, cuda: str) -> tuple[str, str] | None:
    """(minimum, recommended) driver for CUDA *cuda* on this OS."""
    cv = parse_version(cuda)
    if cv is None:
        return None
    col = "windows" if f.os == "windows" else "linux"
    minimum = next((m for m in f.rules.minimums if m.cuda == str(cv.major)), None)
    if minimum is None:
        return None
    toolkit = None
    for t in f.rules.toolkits:
        if parse_version(t.cuda) == Version(f"{cv.major}.{cv.minor}"):
            toolkit = t
    low = getattr(minimum, col) or minimum.linux
    rec = (getattr(toolkit, col) or toolkit.linux) if toolkit else low
    return low, rec


_DRIVER_DOWNLOAD = "https://www.nvidia.com/Download/index.aspx"


def _open_url(f: Facts, url: str) -> str:
    """A command that opens *url* in the Windows browser from the shell the user runs.

    ``start`` is a cmd.exe built-in: bash (WSL, Git Bash) has none, PowerShell calls it
    ``Start-Process``; ``explorer.exe`` opens a URL from any shell that can run a Windows
    program.
    """
    dialect = shell(f)
    if dialect is sq.Dialect.POWERSHELL:
        return sq.join(["Start-Process", url], dialect)
    if f.os == "windows" and not f.snap.platform.wsl and not f.snap.platform.shell:
        return f"start {url}"  # native Windows, shell not recorded: cmd.exe
    return sq.join(["explorer.exe", url], dialect)


def _driver_commands(f: Facts, version: str | None) -> list[str]:
    if f.os == "windows" or f.snap.platform.wsl:
        note = f"install the Windows driver{f' ≥ {version}' if version else ''}, then reboot"
        return [f"{_open_url(f, _DRIVER_DOWNLOAD)}  # {note}"]
    distro = (f.snap.platform.distro or "").lower()
    if "ubuntu" in distro or not distro:
        return ["sudo ubuntu-drivers install", "sudo reboot"]
    if "fedora" in distro or "rhel" in distro or "rocky" in distro:
        return ["sudo dnf install -y akmod-nvidia", "sudo reboot"]
    return ["sudo apt-get install -y nvidia-driver", "sudo reboot"]


def _wsl_lib_dir(f: Facts) -> str:
    """Where WSL2 mounts the Windows driver's libcuda: as the probe found it, else the default."""
    found = f.snap.extra.get("wsl_lib_dir")
    return found if isinstance(found, str) and found else "/usr/lib/wsl/lib"


def fix_no_nvidia_gpu(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    return [
        (
            manual(
                ["lspci | grep -i nvidia"],
                "Run on a machine with an NVIDIA GPU (this one shows none)",
                cause,
            ),
        )
    ]


def fix_driver_not_loaded(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
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
        return [(manual(cmds, "Load the NVIDIA kernel module (or reinstall the driver)", cause),)]
    return [(manual(_driver_commands(f, None), "Install or load the NVIDIA driver", cause),)]


def fix_driver_library_mismatch(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    if f.container:
        cmds = ["nvidia-smi  # on the host: use an image whose CUDA this driver supports"]
    else:
        cmds = ["sudo reboot"]
    return [(manual(cmds, "Load the kernel module that matches the driver libraries", cause),)]


def fix_driver_nvml_missing(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    drv = f.driver
    major = drv.version.split(".")[0] if drv is not None and drv.version else "<driver major>"
    return [
        (
            manual(
                [
                    command(
                        f,
                        ["sudo", "apt-get", "install", "--reinstall", f"libnvidia-compute-{major}"],
                        "Debian/Ubuntu: the driver's user-space libraries, NVML among them",
                    ),
                    "ldconfig -p | grep libnvidia-ml.so.1  # then check the loader finds it",
                ],
                "Install the driver's NVML library (libnvidia-ml.so.1)",
                cause,
            ),
        )
    ]


def fix_nvidia_uvm_unavailable(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
    return [
        (
            manual(
                ["sudo rmmod nvidia_uvm", "sudo modprobe nvidia_uvm"],
                "Reload the nvidia_uvm kernel module",
                cause,
            ),
        )
    ]


def fix_wsl_libcuda_not_found(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
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


def fix_driver_too_old(f: Facts, detected: Detection) -> list[Alternative]:
    cause = detected.id
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


FAMILY = Family(
    "driver",
    (
        check_driver,
        check_driver_version,
        check_nvml,
    ),
    (
        Cause("no-nvidia-gpu", Section.DRIVER, fix_no_nvidia_gpu),
        Cause("driver-not-loaded", Section.DRIVER, fix_driver_not_loaded),
        Cause("driver-library-mismatch", Section.DRIVER, fix_driver_library_mismatch),
        Cause("driver-nvml-missing", Section.DRIVER, fix_driver_nvml_missing),
        Cause("nvidia-uvm-unavailable", Section.DRIVER, fix_nvidia_uvm_unavailable),
        Cause("wsl-libcuda-not-found", Section.DRIVER, fix_wsl_libcuda_not_found),
        Cause("driver-too-old", Section.DRIVER, fix_driver_too_old),
    ),
)
