"""Real venvs and a tiny local wheel folder for the repair tests (no network, no harness).

``wheelhouse`` (session): ``demo 1.0``, ``demo 2.0`` (requires ``demodep==1.0``), ``demodep
1.0``, ``extra 1.0``, ``sharedpkg`` and ``sharedpkg-cpu`` 1.0 (both install ``shared/``, with
different bytes), and ``bigdemo 1.0`` (a few MB, so a kill can land while pip works).
``demo_venv``: a fresh virtualenv with ``demo==1.0`` installed and an environment that makes
pip see only the wheel folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.probes.wheels import write_wheel


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    write_wheel(folder, "demo", "1.0", {"demo/__init__.py": "VERSION = '1.0'\n"})
    write_wheel(
        folder,
        "demo",
        "2.0",
        {"demo/__init__.py": "VERSION = '2.0'\n"},
        requires=["demodep==1.0"],
    )
    write_wheel(folder, "demodep", "1.0", {"demodep/__init__.py": ""})
    write_wheel(folder, "extra", "1.0", {"extra.py": "X = 1\n"})
    # two distributions that share one package folder, as tensorflow and tensorflow-cpu do
    for name, variant in (("sharedpkg", "gpu"), ("sharedpkg-cpu", "cpu")):
        write_wheel(
            folder,
            name,
            "1.0",
            {
                "shared/__init__.py": f"VARIANT = {variant!r}\n",
                "shared/core.py": f"BUILD = {variant!r} * 1000\n",
            },
        )
    write_wheel(
        folder,
        "bigdemo",
        "1.0",
        {"bigdemo/__init__.py": "", "bigdemo/blob.bin": os.urandom(24 << 20)},
    )
    return folder


@dataclass(frozen=True)
class DemoVenv:
    venv: Path
    python: Path
    env: dict[str, str]
    """The user's environment: pip sees only the wheel folder."""

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-m", "pip", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def freeze(self) -> str:
        return self.pip("freeze", "--all").stdout

    def scripts(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((self.venv / "bin").glob("*ctivate*"))}


def pip_only_env(wheelhouse: Path, home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PIP_FIND_LINKS": str(wheelhouse),
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_NO_COMPILE": "1",
    }


def make_demo_venv(folder: Path, wheelhouse: Path) -> DemoVenv:
    venv = folder / "venv"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "virtualenv",
            "-q",
            "--no-setuptools",
            "--no-wheel",
            "--no-periodic-update",
            str(venv),
        ],
        check=True,
        capture_output=True,
    )
    home = folder / "home"
    home.mkdir(exist_ok=True)
    demo = DemoVenv(venv, venv / "bin" / "python", pip_only_env(wheelhouse, home))
    done = demo.pip("install", "demo==1.0")
    assert done.returncode == 0, done.stderr
    return demo


@pytest.fixture
def demo_venv(tmp_path: Path, wheelhouse: Path) -> DemoVenv:
    return make_demo_venv(tmp_path, wheelhouse)


# --------------------------------------------------------------------------- fault report

FAULTS: list[tuple[str, bool]] = []
"""(fault injected, anything lost) for every fault-injection case that ran."""


def record_fault(name: str, lost: bool) -> None:
    """Count one injected fault; *lost* is True when the venv was neither repaired nor as before."""
    FAULTS.append((name, lost))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FAULTS:
        return
    lost = [name for name, bad in FAULTS if bad]
    terminalreporter.write_sep("-", "tffix fault injection")
    terminalreporter.write_line(
        f"faults injected: {len(FAULTS)}; cases with anything lost: {len(lost)}"
    )
    for name, bad in FAULTS:
        terminalreporter.write_line(f"  {'LOST' if bad else 'ok  '} {name}")
