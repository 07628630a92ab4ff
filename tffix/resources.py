"""Where the shipped rules data is: inside the installed wheel, or the checkout's ``rules/``."""

from __future__ import annotations

import importlib.resources
from importlib.abc import Traversable
from pathlib import Path


def rules_dir() -> Traversable:
    """The folder of rule files.

    A wheel carries ``rules/`` as the package ``tffix.rules``. An editable install of the
    checkout cannot map a data folder to a package name, so there the folder beside the
    ``tffix`` package is used.
    """
    try:
        return importlib.resources.files("tffix.rules")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "rules"
