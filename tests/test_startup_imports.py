"""What a snapshot diagnosis imports, as a real child process sees it.

``tffix diagnose --snapshot F`` is meant to be quick as a whole process (README: development,
``benchmarks/cli_speed.py``). Most of a Python program's start-up is importing, so the modules
that this path does not need are kept off it; this test names them, so that an import added at
the top of a module on the path (``packaging.requirements`` pulls ``packaging.tags`` and
``logging``; the probes pull ``psutil`` and ``subprocess``) fails here instead of slowly
costing every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import fixture_path

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = fixture_path("snapshots", "cuda-libs-not-found", "pos-tf2161-runpath-regression.json")

_CHILD = """\
import contextlib, io, json, sys
from tffix.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules), "out": out.getvalue()}))
"""

NOT_ON_THE_PATH = (
    "packaging.tags",
    "packaging.utils",
    "packaging.requirements",
    "packaging.markers",
    "logging",
    "platform",
    "sysconfig",
    "subprocess",
    "tomllib",
    "tempfile",
    "hashlib",
    "questionary",
    "prompt_toolkit",
    "psutil",
    "pynvml",
    "pip_api",
    "argcomplete",
    "tffix.probes",
    "tffix.effects",
    "tffix.collect",
    "tffix.scan",
    "tffix.prompt",
    "tffix._subprocess",
)
"""Modules (and packages, with everything under them) a snapshot diagnosis does not import."""


def _run(argv: list[str], cache: Path) -> dict[str, object]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    env.pop("TFFIX_NO_CACHE", None)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
        env=env,
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def _loaded(modules: object, names: tuple[str, ...]) -> list[str]:
    assert isinstance(modules, list)
    return sorted(m for m in modules if any(m == n or m.startswith(f"{n}.") for n in names))


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_snapshot_diagnosis_imports_only_what_it_needs(extra: list[str], tmp_path: Path) -> None:
    argv = ["diagnose", "--snapshot", str(SNAPSHOT), *extra]
    cold = _run(argv, tmp_path)  # parses the TOML and fills the rules cache
    warm = _run(argv, tmp_path)  # reads the rules cache
    assert cold["code"] == warm["code"] == 1  # problems tffix can fix: the path really ran
    assert cold["out"] == warm["out"] and "LD_LIBRARY_PATH" in str(warm["out"])
    assert "tomllib" in _loaded(cold["modules"], ("tomllib",))  # the cold run did parse TOML
    assert _loaded(warm["modules"], NOT_ON_THE_PATH) == []
    # Only a cold run parses TOML and writes the cache (atomically, through tempfile).
    cold_only = ("tomllib", "tempfile")
    assert _loaded(cold["modules"], tuple(n for n in NOT_ON_THE_PATH if n not in cold_only)) == []


def test_version_and_help_import_no_engine(tmp_path: Path) -> None:
    engine = ("tffix.model", "tffix.diagnosis", "tffix.ruleset", "dataclasses", "packaging")
    engine += ("typing", "shutil")  # a tenth of `tffix --help` between them
    for argv in (["--version"], ["--help"]):
        child = (
            "import json, sys\nfrom tffix.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(sys.modules)))"
        )
        done = subprocess.run(
            [sys.executable, "-c", child, *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd=ROOT,
        )
        assert _loaded(json.loads(done.stdout.splitlines()[-1]), engine) == [], argv


@pytest.mark.parametrize("columns", [None, "", "abc", "0", "-3", "1", "57", "120"])
def test_help_width_is_shutils(columns: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from tffix.cli import terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns
