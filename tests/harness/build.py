"""Builds the simulated machine's parts: fake CUDA libraries, the fake driver, and the wheel index.

Everything is compiled with gcc from ``fixtures/sim/c`` and packed with plain Python (zipfile),
without network, into a cache folder keyed by a hash of every input (sources, catalog, this
file), so that a second test session, or a second xdist worker, reuses the first one's build.
The first build takes a few seconds on two cores.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import fcntl
import hashlib
import io
import os
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.harness import catalog
from tests.harness.catalog import Release

ROOT = Path(__file__).resolve().parents[2]
SIM = ROOT / "fixtures" / "sim"
C_DIR = SIM / "c"
PY_DIR = SIM / "python"

# --------------------------------------------------------------------------- cache


def _inputs() -> list[Path]:
    files = sorted(p for p in SIM.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    files = [p for p in files if "scenarios" not in p.relative_to(SIM).parts]
    return [*files, Path(catalog.__file__), Path(__file__)]


def sources_hash() -> str:
    digest = hashlib.sha256()
    for path in _inputs():
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """``$TFFIX_SIM_CACHE`` or ``<tmp>/tffix-sim-<hash of the sources>``."""
    base = os.environ.get("TFFIX_SIM_CACHE")
    root = Path(base) if base else Path(tempfile.gettempdir())
    path = root / f"tffix-sim-{sources_hash()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _gcc(out: Path, sources: list[Path], args: list[str]) -> Path:
    """Compile a shared library to *out* (atomically: a half-written file is never seen)."""
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    cmd = [
        "gcc",
        "-shared",
        "-fPIC",
        "-O1",
        "-w",
        *args,
        "-o",
        str(tmp),
        *map(str, sources),
        "-ldl",
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    os.replace(tmp, out)
    return out


# --------------------------------------------------------------------------- CUDA libraries


def _parts(version: str) -> tuple[int, int, int]:
    nums = [int(x) for x in version.split(".")[:3] if x.isdigit()]
    nums += [0] * (3 - len(nums))
    return nums[0], nums[1], nums[2]


def version_int(kind: str, version: str) -> int:
    """The version number as the real library's entry point encodes it."""
    major, minor, patch = _parts(version)
    if kind == "cudnn":
        return (
            major * 10000 + minor * 100 + patch
            if major >= 9
            else major * 1000 + minor * 100 + patch
        )
    if kind in ("cudart", "cupti"):
        return major * 1000 + minor * 10
    if kind in ("cublaslt", "nccl"):
        return major * 10000 + minor * 100 + patch
    return major * 1000 + minor * 100 + patch


_SONAME_STEM = {
    "cudart": "libcudart.so",
    "cublas": "libcublas.so",
    "cublaslt": "libcublasLt.so",
    "cufft": "libcufft.so",
    "cusolver": "libcusolver.so",
    "cusparse": "libcusparse.so",
    "cudnn": "libcudnn.so",
    "curand": "libcurand.so",
    "nccl": "libnccl.so",
    "nvjitlink": "libnvJitLink.so",
    "nvrtc": "libnvrtc.so",
    "cupti": "libcupti.so",
}


def soname_for(kind: str, version: str) -> str:
    """The real soname of library *kind* at *version* (``cudart 11.8`` → ``libcudart.so.11.0``)."""
    major = _parts(version)[0]
    if kind == "cudart" and major == 11:
        return "libcudart.so.11.0"
    if kind == "nccl":
        return "libnccl.so.2"
    return f"{_SONAME_STEM[kind]}.{major}"


def compile_cuda_lib(root: Path, kind: str, version: str, soname: str | None = None) -> Path:
    """One fake CUDA library, e.g. (``cudnn``, ``9.3.0.75``) → ``…/libcudnn.so.9``."""
    soname = soname or soname_for(kind, version)
    major, minor, patch = _parts(version)
    cuda = 12020 if major >= 12 or kind in ("cudnn", "nccl") else 11080
    args = [
        f"-Wl,-soname,{soname}",
        f"-DSIM_{kind.upper()}",
        f"-DSIM_MAJOR={major}",
        f"-DSIM_MINOR={minor}",
        f"-DSIM_PATCH={patch}",
        f"-DSIM_INT={version_int(kind, version)}",
        f'-DSIM_VERSION="{version}"',
        f'-DSIM_SONAME="{soname}"',
        f"-DSIM_CUDART={cuda}",
        f"-DSIM_CUDART_INT={cuda}",
    ]
    return _gcc(root / "libs" / f"{soname}-{version}" / soname, [C_DIR / "cudalib.c"], args)


def compile_driver(root: Path) -> tuple[Path, Path]:
    """(libcuda.so.1, libnvidia-ml.so.1) of the fake driver."""
    cuda = _gcc(
        root / "driver" / "libcuda.so.1", [C_DIR / "libcuda.c"], ["-Wl,-soname,libcuda.so.1"]
    )
    nvml = _gcc(
        root / "driver" / "libnvidia-ml.so.1",
        [C_DIR / "libnvidia-ml.c"],
        ["-Wl,-soname,libnvidia-ml.so.1"],
    )
    return cuda, nvml


def compile_tensorflow(root: Path, rel: Release) -> Path:
    """``libtensorflow_framework.so.2`` of one release, with its real RUNPATH."""
    major, minor, patch = rel.cudnn_built
    defines = {
        "TF_VERSION": f'"{rel.version}"',
        "TF_ERA": str(rel.era),
        "TF_ABSL_LOG": str(int(rel.absl_log)),
        "TF_CUDA_BUILD": str(int(rel.cuda_build)),
        "TF_CUDART": f'"{rel.cudart}"',
        "TF_CUDNN_SONAME": f'"libcudnn.so.{major}"',
        "TF_GPU_LIBS": '"' + ":".join(rel.gpu_libs) + '"',
        "TF_CUDNN_MAJOR": str(major),
        "TF_CUDNN_MINOR": str(minor),
        "TF_CUDNN_PATCH": str(patch),
        "TF_CUDA_INT": str(rel.cuda_int),
        "TF_ARCH": f'"{rel.arch}"',
        "TF_NEED_NVML": str(int(rel.era >= 221)),
        "TF_TRT_SONAME": f'"{rel.trt_soname}"',
    }
    args = [f"-D{k}={v}" for k, v in defines.items()]
    args += [
        "-Wl,-soname,libtensorflow_framework.so.2",
        f"-Wl,--enable-new-dtags,-rpath,{rel.runpath}",
    ]
    out = root / "tf" / f"{rel.dist}-{rel.version}" / "libtensorflow_framework.so.2"
    return _gcc(out, [C_DIR / "tfcore.c"], args)


# --------------------------------------------------------------------------- wheels

FileData = bytes | tuple[bytes, int]
"""File contents, or (contents, unix mode)."""


def _dist_stem(name: str) -> str:
    return name.replace("-", "_")


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(
    index: Path,
    name: str,
    version: str,
    files: Mapping[str, FileData],
    *,
    requires: tuple[str, ...] = (),
    extras: Mapping[str, Mapping[str, str]] | None = None,
    requires_python: str | None = None,
    summary: str = "",
    tag: str = "py3-none-any",
) -> Path:
    """A valid wheel with the given files and metadata (PEP 427/566), written into *index*."""
    stem = _dist_stem(name)
    info = f"{stem}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if summary:
        meta.append(f"Summary: {summary}")
    if requires_python:
        meta.append(f"Requires-Python: {requires_python}")
    meta += [f"Requires-Dist: {r}" for r in requires]
    for extra, pins in (extras or {}).items():
        meta.append(f"Provides-Extra: {extra}")
        meta += [f'Requires-Dist: {pkg}{spec}; extra == "{extra}"' for pkg, spec in pins.items()]
    all_files: dict[str, FileData] = dict(files)
    all_files[f"{info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    py, abi, plat = tag.split("-", 2)
    all_files[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: tffix-sim\n"
        f"Root-Is-Purelib: {'true' if abi == 'none' else 'false'}\n"
        + "".join(f"Tag: {p}-{abi}-{q}\n" for p in py.split(".") for q in plat.split("."))
    ).encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for arc, data in sorted(all_files.items()):
        raw = data[0] if isinstance(data, tuple) else data
        writer.writerow([arc, _record_hash(raw), len(raw)])
    writer.writerow([f"{info}/RECORD", "", ""])
    path = index / f"{stem}-{version}-{tag}.whl"
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for arc, data in sorted(all_files.items()):
            raw, mode = data if isinstance(data, tuple) else (data, 0o644)
            zi = zipfile.ZipInfo(arc, date_time=(2024, 1, 1, 0, 0, 0))
            zi.external_attr = (0o100000 | mode) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, raw)
        zi = zipfile.ZipInfo(f"{info}/RECORD", date_time=(2024, 1, 1, 0, 0, 0))
        zi.external_attr = 0o100644 << 16
        zf.writestr(zi, record.getvalue())
    os.replace(tmp, path)
    return path


def _tf_python_files(rel: Release) -> dict[str, FileData]:
    files: dict[str, FileData] = {}
    base = PY_DIR / "tensorflow"
    for path in sorted(base.rglob("*.py")):
        files["tensorflow/" + str(path.relative_to(base))] = path.read_bytes()
    lines = ["import collections", "", "build_info = collections.OrderedDict()"]
    lines += [f"build_info[{k!r}] = {v!r}" for k, v in sorted(rel.build_info.items())]
    files["tensorflow/python/platform/build_info.py"] = ("\n".join(lines) + "\n").encode()
    files["tensorflow/python/framework/versions.py"] = (
        f'"""Version of the simulated {rel.dist}."""\n\n'
        f"__version__ = {rel.version!r}\nVERSION = __version__\nGIT_VERSION = 'v{rel.version}'\n"
        f"NUMPY_ABI = {rel.numpy_abi}\nSIM_DIST = {rel.dist!r}\nSIM_ERA = {rel.era}\n"
    ).encode()
    return files


def _nvidia_files(root: Path, name: str, version: str) -> dict[str, FileData]:
    folder, libs = catalog.NVIDIA_LAYOUT[name]
    files: dict[str, FileData] = {
        "nvidia/__init__.py": b"",
        f"nvidia/{folder}/__init__.py": b"",
    }
    if name == "nvidia-cudnn-cu12":
        libs = ((catalog.cudnn_soname(version), "cudnn"),)
    if libs:
        files[f"nvidia/{folder}/lib/__init__.py"] = b""
    for soname, kind in libs:
        so = compile_cuda_lib(root, kind, version, soname)
        files[f"nvidia/{folder}/lib/{soname}"] = (so.read_bytes(), 0o755)
    if name == "nvidia-cuda-nvcc-cu12":
        major, minor, _ = _parts(version)
        ptxas = (
            "#!/bin/sh\necho 'ptxas: NVIDIA (R) Ptx optimizing assembler'\n"
            f"echo 'Cuda compilation tools, release {major}.{minor}, V{version}'\n"
        )
        files["nvidia/cuda_nvcc/bin/ptxas"] = (ptxas.encode(), 0o755)
        files["nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc"] = (
            b"BC\xc0\xde simulated libdevice\n"
        )
    return files


def _tf_gpu_sdist(index: Path) -> Path:
    """The real ``tensorflow-gpu`` 2.12.0: an sdist whose build fails with the removal notice."""
    version = catalog.TF_GPU_STUB_VERSION
    base = f"tensorflow-gpu-{version}"
    backend = (
        '"""Build backend of the removed tensorflow-gpu package (it always fails)."""\n\n'
        f"TF_REMOVAL_WARNING = {catalog.TF_GPU_REMOVAL_WARNING!r}\n\n\n"
        "def _fail(*args, **kwargs):\n    raise Exception(TF_REMOVAL_WARNING)\n\n\n"
        "get_requires_for_build_wheel = _fail\nprepare_metadata_for_build_wheel = _fail\n"
        "build_wheel = _fail\nbuild_sdist = _fail\n"
    )
    members = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: tensorflow-gpu\nVersion: {version}\n"
        "Summary: Removed: please install tensorflow instead.\n",
        "pyproject.toml": (
            '[build-system]\nrequires = []\nbuild-backend = "_removed"\nbackend-path = ["."]\n'
        ),
        "_removed.py": backend,
        "setup.py": f"TF_REMOVAL_WARNING = {catalog.TF_GPU_REMOVAL_WARNING!r}\n"
        "raise Exception(TF_REMOVAL_WARNING)\n",
    }
    path = index / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            ti = tarfile.TarInfo(f"{base}/{name}")
            ti.size = len(data)
            ti.mode = 0o644
            tar.addfile(ti, io.BytesIO(data))
    return path


def build_index(root: Path | None = None) -> Path:
    """Compile everything and write the wheel folder once; return the folder (``find-links``)."""
    root = root or cache_root()
    index = root / "index"
    done = index / ".complete"
    if done.exists():
        return index
    with _locked(root / ".build.lock"):
        if done.exists():
            return index
        index.mkdir(parents=True, exist_ok=True)
        compile_driver(root)
        jobs: list[tuple[str, str, str]] = []
        for name, versions in catalog.nvidia_wheels().items():
            _folder, libs = catalog.NVIDIA_LAYOUT[name]
            for version in versions:
                if name == "nvidia-cudnn-cu12":
                    libs = ((catalog.cudnn_soname(version), "cudnn"),)
                jobs += [(kind, version, soname) for soname, kind in libs]
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            futures = [pool.submit(compile_cuda_lib, root, k, v, s) for k, v, s in jobs]
            futures += [pool.submit(compile_tensorflow, root, rel) for rel in catalog.RELEASES]
            for future in futures:
                future.result()
        for name, versions in catalog.nvidia_wheels().items():
            for version in versions:
                write_wheel(
                    index,
                    name,
                    version,
                    _nvidia_files(root, name, version),
                    requires=catalog.NVIDIA_REQUIRES.get(name, ()),
                    requires_python=">=3",
                    summary=f"Simulated {name} (tffix test harness)",
                )
        for rel in catalog.RELEASES:
            files = _tf_python_files(rel)
            so = compile_tensorflow(root, rel)
            files["tensorflow/libtensorflow_framework.so.2"] = (so.read_bytes(), 0o755)
            write_wheel(
                index,
                rel.dist,
                rel.version,
                files,
                requires=rel.requires,
                extras=rel.extras,
                requires_python=rel.requires_python,
                tag=rel.tag,
                summary="TensorFlow is an open source machine learning framework for everyone.",
            )
        for version, requires_python in catalog.NUMPY_VERSIONS:
            init = f'"""Simulated NumPy."""\n__version__ = {version!r}\n'
            files = {"numpy/__init__.py": init.encode()}
            write_wheel(index, "numpy", version, files, requires_python=requires_python)
        torch_version, torch_python, torch_pins = catalog.TORCH
        marker = '; platform_system == "Linux" and platform_machine == "x86_64"'
        write_wheel(
            index,
            "torch",
            torch_version,
            {
                "torch/__init__.py": (
                    f'"""Simulated PyTorch."""\n__version__ = "{torch_version}+cu124"\n'
                    "from torch import version\n"
                ).encode(),
                "torch/version.py": (
                    f"__version__ = '{torch_version}+cu124'\ncuda = '12.4'\n".encode()
                ),
            },
            requires=tuple(f"{pkg}{spec}{marker}" for pkg, spec in torch_pins.items()),
            requires_python=torch_python,
        )
        _tf_gpu_sdist(index)
        done.write_text("ok\n")
    return index


def driver_libraries(root: Path | None = None) -> tuple[Path, Path]:
    """The compiled fake driver (built on first use)."""
    return compile_driver(root or cache_root())


def system_library(kind: str, version: str, root: Path | None = None) -> Path:
    """A fake CUDA library as a system install would hold it (e.g. ``cudnn``, ``9.1.0``)."""
    return compile_cuda_lib(root or cache_root(), kind, version)
