"""The message catalogue (rules/messages.toml), checked message by message, form by form.

Every catalogued message is rendered as each source tree that prints it would print it (the
glog prefix of that era, or inside a Python exception for a returned status), and then:
it is matched by its own entry and no other, it yields that entry's signal and cause, no noise
pattern swallows a message that has a cause, and pasted alone into ``tffix explain`` it names
that cause. The tests are generated from the catalogue, so a new entry is tested on arrival.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from packaging.version import Version

from tffix.diagnosis import diagnose
from tffix.errors import RuleError
from tffix.logparse import scan_log, snapshot_from_text
from tffix.messages import NOISE, Message
from tffix.resources import rules_dir
from tffix.ruleset import Ruleset, load_rules, parse_rules, read_rule_files

RULES = load_rules()
ABSL_FROM = Version("2.16")
"""Trees from this release on print absl's prefix (``E0000 00:00:<ts> <tid> file.cc:<n>]``)."""


def printed_forms(msg: Message, rules: Ruleset = RULES) -> list[tuple[str, str]]:
    """(tree, line) for every form in which *msg* reaches a log at the default log level."""
    out: list[tuple[str, str]] = []
    for seen in msg.seen:
        if seen.level == "vlog":
            continue
        release = Version(rules.message_sources[seen.tree].release)
        for text in msg.examples:
            if msg.continuation:
                out.append((seen.tree, text))
            elif seen.level == "status":
                out.append((seen.tree, text))
                out.append(
                    (seen.tree, f"tensorflow.python.framework.errors_impl.InternalError: {text}")
                )
            elif release < ABSL_FROM:
                stamp = "2021-03-01 10:00:00.123456"
                out.append((seen.tree, f"{stamp}: {seen.level} {seen.file}:{seen.line}] {text}"))
            else:
                base = seen.file.rsplit("/", 1)[-1]
                out.append(
                    (
                        seen.tree,
                        f"{seen.level}0000 00:00:1745040030.652070    1012 "
                        f"{base}:{seen.line}] {text}",
                    )
                )
    return out


CASES = [
    pytest.param(msg, tree, line, id=f"{msg.id}@{tree}#{i}")
    for msg in RULES.messages
    for i, (tree, line) in enumerate(printed_forms(msg))
]
CAUSED = [c for c in CASES if c.values[0].cause not in {NOISE, ""}]  # type: ignore[union-attr]


def test_the_catalogue_is_loaded_and_sizeable():
    assert len(RULES.messages) >= 60
    assert len(CASES) >= 5 * len(RULES.messages)
    assert set(RULES.message_sources) >= {"v1.15.3", "v2.12.0", "2.22.0-dev"}


@pytest.mark.parametrize(("msg", "tree", "line"), CASES)
def test_each_printed_message_is_matched_by_its_own_entry(msg: Message, tree: str, line: str):
    facts = scan_log([line], RULES)
    if msg.cause == NOISE:
        assert facts.noise == (0,) and facts.hits == ()
        return
    assert facts.noise == ()
    assert [(h.message, h.signal, h.cause) for h in facts.hits] == [(msg.id, msg.signal, msg.cause)]


@pytest.mark.parametrize(("msg", "tree", "line"), CASES)
def test_no_other_catalogued_pattern_matches(msg: Message, tree: str, line: str):
    others = [m.id for m in RULES.messages if m.id != msg.id and m.pattern.search(line)]
    assert others == []


@pytest.mark.parametrize(("msg", "tree", "line"), CAUSED)
def test_no_noise_pattern_swallows_a_message_with_a_cause(msg: Message, tree: str, line: str):
    noise = [n.why for n in RULES.noise if n.pattern.search(line)]
    noise += [m.id for m in RULES.messages if m.is_noise and m.pattern.search(line)]
    assert noise == []


@pytest.mark.parametrize("msg", RULES.messages, ids=lambda m: m.id)
def test_named_groups_carry_facts_from_the_example(msg: Message):
    match = msg.pattern.search(printed_forms(msg)[0][1])
    assert match is not None
    if msg.pattern.groupindex:
        assert any(v for v in match.groupdict().values()), msg.pattern.pattern


@pytest.mark.parametrize("msg", RULES.messages, ids=lambda m: m.id)
def test_provenance_names_a_tree_file_and_line(msg: Message):
    assert msg.seen and msg.releases
    for seen in msg.seen:
        source = RULES.message_sources[seen.tree]
        assert re.fullmatch(r"[0-9a-f]{40}", source.commit)
        assert seen.repo in {"tensorflow/tensorflow", "openxla/xla"}
        assert seen.file.endswith((".cc", ".h")) and seen.line > 0
        assert seen.repo == "openxla/xla" or not seen.file.startswith("third_party/xla/")
    assert list(msg.releases) == [s.tree for s in msg.seen if s.level != "vlog"]


def _with_version(tree: str, line: str) -> str:
    release = RULES.message_sources[tree].release
    version = Version(release)
    return line if version.is_prerelease else f"tensorflow=={release}\n{line}"


@pytest.mark.parametrize(("msg", "tree", "line"), CAUSED)
def test_pasted_alone_explain_names_its_cause(msg: Message, tree: str, line: str):
    text = _with_version(tree, line)
    diag = diagnose(snapshot_from_text(text, RULES), RULES)
    assert msg.cause in [f.id for f in diag.findings], [f.title for f in diag.findings]


def test_every_area_the_catalogue_must_cover_is_covered():
    files = Counter(s.file.rsplit("/", 1)[-1] for m in RULES.messages for s in m.seen)
    for name in (
        "gpu_device.cc",
        "dso_loader.cc",
        "cuda_diagnostics.cc",
        "cuda_dnn.cc",
        "nvptx_compiler.cc",
    ):
        assert files[name] > 0, name
    signals = {m.signal for m in RULES.messages}
    assert {
        "no-device",
        "kernel-dso-mismatch",
        "cudnn-runtime-mismatch",
        "ptxas-missing",
        "libdevice-missing",
        "dlopen-failed",
        "ptx-jit",
    } <= signals


def test_a_message_with_an_unknown_cause_is_refused():
    files = dict(read_rule_files(rules_dir()))
    text = files["rules/messages.toml"].decode()
    files["rules/messages.toml"] = text.replace(
        'cause = "no-nvidia-gpu"', 'cause = "no-such-cause"', 1
    ).encode()
    with pytest.raises(RuleError, match="unknown cause 'no-such-cause'"):
        parse_rules(files)


def test_a_message_without_provenance_is_refused():
    extra = (
        '[[message]]\nid = "x"\nsignal = ""\ncause = ""\nlevel = "E"\ntemplate = "x"\n'
        'example = "x"\npattern = "x"\nreleases = []\n'
    )
    files = dict(read_rule_files(rules_dir()))
    files["rules/zz-extra.toml"] = extra.encode()
    with pytest.raises(RuleError, match="no provenance"):
        parse_rules(files)
