"""Every plan is installable (opt-in: needs the real package index, ``-m index``).

For each fixture's plan, pip resolves the pip-install steps for the snapshot's Python version
and platform (metadata only: ``--dry-run --use-feature=fast-deps``), and the TensorFlow it
resolves must have all of its ``[and-cuda]`` requirements met by what it resolved.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.diagnosis.conftest import REALWORLD, SNAPSHOTS, cause_fixtures, load
from tffix.diagnosis import diagnose
from tffix.model import StepKind
from tffix.ruleset import load_rules

pytestmark = pytest.mark.index

PLATFORMS = {
    "linux": [
        "manylinux_2_35_x86_64",
        "manylinux_2_28_x86_64",
        "manylinux_2_27_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
    ],
    "macos": ["macosx_14_0_arm64", "macosx_12_0_arm64"],
}
FIXTURES = [*cause_fixtures(), SNAPSHOTS / "healthy.json", *sorted(REALWORLD.glob("*-*.json"))]


def plan_requirements(path: Path) -> tuple[str, str, tuple[str, ...]]:
    snap = load(path)
    diag = diagnose(snap, load_rules())
    reqs = tuple(r for s in diag.plan if s.kind == StepKind.PIP_INSTALL for r in s.requirements)
    version = snap.python.version or "3.11"
    python = ".".join(version.split(".")[:2])
    os_name = snap.platform.os if snap.platform.os in PLATFORMS else "linux"
    return python, os_name, reqs


@cache
def resolve(python: str, os_name: str, reqs: tuple[str, ...]) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "r.json"
        argv = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "--use-feature=fast-deps",
            "--only-binary=:all:",
            "--python-version",
            python,
            "--target",
            str(Path(tmp) / "t"),
        ]
        for plat in PLATFORMS[os_name]:
            argv += ["--platform", plat]
        done = subprocess.run([*argv, *reqs], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(report.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_plan_is_installable(path: Path):
    python, os_name, reqs = plan_requirements(path)
    if not reqs:
        pytest.skip("no pip step in this plan")
    report = resolve(python, os_name, reqs)
    resolved = {
        canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
        for i in report["install"]
    }
    for text in reqs:
        req = Requirement(text)
        assert req.specifier.contains(resolved[canonicalize_name(req.name)], prereleases=True)
    tf = next((i for i in report["install"] if i["metadata"]["name"] == "tensorflow"), None)
    if tf is None:
        return
    env = default_environment() | {
        "python_version": python,
        "platform_system": "Linux",
        "sys_platform": "linux",
        "platform_machine": "x86_64",
        "extra": "and-cuda",
    }
    for text in tf["metadata"].get("requires_dist", []):
        req = Requirement(text)
        if req.marker is None or "extra" not in str(req.marker) or not req.marker.evaluate(env):
            continue
        have = resolved.get(canonicalize_name(req.name))
        assert have is not None, f"{req.name} not resolved"
        assert req.specifier.contains(have, prereleases=True), (req, have)
