"""`tffix undo` on real venvs: byte for byte from kept files, no index, a stack across runs.

Every test compares what a user would: ``pip freeze --all``, the activate scripts, and the
bytes of the files the distributions installed (``RECORD``), before and after.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.repair.conftest import DemoVenv, make_demo_venv
from tffix import cli
from tffix import transaction as core
from tffix.effects import stash
from tffix.effects.journal import Journal, RunRecorder, journal_path, runs
from tffix.effects.pip import PackageManager
from tffix.effects.steps import Workspace
from tffix.errors import ApplyError
from tffix.model import Diagnosis, Finding, FixSide, PlanStep, Safety, Severity, StepKind

pytestmark = pytest.mark.slow


def _step(kind: StepKind, summary: str, resolves: str, **kw: Any) -> PlanStep:
    return PlanStep(kind, summary, Safety.SAFE, (resolves,), **kw)


INSTALL_DEMO2 = _step(
    StepKind.PIP_INSTALL, "install demo 2.0", "old-demo", requirements=("demo==2.0",)
)
INSTALL_EXTRA = _step(
    StepKind.PIP_INSTALL, "install extra", "no-extra", requirements=("extra==1.0",)
)
UNINSTALL_DEMO = _step(StepKind.PIP_UNINSTALL, "remove demo", "has-demo", packages=("demo",))
UNSET_CVD = _step(StepKind.ENV_UNSET, "unset CVD", "cvd", variable="CUDA_VISIBLE_DEVICES")
INSTALL_SHARED = _step(
    StepKind.PIP_INSTALL, "install sharedpkg", "cpu-only", requirements=("sharedpkg==1.0",)
)
UNINSTALL_SHARED = _step(
    StepKind.PIP_UNINSTALL, "remove sharedpkg", "two-builds", packages=("sharedpkg",)
)


def workspace(demo: DemoVenv) -> Workspace:
    return Workspace(
        demo.venv, False, PackageManager(demo.python, demo.venv, demo.env, say=lambda _t: None)
    )


def repair(
    demo: DemoVenv, plan: tuple[PlanStep, ...], worse: tuple[PlanStep, ...] = ()
) -> core.Outcome:
    """A repair whose diagnosis is scripted: each applied step resolves its finding, except
    the *worse* ones, which add a new error (so the transaction rolls them back)."""
    ws = workspace(demo)
    fixed: set[str] = set()
    applied: list[PlanStep] = []

    def diagnosis(extra: tuple[str, ...] = ()) -> Diagnosis:
        ids = sorted({r for s in plan for r in s.resolves} - fixed) + list(extra)
        return Diagnosis(
            gpu_visible=not ids,
            findings=tuple(Finding(i, Severity.ERROR, FixSide.VENV, i) for i in ids),
            plan=plan,
        )

    def action(step: PlanStep) -> Any:
        applied.append(step)
        return ws.action(step)

    def observe() -> Diagnosis:
        if applied[-1] in worse:
            return diagnosis(("tf-broken",))
        fixed.update(applied[-1].resolves)
        return diagnosis()

    return core.repair(
        diagnosis(),
        confirm=core.AutoConfirm(),
        actions=action,
        observe=core.observer(observe),
        recorder=RunRecorder(Journal(journal_path(demo.venv))),
        capture=ws.capture,
    )


def installed_bytes(demo: DemoVenv) -> dict[str, bytes]:
    """Every file any distribution's RECORD lists, with its bytes."""
    out = {}
    for rel in stash.all_record_files(demo.venv):
        path = demo.venv / rel
        if path.is_file():
            out[rel] = path.read_bytes()
    return out


def state(demo: DemoVenv) -> tuple[str, dict[str, bytes], dict[str, bytes]]:
    return demo.freeze(), demo.scripts(), installed_bytes(demo)


def undo(demo: DemoVenv, monkeypatch: pytest.MonkeyPatch, *flags: str) -> int:
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in demo.env.items():
        monkeypatch.setenv(key, value)
    return cli.main(["undo", "--venv", str(demo.venv), *flags])


def imports(demo: DemoVenv, module: str) -> str:
    done = demo.pip("--version")  # warm; then ask the interpreter itself
    assert done.returncode == 0
    import subprocess

    run = subprocess.run(
        [
            str(demo.python),
            "-I",
            "-c",
            f"import {module}, json; print(json.dumps(vars({module}).get('VARIANT', 'ok')))",
        ],
        capture_output=True,
        text=True,
        env=demo.env,
        check=False,
    )
    return (
        run.stdout.strip()
        if run.returncode == 0
        else f"fails: {run.stderr.strip().splitlines()[-1:]}"
    )


@pytest.fixture
def private(tmp_path: Path, wheelhouse: Path) -> DemoVenv:
    """A demo venv with its own copy of the wheel folder (tests empty it)."""
    wheels = tmp_path / "wheels"
    shutil.copytree(wheelhouse, wheels)
    return make_demo_venv(tmp_path, wheels)


def test_undo_needs_no_index_and_restores_byte_for_byte(
    private: DemoVenv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = state(private)
    outcome = repair(private, (INSTALL_DEMO2, UNSET_CVD))
    assert [s.status for s in outcome.steps] == [core.StepStatus.APPLIED] * 2
    assert "demo==2.0" in private.freeze()
    for wheel in Path(private.env["PIP_FIND_LINKS"]).iterdir():  # the index forgets demo 1.0
        wheel.unlink()
    assert undo(private, monkeypatch, "--yes") == 0, capsys.readouterr().err
    assert state(private) == before
    assert "Restored" in capsys.readouterr().out


def test_undo_steps_back_through_every_run_to_the_first(
    demo_venv: DemoVenv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs (finding 2): undo reverts the second, then the first, then has nothing left."""
    original = state(demo_venv)
    repair(demo_venv, (INSTALL_DEMO2,))
    after_first = state(demo_venv)
    repair(demo_venv, (UNINSTALL_DEMO, INSTALL_EXTRA, UNSET_CVD))
    assert "demo==" not in demo_venv.freeze() and "extra==1.0" in demo_venv.freeze()
    capsys.readouterr()
    assert undo(demo_venv, monkeypatch, "--list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["undo"] for r in listed["runs"]] == ["undoable", "undoable"]
    assert undo(demo_venv, monkeypatch, "--yes") == 0
    assert state(demo_venv) == after_first
    assert "1 earlier run(s) can still be undone" in capsys.readouterr().out
    assert undo(demo_venv, monkeypatch, "--yes") == 0
    assert state(demo_venv) == original
    capsys.readouterr()
    assert undo(demo_venv, monkeypatch, "--yes") == 0
    assert "Nothing to undo" in capsys.readouterr().out
    assert stash.snapshots(demo_venv.venv) == []  # undone runs leave no kept files behind


def test_dry_run_and_json_change_nothing(
    demo_venv: DemoVenv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repair(demo_venv, (INSTALL_DEMO2, UNSET_CVD))
    changed = state(demo_venv)
    capsys.readouterr()
    assert undo(demo_venv, monkeypatch, "--dry-run", "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "tffix.undo/1" and doc["dry_run"] is True
    whats = {c["what"]: (c["now"], c["then"]) for c in doc["changes"]}
    assert whats["demo"] == ("2.0", "1.0") and whats["demodep"] == ("1.0", "absent")
    assert "bin/activate" in whats
    assert state(demo_venv) == changed
    assert undo(demo_venv, monkeypatch, "--yes", "--json") == 0
    assert json.loads(capsys.readouterr().out)["undone"] is True


def test_shared_folder_removed_with_one_build_is_restored_by_undo(
    demo_venv: DemoVenv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 3: uninstalling ``sharedpkg`` beside ``sharedpkg-cpu`` deletes the ``shared/``
    folder both list; undo puts the cpu build's files back, importable."""
    assert demo_venv.pip("install", "sharedpkg-cpu==1.0").returncode == 0
    before = state(demo_venv)
    assert imports(demo_venv, "shared") == '"cpu"'
    repair(demo_venv, (INSTALL_SHARED, UNINSTALL_SHARED))
    assert "sharedpkg-cpu==1.0" in demo_venv.freeze()
    assert imports(demo_venv, "shared").startswith("fails")  # the shared folder is gone
    assert undo(demo_venv, monkeypatch, "--yes") == 0, capsys.readouterr().err
    assert imports(demo_venv, "shared") == '"cpu"'
    assert state(demo_venv) == before


def test_a_rolled_back_install_over_a_shared_folder_leaves_it_whole(demo_venv: DemoVenv) -> None:
    """Finding 3, in the run: the step that installs the other build is rolled back."""
    assert demo_venv.pip("install", "sharedpkg-cpu==1.0").returncode == 0
    before = state(demo_venv)
    outcome = repair(demo_venv, (INSTALL_SHARED,), worse=(INSTALL_SHARED,))
    assert outcome.steps[0].status is core.StepStatus.REVERTED
    assert imports(demo_venv, "shared") == '"cpu"'
    assert state(demo_venv) == before


def test_undo_after_pip_was_killed_inside_an_uninstall(
    demo_venv: DemoVenv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 7: pip killed mid-uninstall leaves ``~emo-1.0.dist-info`` (what metadata still
    reads as demo 1.0) and no ``demo/``; undo must put demo back, and say so only then."""
    before = state(demo_venv)
    ws = workspace(demo_venv)
    recorder = RunRecorder(Journal(journal_path(demo_venv.venv)))
    snap = ws.capture()
    recorder.start_run(snap)
    recorder.step_start(1, UNINSTALL_DEMO, snap)
    (site,) = stash.site_dirs(demo_venv.venv)
    (site / "demo-1.0.dist-info").rename(site / "~emo-1.0.dist-info")  # pip's stash rename
    shutil.rmtree(site / "demo")
    assert "demo==" not in demo_venv.freeze()
    assert undo(demo_venv, monkeypatch, "--yes") == 0, capsys.readouterr().err
    assert "Restored" in capsys.readouterr().out
    assert imports(demo_venv, "demo") == '"ok"'
    assert state(demo_venv) == before
    assert not list(site.glob("~*"))


def test_undo_says_incomplete_when_import_fails(
    demo_venv: DemoVenv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Metadata alone is not enough: kept files gone and the module missing is exit 4."""
    repair(demo_venv, (UNINSTALL_DEMO,))
    for kept in stash.snapshots(demo_venv.venv):
        stash.drop(demo_venv.venv, kept)
    (site,) = stash.site_dirs(demo_venv.venv)
    info = site / "demo-1.0.dist-info"  # metadata back by hand, no module: import fails
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    (info / "RECORD").write_text("demo/__init__.py,,\ndemo-1.0.dist-info/METADATA,,\n")
    code = undo(demo_venv, monkeypatch, "--yes")
    captured = capsys.readouterr()
    assert code == 4, captured.err
    assert "import demo" in captured.err and "Restored" not in captured.out


def test_list_shows_the_disk_kept_and_drop_frees_it(
    demo_venv: DemoVenv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repair(demo_venv, (INSTALL_DEMO2,))
    repair(demo_venv, (UNINSTALL_DEMO,))
    capsys.readouterr()
    assert undo(demo_venv, monkeypatch, "--list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    assert all(r["kept_bytes"] > 0 for r in rows)  # demo 1.0's files, then demo 2.0's
    assert undo(demo_venv, monkeypatch, "--drop-kept", "1", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)["dropped"]) == 1
    assert undo(demo_venv, monkeypatch, "--yes") == 0  # the newest run still undoes
    assert "demo==2.0" in demo_venv.freeze()
    capsys.readouterr()
    assert undo(demo_venv, monkeypatch, "--yes") == 0
    assert "Nothing to undo" in capsys.readouterr().out
    assert stash.snapshots(demo_venv.venv) == []
    stories = runs(Journal(journal_path(demo_venv.venv)).records())
    assert stories[0].dropped is not None


def test_on_a_terminal_undo_asks_first(demo_venv: DemoVenv, tmp_path: Path) -> None:
    """In a pty: "n" changes nothing (exit 1); "y" undoes."""
    pexpect = pytest.importorskip("pexpect")
    import sys

    repair(demo_venv, (INSTALL_DEMO2,))
    changed = demo_venv.freeze()

    def ask(answer: str) -> tuple[int, str]:
        child = pexpect.spawn(
            sys.executable,
            ["-m", "tffix", "undo", "--venv", str(demo_venv.venv)],
            env={**demo_venv.env, "TERM": "xterm"},
            cwd=str(tmp_path),
            encoding="utf-8",
            timeout=120,
        )
        try:
            child.expect(r"demo: 2\.0 -> 1\.0")
            child.expect(r"Undo run \S+\? \[y/N\]")
            child.sendline(answer)
            child.expect(pexpect.EOF)
            text = child.before
        finally:
            child.close()
        return child.exitstatus, text

    code, text = ask("n")
    assert code == 1 and "Nothing changed" in text
    assert demo_venv.freeze() == changed
    code, text = ask("y")
    assert code == 0 and "Restored" in text
    assert "demo==1.0" in demo_venv.freeze()


def test_a_prune_that_fails_at_the_run_end_leaves_the_whole_snapshot_and_undo_exact(
    demo_venv: DemoVenv, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = demo_venv.freeze()

    def refuse(prefix: Path, kept: str) -> None:
        raise ApplyError(f"cannot prune the kept files {kept}: disk full")

    with monkeypatch.context() as m:
        m.setattr(stash, "prune", refuse)
        repair(demo_venv, (INSTALL_DEMO2,))
    assert "demo==2.0" in demo_venv.freeze()
    assert undo(demo_venv, monkeypatch, "--yes") == 0
    assert demo_venv.freeze() == before
