"""Package names as PEP 503 compares them, without importing ``packaging.utils``.

``packaging.utils`` imports ``packaging.tags`` (and with it ``logging``, ``platform``,
``sysconfig``, ``subprocess``) at import time, a fifth of a snapshot diagnosis's start-up, for
one string function. This is that function; ``tests/test_pkgname.py`` holds it to
``packaging.utils.canonicalize_name`` over many names.
"""

from __future__ import annotations


def canonicalize_name(name: str) -> str:
    """*name* normalised as PEP 503 says: lower case, each run of ``-``, ``_``, ``.`` one ``-``
    (``re.sub(r"[-_.]+", "-", name).lower()``)."""
    value = name.lower().replace("_", "-").replace(".", "-")
    while "--" in value:
        value = value.replace("--", "-")
    return value
