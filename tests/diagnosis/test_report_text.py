"""What the text report says, over every fixture snapshot: numbered plans without gaps, arrows
that point at shown findings, listed and usable as separate facts, evidence as values, and
commands that bash runs as printed."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.diagnosis.conftest import REALWORLD, SNAPSHOTS, cause_fixtures, load
from tffix import shellquote as sq
from tffix.diagnosis import diagnose
from tffix.document import diagnosis_to_dict
from tffix.model import EntryPointState, Snapshot
from tffix.report import render_text
from tffix.ruleset import Ruleset

ALL = cause_fixtures() + sorted(REALWORLD.glob("*.json"))
HOSTILE = 'my env $(touch PWNED) `touch PWNED` it\'s "q"'


def _text(snap: Snapshot, rules: Ruleset, **kw: object) -> str:
    return render_text(diagnose(snap, rules), snap, rules=rules, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_plan_numbers_and_arrows(path: Path, rules: Ruleset) -> None:
    snap = load(path)
    for unsafe in (False, True):
        text = _text(snap, rules, show_unsafe=unsafe, verbose=1)
        numbers = [int(n) for n in re.findall(r"^  (\d+)\. \[", text, re.M)]
        assert numbers == list(range(1, len(numbers) + 1)), text
        shown = set(re.findall(r"\[([a-z0-9-]+)\]$", text, re.M))
        for arrow in re.findall(r"→ fixes (.*)$", text, re.M):
            assert set(arrow.split(", ")) <= shown, text
        assert "Unsafe steps not applied" not in text
        assert "\n       # " not in text  # a step's command is never only a comment


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_listed_and_usable_are_separate_facts(path: Path, rules: Ruleset) -> None:
    snap = load(path)
    diag = diagnose(snap, rules)
    text = render_text(diag, snap, rules=rules)
    doc = diagnosis_to_dict(diag)
    assert doc["gpu"]["listed"] == doc["gpu_visible"]
    assert "[!!] TensorFlow lists a GPU: yes" not in text
    if "cannot use the GPU" in text:
        assert "TensorFlow can use it: yes" not in text
        assert doc["gpu"]["usable"] is not True
    if doc["gpu"]["listed"] is True and "cannot use the GPU" in text:
        assert "[!!] TensorFlow can use it: no" in text and doc["gpu"]["usable"] is False
    # a snapshot never runs an op: usable is never claimed from one
    assert doc["gpu"]["usable"] in (False, None)


def test_cpu_only_build_is_not_an_ok_import(rules: Ruleset) -> None:
    for path in sorted((SNAPSHOTS / "tf-cpu-only-package").glob("pos-*.json")):
        text = _text(load(path), rules)
        assert "[ok] TensorFlow build: imports" not in text, text


def test_runpath_regression_is_one_step_one_edit(rules: Ruleset) -> None:
    path = SNAPSHOTS / "cuda-libs-not-found" / "pos-tf2161-runpath-regression.json"
    diag = diagnose(load(path), rules)
    doc = diagnosis_to_dict(diag)
    prepends = [s for s in doc["plan"] if s["kind"] == "env-path-prepend"]
    assert len(prepends) == 1
    entries = prepends[0]["entries"]
    assert len(entries) > 1 and all(e.endswith("/lib") and "/nvidia/" in e for e in entries)
    assert prepends[0]["entry"] == ":".join(entries)
    text = render_text(diag, load(path), rules=rules)
    assert text.count("first on LD_LIBRARY_PATH") == 1
    assert text.count("export LD_LIBRARY_PATH=") == 1


def test_shadowing_title_names_the_copy_tensorflow_needs(rules: Ruleset) -> None:
    path = SNAPSHOTS / "ld-library-path-shadowing" / "pos-system-cudnn-ahead-of-wheel.json"
    text = _text(load(path), rules)
    wanted = r"ahead of cuDNN 9\.3[.0-9]* TensorFlow needs, in /home/u/proj/\.venv/"
    assert re.search(wanted, text), text


def _bash(lines: list[str], cwd: Path) -> str:
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile"],
        input="\n".join(lines) + "\n",
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert not (cwd / "PWNED").exists(), "\n".join(lines)
    return proc.stdout + proc.stderr


def _plan_commands(text: str) -> list[str]:
    plan = text.split("\nPlan:\n", 1)[1]
    return [line[7:] for line in plan.splitlines() if line.startswith("       ")]


def test_manual_commands_with_a_hostile_interpreter_path_run_as_printed(
    tmp_path: Path, rules: Ruleset
) -> None:
    venv = tmp_path / HOSTILE / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text('#!/bin/sh\necho "<ran $0>"\n')
    (venv / "bin" / "python").chmod(0o755)
    path = SNAPSHOTS / "wrong-interpreter" / "pos-active-venv-behind-another-python.json"
    snap = load(path)
    snap = dataclasses.replace(
        snap, python=dataclasses.replace(snap.python, executable=str(venv / "bin" / "python"))
    )
    commands = _plan_commands(_text(snap, rules))
    out = _bash([*commands, 'printf "<%s>\\n" "$PATH"'], tmp_path)
    assert f"<{venv}/bin:" in out
    assert f"{venv}/bin/python" in out  # `command -v python` finds the venv's


def test_remove_path_drops_exactly_that_entry_in_bash(tmp_path: Path) -> None:
    entry = f"/opt/{HOSTILE}/lib*"
    (tmp_path / "opt").mkdir()
    lines = [
        f"export LD_LIBRARY_PATH={sq.quote(f'/a:{entry}:/b c:{entry}')}",
        sq.remove_path("LD_LIBRARY_PATH", entry),
        'printf "<%s>\\n" "$LD_LIBRARY_PATH"',
        "unset NOPE",
        sq.remove_path("NOPE", "/x"),
        'printf "<%s>\\n" "${NOPE-unset}"',
    ]
    out = _bash(lines, tmp_path)
    assert "</a:/b c>" in out and "<unset>" in out


def test_no_unquoted_brackets_in_printed_commands(rules: Ruleset) -> None:
    for path in ALL:
        text = _text(load(path), rules, show_unsafe=True)
        for line in _plan_commands(text) if "\nPlan:\n" in text else []:
            for word in re.findall(r"(?<!['\w])tensorflow\[and-cuda\][^\s']*", line):
                pytest.fail(f"{path.name}: unquoted {word} in {line}")


def test_python_version_commands_are_quoted(rules: Ruleset) -> None:
    path = SNAPSHOTS / "python-version-unsupported" / "pos-python314.json"
    commands = _plan_commands(_text(load(path), rules))
    assert any(re.fullmatch(r"python3\.\d+ -m venv \.venv-tf", c) for c in commands), commands
    assert any("pip install 'tensorflow[and-cuda]==" in c for c in commands), commands


def test_diagnosis_json_gpu_block(rules: Ruleset) -> None:
    snap = load(SNAPSHOTS / "healthy.json")
    doc = json.loads(json.dumps(diagnosis_to_dict(diagnose(snap, rules))))
    assert set(doc["gpu"]) == {"listed", "usable", "op", "cudnn", "xla", "why"}


@pytest.mark.parametrize("path", cause_fixtures(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_verdict_promises_a_fix_only_with_a_plan(path: Path, rules: Ruleset) -> None:
    from tffix.report import verdict

    diag = diagnose(load(path), rules)
    said = verdict(diag)
    planned = {cause for step in diag.plan for cause in step.resolves}
    if "which tffix can fix in the venv" in said:
        assert planned, said
    if "does not show enough to plan" in said:
        assert not planned, said


def test_a_pasted_report_without_enough_for_a_step_says_where_to_run(rules: Ruleset) -> None:
    from tffix.document import parse_snapshot
    from tffix.report import verdict

    snap = parse_snapshot(
        {
            "schema": "tffix.snapshot/1",
            "log": ["tensorflow[and-cuda]==2.13.0", "pip install jax[cuda12_pip]"],
        }
    )
    diag = diagnose(snap, rules)
    assert [f.id for f in diag.findings] == ["framework-pin-conflict"] and not diag.plan
    assert "run tffix in the environment itself" in verdict(diag)


def test_no_ok_mark_beside_not_usable(rules: Ruleset) -> None:
    """Entry points where the GPU fails for another check's reason have no problem of their own:
    their line is not marked ``[ok]`` next to "not usable" (the GPU line says where it fails)."""
    path = min((SNAPSHOTS / "cuda-libs-missing").glob("pos-*.json"))
    points = (
        EntryPointState("activated", "a", usable=False),
        EntryPointState("plain", "p", usable=False),
    )
    snap = dataclasses.replace(load(path), entry_points=points)
    text = _text(snap, rules)
    (line,) = [row for row in text.splitlines() if "Where TensorFlow runs" in row]
    assert "[ok]" not in line and "[--]" in line, line
    assert "NOT usable" in text  # the GPU line below the checks still says where
    for other in ALL:
        report = _text(load(other), rules)
        assert not re.search(r"^\s*\[ok\].*\bnot usable\b", report, re.M), other
