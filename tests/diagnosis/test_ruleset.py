"""Loading and validating rules/*.toml: every shipped file loads; every mistake is one line
naming the file and the key; tables of other owners are left alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tffix.errors import ExitCode, RuleError
from tffix.model import FixSide, Safety, Severity, StepKind
from tffix.resources import rules_dir
from tffix.ruleset import load_rules, parse_rules, read_rule_files

GOOD_CAUSE = '[causes.some-cause]\nfix = "venv"\nseverity = "error"\nsummary = "x"\n'


def test_the_shipped_rules_load(rules):
    assert rules.causes["cuda-libs-missing"].fix == FixSide.VENV
    assert rules.causes["driver-too-old"].fix == FixSide.OUTSIDE
    assert [r.version for r in rules.releases] == sorted(
        (r.version for r in rules.releases),
        key=lambda v: tuple(int(x) for x in v.replace(".post", ".").split(".")),
    )
    assert rules.release("2.18.1").cuda == "12.5"
    assert rules.signatures and rules.noise and rules.gpus and rules.known_bad
    assert rules.frameworks["torch"]["2.5.1"]["nvidia-cudnn-cu12"] == "==9.1.0.70"


def test_the_installed_package_finds_its_rules():
    names = {p.name for p in rules_dir().iterdir()}
    assert {"causes.toml", "matrix.toml", "logs.toml", "drivers.toml"} <= names


def test_rules_are_loaded_once(rules):
    assert load_rules() is load_rules()


def test_every_rule_file_is_read(tmp_path: Path):
    (tmp_path / "a.toml").write_text(GOOD_CAUSE)
    (tmp_path / "notes.txt").write_text("not a rule file")
    files = read_rule_files(tmp_path)
    assert list(files) == ["rules/a.toml"]
    assert "some-cause" in parse_rules(files).causes


def test_a_folder_without_rules_is_an_error(tmp_path: Path):
    with pytest.raises(RuleError, match=r"holds no \.toml files"):
        read_rule_files(tmp_path)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"rules/x.toml": "[causes.foo\n"}, "rules/x.toml: not valid TOML"),
        (
            {"rules/x.toml": GOOD_CAUSE.replace('"venv"', '"nobody"')},
            "rules/x.toml: causes.some-cause.fix: must be 'venv' or 'outside'",
        ),
        (
            {"rules/x.toml": GOOD_CAUSE.replace('"error"', '"fatal"')},
            "rules/x.toml: causes.some-cause.severity: must be 'error', 'warning' or 'info'",
        ),
        (
            {"rules/x.toml": GOOD_CAUSE + "colour = 'red'\n"},
            "rules/x.toml: causes.some-cause.colour: unknown key",
        ),
        (
            {"rules/x.toml": GOOD_CAUSE.replace('summary = "x"\n', "")},
            "rules/x.toml: causes.some-cause.summary: is required",
        ),
        (
            {"rules/x.toml": GOOD_CAUSE + "rank = 'first'\n"},
            "rules/x.toml: causes.some-cause.rank: must be a whole number",
        ),
        (
            {"rules/x.toml": GOOD_CAUSE + "blocks = ['no-such-cause']\n"},
            "rules/x.toml: causes.some-cause.blocks: unknown cause id 'no-such-cause'",
        ),
        (
            {"rules/a.toml": GOOD_CAUSE, "rules/b.toml": GOOD_CAUSE},
            "rules/b.toml: causes.some-cause: already defined in rules/a.toml",
        ),
        (
            {"rules/x.toml": "[[signature]]\nsignal = 's'\npattern = '(unclosed'\n"},
            "rules/x.toml: signature[0].pattern: is not a valid regular expression",
        ),
        (
            {"rules/x.toml": "[[signature]]\nsignal = 's'\npattern = 'a'\ncause = 'nope'\n"},
            "unknown cause 'nope'",
        ),
        (
            {"rules/x.toml": "[[noise]]\npattern = 'a'\nreason = 'b'\n"},
            "rules/x.toml: noise[0].reason: unknown key",
        ),
        (
            {
                "rules/m.toml": '[release."2.18.1"]\npython = ["3.11"]\ncuda = "12.5"\n'
                'cudnn = "9.3"\ncompute_capabilities = []\nand_cuda = ["not a requirement!"]\n'
            },
            'rules/m.toml: release."2.18.1".and_cuda[0]: not a requirement',
        ),
        (
            {"rules/m.toml": '[release."2.18.1"]\ncuda = "12.5"\n'},
            'rules/m.toml: release."2.18.1".compute_capabilities: is required',
        ),
        (
            {"rules/d.toml": "[[minimum]]\ncuda = 12\nlinux = '525.60.13'\n"},
            "rules/d.toml: minimum[0].cuda: must be a string",
        ),
        ({"rules/x.toml": "causes = 3\n"}, "rules/x.toml: causes: must be a table"),
        ({"rules/x.toml": b"\xff\xfe"}, "rules/x.toml: not UTF-8 text"),
    ],
)
def test_a_broken_rule_file_is_one_clear_error(files, message):
    with pytest.raises(RuleError) as info:
        parse_rules(files)
    assert str(info.value).startswith(message) or message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


def test_tables_of_other_owners_are_ignored():
    rules = parse_rules(
        {
            "rules/sonames.toml": "[[era]]\nwhatever = 1\n",
            "rules/code.toml": GOOD_CAUSE + "[[pattern]]\nregex = 'x'\n",
        }
    )
    assert "some-cause" in rules.causes


def test_every_step_kind_and_safety_is_rendered():
    from tffix.model import PlanStep
    from tffix.report import step_commands

    for kind in StepKind:
        step = PlanStep(
            kind=kind,
            summary="s",
            safety=Safety.SAFE,
            requirements=("a==1",),
            packages=("a",),
            variable="V",
            value="1",
            entry="/x",
            commands=("true",),
        )
        assert step_commands(step, "/py")
    assert {str(s) for s in Safety} == {"safe", "unsafe", "manual"}
    assert {str(s) for s in Severity} == {"error", "warning", "info"}


def test_the_fix_data_is_shipped_and_every_wheel_folder_is_known() -> None:
    fixes = load_rules().fixes
    assert fixes.ngc_image.startswith("nvcr.io/nvidia/tensorflow:")
    assert fixes.numpy_1.startswith("numpy==1.") and fixes.metal.startswith("tensorflow-metal==")
    # every library folder a soname points at is one a wheel installs
    assert set(fixes.soname_lib_dirs.values()) <= set(fixes.wheel_lib_dirs.values())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('numpy_1 = "numpy==1.26.4"', 'numpy_1 = "numpy>=1"'), "fixes.numpy_1: must pin one"),
        (('metal = "tensorflow-metal==1.2.0"', 'metal = "tensorflow metal"'), "fixes.metal"),
        (('"nvidia-nccl" = "nccl"', '"nvidia-nccl" = 3'), "fixes.wheel_lib_dirs"),
        (("ngc_image = ", "image = "), "fixes.image: unknown key"),
    ],
)
def test_broken_fix_data_names_the_key(edit: tuple[str, str], message: str) -> None:
    files = read_rule_files(rules_dir())
    text = files["rules/fixes.toml"].decode("utf-8")
    assert edit[0] in text
    files["rules/fixes.toml"] = text.replace(*edit).encode("utf-8")
    with pytest.raises(RuleError, match=re.escape(message)):
        parse_rules(files)
