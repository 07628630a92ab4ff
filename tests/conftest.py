"""Shared test setup: the simulated GPU machine is a pytest plugin in tests/harness."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.harness.plugin"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def fixture_path(*parts: str) -> Path:
    """A file under fixtures/, asserted to exist (a typo fails loudly, not as 'no data')."""
    path = FIXTURES.joinpath(*parts)
    assert path.exists(), f"missing fixture {path}"
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove the variables that would make tests depend on the developer's shell."""
    for name in ("VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
