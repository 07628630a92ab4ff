"""What the simulated package index holds: releases, their real metadata, and the CUDA wheels.

Data only. Versions, ``[and-cuda]`` pins, Requires-Python, ``build_info`` and the RUNPATH of
``libtensorflow_framework.so.2`` are copied from the measured reference
(``shared/reference/matrix.json``, 2026-11-26; the 2.21.0 RUNPATH from the real wheel,
``fixtures/sim/measured/``); copied here so that a fresh clone builds the
harness without it. Dependencies other than NumPy and the CUDA wheels (keras, protobuf,
tensorboard, …) are left out of the fake metadata: they never decide whether TensorFlow sees a GPU,
and leaving them out keeps the index small and installs fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- CUDA wheels

# distribution -> (folder under site-packages/nvidia/, ((soname, kind), ...))
NVIDIA_LAYOUT: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "nvidia-cuda-runtime-cu12": ("cuda_runtime", (("libcudart.so.12", "cudart"),)),
    "nvidia-cublas-cu12": (
        "cublas",
        (("libcublas.so.12", "cublas"), ("libcublasLt.so.12", "cublaslt")),
    ),
    "nvidia-cufft-cu12": ("cufft", (("libcufft.so.11", "cufft"),)),
    "nvidia-cusolver-cu12": ("cusolver", (("libcusolver.so.11", "cusolver"),)),
    "nvidia-cusparse-cu12": ("cusparse", (("libcusparse.so.12", "cusparse"),)),
    "nvidia-cudnn-cu12": ("cudnn", ()),  # libcudnn.so.<major>, by version
    "nvidia-curand-cu12": ("curand", (("libcurand.so.10", "curand"),)),
    "nvidia-nccl-cu12": ("nccl", (("libnccl.so.2", "nccl"),)),
    "nvidia-nvjitlink-cu12": ("nvjitlink", (("libnvJitLink.so.12", "nvjitlink"),)),
    "nvidia-cuda-nvrtc-cu12": ("cuda_nvrtc", (("libnvrtc.so.12", "nvrtc"),)),
    "nvidia-cuda-cupti-cu12": ("cuda_cupti", (("libcupti.so.12", "cupti"),)),
    "nvidia-cuda-nvcc-cu12": ("cuda_nvcc", ()),  # bin/ptxas and nvvm/libdevice, no library
    "nvidia-nvtx-cu12": ("nvtx", (("libnvToolsExt.so.1", "generic"),)),
    "nvidia-nvshmem-cu12": ("nvshmem", (("libnvshmem_host.so.3", "generic"),)),
}

# Real inter-wheel requirements (unpinned, as in the real wheels).
NVIDIA_REQUIRES: dict[str, tuple[str, ...]] = {
    "nvidia-cudnn-cu12": ("nvidia-cublas-cu12",),
    "nvidia-cusolver-cu12": ("nvidia-cublas-cu12", "nvidia-nvjitlink-cu12", "nvidia-cusparse-cu12"),
    "nvidia-cusparse-cu12": ("nvidia-nvjitlink-cu12",),
}

PINS_215 = {
    "nvidia-cublas-cu12": "==12.2.5.6",
    "nvidia-cuda-cupti-cu12": "==12.2.142",
    "nvidia-cuda-nvcc-cu12": "==12.2.140",
    "nvidia-cuda-nvrtc-cu12": "==12.2.140",
    "nvidia-cuda-runtime-cu12": "==12.2.140",
    "nvidia-cudnn-cu12": "==8.9.4.25",
    "nvidia-cufft-cu12": "==11.0.8.103",
    "nvidia-curand-cu12": "==10.3.3.141",
    "nvidia-cusolver-cu12": "==11.5.2.141",
    "nvidia-cusparse-cu12": "==12.1.2.141",
    "nvidia-nccl-cu12": "==2.16.5",
    "nvidia-nvjitlink-cu12": "==12.2.140",
}
PINS_2150 = {
    **PINS_215,
    "tensorrt": "==8.6.1.post1",
    "tensorrt-bindings": "==8.6.1",
    "tensorrt-libs": "==8.6.1",
}
PINS_216 = {
    "nvidia-cublas-cu12": "==12.3.4.1",
    "nvidia-cuda-cupti-cu12": "==12.3.101",
    "nvidia-cuda-nvcc-cu12": "==12.3.107",
    "nvidia-cuda-nvrtc-cu12": "==12.3.107",
    "nvidia-cuda-runtime-cu12": "==12.3.101",
    "nvidia-cudnn-cu12": "==8.9.7.29",
    "nvidia-cufft-cu12": "==11.0.12.1",
    "nvidia-curand-cu12": "==10.3.4.107",
    "nvidia-cusolver-cu12": "==11.5.4.101",
    "nvidia-cusparse-cu12": "==12.2.0.103",
    "nvidia-nccl-cu12": "==2.19.3",
    "nvidia-nvjitlink-cu12": "==12.3.101",
}
PINS_218 = {
    "nvidia-cublas-cu12": "==12.5.3.2",
    "nvidia-cuda-cupti-cu12": "==12.5.82",
    "nvidia-cuda-nvcc-cu12": "==12.5.82",
    "nvidia-cuda-nvrtc-cu12": "==12.5.82",
    "nvidia-cuda-runtime-cu12": "==12.5.82",
    "nvidia-cudnn-cu12": "==9.3.0.75",
    "nvidia-cufft-cu12": "==11.2.3.61",
    "nvidia-curand-cu12": "==10.3.6.82",
    "nvidia-cusolver-cu12": "==11.6.3.83",
    "nvidia-cusparse-cu12": "==12.5.1.3",
    "nvidia-nccl-cu12": "==2.21.5",
    "nvidia-nvjitlink-cu12": "==12.5.82",
}
PINS_221 = {
    "nvidia-cublas-cu12": "<13.0,>=12.5.3.2",
    "nvidia-cuda-cupti-cu12": "<13.0,>=12.5.82",
    "nvidia-cuda-nvcc-cu12": "<13.0,>=12.5.82",
    "nvidia-cuda-nvrtc-cu12": "<13.0,>=12.5.82",
    "nvidia-cuda-runtime-cu12": "<13.0,>=12.5.82",
    "nvidia-cudnn-cu12": "<10.0,>=9.3.0.75",
    "nvidia-cufft-cu12": "<12.0,>=11.2.3.61",
    "nvidia-curand-cu12": "<11.0,>=10.3.6.82",
    "nvidia-cusolver-cu12": "<12.0,>=11.6.3.83",
    "nvidia-cusparse-cu12": "<13.0,>=12.5.1.3",
    "nvidia-nccl-cu12": "<3.0,>=2.27.7",
    "nvidia-nvjitlink-cu12": "<13.0,>=12.5.82",
}
PINS_NIGHTLY = {
    **PINS_221,
    "nvidia-cudnn-cu12": "<10.0,>=9.10.2.21",
    "nvidia-nccl-cu12": "<3.0,>=2.30.7",
    "nvidia-nvshmem-cu12": ">=3.2.5",
}
TORCH_251 = {
    "nvidia-cuda-nvrtc-cu12": "==12.4.127",
    "nvidia-cuda-runtime-cu12": "==12.4.127",
    "nvidia-cuda-cupti-cu12": "==12.4.127",
    "nvidia-cudnn-cu12": "==9.1.0.70",
    "nvidia-cublas-cu12": "==12.4.5.8",
    "nvidia-cufft-cu12": "==11.2.1.3",
    "nvidia-curand-cu12": "==10.3.5.147",
    "nvidia-cusolver-cu12": "==11.6.1.9",
    "nvidia-cusparse-cu12": "==12.3.1.170",
    "nvidia-nccl-cu12": "==2.21.5",
    "nvidia-nvtx-cu12": "==12.4.127",
    "nvidia-nvjitlink-cu12": "==12.4.127",
}

# Newer wheels an unpinned (ranged) [and-cuda] can pick, as on the real index.
EXTRA_NVIDIA = {
    "nvidia-cudnn-cu12": ("9.10.2.21",),
    "nvidia-nccl-cu12": ("2.32.3",),
    "nvidia-nvshmem-cu12": ("3.2.5",),
}


def nvidia_wheels() -> dict[str, tuple[str, ...]]:
    """Every nvidia-* distribution version the index holds."""
    out: dict[str, set[str]] = {}
    for pins in (PINS_215, PINS_216, PINS_218, TORCH_251):
        for name, spec in pins.items():
            out.setdefault(name, set()).add(spec.removeprefix("=="))
    for name, versions in EXTRA_NVIDIA.items():
        out.setdefault(name, set()).update(versions)
    return {name: tuple(sorted(v)) for name, v in out.items()}


def cudnn_soname(version: str) -> str:
    return f"libcudnn.so.{version.split('.')[0]}"


# --------------------------------------------------------------------------- TensorFlow

_CU12_LIBS_8 = (
    "libcublas.so.12",
    "libcublasLt.so.12",
    "libcufft.so.11",
    "libcusolver.so.11",
    "libcusparse.so.12",
    "libcudnn.so.8",
)
_CU12_LIBS_9 = (*_CU12_LIBS_8[:-1], "libcudnn.so.9")

RUNPATH_215 = (
    "$ORIGIN/:$ORIGIN/../../nvidia/cuda_runtime/lib:$ORIGIN/../nvidia/cuda_runtime/lib:"
    "$ORIGIN/../../tensorrt:$ORIGIN/../tensorrt:$ORIGIN/../../nvidia/cublas/lib:"
    "$ORIGIN/../nvidia/cublas/lib:$ORIGIN/../../nvidia/cudnn/lib:$ORIGIN/../nvidia/cudnn/lib:"
    "$ORIGIN/../../nvidia/cufft/lib:$ORIGIN/../nvidia/cufft/lib:$ORIGIN/../../nvidia/cusolver/lib:"
    "$ORIGIN/../nvidia/cusolver/lib:$ORIGIN/../../nvidia/cusparse/lib:"
    "$ORIGIN/../nvidia/cusparse/lib:$ORIGIN/../../tensorrt:$ORIGIN/../tensorrt"
)
RUNPATH_2161 = (
    "$ORIGIN/:$ORIGIN/../../tensorrt:$ORIGIN/../tensorrt:$ORIGIN/../../nvidia/cuda_runtime/lib:"
    "$ORIGIN/../nvidia/cuda_runtime/lib"
)
RUNPATH_2162 = (
    "$ORIGIN/:$ORIGIN/../../tensorrt:$ORIGIN/../tensorrt:$ORIGIN/../../nvidia/cublas/lib:"
    "$ORIGIN/../nvidia/cublas/lib:$ORIGIN/../../nvidia/cudnn/lib:$ORIGIN/../nvidia/cudnn/lib:"
    "$ORIGIN/../../nvidia/cufft/lib:$ORIGIN/../nvidia/cufft/lib:$ORIGIN/../../nvidia/cusolver/lib:"
    "$ORIGIN/../nvidia/cusolver/lib:$ORIGIN/../../nvidia/cusparse/lib:"
    "$ORIGIN/../nvidia/cusparse/lib:$ORIGIN/../../tensorrt:$ORIGIN/../tensorrt:"
    "$ORIGIN/../../nvidia/cuda_runtime/lib:$ORIGIN/../nvidia/cuda_runtime/lib"
)
MEASURED = Path(__file__).resolve().parents[2] / "fixtures" / "sim" / "measured"
"""Search paths read from real wheels (``readelf -d``), one raw ``DT_RUNPATH`` per file."""


def measured_runpath(name: str) -> str:
    """The distinct entries of a measured ``DT_RUNPATH``, in their first-seen order.

    The real strings repeat each folder dozens of times (the 2.21.0 one is 20 kB, 668 entries,
    18 distinct); the loader searches a folder once, so the distinct list is the same search.
    """
    raw = (MEASURED / name).read_text(encoding="ascii").strip()
    return ":".join(dict.fromkeys(raw.split(":")))


# tensorflow-2.21.0-cp312-cp312-manylinux_2_27_x86_64.whl (sha256 b3b95643c4e70eb925839938fb35
# cbe142f317ec84af6844ee61513713bb13c0), `readelf -d tensorflow/libtensorflow_framework.so.2`,
# measured 2026-12-01: nccl, cupti, cublas, cudnn, cufft, cusparse, tensorrt, cuda_runtime,
# nvshmem — and no nvidia/cusolver/lib: real 2.21.0 [and-cuda] logs "Could not load dynamic
# library 'libcusolver.so.11'" unless something else puts that folder on the search path.
RUNPATH_221 = measured_runpath("tensorflow-2.21.0-libtensorflow_framework.so.2.runpath")
# tf-nightly's string is not measured; it keeps the 2.21 layout as first assumed (cusolver too).
RUNPATH_NIGHTLY = (
    "$ORIGIN/../../nvidia/nccl/lib:$ORIGIN/../nvidia/nccl/lib:$ORIGIN/../../nvidia/cuda_cupti/lib:"
    "$ORIGIN/../nvidia/cuda_cupti/lib:$ORIGIN/../../nvidia/cublas/lib:$ORIGIN/../nvidia/cublas/lib:"
    "$ORIGIN/../../nvidia/cudnn/lib:$ORIGIN/../nvidia/cudnn/lib:$ORIGIN/../../nvidia/cufft/lib:"
    "$ORIGIN/../nvidia/cufft/lib:$ORIGIN/../../nvidia/cusparse/lib:$ORIGIN/../nvidia/cusparse/lib:"
    "$ORIGIN/../../tensorrt:$ORIGIN/../tensorrt:$ORIGIN/../../nvidia/cuda_runtime/lib:"
    "$ORIGIN/../nvidia/cuda_runtime/lib:$ORIGIN/../../nvidia/cusolver/lib:"
    "$ORIGIN/../nvidia/cusolver/lib:$ORIGIN/../../nvidia/nvshmem/lib:$ORIGIN/../nvidia/nvshmem/lib"
)


@dataclass(frozen=True, slots=True)
class Release:
    """One fake TensorFlow distribution release (a wheel that writes ``tensorflow/``)."""

    dist: str
    version: str
    requires_python: str
    era: int
    """215, 216, 218 or 221: which release family's log lines and behaviour it has."""
    build_info: dict[str, object]
    requires: tuple[str, ...] = ()
    extras: dict[str, dict[str, str]] = field(default_factory=dict)
    runpath: str = RUNPATH_2162
    cudart: str = "libcudart.so.12"
    gpu_libs: tuple[str, ...] = _CU12_LIBS_9
    cudnn_built: tuple[int, int, int] = (9, 3, 0)
    cuda_int: int = 12050
    trt_soname: str = ""
    numpy_abi: int = 2
    tag: str = "py3-none-any"
    arch_list: tuple[str, ...] = ()
    """Compiled-for architectures when build_info does not say (tf-nightly)."""

    @property
    def cuda_build(self) -> bool:
        return bool(self.build_info.get("is_cuda_build"))

    @property
    def absl_log(self) -> bool:
        return self.era >= 221

    @property
    def arch(self) -> str:
        listed = self.build_info.get("cuda_compute_capabilities") or self.arch_list
        return ",".join(listed)  # type: ignore[arg-type]


def _bi(cc, cuda, cudnn, trt, compiler="/usr/lib/llvm-17/bin/clang") -> dict[str, object]:
    return {
        "cpu_compiler": compiler,
        "cuda_compute_capabilities": list(cc),
        "cuda_version": cuda,
        "cudnn_version": cudnn,
        "is_cuda_build": True,
        "is_rocm_build": False,
        "is_tensorrt_build": trt,
    }


_CPU_BI = {"is_cuda_build": False, "is_rocm_build": False, "is_tensorrt_build": False}
_CC_215 = ("sm_50", "sm_60", "sm_70", "sm_75", "compute_80")
_CC_216 = ("sm_50", "sm_60", "sm_70", "sm_80", "compute_90")
_CC_218 = ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90")
_NP1 = ("numpy<2.0.0,>=1.23.5",)
_NP_216 = (
    'numpy<2.0.0,>=1.23.5; python_version <= "3.11"',
    'numpy<2.0.0,>=1.26.0; python_version >= "3.12"',
)
_REDIRECT_215 = (
    'tensorflow-cpu-aws==%s; platform_system == "Linux" and '
    '(platform_machine == "arm64" or platform_machine == "aarch64")',
    'tensorflow-intel==%s; platform_system == "Windows"',
)

_R215: dict[str, Any] = {
    "requires_python": ">=3.9",
    "era": 215,
    "build_info": _bi(_CC_215, "12.2", "8", True),
    "runpath": RUNPATH_215,
    "gpu_libs": _CU12_LIBS_8,
    "cudnn_built": (8, 9, 4),
    "cuda_int": 12020,
    "trt_soname": "libnvinfer.so.8.6.1",
    "numpy_abi": 1,
}
_R216: dict[str, Any] = {
    "requires_python": ">=3.9",
    "era": 216,
    "build_info": _bi(_CC_216, "12.3", "8", True),
    "gpu_libs": _CU12_LIBS_8,
    "cudnn_built": (8, 9, 7),
    "cuda_int": 12030,
    "trt_soname": "libnvinfer.so.8.6.1",
    "numpy_abi": 1,
}

RELEASES: tuple[Release, ...] = (
    Release(
        "tensorflow",
        "2.11.0",
        requires_python=">=3.7",
        era=215,
        build_info=_bi(
            ("sm_35", "sm_50", "sm_60", "sm_70", "sm_75", "compute_80"),
            "11.2",
            "8",
            True,
            "/dt9/usr/bin/gcc",
        ),
        requires=("numpy>=1.20",),
        cudart="libcudart.so.11.0",
        gpu_libs=(
            "libcublas.so.11",
            "libcublasLt.so.11",
            "libcufft.so.10",
            "libcusolver.so.11",
            "libcusparse.so.11",
            "libcudnn.so.8",
        ),
        cudnn_built=(8, 1, 0),
        cuda_int=11020,
        numpy_abi=1,
        tag="cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64",
    ),
    Release(
        "tensorflow",
        "2.15.0",
        **_R215,
        requires=(*_NP1, *(r % "2.15.0" for r in _REDIRECT_215)),
        extras={"and-cuda": PINS_2150},
    ),
    Release(
        "tensorflow",
        "2.15.0.post1",
        **_R215,
        requires=(*_NP1, *(r % "2.15.0.post1" for r in _REDIRECT_215)),
        extras={"and-cuda": PINS_215},  # the re-release without the tensorrt pins
    ),
    Release(
        "tensorflow",
        "2.15.1",
        **_R215,
        requires=(*_NP1, *(r % "2.15.1" for r in _REDIRECT_215)),
        extras={"and-cuda": PINS_215},
    ),
    Release(
        "tensorflow",
        "2.16.1",
        **_R216,
        runpath=RUNPATH_2161,
        requires=(*_NP_216, *(r.replace("==", "==") % "2.16.1" for r in _REDIRECT_215)),
        extras={"and-cuda": PINS_216},
    ),
    Release(
        "tensorflow",
        "2.16.2",
        **_R216,
        runpath=RUNPATH_2162,
        requires=(*_NP_216, 'tensorflow-intel==2.16.2; platform_system == "Windows"'),
        extras={"and-cuda": PINS_216},
    ),
    Release(
        "tensorflow",
        "2.17.0",
        **{**_R216, "build_info": _bi(_CC_218, "12.3", "8", True)},  # 2.17 dropped Maxwell
        runpath=RUNPATH_2162,
        requires=(*_NP_216, 'tensorflow-intel==2.17.0; platform_system == "Windows"'),
        extras={"and-cuda": PINS_216},
    ),
    # A CPU build that calls itself `tensorflow` (as a conda or custom build does).
    Release(
        "tensorflow",
        "2.17.0+cpu",
        requires_python=">=3.9",
        era=216,
        build_info=_CPU_BI,
        requires=("numpy<2.0.0,>=1.26.0",),
        numpy_abi=1,
    ),
    Release(
        "tensorflow",
        "2.18.1",
        requires_python=">=3.9",
        era=218,
        build_info=_bi(_CC_218, "12.5.1", "9", False, "/usr/lib/llvm-18/bin/clang"),
        requires=("numpy<2.1.0,>=1.26.0", 'tensorflow-intel==2.18.1; platform_system == "Windows"'),
        extras={"and-cuda": PINS_218},
    ),
    Release(
        "tensorflow-cpu",
        "2.18.1",
        requires_python=">=3.9",
        era=218,
        build_info=_CPU_BI,
        requires=("numpy<2.1.0,>=1.26.0",),
    ),
    Release(
        "tensorflow",
        "2.21.0",
        requires_python=">=3.10",
        era=221,
        build_info=_bi(_CC_218, "12.5.1", "9", False, "clang"),
        requires=("numpy>=1.26.0",),
        extras={"and-cuda": PINS_221},
        runpath=RUNPATH_221,
    ),
    Release(
        "tf-nightly",
        "2.23.0.dev20261026",
        requires_python=">=3.10",
        era=221,
        build_info={"is_cuda_build": True, "is_rocm_build": False, "is_tensorrt_build": False},
        requires=("numpy>=1.26.0",),
        extras={
            "and-cuda": PINS_NIGHTLY,
            "cuda": PINS_NIGHTLY,
            "cuda12": PINS_NIGHTLY,
            "cuda12-local": {},
            "gcs-filesystem": {},
        },
        runpath=RUNPATH_NIGHTLY,
        cudnn_built=(9, 10, 2),
        arch_list=_CC_218,
    ),
)

NUMPY_VERSIONS = (("1.26.4", ">=3.9"), ("2.0.2", ">=3.9"), ("2.1.3", ">=3.10"))

TORCH = ("2.5.1", ">=3.8", TORCH_251)

TF_GPU_STUB_VERSION = "2.12.0"
TF_GPU_REMOVAL_WARNING = """
=========================================================
The "tensorflow-gpu" package has been removed!

Please install "tensorflow" instead.

Other than the name, the two packages have been identical
since TensorFlow 2.1, or roughly since Sep 2019. For more
information, see: pypi.org/project/tensorflow-gpu
=========================================================
"""
