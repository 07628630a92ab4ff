"""The plan shown and the transaction speak of a step by one number: the questions ("Step 3"),
the outcome ("step 3: applied") and the journal use plan numbers, so the report keeps them,
hidden unsafe steps included; the sentence about a hidden step says what that step does."""

from __future__ import annotations

import re

import pytest

from tests.diagnosis.conftest import cause_fixtures, load
from tffix import transaction
from tffix.diagnosis import diagnose
from tffix.model import Diagnosis, PlanStep, Safety, StepKind
from tffix.report import render_text
from tffix.ruleset import Ruleset

_LINE = re.compile(r"^  (\d+)\. \[([a-z, ]+)\](?: (.*))?$", re.M)


def _shown(text: str) -> dict[int, tuple[str, str]]:
    """Plan number -> (tag, rest of the line) as the report prints them."""
    plan = text.split("\nPlan:\n", 1)[1] if "\nPlan:\n" in text else ""
    return {int(n): (tag, rest or "") for n, tag, rest in _LINE.findall(plan)}


def _check(diag: Diagnosis, text: str, *, unsafe: bool) -> None:
    shown = _shown(text)
    assert sorted(shown) == list(range(1, len(diag.plan) + 1))  # no gap, no renumbering
    for n in transaction.offered_steps(diag, unsafe=unsafe):  # what the questions name
        tag, rest = shown[n]
        assert tag == str(diag.plan[n - 1].safety) and rest.startswith(diag.plan[n - 1].summary)


def test_a_hidden_startup_edit_keeps_its_number_and_is_named_for_what_it_does() -> None:
    plan = (
        PlanStep(
            StepKind.ENV_UNSET,
            "Unset X in the venv's activate scripts",
            Safety.SAFE,
            ("x",),
            variable="X",
        ),
        PlanStep(
            StepKind.STARTUP_EDIT,
            "Comment out ~/.bashrc line 3",
            Safety.UNSAFE,
            ("x",),
            path="/home/u/.bashrc",
            line=3,
        ),
        PlanStep(
            StepKind.ENV_SET,
            "Set Y=1 in the venv's activate scripts",
            Safety.SAFE,
            ("y",),
            variable="Y",
            value="1",
        ),
    )
    diag = Diagnosis(gpu_visible=False, plan=plan)
    text = render_text(diag)
    _check(diag, text, unsafe=False)
    assert transaction.offered_steps(diag, unsafe=False) == (1, 3)
    assert "  2. [unsafe, not shown]" in text
    sentence = next(line for line in text.splitlines() if "possible but not shown" in line)
    assert "(step 2)" in sentence and "start-up file" in sentence, sentence
    assert "TensorFlow release" not in sentence and "pins" not in sentence
    assert "Comment out" not in text  # hidden means hidden
    shown = render_text(diag, show_unsafe=True)
    _check(diag, shown, unsafe=True)
    assert "  2. [unsafe] Comment out ~/.bashrc line 3" in shown and "not shown" not in shown


@pytest.mark.parametrize("path", cause_fixtures(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_fixture_plan_is_numbered_as_the_transaction_numbers_it(path, rules: Ruleset) -> None:  # type: ignore[no-untyped-def]
    snap = load(path)
    diag = diagnose(snap, rules)
    for unsafe in (False, True):
        _check(diag, render_text(diag, snap, rules=rules, show_unsafe=unsafe), unsafe=unsafe)
