"""The activate-script block: golden files per shell, idempotence, and real shells sourcing it.

Golden files: ``fixtures/activate/input/*`` are the stdlib venv's scripts; ``expected/*`` are
what ``render`` must make of them with ``EDITS``. Regenerate after an intended change with
``TFFIX_REGEN_GOLDEN=1 python -m pytest tests/repair/test_activate_text.py`` and review the diff.

The hostile-value tests source the rendered script in real bash, fish and tcsh (each skipped
when the shell is not installed; bash always is) and compare the environment byte for byte
with ``tffix.envedit.apply_edits``, then ``deactivate`` and compare with the original.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import fixture_path
from tffix.activate_text import (
    SCRIPT_NAMES,
    Shell,
    UnsafeValueError,
    block,
    check_edit,
    merge,
    quote_ps,
    render,
    render_conda,
    strip_block,
)
from tffix.envedit import EditOp, EnvEdit, apply_edits, parse_block

EDITS = (
    EnvEdit(EditOp.REMOVE, "LD_LIBRARY_PATH", "/usr/local/cuda-11.8/lib64"),
    EnvEdit(EditOp.UNSET, "CUDA_VISIBLE_DEVICES"),
    EnvEdit(EditOp.SET, "TF_FORCE_GPU_ALLOW_GROWTH", "true"),
    EnvEdit(EditOp.PREPEND, "LD_LIBRARY_PATH", "/opt/nvidia/lib"),
)

HOSTILE = (
    "$(touch PWNED1) `touch PWNED2` 'single' \"double\" \\back\\slash ! !! ${HOME} $HOME "
    ";&|<> * ? [a] ~ # \u2018curly\u2019 \\'"
)


@pytest.mark.parametrize("shell", list(Shell))
def test_golden(shell: Shell) -> None:
    name = SCRIPT_NAMES[shell]
    original = fixture_path("activate", "input", name).read_text()
    rendered = render(shell, original, EDITS)
    expected_path = Path(fixture_path("activate")) / "expected" / name
    if os.environ.get("TFFIX_REGEN_GOLDEN"):
        expected_path.write_text(rendered)
    assert rendered == expected_path.read_text()
    # idempotent, reversible, and the edits read back as data
    assert render(shell, rendered, EDITS) == rendered
    assert render(shell, rendered, ()) == original
    assert parse_block(rendered) == EDITS
    assert "deactivate" in block(shell, EDITS)


def test_replacing_a_block_keeps_the_rest() -> None:
    original = "echo one\n"
    first = render(Shell.POSIX, original, EDITS[:1])
    second = render(Shell.POSIX, first, EDITS[1:2])
    assert parse_block(second) == EDITS[1:2]
    assert strip_block(second) == original
    assert second.count("# >>> tffix >>>") == 1


def test_missing_trailing_newline_gets_one() -> None:
    assert render(Shell.POSIX, "echo x", EDITS[:1]).startswith("echo x\n# >>> tffix >>>\n")


def test_powershell_block_goes_before_a_signature() -> None:
    original = (
        "Write-Host hi\n# SIG # Begin signature block\n# MIIxyz\n# SIG # End signature block\n"
    )
    out = render(Shell.POWERSHELL, original, EDITS[:1])
    assert out.index("# <<< tffix <<<") < out.index("# SIG # Begin signature block")
    assert render(Shell.POWERSHELL, out, ()) == original


def test_powershell_quotes_typographic_quotes_too() -> None:
    assert quote_ps("a'b\u2019c") == "'a''b\u2019\u2019c'"


@pytest.mark.parametrize(
    "edit",
    [
        EnvEdit(EditOp.SET, "X", "line1\nline2"),
        EnvEdit(EditOp.SET, "X", "a\rb"),
        EnvEdit(EditOp.SET, "X", "a\0b"),
        EnvEdit(EditOp.SET, "BAD-NAME", "v"),
        EnvEdit(EditOp.SET, "X; rm -rf ~", "v"),
        EnvEdit(EditOp.PREPEND, "PATH", None),
    ],
)
def test_unsafe_edits_are_refused(edit: EnvEdit) -> None:
    with pytest.raises(UnsafeValueError):
        check_edit(edit)
    with pytest.raises(UnsafeValueError):
        render(Shell.POSIX, "", (edit,))


def test_merge_supersedes_and_is_idempotent() -> None:
    cur = merge((), EnvEdit(EditOp.SET, "A", "1"))
    cur = merge(cur, EnvEdit(EditOp.PREPEND, "P", "/x"))
    assert merge(cur, EnvEdit(EditOp.PREPEND, "P", "/x")) == cur
    cur = merge(cur, EnvEdit(EditOp.UNSET, "A"))
    assert cur == (EnvEdit(EditOp.PREPEND, "P", "/x"), EnvEdit(EditOp.UNSET, "A"))
    cur = merge(cur, EnvEdit(EditOp.REMOVE, "P", "/x"))
    assert cur == (EnvEdit(EditOp.UNSET, "A"), EnvEdit(EditOp.REMOVE, "P", "/x"))


# --------------------------------------------------------------------------- real shells

SHELLS = {
    Shell.POSIX: ("bash", ["bash"], "."),
    Shell.FISH: ("fish", ["fish", "--no-config"], "source"),
    Shell.CSH: ("tcsh", ["tcsh", "-f"], "source"),
}
START_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent-home",
    "CUDA_VISIBLE_DEVICES": "-1",
    "LD_LIBRARY_PATH": "/a::/usr/local/cuda-11.8/lib64/:/b",
    "TF_HOSTILE": "before",
}
LIVE_EDITS = (
    EnvEdit(EditOp.SET, "TF_HOSTILE", HOSTILE),
    EnvEdit(EditOp.SET, "TF_NEW", HOSTILE[::-1]),
    *EDITS,
    EnvEdit(EditOp.PREPEND, "LD_LIBRARY_PATH", "/opt/with space/$(x)/'q'"),
)


def _env0(path: Path) -> dict[str, str]:
    items = [x for x in path.read_bytes().decode().split("\0") if x]
    return dict(item.split("=", 1) for item in items)


@pytest.fixture(scope="module")
def stdlib_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(folder)], check=True)
    return folder


@pytest.mark.parametrize("shell", list(SHELLS))
def test_real_shell_sources_hostile_values_exactly(
    shell: Shell, stdlib_venv: Path, tmp_path: Path
) -> None:
    exe, argv, source = SHELLS[shell]
    if shutil.which(exe) is None:
        pytest.skip(f"{exe} is not installed")
    script = stdlib_venv / "bin" / SCRIPT_NAMES[shell]
    original = script.read_text()
    try:
        script.write_text(render(shell, original, LIVE_EDITS))
        lines = [
            *(["set prompt=''"] if shell is Shell.CSH else []),
            f"{source} {script}",
            f"env -0 > {tmp_path / 'after'}",
            "deactivate",
            f"env -0 > {tmp_path / 'restored'}",
        ]
        (tmp_path / "run").write_text("\n".join(lines) + "\n")
        done = subprocess.run(
            [*argv, str(tmp_path / "run")],
            env=START_ENV,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    finally:
        script.write_text(original)
    after, restored = _env0(tmp_path / "after"), _env0(tmp_path / "restored")
    expected = apply_edits(START_ENV, LIVE_EDITS)
    for name in ("TF_HOSTILE", "TF_NEW", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
        assert after.get(name) == expected.get(name), name
    for name in ("TF_HOSTILE", "TF_NEW", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "PATH"):
        assert restored.get(name) == START_ENV.get(name), name
    assert not [k for k in restored if k.startswith("_TFFIX")]
    assert not list(tmp_path.glob("PWNED*")), "a value ran as shell code"


def test_bash_reactivation_restores_before_reapplying(stdlib_venv: Path, tmp_path: Path) -> None:
    """Sourcing activate twice (no deactivate between) must not save tffix's own values."""
    script = stdlib_venv / "bin" / "activate"
    original = script.read_text()
    try:
        script.write_text(render(Shell.POSIX, original, EDITS))
        cmd = f". {script}; . {script}; deactivate; env -0 > {tmp_path / 'out'}"
        subprocess.run(["bash", "-c", cmd], env=START_ENV, check=True, timeout=60)
    finally:
        script.write_text(original)
    out = _env0(tmp_path / "out")
    assert out["CUDA_VISIBLE_DEVICES"] == "-1"
    assert out["LD_LIBRARY_PATH"] == START_ENV["LD_LIBRARY_PATH"]
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in out


def test_conda_scripts_set_and_restore(tmp_path: Path) -> None:
    act, deact = render_conda(LIVE_EDITS)
    assert parse_block(act) == LIVE_EDITS
    (tmp_path / "a.sh").write_text(act)
    (tmp_path / "d.sh").write_text(deact)
    cmd = ". ./a.sh; env -0 > after; . ./d.sh; env -0 > restored"
    subprocess.run(["bash", "-c", cmd], env=START_ENV, cwd=tmp_path, check=True, timeout=60)
    after, restored = _env0(tmp_path / "after"), _env0(tmp_path / "restored")
    expected = apply_edits(START_ENV, LIVE_EDITS)
    for name in ("TF_HOSTILE", "TF_NEW", "CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
        assert after.get(name) == expected.get(name), name
        assert restored.get(name) == START_ENV.get(name), name
    assert not list(tmp_path.glob("PWNED*"))
