"""pytest fixtures of the simulated GPU machine (see fixtures/README.md and notes on the API).

- ``sim_index`` (session): the local wheel folder, built once (cached by content hash).
- ``make_scenario`` (function): ``make_scenario(name) -> SimEnv``, a fresh machine + venv.
- ``sim_scenarios`` (session): ``sim_scenarios(name) -> SimEnv`` shared read-only environments,
  built in parallel on first use, for tests that only look; ``sim_scenarios.private(name)`` a
  copy of its own for a test marked ``sim_private`` (built ahead, in parallel, too).
- ``make_machine`` (function): ``make_machine(machine_spec) -> Path``, only a fake driver folder.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.harness import build, sim
from tests.harness.sim import SimEnv


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sim_private: the test takes its own copy of its `scenario` (sim_scenarios.private), "
        "built ahead of time in parallel with the others",
    )


@pytest.fixture(scope="session")
def sim_index() -> Path:
    """Every fake wheel, in one find-links folder."""
    return build.build_index()


@pytest.fixture
def make_scenario(
    sim_index: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], SimEnv]:
    """Factory: a scenario on a fresh simulated machine with its own real venv."""

    def factory(name: str) -> SimEnv:
        folder = tmp_path_factory.mktemp(f"sim-{name}")
        return sim.make_env(name, folder, sim_index)

    return factory


class _SharedScenarios:
    """Scenario environments built once per session, several at a time (pip is mostly waiting)."""

    def __init__(self, index: Path, factory: pytest.TempPathFactory) -> None:
        self._index = index
        self._factory = factory
        self._lock = threading.Lock()
        self._futures: dict[str, Future[SimEnv]] = {}
        self._private: dict[str, list[Future[SimEnv]]] = {}
        workers = int(os.environ.get("TFFIX_SIM_WORKERS", "0")) or max(3, (os.cpu_count() or 2) + 1)
        self._pool = ThreadPoolExecutor(max_workers=workers)

    def _build(self, name: str) -> SimEnv:
        return sim.make_env(name, self._factory.mktemp(f"shared-{name}"), self._index)

    def prefetch(self, names: list[str]) -> None:
        with self._lock:
            for name in names:
                if name not in self._futures:
                    self._futures[name] = self._pool.submit(self._build, name)

    def __call__(self, name: str) -> SimEnv:
        self.prefetch([name])
        return self._futures[name].result()

    def prefetch_private(self, names: list[str]) -> None:
        with self._lock:
            for name in names:
                self._private.setdefault(name, []).append(self._pool.submit(self._build, name))

    def private(self, name: str) -> SimEnv:
        """A copy of scenario *name* that only the calling test uses (it may change it)."""
        with self._lock:
            queue = self._private.get(name)
            future = queue.pop(0) if queue else self._pool.submit(self._build, name)
        return future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def sim_scenarios(
    sim_index: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
):
    """``sim_scenarios(name)``: a shared, read-only environment of scenario *name*."""
    shared = _SharedScenarios(sim_index, tmp_path_factory)
    # Start building every scenario a parametrized test of this session will ask for.
    wanted, private = [], []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if (
            callspec is None
            or "scenario" not in callspec.params
            or "sim_scenarios" not in item.fixturenames
        ):
            continue
        if item.get_closest_marker("sim_private"):
            private.append(callspec.params["scenario"])
        else:
            wanted.append(callspec.params["scenario"])
    shared.prefetch(list(dict.fromkeys(wanted)))
    shared.prefetch_private(private)
    yield shared
    shared.close()


@pytest.fixture
def make_machine(tmp_path: Path) -> Callable[[Mapping[str, Any]], Path]:
    """Factory: only a fake driver folder for *machine* (the ``[machine]`` table of a scenario)."""

    def factory(machine: Mapping[str, Any], name: str = "machine") -> Path:
        return sim.write_machine(tmp_path / name, machine, name)

    return factory
