"""tffix.pkgname.canonicalize_name against packaging's own function, over many names."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from packaging.utils import canonicalize_name as packaging_canonicalize

from tffix.pkgname import canonicalize_name

_ALPHABET = "aZ09-_. İKß\u212a\u0130\u03a3é"
"""Separators, case, digits, and letters whose lower case is longer or odd (İ, ß, Kelvin sign)."""


def _names() -> list[str]:
    rng = random.Random(503)
    fixed = [
        "",
        "-",
        "_",
        ".",
        "--",
        "a",
        "Django",
        "oslo.concurrency",
        "nvidia-cudnn-cu12",
        "NVIDIA_CUDNN_CU12",
        "nvidia.cudnn..cu12",
        "tf_nightly",
        "tensorflow-GPU",
        "a-_-.b",
        "a___b",
        "a......b",
        "-leading",
        "trailing_",
        "zope.interface",
        "ml_dtypes",
    ]
    short = ["".join(p) for n in range(1, 4) for p in itertools.product(_ALPHABET, repeat=n)]
    rand = ["".join(rng.choice(_ALPHABET) for _ in range(rng.randint(1, 24))) for _ in range(3000)]
    return fixed + short + rand


@pytest.mark.parametrize("chunk", range(4))
def test_same_as_packaging(chunk: int) -> None:
    names = _names()[chunk::4]
    assert len(names) > 1000
    for name in names:
        assert canonicalize_name(name) == packaging_canonicalize(name), name


def test_is_pep_503_regex_on_ascii() -> None:
    # Beyond ASCII, lower-casing first (as packaging does) can differ from the PEP's order:
    # a final sigma after ``.`` is ``ς``, after ``-`` it is ``σ``. packaging's order is kept.
    ascii_names = [n for n in _names() if n.isascii()]
    assert len(ascii_names) > 500
    for name in ascii_names:
        assert canonicalize_name(name) == re.sub(r"[-_.]+", "-", name).lower(), name
