"""The loader probe: the loader's search order as a pure function, and the real dynamic loader
against tiny libraries compiled from fixtures/loader (a wheel cuDNN found through TensorFlow's
RUNPATH, a stale cuDNN on LD_LIBRARY_PATH that shadows it, a library that does not load, a
library that crashes its loader)."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from tests.probes.conftest import BuildLib
from tffix.model import Library
from tffix.probes import loader
from tffix.probes.loader import SearchPath, era_for, parse_ldconfig, resolve

# --------------------------------------------------------------------------- pure parts

FILES = {
    "/pre/libcudnn.so.9",
    "/rpath/libcudnn.so.9",
    "/llp/libcudnn.so.9",
    "/run/libcudnn.so.9",
    "/cache/libcudnn.so.9",
    "/usr/lib/libcudnn.so.9",
}


@pytest.mark.parametrize(
    ("search", "path", "via"),
    [
        (
            SearchPath(runpath=("/run",), default_dirs=("/usr/lib",)),
            "/run/libcudnn.so.9",
            "RUNPATH",
        ),
        (
            SearchPath(ld_library_path=("/nothing", "/llp"), runpath=("/run",)),
            "/llp/libcudnn.so.9",
            "LD_LIBRARY_PATH",
        ),
        (
            SearchPath(rpath=("/rpath",), ld_library_path=("/llp",)),
            "/rpath/libcudnn.so.9",
            "RPATH",
        ),
        (
            SearchPath(preload=("/pre/libcudnn.so.9",), ld_library_path=("/llp",)),
            "/pre/libcudnn.so.9",
            "preloaded",
        ),
        (
            SearchPath(
                cache={"libcudnn.so.9": ("/cache/libcudnn.so.9",)}, default_dirs=("/usr/lib",)
            ),
            "/cache/libcudnn.so.9",
            "ld.so.cache",
        ),
        (SearchPath(default_dirs=("/usr/lib",)), "/usr/lib/libcudnn.so.9", "default"),
    ],
)
def test_resolution_follows_the_loader_order(search: SearchPath, path: str, via: str) -> None:
    lib = resolve("libcudnn.so.9", search, is_file=FILES.__contains__)
    assert (lib.path, lib.via) == (path, via)
    assert lib.candidates[0] == path


def test_candidates_list_every_match_once_in_order() -> None:
    search = SearchPath(
        ld_library_path=("/llp", "/llp/"),
        runpath=("/run",),
        cache={"libcudnn.so.9": ("/cache/libcudnn.so.9", "/run/libcudnn.so.9")},
        default_dirs=("/usr/lib",),
    )
    lib = resolve("libcudnn.so.9", search, is_file=FILES.__contains__)
    assert lib.candidates == (
        "/llp/libcudnn.so.9",
        "/run/libcudnn.so.9",
        "/cache/libcudnn.so.9",
        "/usr/lib/libcudnn.so.9",
    )


def test_nothing_resolves_is_null_not_unknown() -> None:
    lib = resolve(
        "libcudart.so.12", SearchPath(ld_library_path=("/llp",)), is_file=FILES.__contains__
    )
    assert lib == Library(path=None, candidates=())


LDCONFIG = """\
12 libs found in cache `/etc/ld.so.cache'
\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1
\tlibcuda.so.1 (libc6) => /usr/lib/i386-linux-gnu/libcuda.so.1
\tlibcudnn.so.9 (libc6,x86-64,OS ABI: Linux 3.2.0) => /usr/lib/x86_64-linux-gnu/libcudnn.so.9
\tlibz.so.1 (libc6,AArch64) => /usr/lib/aarch64-linux-gnu/libz.so.1
"""


def test_parse_ldconfig_keeps_this_machine_only() -> None:
    cache = parse_ldconfig(LDCONFIG, "x86_64")
    assert cache == {
        "libcuda.so.1": ("/usr/lib/x86_64-linux-gnu/libcuda.so.1",),
        "libcudnn.so.9": ("/usr/lib/x86_64-linux-gnu/libcudnn.so.9",),
    }
    assert parse_ldconfig(LDCONFIG, "aarch64") == {
        "libz.so.1": ("/usr/lib/aarch64-linux-gnu/libz.so.1",)
    }


@pytest.mark.parametrize(
    ("version", "cudnn", "has_nvml"),
    [
        ("2.21.0", "libcudnn.so.9", True),
        ("2.23.0.dev20261026", "libcudnn.so.9", True),
        ("2.22.0rc0", "libcudnn.so.9", True),
        ("2.18.1", "libcudnn.so.9", False),
        ("2.16.1", "libcudnn.so.8", False),
        ("2.11.0", "libcudnn.so.8", False),
        ("2.3.0", "libcudnn.so.7", False),
    ],
)
def test_shipped_soname_table_by_release(version: str, cudnn: str, has_nvml: bool) -> None:
    era = era_for(version, loader.load_soname_table())
    assert era is not None
    assert cudnn in era.sonames
    assert ("libnvidia-ml.so.1" in era.sonames) is has_nvml
    assert "libcuda.so.1" in era.sonames


@pytest.mark.parametrize("version", [None, "", "not-a-version", "1.15.0"])
def test_no_era_for_unknown_or_ancient_releases(version: str | None) -> None:
    assert era_for(version, loader.load_soname_table()) is None


def test_bad_soname_table_names_the_row() -> None:
    with pytest.raises(ValueError, match=r"era\[0\]"):
        loader.parse_soname_table('[[era]]\ntf = ">=2.18"\n')


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("/x/libcudart.so.12.5.82", "12.5.82"),
        ("/x/libcudnn.so.9", None),
        ("/x/libcudnn.so.8.9.7", "8.9.7"),
        ("/x/libfoo.so", None),
    ],
)
def test_version_from_filename(name: str, version: str | None) -> None:
    assert loader.version_from_filename(name) == version


# --------------------------------------------------------------------------- real loader


def _layout(build_lib: BuildLib, root: Path) -> tuple[Path, Path]:
    """A site-packages with TensorFlow's framework library (RUNPATH into nvidia/cudnn/lib)
    and a wheel cuDNN 9.3.0; returns (site-packages, tensorflow folder)."""
    site = root / "site-packages"
    tf_dir = site / "tensorflow"
    build_lib(
        "libtensorflow_framework.c",
        tf_dir / "libtensorflow_framework.so.2",
        soname="libtensorflow_framework.so.2",
        runpath=["$ORIGIN/../nvidia/cudnn/lib", "$ORIGIN/../nvidia/cuda_runtime/lib"],
    )
    (tf_dir / "__init__.py").write_text("")
    build_lib(
        "libcudnn.c",
        site / "nvidia/cudnn/lib/libcudnn.so.9",
        soname="libcudnn.so.9",
        defines={"VERSION": 90300},
    )
    build_lib(
        "libcudart.c",
        site / "nvidia/cuda_runtime/lib/libcudart.so.12",
        soname="libcudart.so.12",
        defines={"VERSION": 12050},
    )
    return site, tf_dir


def _probe(tf_dir: Path, env: dict[str, str]) -> loader.LoaderReport:
    return loader.probe_libraries(
        python=Path(sys.executable),
        machine=platform.machine(),
        env=env,
        tf_dir=tf_dir,
        tf_version="2.18.1",
    )


@pytest.mark.skipif(sys.platform != "linux", reason="the ELF loader is Linux's")
def test_wheel_cudnn_is_found_through_tensorflows_runpath(
    build_lib: BuildLib, tmp_path: Path
) -> None:
    site, tf_dir = _layout(build_lib, tmp_path)
    report = _probe(tf_dir, {"PATH": "/usr/bin:/bin"})
    cudnn = report.libraries["libcudnn.so.9"]
    assert cudnn.path == str(site / "nvidia/cudnn/lib/libcudnn.so.9")
    assert cudnn.via == "RUNPATH"
    assert cudnn.version == "9.3.0"  # read through cudnnGetVersion in the child
    assert cudnn.error is None
    cudart = report.libraries["libcudart.so.12"]
    assert (cudart.via, cudart.version) == ("RUNPATH", "12.5")
    assert "libcudnn.so.9" in report.extra["proven"]


@pytest.mark.skipif(sys.platform != "linux", reason="the ELF loader is Linux's")
def test_stale_cudnn_on_ld_library_path_shadows_the_wheel(
    build_lib: BuildLib, tmp_path: Path
) -> None:
    site, tf_dir = _layout(build_lib, tmp_path)
    stale = tmp_path / "cuda-11.8/lib64"
    build_lib(
        "libcudnn.c", stale / "libcudnn.so.9", soname="libcudnn.so.9", defines={"VERSION": 90100}
    )
    report = _probe(tf_dir, {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": f"/nowhere:{stale}"})
    cudnn = report.libraries["libcudnn.so.9"]
    assert cudnn.path == str(stale / "libcudnn.so.9")
    assert cudnn.via == "LD_LIBRARY_PATH"
    assert cudnn.version == "9.1.0"
    assert cudnn.candidates == (
        str(stale / "libcudnn.so.9"),
        str(site / "nvidia/cudnn/lib/libcudnn.so.9"),
    )


@pytest.mark.skipif(sys.platform != "linux", reason="the ELF loader is Linux's")
def test_a_library_that_does_not_load_reports_dlerror(build_lib: BuildLib, tmp_path: Path) -> None:
    _site, tf_dir = _layout(build_lib, tmp_path)
    dep = build_lib("libdep.c", tmp_path / "build/libdep.so", soname="libdep.so")
    broken = tmp_path / "broken"
    build_lib("libneedsdep.c", broken / "libcublas.so.12", soname="libcublas.so.12", link=[dep])
    dep.unlink()
    report = _probe(tf_dir, {"LD_LIBRARY_PATH": str(broken)})
    cublas = report.libraries["libcublas.so.12"]
    assert cublas.path == str(broken / "libcublas.so.12")
    assert cublas.error is not None and "libdep.so" in cublas.error
    assert report.unknown is None  # the child finished; the failure is a fact, not a gap


@pytest.mark.skipif(sys.platform != "linux", reason="the ELF loader is Linux's")
def test_a_library_that_crashes_its_loader_is_recorded(build_lib: BuildLib, tmp_path: Path) -> None:
    _site, tf_dir = _layout(build_lib, tmp_path)
    crash = tmp_path / "crash"
    build_lib("libcrash.c", crash / "libcublasLt.so.12", soname="libcublasLt.so.12")
    report = _probe(tf_dir, {"LD_LIBRARY_PATH": str(crash)})
    lt = report.libraries["libcublasLt.so.12"]
    assert lt.path == str(crash / "libcublasLt.so.12")
    assert lt.error is not None and "SIGSEGV" in lt.error
    assert report.unknown is not None and "SIGSEGV" in report.unknown


def test_unknown_tensorflow_version_is_a_reason_not_an_error(tmp_path: Path) -> None:
    report = loader.probe_libraries(
        python=Path(sys.executable), machine="x86_64", env={}, tf_dir=tmp_path, tf_version=None
    )
    assert report.libraries == {}
    assert report.unknown is not None and "version is unknown" in report.unknown
