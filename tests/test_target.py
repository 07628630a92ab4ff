"""Choosing and classifying the target environment, and refusing what cannot be one."""

from __future__ import annotations

import os
import sys
import venv
from pathlib import Path

import pytest

from tffix.errors import UsageError
from tffix.probes.target import TargetKind, classify, resolve_target


@pytest.fixture(scope="module")
def real_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    return path


def test_venv_is_classified_and_asked_through_its_own_interpreter(real_venv: Path) -> None:
    target = resolve_target(venv=str(real_venv), environ={"PATH": os.environ["PATH"]})
    assert target.kind is TargetKind.VENV
    assert target.prefix == real_venv
    assert target.venv == real_venv
    assert target.version == ".".join(map(str, sys.version_info[:3]))
    assert any(str(p).startswith(str(real_venv)) for p in target.site_packages)
    assert target.named_by == "--venv"


def test_virtual_env_variable_is_used(real_venv: Path, tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "VIRTUAL_ENV": str(real_venv)}
    target = resolve_target(environ=env, cwd=tmp_path)
    assert target.prefix == real_venv and target.named_by == "VIRTUAL_ENV"


def test_dot_venv_in_the_current_folder(real_venv: Path, tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(real_venv)
    target = resolve_target(environ={"PATH": os.environ["PATH"]}, cwd=tmp_path)
    assert target.named_by == "./.venv"


def test_system_python_is_not_modifiable() -> None:
    target = resolve_target(python=sys.base_prefix + "/bin/python3", environ=dict(os.environ))
    assert target.kind is TargetKind.SYSTEM
    assert not target.is_modifiable


def test_conda_layouts(tmp_path: Path) -> None:
    env = tmp_path / "envs" / "ml"
    (env / "conda-meta").mkdir(parents=True)
    assert classify(env, env) is TargetKind.CONDA
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "condabin").mkdir()
    assert classify(tmp_path, tmp_path) is TargetKind.CONDA_BASE


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nothing", "no such folder"),
        (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "is a file"),
        (lambda p: p, "not a virtualenv"),
    ],
)
def test_bad_venv_arguments(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=message):
        resolve_target(venv=str(make(tmp_path)), environ={})


def test_broken_interpreter(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    py = tmp_path / "bin" / "python"
    py.write_text("#!/bin/sh\necho 'Fatal Python error: init_fs_encoding' >&2\nexit 1\n")
    py.chmod(0o755)
    (tmp_path / "pyvenv.cfg").write_text("home = /nonexistent\n")
    with pytest.raises(UsageError, match="does not run: Fatal Python error"):
        resolve_target(venv=str(tmp_path), environ={})


def test_dangling_interpreter_link(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").symlink_to("/nonexistent/python3.9")
    (tmp_path / "pyvenv.cfg").write_text("home = /nonexistent\n")
    with pytest.raises(UsageError, match="does not run: could not start"):
        resolve_target(venv=str(tmp_path), environ={})
