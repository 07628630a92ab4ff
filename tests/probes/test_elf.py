"""The ELF reader against libraries gcc builds with known SONAME, RUNPATH and RPATH."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.probes.conftest import BuildLib
from tffix.probes.elf import ElfError, expand_origin, parse_dynamic, read_dynamic


def test_reads_soname_and_runpath(build_lib: BuildLib, tmp_path: Path) -> None:
    lib = build_lib(
        "libtensorflow_framework.c",
        tmp_path / "libtensorflow_framework.so.2",
        soname="libtensorflow_framework.so.2",
        runpath=["$ORIGIN/../nvidia/cudnn/lib", "/opt/cuda/lib64"],
    )
    dyn = read_dynamic(lib)
    assert dyn.soname == "libtensorflow_framework.so.2"
    assert dyn.runpath == ("$ORIGIN/../nvidia/cudnn/lib", "/opt/cuda/lib64")
    assert dyn.rpath == ()


def test_reads_needed(build_lib: BuildLib, tmp_path: Path) -> None:
    dep = build_lib("libdep.c", tmp_path / "libdep.so", soname="libdep.so")
    lib = build_lib("libneedsdep.c", tmp_path / "libneeds.so", link=[dep])
    assert "libdep.so" in read_dynamic(lib).needed


def test_reads_old_style_rpath(build_lib: BuildLib, tmp_path: Path) -> None:
    lib = build_lib("libcudnn.c", tmp_path / "libold.so", rpath=["/legacy/lib"])
    dyn = read_dynamic(lib)
    assert dyn.rpath == ("/legacy/lib",)
    assert dyn.runpath == ()


def test_reads_the_running_interpreter() -> None:
    # A real executable from the system, not built by the test.
    dyn = read_dynamic(sys.executable)
    assert dyn.machine is not None


@pytest.mark.parametrize("data", [b"", b"not an elf file at all", b"\x7fELF\x09\x01" + b"\0" * 60])
def test_rejects_what_is_not_elf(data: bytes) -> None:
    with pytest.raises(ElfError):
        parse_dynamic(data)


def test_truncated_elf_is_an_error(build_lib: BuildLib, tmp_path: Path) -> None:
    lib = build_lib("libcudnn.c", tmp_path / "libcut.so", soname="libcudnn.so.9")
    with pytest.raises(ElfError):
        parse_dynamic(lib.read_bytes()[:80])


def test_expand_origin() -> None:
    assert expand_origin(("$ORIGIN/../nvidia/cudnn/lib", "${ORIGIN}/x", "/abs"), "/sp/tf") == (
        "/sp/nvidia/cudnn/lib",
        "/sp/tf/x",
        "/abs",
    )
