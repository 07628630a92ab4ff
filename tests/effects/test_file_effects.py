"""The kernelspec, import-hook and start-up-file effects: what they write, that undo gives
back the exact bytes, and that they never follow a link out of their folder."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

from tffix import hook
from tffix.effects import hookfiles, kernelspec, startup
from tffix.effects.safepath import PathEscape
from tffix.effects.saved import Saved
from tffix.envedit import EditOp, EnvEdit
from tffix.errors import ApplyError, InputError

# An odd but valid kernelspec: tabs, key order, unicode, no final newline.
SPEC = (
    b'{\n\t"display_name": "Train \xc3\xa9",\n\t"argv": ["/v/bin/python", "-m",'
    b' "ipykernel_launcher", "-f", "{connection_file}"],\n\t"env": {"CUDA_VISIBLE_DEVICES": "-1", '
    b'"LD_LIBRARY_PATH": "/opt/cudnn8/lib:/usr/lib"},\n\t"language": "python"}'
)


def _spec(tmp_path: Path, data: bytes = SPEC) -> Path:
    folder = tmp_path / "kernels" / "train"
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_bytes(data)
    return folder


@pytest.mark.parametrize(
    ("edit", "env"),
    [
        (
            EnvEdit(EditOp.UNSET, "CUDA_VISIBLE_DEVICES"),
            {"LD_LIBRARY_PATH": "/opt/cudnn8/lib:/usr/lib"},
        ),
        (
            EnvEdit(EditOp.REMOVE, "LD_LIBRARY_PATH", "/opt/cudnn8/lib"),
            {"CUDA_VISIBLE_DEVICES": "-1", "LD_LIBRARY_PATH": "/usr/lib"},
        ),
        (
            EnvEdit(EditOp.SET, "XLA_FLAGS", "--xla_gpu_cuda_data_dir=/x"),
            {
                "CUDA_VISIBLE_DEVICES": "-1",
                "LD_LIBRARY_PATH": "/opt/cudnn8/lib:/usr/lib",
                "XLA_FLAGS": "--xla_gpu_cuda_data_dir=/x",
            },
        ),
        (
            EnvEdit(EditOp.PREPEND, "LD_LIBRARY_PATH", "/usr/lib"),
            {"CUDA_VISIBLE_DEVICES": "-1", "LD_LIBRARY_PATH": "/usr/lib:/opt/cudnn8/lib"},
        ),
    ],
)
def test_kernelspec_edit_changes_env_only_and_restores_exactly(
    tmp_path: Path, edit: EnvEdit, env: dict[str, str]
) -> None:
    folder = _spec(tmp_path)
    record = kernelspec.edit_env(folder, edit)
    doc = json.loads((folder / "kernel.json").read_text())
    assert doc["env"] == env
    original = json.loads(SPEC)
    assert {k: v for k, v in doc.items() if k != "env"} == {
        k: v for k, v in original.items() if k != "env"
    }
    # through the journal's JSON form, as undo reads it
    again = Saved.from_json(json.loads(json.dumps(record.to_json())))
    assert again.restore() == []
    assert (folder / "kernel.json").read_bytes() == SPEC
    assert again.restore() == []  # idempotent


def test_kernelspec_env_emptied_drops_the_key(tmp_path: Path) -> None:
    folder = _spec(tmp_path, b'{"argv": ["p"], "env": {"CUDA_VISIBLE_DEVICES": ""}}')
    kernelspec.edit_env(folder, EnvEdit(EditOp.UNSET, "CUDA_VISIBLE_DEVICES"))
    assert "env" not in json.loads((folder / "kernel.json").read_text())


@pytest.mark.parametrize("data", [b"[1]", b"{", b'{"env": {"A": 1}}', b'{"env": []}', b"\xff"])
def test_kernelspec_that_is_not_one_is_refused_untouched(tmp_path: Path, data: bytes) -> None:
    folder = _spec(tmp_path, data)
    with pytest.raises(ApplyError):
        kernelspec.edit_env(folder, EnvEdit(EditOp.UNSET, "CUDA_VISIBLE_DEVICES"))
    assert (folder / "kernel.json").read_bytes() == data


def test_kernelspec_link_out_of_its_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.json"
    outside.write_bytes(SPEC)
    folder = tmp_path / "kernels" / "k"
    folder.mkdir(parents=True)
    (folder / "kernel.json").symlink_to(outside)
    with pytest.raises(PathEscape):
        kernelspec.edit_env(folder, EnvEdit(EditOp.UNSET, "CUDA_VISIBLE_DEVICES"))
    assert outside.read_bytes() == SPEC


def test_saved_record_from_untrusted_json_is_checked() -> None:
    for bad in (
        [],
        {"root": 1},
        {"root": "/x", "files": []},
        {"root": "/x", "files": {"a": 3}},
        {"root": "/x", "files": {"a": "not base64!"}},
    ):
        with pytest.raises(InputError):
            Saved.from_json(bad)


def test_saved_restore_refuses_names_leading_out(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    root = tmp_path / "root"
    root.mkdir()
    problems = Saved(str(root), {"../victim": None}).restore()
    assert problems and victim.read_bytes() == b"keep"


# ---------------------------------------------------------------- the import hook's files


def _site(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(root)
    site = next((root / "lib").glob("python*/site-packages"))
    return root / "bin" / "python", site


def test_hook_install_merges_and_undo_removes_both_files(tmp_path: Path) -> None:
    _, site = _site(tmp_path)
    first = hookfiles.install(site, preload=["/w/libcudnn.so.9"])
    assert first.files == {hook.PTH_NAME: None, hook.MODULE_NAME: None}
    second = hookfiles.install(site, unset_vars=["CUDA_VISIBLE_DEVICES"])
    settings = hookfiles.current(site)
    assert settings == hookfiles.HookSettings({}, ("CUDA_VISIBLE_DEVICES",), ("/w/libcudnn.so.9",))
    module_after_first = second.files[hook.MODULE_NAME]
    assert second.restore() == []
    assert (site / hook.MODULE_NAME).read_bytes() == module_after_first
    assert first.restore() == []
    assert not (site / hook.MODULE_NAME).exists() and not (site / hook.PTH_NAME).exists()


def test_hook_never_overwrites_a_foreign_module(tmp_path: Path) -> None:
    _, site = _site(tmp_path)
    (site / hook.MODULE_NAME).write_text("print('mine')\n")
    with pytest.raises(ApplyError, match="not written by tffix"):
        hookfiles.install(site, unset_vars=["CUDA_VISIBLE_DEVICES"])
    assert (site / hook.MODULE_NAME).read_text() == "print('mine')\n"
    assert not (site / hook.PTH_NAME).exists()


def test_installed_hook_acts_in_a_plain_run_only_on_tensorflow_import(tmp_path: Path) -> None:
    python, site = _site(tmp_path)
    pkg = site / "tensorflow"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import os\nSEEN = os.environ.get('CUDA_VISIBLE_DEVICES')\n")
    hookfiles.install(site, unset_vars=["CUDA_VISIBLE_DEVICES"], set_vars={"XLA_FLAGS": "--x"})
    env = {"PATH": os.environ["PATH"], "CUDA_VISIBLE_DEVICES": "-1"}
    code = (
        "import os, sys; before = os.environ.get('CUDA_VISIBLE_DEVICES'); "
        "import tensorflow; print(before, tensorflow.SEEN, os.environ.get('XLA_FLAGS'))"
    )
    out = subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["-1", "None", "--x"], out.stderr
    untouched = subprocess.run(
        [str(python), "-c", "import os, json; print(os.environ['CUDA_VISIBLE_DEVICES'])"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert untouched.stdout.strip() == "-1"


# ---------------------------------------------------------------- start-up files

BASHRC = b"# ~/.bashrc\nalias ll='ls -l'\r\nexport CUDA_VISIBLE_DEVICES=-1\nexport EDITOR=vi"


def test_startup_edit_comments_the_line_keeps_a_backup_and_undoes_exactly(tmp_path: Path) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(BASHRC)
    record = startup.comment_out(rc, 3, "export CUDA_VISIBLE_DEVICES=-1")
    lines = rc.read_bytes().split(b"\n")
    assert lines[2] == (startup.COMMENT + "export CUDA_VISIBLE_DEVICES=-1").encode()
    assert lines[:2] + lines[3:] == BASHRC.split(b"\n")[:2] + BASHRC.split(b"\n")[3:]
    assert (tmp_path / ".bashrc.tffix-backup").read_bytes() == BASHRC
    out = subprocess.run(
        ["bash", "--norc", "-c", f". {rc}; echo ${{CUDA_VISIBLE_DEVICES-unset}}"],
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "unset"
    assert record.restore() == []
    assert rc.read_bytes() == BASHRC
    assert not (tmp_path / ".bashrc.tffix-backup").exists()


def test_startup_edit_refused_when_the_line_changed(tmp_path: Path) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_bytes(BASHRC)
    with pytest.raises(ApplyError, match="changed since"):
        startup.comment_out(rc, 2, "export CUDA_VISIBLE_DEVICES=-1")
    assert rc.read_bytes() == BASHRC


def test_startup_edit_refuses_a_link_out_of_its_folder(tmp_path: Path) -> None:
    dots = tmp_path / "dotfiles"
    dots.mkdir()
    (dots / "bashrc").write_bytes(BASHRC)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").symlink_to(dots / "bashrc")
    with pytest.raises(PathEscape):
        startup.comment_out(home / ".bashrc", 3, "export CUDA_VISIBLE_DEVICES=-1")
    assert (dots / "bashrc").read_bytes() == BASHRC


# ---------------------------------------------------------------- journal state of outside files


def test_outside_files_capture_and_restore_through_json(tmp_path: Path) -> None:
    from tffix.effects import reach
    from tffix.model import PlanStep, Safety, StepKind

    spec = _spec(tmp_path)
    rc = tmp_path / ".bashrc"
    rc.write_bytes(BASHRC)
    plan = [
        PlanStep(StepKind.KERNELSPEC_ENV, "s", Safety.SAFE, path=str(spec / "kernel.json")),
        PlanStep(StepKind.STARTUP_EDIT, "s", Safety.UNSAFE, path=str(rc), line=3),
        PlanStep(StepKind.STARTUP_EDIT, "s", Safety.UNSAFE, path=str(tmp_path / "evil.py")),
    ]
    files = reach.outside_files(plan)
    assert (str(tmp_path), "evil.py") not in files
    state = json.loads(json.dumps(reach.capture_outside(files)))
    kernelspec.edit_env(spec, EnvEdit(EditOp.UNSET, "CUDA_VISIBLE_DEVICES"))
    startup.comment_out(rc, 3, "export CUDA_VISIBLE_DEVICES=-1")
    assert reach.restore_outside(state) == []
    assert (spec / "kernel.json").read_bytes() == SPEC and rc.read_bytes() == BASHRC
    assert not (tmp_path / ".bashrc.tffix-backup").exists()


@pytest.mark.parametrize(
    "record",
    [
        {"root": "/etc", "files": {"passwd": None}},
        {"root": "relative/kernels/x", "files": {"kernel.json": None}},
        {"root": "/home/u/notkernels/x", "files": {"kernel.json": None}},
        {"root": "/home/u", "files": {"../.bashrc": None}},
        {"root": "/home/u", "files": {"sub/.bashrc": None}},
    ],
)
def test_a_hostile_outside_record_is_refused(record: dict[str, object]) -> None:
    from tffix.effects import reach

    with pytest.raises(InputError):
        reach.check_outside([record])
    assert reach.restore_outside([record])  # reported, nothing written
