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


# --------------------------------------------------------------------------- the guard

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tffix.lazyre import GuardedPattern, required_texts  # noqa: E402
from tffix.ruleset import load_rules  # noqa: E402


@pytest.mark.parametrize(
    ("source", "flags", "required"),
    [
        (r"failed call to cuInit: (?P<error>\w+)", 0, ("failed call to cuInit: ",)),
        (r"libcudnn\.so\.\d+", 0, ("libcudnn.so.",)),
        (r"ab?c", 0, ("a",)),  # b may be absent, so "abc" is not required
        (r"ab*c", 0, ("a",)),
        (r"ab{0,2}cd", 0, ("cd",)),
        (r"ab+c", 0, ("ab",)),  # one b at least
        (r"x*?yz", 0, ("yz",)),  # a lazy quantifier is a quantifier
        (r"(a|b)?cd", 0, ("cd",)),  # alternation inside a group is the group's
        (r"cuda|cudnn", 0, ("cuda", "cudnn")),  # one of them
        (r"(libcuda|cuInit) failed", 0, (" failed",)),
        (
            r"(CUDA_ERROR_NO_DEVICE|no CUDA-capable device)",
            0,
            ("CUDA_ERROR_NO_DEVICE", "no CUDA-capable device"),
        ),
        (r"(?P<x>abc|d+)", 0, ("abc", "d")),
        (r"(?=abc)|x", 0, ()),  # a lookahead is not the pattern's own text
        (r"cuda|\d+", 0, ()),  # an alternative with no text: no guard
        (r"[Cc]ould not load", 0, ("ould not load",)),
        (r"\[abc\]\(x\)", 0, ("[abc](x)",)),
        (r"a.b", 0, ("a",)),
        (r"(?i)Driver", 0, ()),  # inline flags: no guard
        (r"NVIDIA GeForce RTX", re.IGNORECASE, ("nvidia geforce rtx",)),
        (r"Ünïcode", re.IGNORECASE, ("code",)),  # only ASCII runs when case-blind
        (r"x  # comment", re.VERBOSE, ()),
    ],
)
def test_required_texts(source: str, flags: int, required: tuple[str, ...]) -> None:
    assert required_texts(source, flags) == required


def _rule_patterns() -> list[tuple[str, int]]:
    rules = load_rules()
    found = {
        (p.pattern, p._args[1])
        for p in (
            *(s.pattern for s in rules.signatures),
            *(n.pattern for n in rules.noise),
            *(g.match for g in rules.gpus),
            *(m.pattern for m in rules.messages),
        )
    }
    return sorted(found)


RULE_PATTERNS = _rule_patterns()


def test_most_rule_patterns_have_a_guard() -> None:
    """The guard is worth having: nearly every pattern of the rules has a text to look for."""
    guarded = [p for p, f in RULE_PATTERNS if required_texts(p, f)]
    assert len(guarded) >= 0.9 * len(RULE_PATTERNS), len(guarded)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_every_match_of_a_rule_pattern_contains_its_required_text(data: st.DataObject) -> None:
    """Strings made to match each pattern of the rules (hypothesis's ``from_regex``) always
    hold the pattern's required text, so the guard never hides a match."""
    source, flags = data.draw(st.sampled_from(RULE_PATTERNS))
    text = data.draw(st.from_regex(re.compile(source, flags)))
    folded = text.casefold() if flags & re.IGNORECASE else text
    required = required_texts(source, flags)
    assert not required or any(r in folded for r in required)
    assert GuardedPattern(source, flags).search(text) is not None


def test_catalogued_examples_are_found_through_the_guard() -> None:
    rules = load_rules()
    for message in rules.messages:
        plain = re.compile(message.pattern.pattern)
        assert bool(message.pattern.search(message.example)) == bool(
            plain.search(message.example)
        ), message.id


def test_a_guarded_pattern_seldom_compiles() -> None:
    pattern = GuardedPattern(r"failed call to cuInit: (?P<error>\w+)")
    assert pattern.search("I tensorflow/core/common_runtime/gpu/gpu_device.cc:1] ok") is None
    assert "_compiled" not in pattern.__dict__  # the substring test answered
    found = pattern.search("E ... failed call to cuInit: CUDA_ERROR_NO_DEVICE")
    assert found is not None and found["error"] == "CUDA_ERROR_NO_DEVICE"
    assert pattern.search("failed call to cuInit") is None  # after compiling, still guarded
