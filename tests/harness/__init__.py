"""The simulated GPU machine used by tffix's tests (fixtures in ``tests.harness.plugin``)."""

from __future__ import annotations

from tests.harness.sim import SimEnv, TfReport, load_scenario, scenario_names

__all__ = ["SimEnv", "TfReport", "load_scenario", "scenario_names"]
