"""Shared parts for the probe tests: shared libraries compiled from fixtures/loader at test
time, and a tiny wheel writer for real venvs installed from a local folder."""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from tests.conftest import fixture_path

BuildLib = Callable[..., Path]


def compile_lib(
    cache: Path,
    source: str,
    dest: Path,
    *,
    soname: str | None = None,
    defines: Mapping[str, object] | None = None,
    runpath: Sequence[str] = (),
    rpath: Sequence[str] = (),
    link: Sequence[Path] = (),
) -> Path:
    """Compile ``fixtures/loader/<source>`` with gcc into the shared library *dest*.

    Builds are cached in *cache* per argument set; each call copies the cached file to *dest*.
    Skips the test when there is no C compiler.
    """
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler (gcc) to build the test libraries")
    key = repr(
        (
            source,
            soname,
            sorted((defines or {}).items()),
            list(runpath),
            list(rpath),
            [str(p) for p in link],
        )
    )
    out = cache / f"lib{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"
    if not out.exists():
        argv = [gcc, "-shared", "-fPIC", "-o", str(out), str(fixture_path("loader", source))]
        argv += [f"-D{k}={v}" for k, v in (defines or {}).items()]
        if soname:
            argv.append(f"-Wl,-soname,{soname}")
        if runpath:
            argv += ["-Wl,--enable-new-dtags", "-Wl,-rpath," + ":".join(runpath)]
        if rpath:
            argv += ["-Wl,--disable-new-dtags", "-Wl,-rpath," + ":".join(rpath)]
        for lib in link:
            argv += [f"-L{lib.parent}", f"-l:{lib.name}"]
        argv.append("-ldl")
        subprocess.run(argv, check=True, capture_output=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out, dest)
    return dest


@pytest.fixture(scope="session")
def build_lib(tmp_path_factory: pytest.TempPathFactory) -> BuildLib:
    """``build_lib(source, dest, soname=…, defines=…, runpath=…, rpath=…, link=…)`` -> dest."""
    cache = tmp_path_factory.mktemp("libcache")
    return functools.partial(compile_lib, cache)


@pytest.fixture(scope="module")
def project_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real venv (no pip) at ``proj/.venv``, the layout editors and services name."""
    import venv

    root = tmp_path_factory.mktemp("proj") / "proj" / ".venv"
    venv.EnvBuilder(with_pip=False).create(root)
    return root
