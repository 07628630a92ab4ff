"""The journal is untrusted input: a hostile or broken one never makes undo or --resume act.

Each reproducer writes a journal by hand into a real venv and runs ``tffix undo`` and
``tffix --resume`` in-process: a journal that fails the schema is refused with one line naming
the file and exit 2, and nothing in the venv (or outside it) changes. Records are written with
a correct hash chain where the point is what a forger who recomputes it can still do; the
chain itself is tested on a journal edited by hand.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.repair.conftest import DemoVenv, make_demo_venv
from tffix import cli
from tffix.effects import journal_schema as schema
from tffix.effects.journal import Journal, journal_path

pytestmark = pytest.mark.slow

FUZZ_EXAMPLES = int(os.environ.get("TFFIX_FUZZ_EXAMPLES", "40"))
"""Journals tried per fuzz test; CI keeps the default, ``TFFIX_FUZZ_EXAMPLES=2000`` digs."""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> DemoVenv:
    return make_demo_venv(tmp_path_factory.mktemp("journal"), wheelhouse)


def forge(path: Path, records: list[Any], *, chain: bool = True) -> None:
    """Write *records* as journal lines (with version, time and a valid chain when asked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    last = schema.GENESIS
    lines = []
    for rec in records:
        if chain and isinstance(rec, dict):
            rec = {"v": schema.SCHEMA_VERSION, "time": 1.0, **rec}
            rec["chain"] = last = schema.chain_hash(last, rec)
        lines.append(rec if isinstance(rec, str) else json.dumps(rec))
    path.write_text("".join(line + "\n" for line in lines))


def _main(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> int:
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return cli.main(argv)


def _interrupted(run: str, state: dict[str, Any], step: dict[str, Any] | None = None) -> list[Any]:
    recs: list[Any] = [{"type": "run-start", "run": run, "state": state}]
    recs.append({"type": "step-start", "run": run, "step": 1, "state": step or state})
    return recs


def _listing(venv: DemoVenv) -> tuple[list[str], dict[str, bytes]]:
    """Every path in the venv (but its .tffix) and the activate scripts' bytes: cheaper than
    pip freeze, and it sees any file written or removed."""
    paths = sorted(
        str(p.relative_to(venv.venv))
        for p in venv.venv.rglob("*")
        if p.relative_to(venv.venv).parts[0] != ".tffix"
    )
    return paths, venv.scripts()


@pytest.fixture
def snapshot_of(venv: DemoVenv) -> Iterator[Any]:
    """The venv's files and scripts before, compared after (and the journal removed)."""
    before = _listing(venv)
    yield lambda: _listing(venv) == before
    journal_path(venv.venv).unlink(missing_ok=True)


def _refused(err: str, venv: DemoVenv) -> bool:
    lines = err.strip().splitlines()
    return len(lines) == 1 and "invalid journal" in lines[0] and str(journal_path(venv.venv)) in err


# --------------------------------------------------------------------------- reproducers

COMMANDS = [["undo"], ["--yes", "--resume"]]  # no terminal: undo asks nothing


@pytest.mark.parametrize("argv", COMMANDS, ids=["undo", "resume"])
def test_a_path_outside_the_venv_is_never_written(
    argv: list[str],
    venv: DemoVenv,
    tmp_path: Path,
    snapshot_of: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "owned.txt"
    rel = os.path.relpath(target, venv.venv)
    payload = base64.b64encode(b"written by undo\n").decode()
    for key in (rel, str(target)):  # ../../… and absolute
        forge(journal_path(venv.venv), _interrupted("r1", {"files": {key: payload}}))
        code = _main([*argv, "--venv", str(venv.venv)], venv.env, monkeypatch)
        assert code == 2 and not target.exists()
        assert _refused(capsys.readouterr().err, venv)
    assert snapshot_of()


@pytest.mark.parametrize("argv", COMMANDS, ids=["undo", "resume"])
def test_a_null_file_outside_the_venv_is_never_deleted(
    argv: list[str],
    venv: DemoVenv,
    tmp_path: Path,
    snapshot_of: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    forge(
        journal_path(venv.venv),
        _interrupted("r1", {"files": {os.path.relpath(victim, venv.venv): None}}),
    )
    code = _main([*argv, "--venv", str(venv.venv)], venv.env, monkeypatch)
    assert code == 2 and victim.read_text() == "keep me\n"
    assert _refused(capsys.readouterr().err, venv)
    assert snapshot_of()


def test_empty_packages_never_make_undo_uninstall_pip(
    venv: DemoVenv, snapshot_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal that claims the venv held nothing (a forger recomputing the chain)."""
    forge(journal_path(venv.venv), _interrupted("r1", {"packages": {}}))
    _main(["undo", "--venv", str(venv.venv)], venv.env, monkeypatch)
    assert "pip==" in venv.freeze()
    venv.pip("install", "demo==1.0")  # what the claim could still remove, put back


WRONG_SHAPES = [
    {"type": "run-start", "run": "r1", "state": "not a state"},
    {"type": "run-start", "run": "r1", "state": {"packages": ["demo"]}},
    {"type": "run-start", "run": "r1", "state": {"packages": {"demo": 1}}},
    {"type": "run-start", "run": "r1", "state": {"packages": {"demo; rm -rf ~": "1.0"}}},
    {"type": "run-start", "run": "r1", "state": {"packages": {"demo": "not a version"}}},
    {"type": "run-start", "run": "r1", "state": {"files": {"bin/activate": 42}}},
    {"type": "run-start", "run": ["r1"], "state": {}},
    {"type": "run-start", "run": "../r1", "state": {}},
    {"type": "step-start", "run": "r1", "step": "one", "state": {}},
    {"type": "no-such-type", "run": "r1"},
    [1, 2, 3],
    "null",
]


@pytest.mark.parametrize("argv", COMMANDS, ids=["undo", "resume"])
@pytest.mark.parametrize("bad", range(len(WRONG_SHAPES)))
@pytest.mark.parametrize("chain", [True, False], ids=["chained", "unchained"])
def test_wrong_typed_records_are_refused_on_one_line(
    argv: list[str],
    bad: int,
    chain: bool,
    venv: DemoVenv,
    snapshot_of: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = [{"type": "run-start", "run": "r1", "state": {}}, WRONG_SHAPES[bad]]
    records.append({"type": "step-start", "run": "r1", "step": 1, "state": {}})
    forge(journal_path(venv.venv), records, chain=chain)
    code = _main([*argv, "--venv", str(venv.venv)], venv.env, monkeypatch)
    assert code == 2
    assert _refused(capsys.readouterr().err, venv)
    assert snapshot_of()


@pytest.mark.parametrize("argv", COMMANDS, ids=["undo", "resume"])
def test_deeply_nested_records_are_refused_on_one_line(
    argv: list[str],
    venv: DemoVenv,
    snapshot_of: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deep = '{"type":"run-start","run":"r1","state":{"packages":' + "[" * 200_000 + "]" * 200_000
    for line in (
        deep + "}}",
        '{"type":"run-start","run":"r1","state":' + '{"a":' * 50 + "1" + "}" * 51,
    ):
        journal_path(venv.venv).write_text(line + "\n" + '{"type":"run-end"}\n')
        code = _main([*argv, "--venv", str(venv.venv)], venv.env, monkeypatch)
        assert code == 2
        assert _refused(capsys.readouterr().err, venv)
    assert snapshot_of()


def test_a_journal_edited_by_hand_is_recognised(
    venv: DemoVenv,
    snapshot_of: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    journal = Journal(journal_path(venv.venv))
    journal.append({"type": "run-start", "run": "r1", "state": {"packages": {"demo": "1.0"}}})
    journal.append({"type": "run-end", "run": "r1", "status": "done", "exit_code": 0})
    path = journal_path(venv.venv)
    path.write_text(path.read_text().replace('"demo":"1.0"', '"demo":"0.9"'))
    code = _main(["undo", "--venv", str(venv.venv)], venv.env, monkeypatch)
    err = capsys.readouterr().err
    assert code == 2 and _refused(err, venv) and "hash chain" in err
    assert snapshot_of()


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_record(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.append({"type": "run-start", "run": "r1", "state": {}})
    with open(journal.path, "a") as fh:
        fh.write('{"type": "step-st')
    again = Journal(journal.path)
    assert [r["type"] for r in again.records()] == ["run-start"]
    again.append({"type": "run-end", "run": "r1", "status": "done", "exit_code": 0})
    assert [r["type"] for r in Journal(journal.path).records()] == ["run-start", "run-end"]


def test_tffix_never_writes_a_record_it_would_refuse(tmp_path: Path) -> None:
    from tffix.errors import ApplyError

    journal = Journal(tmp_path / "j.jsonl")
    with pytest.raises(ApplyError, match="invalid record"):
        journal.append({"type": "run-start", "run": "r1", "state": {"files": {"../x": None}}})
    assert not journal.path.exists()


@pytest.mark.parametrize("argv", [["undo"], ["--yes"]], ids=["undo", "repair"])
def test_a_tffix_folder_that_is_a_symlink_is_refused(
    argv: list[str],
    venv: DemoVenv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state = venv.venv / ".tffix"
    moved = None
    if state.exists():
        moved = state.rename(venv.venv / ".tffix-away")
    state.symlink_to(elsewhere)
    try:
        code = _main([*argv, "--venv", str(venv.venv)], venv.env, monkeypatch)
        err = capsys.readouterr().err.strip().splitlines()
        # refused by whichever check sees the link first (the state folder's own, or the
        # venv-wide rule that no link is followed out): one line, exit 2, nothing written there
        assert code == 2 and len(err) == 1 and "link" in err[0] and ".tffix" in err[0]
        assert list(elsewhere.iterdir()) == []
    finally:
        state.unlink()
        if moved is not None:
            moved.rename(state)


# --------------------------------------------------------------------------- fuzz

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["../x", "/etc/passwd", "bin/activate", "pip", "demo", "1.0", "r1", ""]),
)
_json = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_KEYS = ["type", "run", "state", "step", "base", "packages", "files", "kept", "status", "plan_step"]
_record = st.fixed_dictionaries(
    {
        "type": st.sampled_from([*schema.RECORD_TYPES, "bogus"]),
        "run": st.sampled_from(["r1", "r2", "../r", ""]),
    },
    optional={
        k: _json
        | st.fixed_dictionaries(
            {}, optional={"packages": _json, "files": _json, "kept": _json, "tilde": _json}
        )
        for k in _KEYS[2:]
    },
)
_line = st.one_of(_record, _json, st.text(max_size=40))


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(records=st.lists(_line, min_size=1, max_size=6), chain=st.booleans())
def test_fuzzed_journals_never_crash_undo_or_resume(
    records: list[Any],
    chain: bool,
    venv: DemoVenv,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    forge(journal_path(venv.venv), records, chain=chain)
    for argv in (
        ["undo", "--yes", "--dry-run"],
        ["undo", "--yes"],
        ["--yes", "--resume", "--no-scan"],
    ):
        code = _main([*argv, "--venv", str(venv.venv)], venv.env, monkeypatch)
        out, err = capsys.readouterr()
        assert code != 5, err
        assert "Traceback" not in out + err
        errors = [line for line in err.splitlines() if line.startswith("tffix: error:")]
        assert all(len(e) < 2000 for e in errors)
        if code == 2:
            assert len(err.strip().splitlines()) == 1, err
        if not journal_path(venv.venv).exists():
            break
    journal_path(venv.venv).unlink(missing_ok=True)
    if "demo==1.0" not in venv.freeze():  # a valid journal's undo may remove it: put it back
        venv.pip("install", "demo==1.0")


@pytest.mark.parametrize("argv", COMMANDS, ids=["undo", "resume"])
def test_an_activate_script_linked_out_of_the_venv_is_not_written_through(
    argv: list[str],
    venv: DemoVenv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = venv.venv / "bin" / "activate.fish"
    saved = script.read_bytes()
    outside = tmp_path / "someone-elses.fish"
    outside.write_text("theirs\n")
    script.unlink()
    script.symlink_to(outside)
    payload = base64.b64encode(b"echo written by undo\n").decode()
    try:
        forge(
            journal_path(venv.venv), _interrupted("r1", {"files": {"bin/activate.fish": payload}})
        )
        code = _main([*argv, "--venv", str(venv.venv)], venv.env, monkeypatch)
        err = capsys.readouterr().err
        assert outside.read_text() == "theirs\n"
        assert code != 5 and "Traceback" not in err
    finally:
        script.unlink()
        script.write_bytes(saved)
        journal_path(venv.venv).unlink(missing_ok=True)


def test_two_journal_objects_on_one_file_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    first, second = Journal(path), Journal(path)
    first.append({"type": "run-start", "run": "r1", "state": {}})
    second.append({"type": "step-start", "run": "r1", "step": 1, "state": {}})
    first.append({"type": "run-end", "run": "r1", "status": "done", "exit_code": 0})
    assert [r["type"] for r in Journal(path).records()] == ["run-start", "step-start", "run-end"]
