"""The platform probe against a tmp folder laid out like ``/``."""

from __future__ import annotations

from pathlib import Path

from tffix.probes.host import probe_platform


def _root(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_wsl_docker_ubuntu(tmp_path: Path) -> None:
    root = _root(
        tmp_path,
        {
            ".dockerenv": "",
            "proc/sys/kernel/osrelease": "5.15.153.1-microsoft-standard-WSL2\n",
            "etc/os-release": 'NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n',
            "proc/cpuinfo": "processor : 0\nflags : fpu sse4_1 sse4_2 avx avx2 fma\n",
        },
    )
    info = probe_platform(sys_platform="linux", machine="x86_64", environ={}, root=root)
    assert info.os == "linux"
    assert info.wsl is True
    assert info.container == "docker"
    assert info.distro == "Ubuntu 22.04.4 LTS"
    assert info.cpu_flags == ("avx", "avx2", "fma", "sse4_1", "sse4_2")
    assert info.jetson is False
    assert info.scheduler is None


def test_bare_metal_jetson_under_slurm(tmp_path: Path) -> None:
    root = _root(tmp_path, {"etc/nv_tegra_release": "# R35 (release), REVISION: 4.1\n"})
    info = probe_platform(
        sys_platform="linux", machine="aarch64", environ={"SLURM_JOB_ID": "7"}, root=root
    )
    assert info.jetson is True
    assert info.container is None
    assert info.wsl is False
    assert info.scheduler == "slurm"
    assert info.cpu_flags is None


def test_kubernetes_pod(tmp_path: Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    info = probe_platform(sys_platform="linux", machine="x86_64", environ=env, root=tmp_path)
    assert info.container == "kubernetes"
    assert info.scheduler == "kubernetes"


def test_windows_and_macos_names(tmp_path: Path) -> None:
    assert probe_platform(sys_platform="win32", machine="AMD64", environ={}, root=tmp_path).os == (
        "windows"
    )
    assert probe_platform(sys_platform="darwin", machine="arm64", environ={}, root=tmp_path).os == (
        "macos"
    )
