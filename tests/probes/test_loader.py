"""The loader probe: the loader's search order as a pure function, and the real dynamic loader
against tiny libraries compiled from fixtures/loader (a wheel cuDNN found through TensorFlow's
RUNPATH, a stale cuDNN on LD_LIBRARY_PATH that shadows it, a library that does not load, a
library that crashes its loader)."""

from __future__ import annotations

import os
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


# --------------------------------------------------------------------------- ld.so(8) rules

_TRUTH = r"""
import ctypes, sys
fw = ctypes.CDLL(sys.argv[1])
fw.tf_dlopen.restype = ctypes.c_void_p
handle = fw.tf_dlopen(sys.argv[2].encode())
if not handle:
    print("NONE")
    raise SystemExit
with open("/proc/self/maps") as fh:
    paths = {l.split(None, 5)[5].strip() for l in fh if len(l.split(None, 5)) == 6}
print(next(p for p in sorted(paths) if p.endswith("/" + sys.argv[2])))
"""


def _truth(
    tf_dir: Path, soname: str, env: dict[str, str], cwd: Path, python: Path | None = None
) -> str | None:
    """What the real loader maps when the framework library dlopens *soname*."""
    import subprocess

    done = subprocess.run(
        [
            str(python or sys.executable),
            "-I",
            "-S",
            "-c",
            _TRUTH,
            str(tf_dir / "libtensorflow_framework.so.2"),
            soname,
        ],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    line = done.stdout.strip()
    return None if line == "NONE" else line


def _cudnn(build_lib: BuildLib, folder: Path, version: int) -> Path:
    return build_lib(
        "libcudnn.c", folder / "libcudnn.so.9", soname="libcudnn.so.9", defines={"VERSION": version}
    )


def _predicted(tf_dir: Path, env: dict[str, str], cwd: Path, python: Path | None = None) -> Library:
    report = loader.probe_libraries(
        python=python or Path(sys.executable),
        machine=platform.machine(),
        env={"PATH": "/usr/bin:/bin", **env},
        tf_dir=tf_dir,
        tf_version="2.18.1",
        cwd=str(cwd),
    )
    return report.libraries["libcudnn.so.9"]


linux_only = pytest.mark.skipif(sys.platform != "linux", reason="the ELF loader is Linux's")


@pytest.mark.parametrize("value", [":{other}", "{other}:", "{other}::/nowhere", "::"])
def test_empty_ld_library_path_entries_are_the_current_folder_pure(value: str) -> None:
    entries = loader.split_ld_library_path(value.format(other="/x"), cwd="/work")
    assert "/work" in entries
    assert loader.split_ld_library_path("", cwd="/work") == ()
    assert loader.split_ld_library_path("lib", cwd="/work") == ("/work/lib",)


@linux_only
@pytest.mark.parametrize("value", [":{other}", "{other}:", "{other}::/nowhere"])
def test_an_empty_entry_finds_an_old_cudnn_in_the_current_folder(
    value: str, build_lib: BuildLib, tmp_path: Path
) -> None:
    """``LD_LIBRARY_PATH=:/x``: glibc searches the current folder first; an old cuDNN there
    wins over the wheel's, and the probe must say so (not report the wheel's 9.3.0)."""
    site, tf_dir = _layout(build_lib, tmp_path)
    work = tmp_path / "work"
    _cudnn(build_lib, work, 90100)
    env = {"LD_LIBRARY_PATH": value.format(other=tmp_path / "empty")}
    truth = _truth(tf_dir, "libcudnn.so.9", env, work)
    lib = _predicted(tf_dir, env, work)
    assert truth == str(work / "libcudnn.so.9")
    assert (lib.path, lib.via, lib.version) == (truth, "LD_LIBRARY_PATH", "9.1.0")
    assert str(site / "nvidia/cudnn/lib/libcudnn.so.9") in lib.candidates


def _rules() -> loader.LoaderRules:
    rules, problem = loader.measure_rules(Path(sys.executable), {"PATH": "/usr/bin:/bin"})
    if problem:
        pytest.skip(problem)
    return rules


@linux_only
def test_lib_token_in_ld_library_path(build_lib: BuildLib, tmp_path: Path) -> None:
    rules = _rules()
    assert rules.lib
    _site, tf_dir = _layout(build_lib, tmp_path)
    _cudnn(build_lib, tmp_path / "opt" / rules.lib, 90100)
    for value in (f"{tmp_path}/opt/$LIB", f"{tmp_path}/opt/${{LIB}}"):
        env = {"LD_LIBRARY_PATH": value}
        truth = _truth(tf_dir, "libcudnn.so.9", env, tmp_path)
        assert truth == str(tmp_path / "opt" / rules.lib / "libcudnn.so.9")
        assert _predicted(tf_dir, env, tmp_path).path == truth


@linux_only
def test_platform_and_origin_tokens_in_runpath(build_lib: BuildLib, tmp_path: Path) -> None:
    rules = _rules()
    assert rules.platform
    tf_dir = tmp_path / "site-packages" / "tensorflow"
    build_lib(
        "libtensorflow_framework.c",
        tf_dir / "libtensorflow_framework.so.2",
        soname="libtensorflow_framework.so.2",
        runpath=["$ORIGIN/../plat/$PLATFORM"],
    )
    _cudnn(build_lib, tmp_path / "site-packages" / "plat" / rules.platform, 90300)
    truth = _truth(tf_dir, "libcudnn.so.9", {}, tmp_path)
    assert truth == str(tmp_path / "site-packages" / "plat" / rules.platform / "libcudnn.so.9")
    lib = _predicted(tf_dir, {}, tmp_path)
    assert (lib.path, lib.via) == (truth, "RUNPATH")


@linux_only
def test_hwcaps_subfolders_come_before_the_folder(build_lib: BuildLib, tmp_path: Path) -> None:
    rules = _rules()
    hwcaps = [s for s in rules.subdirs if s.startswith("glibc-hwcaps/")]
    if not hwcaps:
        pytest.skip("this loader searches no glibc-hwcaps subfolders")
    _site, tf_dir = _layout(build_lib, tmp_path)
    libs = tmp_path / "libs"
    _cudnn(build_lib, libs, 90100)
    _cudnn(build_lib, libs / hwcaps[-1], 90200)  # the least capable level this CPU supports
    env = {"LD_LIBRARY_PATH": str(libs)}
    truth = _truth(tf_dir, "libcudnn.so.9", env, tmp_path)
    assert truth == str(libs / hwcaps[-1] / "libcudnn.so.9")
    lib = _predicted(tf_dir, env, tmp_path)
    assert (lib.path, lib.version) == (truth, "9.2.0")


@linux_only
def test_rpath_without_runpath_comes_before_ld_library_path(
    build_lib: BuildLib, tmp_path: Path
) -> None:
    tf_dir = tmp_path / "site-packages" / "tensorflow"
    build_lib(
        "libtensorflow_framework.c",
        tf_dir / "libtensorflow_framework.so.2",
        soname="libtensorflow_framework.so.2",
        rpath=["$ORIGIN/../old"],
    )
    _cudnn(build_lib, tmp_path / "site-packages" / "old", 90100)
    _cudnn(build_lib, tmp_path / "llp", 90300)
    env = {"LD_LIBRARY_PATH": str(tmp_path / "llp")}
    truth = _truth(tf_dir, "libcudnn.so.9", env, tmp_path)
    assert truth == str(tmp_path / "site-packages" / "old" / "libcudnn.so.9")
    lib = _predicted(tf_dir, env, tmp_path)
    assert (lib.path, lib.via) == (truth, "RPATH")


@linux_only
def test_an_empty_runpath_entry_is_the_current_folder(build_lib: BuildLib, tmp_path: Path) -> None:
    tf_dir = tmp_path / "site-packages" / "tensorflow"
    build_lib(
        "libtensorflow_framework.c",
        tf_dir / "libtensorflow_framework.so.2",
        soname="libtensorflow_framework.so.2",
        runpath=["$ORIGIN/../nothing", ""],
    )
    work = tmp_path / "work"
    _cudnn(build_lib, work, 90100)
    truth = _truth(tf_dir, "libcudnn.so.9", {}, work)
    lib = _predicted(tf_dir, {}, work)
    assert lib.path == truth


@pytest.mark.parametrize(
    ("entry", "expanded"),
    [
        ("$ORIGIN/../lib", "/o/../lib"),
        ("${ORIGIN}/x", "/o/x"),
        ("/opt/$LIB/$PLATFORM", "/opt/lib64/x86_64"),
        ("/opt/${LIB}x", "/opt/lib64x"),
        ("/opt/$LIBX", "/opt/$LIBX"),  # not a token: left as it is, like glibc
        ("/plain", "/plain"),
    ],
)
def test_token_expansion(entry: str, expanded: str) -> None:
    rules = loader.LoaderRules(lib="lib64", platform="x86_64")
    assert loader.expand_tokens(entry, "/o", rules) == expanded


def test_an_entry_with_an_unknown_token_value_is_dropped() -> None:
    assert loader.expand_tokens("/opt/$PLATFORM", "/o", loader.LoaderRules()) is None


def test_parse_rules_from_ld_debug() -> None:
    marker = "/@tffix-ld-marker@/lib/x86_64-linux-gnu/@@/x86_64"
    line = (
        f"     15205:\t search path={marker}/glibc-hwcaps/x86-64-v3:{marker}/glibc-hwcaps/x86-64-v2"
        f":{marker}/tls:{marker}\t\t(LD_LIBRARY_PATH)"
    )
    rules = loader.parse_rules("     15205:\tfind library=libc.so.6 [0]; searching\n" + line)
    assert rules == loader.LoaderRules(
        lib="lib/x86_64-linux-gnu",
        platform="x86_64",
        subdirs=("glibc-hwcaps/x86-64-v3", "glibc-hwcaps/x86-64-v2", "tls", ""),
    )
    assert loader.parse_rules("nothing") is None


@linux_only
def test_origin_token_in_ld_library_path_is_the_programs_real_folder(
    build_lib: BuildLib, tmp_path: Path
) -> None:
    """``$ORIGIN`` in ``LD_LIBRARY_PATH`` is the program's folder, as ``/proc/self/exe`` names
    it: the interpreter's real folder, not the folder of a link to it."""
    _site, tf_dir = _layout(build_lib, tmp_path)
    link = tmp_path / "a" / "b" / "c" / "d" / "e" / "f" / "g" / "python"
    link.parent.mkdir(parents=True)
    link.symlink_to(Path(sys.executable).resolve())
    _cudnn(build_lib, tmp_path / "by-origin", 90100)
    below = os.path.relpath(tmp_path / "by-origin", Path(sys.executable).resolve().parent)
    for value in (f"$ORIGIN/{below}", f"${{ORIGIN}}/{below}"):
        env = {"LD_LIBRARY_PATH": value}
        truth = _truth(tf_dir, "libcudnn.so.9", env, tmp_path, link)
        assert truth == str(tmp_path / "by-origin" / "libcudnn.so.9")
        lib = _predicted(tf_dir, env, tmp_path, link)
        assert (lib.path, lib.via, lib.version) == (truth, "LD_LIBRARY_PATH", "9.1.0")


@linux_only
def test_relative_and_semicolon_separated_entries(build_lib: BuildLib, tmp_path: Path) -> None:
    """glibc splits ``LD_LIBRARY_PATH`` on ``;`` as on ``:``, and reads a relative entry from
    the current folder."""
    _site, tf_dir = _layout(build_lib, tmp_path)
    work = tmp_path / "work"
    _cudnn(build_lib, work / "rel" / "lib", 90100)
    for value in ("rel/lib", f"{tmp_path / 'nowhere'};rel/lib"):
        env = {"LD_LIBRARY_PATH": value}
        truth = _truth(tf_dir, "libcudnn.so.9", env, work)
        assert truth == str(work / "rel" / "lib" / "libcudnn.so.9")
        assert _predicted(tf_dir, env, work).path == truth


@linux_only
def test_a_preloaded_library_is_what_a_later_dlopen_gets(
    build_lib: BuildLib, tmp_path: Path
) -> None:
    """``LD_PRELOAD`` comes before every search folder: the framework's ``dlopen`` of the
    soname gets the object already loaded."""
    site, tf_dir = _layout(build_lib, tmp_path)
    pre = _cudnn(build_lib, tmp_path / "pre", 90100)
    env = {"LD_PRELOAD": str(pre)}
    truth = _truth(tf_dir, "libcudnn.so.9", env, tmp_path)
    assert truth == str(pre)
    lib = _predicted(tf_dir, env, tmp_path)
    assert (lib.path, lib.via, lib.version) == (truth, "preloaded", "9.1.0")
    assert str(site / "nvidia/cudnn/lib/libcudnn.so.9") in lib.candidates


@linux_only
def test_the_measured_search_order_is_the_loaders_folder_by_folder(
    build_lib: BuildLib, tmp_path: Path
) -> None:
    """Invariant against the real loader: a cuDNN in every subfolder this loader searches
    (glibc-hwcaps levels, legacy ones, the folder itself) under an ``LD_LIBRARY_PATH`` folder,
    and in the hwcaps subfolders of TensorFlow's RUNPATH folder. Taking away the file the
    loader maps, one at a time, the prediction names the same file each time, down to none."""
    rules = _rules()
    site, tf_dir = _layout(build_lib, tmp_path)
    llp = tmp_path / "llp"
    wheel = site / "nvidia" / "cudnn" / "lib"
    placed = [llp / sub / "libcudnn.so.9" for sub in rules.subdirs]
    placed += [wheel / sub / "libcudnn.so.9" for sub in rules.subdirs if sub.startswith("glibc")]
    for i, path in enumerate(placed):
        _cudnn(build_lib, path.parent, 90000 + 100 * (i % 100))
    env = {"LD_LIBRARY_PATH": str(llp)}
    seen: list[str] = []
    while True:
        truth = _truth(tf_dir, "libcudnn.so.9", env, tmp_path)
        lib = _predicted(tf_dir, env, tmp_path)
        assert lib.path == truth, (seen, rules)
        if truth is None:
            break
        seen.append(truth)
        Path(truth).unlink()
    assert len(seen) == len(placed) + 1  # every placed file, then the wheel's own
    assert seen[-1] == str(wheel / "libcudnn.so.9")


_DT_RPATH, _DT_RUNPATH, _DT_RELACOUNT = 15, 29, 0x6FFFFFF9


def _add_runpath(library: Path, tail: str) -> bool:
    """Give *library* (ELF64 little-endian, linked with a ``DT_RPATH`` that ends in
    ``:<tail>``) a ``DT_RUNPATH`` of *tail* too, as old linkers wrote both: the
    ``DT_RELACOUNT`` entry (a hint the loader does without) becomes a ``DT_RUNPATH`` pointing
    at the last entry of the ``DT_RPATH`` string. False when the library has no such entry."""
    import struct

    data = bytearray(library.read_bytes())
    (phoff,) = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    dynamic, loads = None, []
    for i in range(phnum):
        p_type, _flags, offset, vaddr, _paddr, filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 2:  # PT_DYNAMIC
            dynamic = offset
        elif p_type == 1:  # PT_LOAD
            loads.append((vaddr, offset, filesz))
    if dynamic is None:
        return False
    entries: dict[int, tuple[int, int]] = {}  # tag -> (file offset of the entry, value)
    at = dynamic
    while (tag := struct.unpack_from("<q", data, at)[0]) != 0:
        entries.setdefault(tag, (at, struct.unpack_from("<Q", data, at + 8)[0]))
        at += 16
    if not {_DT_RPATH, _DT_RELACOUNT, 5} <= set(entries):
        return False
    address = entries[5][1]  # DT_STRTAB
    strtab = next(o + address - v for v, o, n in loads if v <= address < v + n)
    rpath = entries[_DT_RPATH][1]
    text = data[strtab + rpath :].split(b"\0", 1)[0].decode()
    if not text.endswith(":" + tail):
        return False
    spare = entries[_DT_RELACOUNT][0]
    struct.pack_into("<qQ", data, spare, _DT_RUNPATH, rpath + len(text) - len(tail))
    library.write_bytes(bytes(data))
    return True


@linux_only
def test_rpath_is_ignored_when_the_library_has_a_runpath(
    build_lib: BuildLib, tmp_path: Path
) -> None:
    """ld.so(8): DT_RPATH is used only when DT_RUNPATH does not exist. A library with both
    (as older linkers wrote them) is searched through its RUNPATH, after LD_LIBRARY_PATH."""
    tf_dir = tmp_path / "site-packages" / "tensorflow"
    old, new = tmp_path / "old", tmp_path / "new"
    framework = build_lib(
        "libtensorflow_framework.c",
        tf_dir / "libtensorflow_framework.so.2",
        soname="libtensorflow_framework.so.2",
        rpath=[str(old), str(new)],
    )
    if not _add_runpath(framework, str(new)):
        pytest.skip("the linker left no spare dynamic entry to turn into a DT_RUNPATH")
    from tffix.probes.elf import read_dynamic

    dyn = read_dynamic(framework)
    assert (dyn.rpath, dyn.runpath) == ((str(old), str(new)), (str(new),))
    _cudnn(build_lib, old, 90100)
    _cudnn(build_lib, new, 90300)
    truth = _truth(tf_dir, "libcudnn.so.9", {}, tmp_path)
    assert truth == str(new / "libcudnn.so.9")
    lib = _predicted(tf_dir, {}, tmp_path)
    assert (lib.path, lib.via, lib.version) == (truth, "RUNPATH", "9.3.0")
    # and LD_LIBRARY_PATH still comes first
    _cudnn(build_lib, tmp_path / "llp", 90200)
    env = {"LD_LIBRARY_PATH": str(tmp_path / "llp")}
    truth = _truth(tf_dir, "libcudnn.so.9", env, tmp_path)
    assert truth == str(tmp_path / "llp" / "libcudnn.so.9")
    assert _predicted(tf_dir, env, tmp_path).path == truth
