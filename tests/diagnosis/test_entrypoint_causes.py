"""The entry-point causes as pure functions: invariants over built snapshots."""

from __future__ import annotations

import pytest

from tffix.causes import entrypoints
from tffix.diagnosis import diagnose
from tffix.model import (
    EntryPointState,
    Finding,
    FixSide,
    Origin,
    Provenance,
    Severity,
    Snapshot,
    StepKind,
)
from tffix.ruleset import load_rules

ACT = EntryPointState("activated", "a", usable=True)
SEARCHED = ("/etc/environment", "/h/.bashrc")


def _snap(
    *points: EntryPointState,
    origins: dict[str, tuple[Origin, ...]] | None = None,
    env: dict[str, str] | None = None,
) -> Snapshot:
    return Snapshot(
        entry_points=points,
        provenance=Provenance(origins or {}, SEARCHED),
        env=env or {},
    )


@pytest.mark.parametrize("value", ["-1", "", " ", "none", "-1,0", "NoDevFiles"])
def test_masks(value: str) -> None:
    assert entrypoints.masks(value)


@pytest.mark.parametrize("value", [None, "0", "1,0", "GPU-abc"])
def test_does_not_mask(value: str | None) -> None:
    assert not entrypoints.masks(value)


def test_annotate_names_the_origin_or_where_tffix_looked() -> None:
    f = Finding("x", Severity.ERROR, FixSide.VENV, "masked", ("env.CUDA_VISIBLE_DEVICES",))
    rc = Origin("/h/.bashrc", 12, "export CUDA_VISIBLE_DEVICES=-1", "shell")
    named = entrypoints.annotate(
        [f], _snap(origins={"CUDA_VISIBLE_DEVICES": (rc,)}, env={"CUDA_VISIBLE_DEVICES": "-1"})
    )[0]
    assert named.title == "masked (CUDA_VISIBLE_DEVICES from /h/.bashrc line 12)"
    assert entrypoints.annotate([named], _snap(origins={"CUDA_VISIBLE_DEVICES": (rc,)}))[0] == named
    unknown = entrypoints.annotate([f], _snap(env={"CUDA_VISIBLE_DEVICES": "-1"}))[0]
    assert unknown.title == "masked"
    assert "no file that sets CUDA_VISIBLE_DEVICES" in unknown.detail
    assert all(p in unknown.detail for p in SEARCHED)
    # no provenance at all (a hand-written snapshot): nothing is claimed
    assert entrypoints.annotate([f], Snapshot())[0] == f


def test_a_broken_entry_point_alone_fires_only_when_the_activated_shell_works() -> None:
    rules = load_rules()
    plain = EntryPointState("plain", "p", values={"CUDA_VISIBLE_DEVICES": "-1"}, usable=False)
    fired = diagnose(_snap(ACT, plain), rules)
    assert "entry-point-gpu-unusable" in {f.id for f in fired.findings}
    broken = EntryPointState("activated", "a", usable=False)
    quiet = diagnose(_snap(broken, plain), rules)
    assert "entry-point-gpu-unusable" not in {f.id for f in quiet.findings}
    unchecked = EntryPointState("plain", "p", values={"CUDA_VISIBLE_DEVICES": "-1"}, usable=None)
    assert "entry-point-gpu-unusable" not in {
        f.id for f in diagnose(_snap(ACT, unchecked), rules).findings
    }


@pytest.mark.parametrize(
    ("kind", "var", "value", "expected"),
    [
        ("kernel", "CUDA_VISIBLE_DEVICES", "-1", StepKind.KERNELSPEC_ENV),
        ("plain", "CUDA_VISIBLE_DEVICES", "-1", StepKind.IMPORT_HOOK),
        ("kernel", "XLA_FLAGS", "--bad", StepKind.KERNELSPEC_ENV),
        ("vscode", "XLA_FLAGS", "--bad", StepKind.IMPORT_HOOK),
    ],
)
def test_variables_read_at_init_are_fixed_where_the_entry_point_reads_them(
    kind: str, var: str, value: str, expected: StepKind
) -> None:
    ep = EntryPointState(
        kind,
        "k",
        source="/k/kernel.json",
        adds={var: value} if kind == "kernel" else {},
        values={var: value},
        usable=False,
    )
    diag = diagnose(_snap(ACT, ep), load_rules())
    steps = [s for s in diag.plan if "entry-point-gpu-unusable" in s.resolves]
    assert [s.kind for s in steps] == [expected]
    assert steps[0].variable == var and steps[0].op == "unset"
    if expected is StepKind.KERNELSPEC_ENV:
        assert steps[0].path == "/k/kernel.json"
    finding = next(f for f in diag.findings if f.id == "entry-point-gpu-unusable")
    assert finding.location == ("/k/kernel.json" if kind in ("kernel", "vscode") else None)


def test_a_startup_line_is_only_ever_an_unsafe_step() -> None:
    rc = Origin("/h/.bashrc", 3, "export CUDA_VISIBLE_DEVICES=-1", "shell")
    plain = EntryPointState("plain", "p", values={"CUDA_VISIBLE_DEVICES": "-1"}, usable=False)
    diag = diagnose(_snap(ACT, plain, origins={"CUDA_VISIBLE_DEVICES": (rc,)}), load_rules())
    edits = [s for s in diag.plan if s.kind is StepKind.STARTUP_EDIT]
    assert len(edits) == 1
    step = edits[0]
    assert step.safety.value == "unsafe"
    assert (step.path, step.line, step.before) == ("/h/.bashrc", 3, rc.text)
    assert step.after is not None and step.after.endswith(rc.text)


def test_an_entry_point_value_without_origin_says_where_tffix_looked() -> None:
    plain = EntryPointState("plain", "p", values={"CUDA_VISIBLE_DEVICES": "-1"}, usable=False)
    diag = diagnose(_snap(ACT, plain), load_rules())
    finding = next(f for f in diag.findings if f.id == "entry-point-gpu-unusable")
    assert " from " not in finding.title
    assert "no file that sets CUDA_VISIBLE_DEVICES" in finding.detail
    assert all(p in finding.detail for p in SEARCHED)


def test_a_masked_activated_shell_is_no_value_to_copy_into_a_kernelspec() -> None:
    # The kernelspec sets the variable itself, and the activated shell (not usable either)
    # has the same masking value: the kernelspec's setting is removed, never set to "-1".
    masked = {"CUDA_VISIBLE_DEVICES": "-1"}
    act = EntryPointState("activated", "a", values=masked, usable=False)
    kernel = EntryPointState(
        "kernel", "k", source="/k/kernel.json", adds=masked, values=masked, usable=False
    )
    diag = diagnose(_snap(act, kernel, env=masked), load_rules())
    steps = [s for s in diag.plan if s.kind is StepKind.KERNELSPEC_ENV]
    assert steps and all(s.op == "unset" and s.value is None for s in steps)
