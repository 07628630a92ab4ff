"""Where the shipped rules data is: inside the installed wheel, or the checkout's ``rules/``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Traversable


def rules_dir() -> Traversable:
    """The folder of rule files.

    A wheel carries ``rules/`` as the package ``tffix.rules``: on disk that is the folder
    ``tffix/rules`` beside this file, read directly (``importlib.resources`` costs a tenth
    of ``diagnose --snapshot``'s start-up in imports). An editable install of the checkout
    cannot map a data folder to a package name, so there the folder beside the ``tffix``
    package is used. Only a package that is not on disk (a zip) goes through
    ``importlib.resources``.
    """
    here = Path(__file__).resolve().parent
    for folder in (here / "rules", here.parent / "rules"):
        if (folder / "causes.toml").is_file():
            return folder
    import importlib.resources

    try:
        return importlib.resources.files("tffix.rules")
    except ModuleNotFoundError:
        return here.parent / "rules"
