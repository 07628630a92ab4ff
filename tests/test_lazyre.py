"""tffix.lazyre: a pattern compiled on first use answers as the compiled pattern does."""

from __future__ import annotations

import re

import pytest

from tffix.lazyre import LazyPattern, lazy

_TEXTS = ["", "abc", "GPU 0: NVIDIA A100 (UUID: x)", "a1b22c333", "ABC abc", "x\ny\nabc"]
_PATTERNS = [
    (r"(\d+)", 0),
    (r"(?P<word>[a-z]+)", re.IGNORECASE),
    (r"^abc$", re.MULTILINE),
    (r"z", 0),
]


@pytest.mark.parametrize(("source", "flags"), _PATTERNS)
def test_answers_as_the_compiled_pattern(source: str, flags: int) -> None:
    for first_use in ("search", "sub"):  # whichever method comes first compiles it
        lazy_pattern, real = lazy(source, flags), re.compile(source, flags)
        assert "_compiled" not in lazy_pattern.__dict__
        if first_use == "sub":
            assert lazy_pattern.sub("-", "a1") == real.sub("-", "a1")
        for text in _TEXTS:
            for method in ("search", "match", "fullmatch"):
                got, want = getattr(lazy_pattern, method)(text), getattr(real, method)(text)
                assert (got and (got.span(), got.groups())) == (
                    want and (want.span(), want.groups())
                )
            assert lazy_pattern.sub(lambda m: m.group(0).upper(), text) == real.sub(
                lambda m: m.group(0).upper(), text
            )
            assert lazy_pattern.subn("#", text, 1) == real.subn("#", text, 1)
            assert lazy_pattern.split(text) == real.split(text)
            assert lazy_pattern.findall(text) == real.findall(text)
            assert [m.span() for m in lazy_pattern.finditer(text)] == [
                m.span() for m in real.finditer(text)
            ]
            got, want = lazy_pattern.search(text, 1, 3), real.search(text, 1, 3)
            assert (got and got.span()) == (want and want.span())
        assert lazy_pattern.flags == real.flags
        assert lazy_pattern.groupindex == real.groupindex
        assert lazy_pattern.pattern == real.pattern


def test_compiles_once_on_first_use_only() -> None:
    pattern = LazyPattern(r"(")  # invalid: compiling it raises
    assert pattern.pattern == "("  # reading the text does not compile
    with pytest.raises(re.error):
        pattern.search("x")
    good = lazy(r"\d")
    assert "_compiled" not in good.__dict__
    assert good.search("a1") is not None
    compiled = good.__dict__["_compiled"]
    assert good.compiled is compiled
    assert good.search == compiled.search  # later calls go straight to the compiled method
