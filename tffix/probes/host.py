"""The platform (host) probe: OS, architecture, WSL2, container, libc, distribution, Jetson,
the user's shell (through psutil), scheduler and the CPU features TensorFlow cares about.

Every file it reads is a parameter (``root``) so tests can point it at a tmp folder laid out
like ``/``. Missing files mean "not this kind of machine", never an error.
"""

from __future__ import annotations

import os
import platform as _platform
from collections.abc import Mapping
from pathlib import Path

from tffix.model import Platform
from tffix.probes.env import scheduler

SHELLS = frozenset(
    {"bash", "zsh", "fish", "sh", "dash", "ksh", "csh", "tcsh", "pwsh", "powershell", "nu", "xonsh"}
)
CPU_FLAGS = ("avx", "avx2", "avx512f", "fma", "sse4_1", "sse4_2")
_OS_NAMES = {"linux": "linux", "win32": "windows", "cygwin": "windows", "darwin": "macos"}


def _read(path: Path, limit: int = 1 << 20) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return None


def os_name(sys_platform: str) -> str:
    """``sys.platform`` -> ``linux``/``windows``/``macos``."""
    return _OS_NAMES.get(sys_platform, sys_platform)


def detect_container(root: Path, environ: Mapping[str, str]) -> str | None:
    """``docker``, ``podman``, ``kubernetes``, ``lxc``, … or None."""
    if "KUBERNETES_SERVICE_HOST" in environ:
        return "kubernetes"
    if (root / ".dockerenv").exists():
        return "docker"
    if (root / "run/.containerenv").exists():
        return "podman"
    marker = environ.get("container")  # systemd's convention (podman, lxc, systemd-nspawn)
    if marker:
        return marker
    cgroup = _read(root / "proc/1/cgroup") or ""
    for needle, name in (("kubepods", "kubernetes"), ("docker", "docker"), ("lxc", "lxc")):
        if needle in cgroup:
            return name
    return None


def detect_wsl(root: Path, environ: Mapping[str, str]) -> bool:
    """True under WSL (the kernel release names Microsoft)."""
    release = _read(root / "proc/sys/kernel/osrelease") or ""
    return "microsoft" in release.lower() or "WSL_DISTRO_NAME" in environ


def distro(root: Path) -> str | None:
    """``PRETTY_NAME`` from os-release."""
    for rel in ("etc/os-release", "usr/lib/os-release"):
        text = _read(root / rel)
        if text is None:
            continue
        for line in text.splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip("\"'")
    return None


def is_jetson(root: Path) -> bool:
    """True on an NVIDIA Jetson (L4T) board."""
    if (root / "etc/nv_tegra_release").exists():
        return True
    model = _read(root / "proc/device-tree/model") or ""
    return "jetson" in model.lower()


def cpu_flags(root: Path) -> tuple[str, ...] | None:
    """The CPU features TensorFlow's wheels assume, as ``/proc/cpuinfo`` lists them."""
    text = _read(root / "proc/cpuinfo", limit=1 << 16)
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            present = set(line.split(":", 1)[1].split())
            return tuple(f for f in CPU_FLAGS if f in present)
    return None


def libc() -> str | None:
    """``glibc 2.36`` (tffix's own process shares the machine's libc with the target)."""
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError, AttributeError):
        value = None
    if value:
        name, _, version = value.partition(" ")
        return f"{'glibc' if name == 'glibc' else name} {version}".strip()
    lib, version = _platform.libc_ver()
    return f"{lib} {version}".strip() or None


def user_shell(environ: Mapping[str, str]) -> str | None:
    """The interactive shell: the nearest shell among tffix's ancestors, else ``$SHELL``."""
    try:
        import psutil

        proc = psutil.Process().parent()
        for _ in range(8):
            if proc is None:
                break
            name = proc.name().lower().removesuffix(".exe").lstrip("-")
            if name in SHELLS:
                return str(name)
            proc = proc.parent()
    except Exception:  # psutil.AccessDenied/NoSuchProcess, or no psutil
        pass
    shell = environ.get("SHELL")
    return os.path.basename(shell) if shell else None


def probe_platform(
    *, sys_platform: str, machine: str, environ: Mapping[str, str], root: Path = Path("/")
) -> Platform:
    """Everything about the platform; never raises."""
    linux = sys_platform.startswith("linux")
    try:
        kernel = os.uname().release
    except AttributeError:
        kernel = None
    return Platform(
        os=os_name(sys_platform),
        arch=machine or None,
        wsl=detect_wsl(root, environ) if linux else False,
        container=detect_container(root, environ) if linux else None,
        libc=libc() if linux else None,
        distro=distro(root) if linux else None,
        kernel=kernel,
        jetson=is_jetson(root) if linux else False,
        shell=user_shell(environ),
        scheduler=scheduler(environ),
        cpu_flags=cpu_flags(root) if linux else None,
    )


def process_age() -> float:
    """Seconds since this process started (0.0 when the process table cannot tell): the
    interpreter's start-up and tffix's imports, for the outcome's ``timings``."""
    import time

    import psutil

    try:
        created = float(psutil.Process().create_time())
    except (psutil.Error, OSError):
        return 0.0
    return max(0.0, time.time() - created)
