"""JSON Schemas of the documents tffix writes, shipped with it (``<name>-<version>.schema.json``).

Users of the JSON need nothing outside the package: ``schema_path("diagnosis", 1)``.
"""

from __future__ import annotations

import importlib.resources
from importlib.abc import Traversable


def schema_path(name: str, version: int = 1) -> Traversable:
    """The schema file of the ``tffix.<name>/<version>`` document."""
    return importlib.resources.files(__name__) / f"{name}-{version}.schema.json"
