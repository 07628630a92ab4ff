"""The loader probe's version readers against the real NVIDIA wheels (cuDNN, cuBLAS, CUDA
runtime, nvJitLink) from the package index: each version is read through the library's own
entry point in the proving child, not guessed from a file name.

Opt-in (``pytest -m index``): it downloads about 1 GB. Set ``TFFIX_REAL_CUDA_VENV`` to a venv
that already has the wheels below to skip the download.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from tffix.probes.loader import probe_libraries
from tffix.probes.packages import nvidia_library_owners

pytestmark = [pytest.mark.index, pytest.mark.slow]

WHEELS = {
    "nvidia-cuda-runtime-cu12": "12.5.82",
    "nvidia-cudnn-cu12": "9.3.0.75",
    "nvidia-cublas-cu12": "12.5.3.2",
    "nvidia-nvjitlink-cu12": "12.5.82",
}


@pytest.fixture(scope="module")
def cuda_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("TFFIX_REAL_CUDA_VENV")
    if given:
        return Path(given)
    env_dir = tmp_path_factory.mktemp("realcuda") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    reqs = [f"{name}=={version}" for name, version in WHEELS.items()]
    subprocess.run([str(env_dir / "bin/python"), "-m", "pip", "install", "-q", *reqs], check=True)
    return env_dir


@pytest.mark.skipif(sys.platform != "linux", reason="the NVIDIA wheels are Linux's")
def test_versions_come_from_the_real_entry_points(cuda_venv: Path) -> None:
    site = next(cuda_venv.glob("lib/python*/site-packages"))
    dirs = [site / "nvidia" / d / "lib" for d in ("cuda_runtime", "cudnn", "cublas", "nvjitlink")]
    report = probe_libraries(
        python=cuda_venv / "bin" / "python",
        machine=platform.machine(),
        env={"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": ":".join(map(str, dirs))},
        tf_dir=None,
        tf_version="2.21.0",
        library_owners=nvidia_library_owners([str(site)]),
    )
    libs = report.libraries
    assert libs["libcudnn.so.9"].version == "9.3.0"
    assert libs["libcudart.so.12"].version == "12.5"
    assert libs["libcublas.so.12"].version == "12.5.3"
    assert libs["libcublasLt.so.12"].version == "12.5.3"
    assert libs["libnvJitLink.so.12"].version == "12.5"
    sources = report.extra["version_sources"]
    assert isinstance(sources, dict)
    for soname in ("libcudnn.so.9", "libcudart.so.12", "libcublas.so.12", "libnvJitLink.so.12"):
        assert sources[soname] == "entry point"
        assert libs[soname].via == "LD_LIBRARY_PATH"
        assert libs[soname].error is None
    assert report.unknown is None
