"""Where the entry-point causes point and what they may edit, for every kind of entry point
and every kind of origin: invariants over built snapshots (pure)."""

from __future__ import annotations

import pytest

from tffix.causes import entrypoints
from tffix.diagnosis import diagnose
from tffix.model import EntryPointState, Origin, Provenance, Safety, Snapshot, StepKind
from tffix.ruleset import load_rules

ACT = EntryPointState("activated", "a", usable=True)
ORIGIN_KINDS = (
    "shell",
    "login",
    "system",
    "module",
    "conda",
    "python",
    "kernelspec",
    "dotenv",
    "activate",
    "vscode",
    "cron",
    "systemd",
)


def _snap(ep: EntryPointState, origin: Origin | None = None) -> Snapshot:
    origins = {"CUDA_VISIBLE_DEVICES": (origin,)} if origin else {}
    return Snapshot(entry_points=(ACT, ep), provenance=Provenance(origins, ("/etc/environment",)))


@pytest.mark.parametrize("kind", ["plain", "vscode", "cron", "systemd"])
def test_a_masked_entry_point_of_any_kind_gets_the_hook_and_a_location_when_it_has_a_file(
    kind: str,
) -> None:
    source = None if kind == "plain" else f"/defines/{kind}"
    ep = EntryPointState(
        kind, f"{kind} thing", source=source, values={"CUDA_VISIBLE_DEVICES": "-1"}, usable=False
    )
    diag = diagnose(_snap(ep), load_rules())
    finding = next(f for f in diag.findings if f.id == "entry-point-gpu-unusable")
    assert finding.location == source
    steps = [s for s in diag.plan if "entry-point-gpu-unusable" in s.resolves]
    assert [(s.kind, s.op, s.variable) for s in steps] == [
        (StepKind.IMPORT_HOOK, "unset", "CUDA_VISIBLE_DEVICES")
    ]


@pytest.mark.parametrize("origin_kind", ORIGIN_KINDS)
def test_only_the_users_own_files_and_a_project_env_file_are_ever_offered_for_editing(
    origin_kind: str,
) -> None:
    origin = Origin(f"/f/{origin_kind}", 3, "CUDA_VISIBLE_DEVICES=-1", origin_kind)
    ep = EntryPointState("cron", "job", values={"CUDA_VISIBLE_DEVICES": "-1"}, usable=False)
    diag = diagnose(_snap(ep, origin), load_rules())
    edits = [s for s in diag.plan if s.kind is StepKind.STARTUP_EDIT]
    if origin_kind in entrypoints.USER_FILES:
        assert [(e.path, e.line, e.safety) for e in edits] == [(origin.file, 3, Safety.UNSAFE)]
        startup = next(f for f in diag.findings if f.id == "variable-from-startup-file")
        assert entrypoints.REACH[origin_kind] in startup.title
    else:
        assert edits == []
        assert "variable-from-startup-file" not in {f.id for f in diag.findings}
    finding = next(f for f in diag.findings if f.id == "entry-point-gpu-unusable")
    shown = origin_kind != "activate"  # the job never sourced the activate script
    assert (f"from /f/{origin_kind} line 3" in finding.title) is shown


def test_an_entry_point_that_could_not_be_checked_says_why_and_is_not_an_error() -> None:
    note = "/p/.vscode/settings.json: not valid JSON with comments: line 3 column 3: x"
    ep = EntryPointState("vscode", "VS Code (/p/.vscode/settings.json)", error=note)
    diag = diagnose(_snap(ep), load_rules())
    assert "entry-point-gpu-unusable" not in {f.id for f in diag.findings}
    assert note in (entrypoints.seen(_snap(ep)) or "")
    assert entrypoints.usable_lines((ACT, ep), str) == []
