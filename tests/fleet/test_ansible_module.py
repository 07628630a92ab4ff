"""The Ansible module's own edges, run as Ansible runs it: ``python tffix.py ARGS.json``.

(The end-to-end test drives it through ``ansible-playbook``; these are the failures that need
no simulated machine: no venv, a tffix that does not answer with a document.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = (
    Path(__file__).resolve().parents[2] / "tffix" / "ansible" / "plugins" / "modules" / "tffix.py"
)

pytest.importorskip("ansible", reason="ansible-core comes with the test extra")


def _run(tmp_path: Path, **args: object) -> dict[str, object]:
    file = tmp_path / "args.json"
    file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run(
        [sys.executable, str(MODULE), str(file)], capture_output=True, text=True, check=False
    )
    return json.loads(done.stdout)


def test_a_missing_venv_fails_with_exit_2(tmp_path: Path) -> None:
    result = _run(tmp_path, venv=str(tmp_path / "nope"))
    assert result["failed"] is True and result["exit_code"] == 2
    assert "is not a folder" in str(result["msg"])


def test_a_tffix_without_a_document_fails_with_its_last_line(tmp_path: Path) -> None:
    fake = tmp_path / "tffix"
    fake.write_text("#!/bin/sh\necho 'tffix: internal error: boom' >&2\nexit 5\n")
    fake.chmod(0o755)
    (tmp_path / "venv").mkdir()
    result = _run(tmp_path, venv=str(tmp_path / "venv"), executable=str(fake))
    assert result["failed"] is True and result["exit_code"] == 5
    assert result["msg"] == "tffix exited 5: tffix: internal error: boom"
    assert "--yes" in result["cmd"] and "--no-scan" in result["cmd"]  # type: ignore[operator]


def test_check_mode_asks_for_a_dry_run(tmp_path: Path) -> None:
    fake = tmp_path / "tffix"
    doc = {"schema": "tffix.diagnosis/1", "gpu_visible": True, "findings": [], "plan": []}
    fake.write_text(f"#!/bin/sh\necho '{json.dumps(doc)}'\necho \"$@\" > {tmp_path}/argv\n")
    fake.chmod(0o755)
    (tmp_path / "venv").mkdir()
    result = _run(
        tmp_path, venv=str(tmp_path / "venv"), executable=str(fake), _ansible_check_mode=True
    )
    assert result.get("failed") is not True and result["changed"] is False
    assert "--dry-run" in (tmp_path / "argv").read_text()
    assert result["ansible_facts"]["tffix"]["diagnosis"] == doc  # type: ignore[index]
