"""Every cause tffix knows, one module per family, listed in one table.

A family module holds its causes' detection (``Facts`` -> ``Detection``) and fixes
(``Detection`` -> alternative step lists); ``rules/causes.toml`` holds their data (severity,
fix side, rank, blocks, hides). ``FAMILIES`` is the order the detectors run in; ``CAUSES``
maps every id to its ``Cause``. ``tests/diagnosis/test_registry.py`` checks that the two
agree with the rules, the report and the fixtures.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tffix.causes import (
    code,
    container,
    cudnn,
    devices,
    distribution,
    driver,
    entrypoints,
    healthy,
    libraries,
    log,
    platform,
    xla,
)
from tffix.causes.base import (
    Alternative,
    Cause,
    Detection,
    Detector,
    Family,
    Fixer,
    Section,
    detection,
)

__all__ = [
    "CAUSES",
    "DETECTORS",
    "FAMILIES",
    "Alternative",
    "Cause",
    "Detection",
    "Detector",
    "Family",
    "Fixer",
    "Section",
    "detection",
]

FAMILIES: tuple[Family, ...] = (
    platform.FAMILY,
    container.FAMILY,
    driver.FAMILY,
    distribution.FAMILY,
    devices.FAMILY,
    libraries.FAMILY,
    cudnn.FAMILY,
    xla.FAMILY,
    entrypoints.FAMILY,
    log.FAMILY,
    code.FAMILY,
    healthy.FAMILY,
)
"""Every family, in layer order (the order detectors run in; ranking decides the output)."""

DETECTORS: tuple[Detector, ...] = tuple(d for family in FAMILIES for d in family.detectors)

CAUSES: Mapping[str, Cause] = MappingProxyType(
    {cause.id: cause for family in FAMILIES for cause in family.causes}
)
"""cause id -> its ``Cause`` (section and fix)."""
