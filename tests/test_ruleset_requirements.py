"""tffix.ruleset.name_and_specifier reads a requirement as packaging's Requirement does.

It reads plain ``name<specifiers>`` itself (so that a diagnosis need not import
packaging.requirements) and hands anything else to ``Requirement``: over the rules' own
requirements and thousands of made-up ones, valid and not, both readings must agree.
"""

from __future__ import annotations

import itertools
import random

import pytest
from packaging.requirements import InvalidRequirement, Requirement

from tffix.ruleset import load_rules, name_and_specifier

_NAMES = ["a", "A1", "nvidia-cudnn-cu12", "tensorflow_io.gcs", "x.", "-x", "a_b-c.d", "9", "a b"]
_OPS = ["==", "!=", "<=", ">=", "<", ">", "~=", "===", "=", "=>", ""]
_VERSIONS = [
    "1",
    "1.0",
    "2.16.1",
    "9.3.0.75",
    "1.*",
    "1.0.*",
    "1.0a1",
    "1.0.post1.dev2",
    "1!2.0",
    "1.0+local",
    "abc",
    "",
    "1..0",
    "1.0-1",
    "1_0",
    "v1.0",
]
_TAILS = ["", ",>=1.0", ",<2", ", >=1", " ", "; python_version < '3.12'", "[and-cuda]", ",", "@"]


def _made_up() -> list[str]:
    out = [f"{n}{o}{v}{t}" for n, o, v, t in itertools.product(_NAMES, _OPS, _VERSIONS, _TAILS)]
    rng = random.Random(508)
    alphabet = "aZ9.-_=<>!~*,;[]@ +"
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 16))) for _ in range(3000)]
    return out


def _rules_requirements() -> list[str]:
    rules = load_rules()
    texts = [t for rel in rules.releases for t in rel.and_cuda]
    texts += [bad.requirement for bad in rules.known_bad if bad.requirement]
    texts += [rules.fixes.numpy_1, rules.fixes.metal]
    return texts


def _packaging(text: str) -> tuple[str, str] | None:
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    return req.name, str(req.specifier)


def _ours(text: str) -> tuple[str, str] | None:
    try:
        name, spec = name_and_specifier(text)
    except ValueError:
        return None
    return name, str(spec)


def test_rules_requirements_are_read_alike() -> None:
    texts = _rules_requirements()
    assert len(texts) > 100
    for text in texts:
        assert _ours(text) == _packaging(text) is not None, text


@pytest.mark.parametrize("chunk", range(4))
def test_made_up_requirements_are_read_alike(chunk: int) -> None:
    texts = _made_up()[chunk::4]
    valid = 0
    for text in texts:
        expected = _packaging(text)
        assert _ours(text) == expected, text
        valid += expected is not None
    assert valid > 100  # both readings are exercised, not only the refusals


def test_specifier_equals_requirements() -> None:
    for text in _rules_requirements():
        assert name_and_specifier(text)[1] == Requirement(text).specifier
