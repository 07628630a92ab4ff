"""Where TensorFlow really runs, on the simulated GPU machine: a real Jupyter kernel (ipykernel
from the package index, started by jupyter_client's KernelManager), ``venv/bin/python``
without activation, a ``~/.bashrc`` that masks the GPU, and an Lmod-style module folder on
``LD_LIBRARY_PATH``. Each is diagnosed by the real ``tffix`` against the real scenario, fixed
by tffix's own effects, checked where it runs, and undone byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.harness import sim
from tests.harness.sim import SimEnv
from tffix.document import parse_snapshot
from tffix.effects import reach
from tffix.effects.activate import write_edits
from tffix.envedit import EditOp, EnvEdit
from tffix.model import PlanStep, Safety, StepKind
from tffix.schemas import schema_path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="the simulated machine is Linux's"),
]

CELL = r"""
import json, tensorflow as tf
out = {"gpus": [g.name for g in tf.config.list_physical_devices("GPU")]}
try:
    with tf.device("/GPU:0"):
        c = tf.nn.conv2d(tf.ones([1, 2, 2, 1]), tf.ones([1, 1, 1, 1]), 1, "VALID")
    out["conv2d"] = c.device
except Exception as exc:
    out["conv2d_error"] = str(exc).splitlines()[0]
print("@@cell " + json.dumps(out))
"""


def _install_ipykernel(env: SimEnv) -> None:
    """ipykernel from the package index (the user's pip configuration, not the local one)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_NO_INDEX", "UV_"))}
    proc = subprocess.run(
        [str(env.python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "ipykernel"],
        env=keep,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(
            f"ipykernel could not be installed from the package index: {proc.stderr[-400:]}"
        )


@pytest.fixture(scope="module")
def scenario_venv(sim_index: Path, tmp_path_factory: pytest.TempPathFactory) -> SimEnv:
    """A healthy scenario (TF 2.18.1 [and-cuda], RTX 3090), built once for this module; each
    test restores what it changed."""
    return sim.make_env("healthy-tf218-andcuda", tmp_path_factory.mktemp("entry"), sim_index)


@pytest.fixture(scope="module")
def kernel_venv(scenario_venv: SimEnv) -> SimEnv:
    """The same scenario with ipykernel installed in its venv."""
    _install_ipykernel(scenario_venv)
    return scenario_venv


def _kernels_dir(env: SimEnv) -> Path:
    return env.root / "home" / ".local" / "share" / "jupyter" / "kernels"


def _write_kernelspec(env: SimEnv, name: str, spec_env: Mapping[str, str]) -> Path:
    folder = _kernels_dir(env) / name
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [str(env.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Sim {name}",
        "language": "python",
        "env": dict(spec_env),
    }
    path = folder / "kernel.json"
    path.write_text(json.dumps(spec, indent=1) + "\n")
    return path


def run_cell(env: SimEnv, name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Start kernel *name* for real (the notebook server's environment: the user's, not
    activated) and run the cell that lists the GPU and runs a conv2d."""
    from jupyter_client.manager import KernelManager

    monkeypatch.setenv("JUPYTER_PATH", str(_kernels_dir(env).parent))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(env.root / "runtime"))
    km = KernelManager(kernel_name=name)
    km.start_kernel(env=dict(env.env), cwd=str(env.root / "home"))
    lines: list[str] = []
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                lines.extend(msg["content"]["text"].splitlines())
            elif msg["msg_type"] == "error":
                lines.append("error: " + msg["content"].get("evalue", ""))

        kc.execute_interactive(CELL, timeout=120, output_hook=hook)
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
    found = [line for line in lines if line.startswith("@@cell ")]
    assert found, lines
    return json.loads(found[-1][len("@@cell ") :])  # type: ignore[no-any-return]


def snapshot_of(env: SimEnv, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    run_env = {**env.env, **(extra or {})}
    proc = env.run(
        [sys.executable, "-m", "tffix", "snapshot", "--venv", str(env.venv)],
        env={**run_env, **sim.pip_env(env.index), "TFFIX_SYSROOT": str(env.root)},
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert not list(_validator("snapshot").iter_errors(doc))
    return doc  # type: ignore[no-any-return]


def _validator(name: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(schema_path(name).read_text(encoding="utf-8")))


def diagnosis_of(env: SimEnv, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    from tffix.diagnosis import diagnose
    from tffix.document import diagnosis_to_dict
    from tffix.ruleset import load_rules

    snap = parse_snapshot(snapshot_of(env, extra))
    doc = diagnosis_to_dict(diagnose(snap, load_rules()))
    assert not list(_validator("diagnosis").iter_errors(doc))
    return doc


def _step(doc: Mapping[str, Any]) -> PlanStep:
    return PlanStep(
        kind=StepKind(doc["kind"]),
        summary=doc["summary"],
        safety=Safety(doc["safety"]),
        resolves=tuple(doc["resolves"]),
        variable=doc.get("variable"),
        value=doc.get("value"),
        entry=doc.get("entry"),
        op=doc.get("op"),
        path=doc.get("path"),
        line=doc.get("line"),
        before=doc.get("before"),
        after=doc.get("after"),
        preload=tuple(doc.get("preload", ())),
    )


def _entry(diag: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return next(e for e in diag["entry_points"] if e["kind"] == kind)


# --------------------------------------------------------------------------- the kernel


def test_a_kernelspec_that_masks_the_gpu_works_only_after_the_fix(
    kernel_venv: SimEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = kernel_venv
    spec = _write_kernelspec(env, "masked", {"CUDA_VISIBLE_DEVICES": "-1"})
    original = spec.read_bytes()
    try:
        assert run_cell(env, "masked", monkeypatch)["gpus"] == []

        diag = diagnosis_of(env)
        assert _entry(diag, "activated")["usable"] is True
        kernel = _entry(diag, "kernel")
        assert kernel["usable"] is False and kernel["source"] == str(spec)
        finding = next(f for f in diag["findings"] if f["id"] == "entry-point-gpu-unusable")
        assert finding["location"] == str(spec)
        assert "CUDA_VISIBLE_DEVICES='-1' there, from its kernelspec's env" in finding["title"]
        steps = [s for s in diag["plan"] if "entry-point-gpu-unusable" in s["resolves"]]
        assert [(s["kind"], s["op"], s["path"]) for s in steps] == [
            ("kernelspec-env", "unset", str(spec))
        ]

        action = reach.for_step(_step(steps[0]), env.site_packages)
        assert action is not None and action.check() is None
        action.apply()
        cell = run_cell(env, "masked", monkeypatch)
        assert cell["gpus"] == ["/physical_device:GPU:0"] and "GPU" in cell["conv2d"]
        after = diagnosis_of(env)
        assert _entry(after, "kernel")["usable"] is True
        assert "entry-point-gpu-unusable" not in {f["id"] for f in after["findings"]}

        assert action.revert() == []
        assert spec.read_bytes() == original
    finally:
        shutil.rmtree(spec.parent)


def test_a_kernel_whose_loader_path_shadows_cudnn_is_fixed_in_its_kernelspec(
    kernel_venv: SimEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = kernel_venv
    old = env.root / "opt" / "cudnn-9.1" / "lib"
    sim.write_system_libs(
        env.root, [{"dir": str(old.relative_to(env.root)), "libs": ["cudnn 9.1.0"]}]
    )
    spec = _write_kernelspec(env, "shadowed", {"LD_LIBRARY_PATH": f"{old}:${{LD_LIBRARY_PATH}}"})
    original = spec.read_bytes()
    try:
        before = run_cell(env, "shadowed", monkeypatch)
        assert before["gpus"] and "DNN library initialization failed" in before["conv2d_error"]

        diag = diagnosis_of(env)
        steps = [s for s in diag["plan"] if "entry-point-gpu-unusable" in s["resolves"]]
        assert [(s["kind"], s["op"], s["entry"]) for s in steps] == [
            ("kernelspec-env", "remove", str(old))
        ]
        action = reach.for_step(_step(steps[0]), env.site_packages)
        assert action is not None
        action.apply()
        cell = run_cell(env, "shadowed", monkeypatch)
        assert "GPU" in cell.get("conv2d", ""), cell
        assert action.revert() == [] and spec.read_bytes() == original
    finally:
        shutil.rmtree(spec.parent)


# --------------------------------------------------------------------------- no activation


def test_bashrc_mask_plain_run_hook_and_unsafe_edit_undone_exactly(
    scenario_venv: SimEnv,
) -> None:
    """~/.bashrc exports CUDA_VISIBLE_DEVICES=-1; the activate script unsets it (an earlier
    fix), so an activated shell works and ``venv/bin/python`` run by path does not."""
    env = scenario_venv
    home = env.root / "home"
    bashrc = home / ".bashrc"
    rc_text = b"# ~/.bashrc\nalias ll='ls -l'\nexport CUDA_VISIBLE_DEVICES=-1\n"
    bashrc.write_bytes(rc_text)
    activate = env.venv / "bin" / "activate"
    act_text = activate.read_bytes()
    activate.write_bytes(act_text + b"\nunset CUDA_VISIBLE_DEVICES\n")
    shell = {"CUDA_VISIBLE_DEVICES": "-1", "SHELL": "/bin/bash"}
    try:
        diag = diagnosis_of(env, shell)
        assert _entry(diag, "activated")["usable"] is True
        assert _entry(diag, "plain")["usable"] is False
        by_id = {f["id"]: f for f in diag["findings"]}
        assert f"{bashrc} line 3" in by_id["entry-point-gpu-unusable"]["title"]
        assert f"{bashrc} line 3" in by_id["variable-from-startup-file"]["title"]
        kinds = {s["kind"]: s for s in diag["plan"]}
        hook_step, edit_step = kinds["import-hook"], kinds["startup-edit"]
        assert (hook_step["op"], hook_step["variable"], hook_step["safety"]) == (
            "unset",
            "CUDA_VISIBLE_DEVICES",
            "safe",
        )
        assert (edit_step["path"], edit_step["line"], edit_step["safety"]) == (
            str(bashrc),
            3,
            "unsafe",
        )
        assert edit_step["before"] == "export CUDA_VISIBLE_DEVICES=-1"

        hook = reach.for_step(_step(hook_step), env.site_packages)
        edit = reach.for_step(_step(edit_step), env.site_packages)
        assert hook is not None and edit is not None
        hook.apply()
        plain = env.tf_report(python=env.python, extra_env=shell)
        assert plain.gpus == ["/physical_device:GPU:0"], plain
        edit.apply()
        assert (home / ".bashrc.tffix-backup").read_bytes() == rc_text
        login = subprocess.run(
            ["bash", "-c", f". {bashrc}; echo ${{CUDA_VISIBLE_DEVICES-unset}}"],
            env={"PATH": env.env["PATH"], "HOME": str(home)},
            capture_output=True,
            text=True,
        )
        assert login.stdout.strip() == "unset"

        assert edit.revert() == [] and hook.revert() == []
        assert bashrc.read_bytes() == rc_text
        assert not (home / ".bashrc.tffix-backup").exists()
        assert not list(env.site_packages.glob("*tffix*hook*"))
    finally:
        activate.write_bytes(act_text)
        bashrc.unlink(missing_ok=True)


def test_user_export_at_the_end_of_activate_is_seen(scenario_venv: SimEnv) -> None:
    """Regression: an ``export CUDA_VISIBLE_DEVICES=-1`` of the user's own, after tffix's
    block, hides the GPU in every activated shell; tffix sources the script, so it sees it."""
    env = scenario_venv
    activate = env.venv / "bin" / "activate"
    text = activate.read_bytes()
    activate.write_bytes(text + b"\nexport CUDA_VISIBLE_DEVICES=-1\n")
    try:
        snap = snapshot_of(env)
        assert snap["env"].get("CUDA_VISIBLE_DEVICES") == "-1"
        assert snap["tensorflow"]["gpus"] == []
        diag = diagnosis_of(env)
        masked = next(f for f in diag["findings"] if f["id"] == "cuda-visible-devices-masked")
        assert f"{activate} line" in masked["title"]
        assert _entry(diag, "activated")["usable"] is False
        assert _entry(diag, "plain")["usable"] is True
    finally:
        activate.write_bytes(text)


def test_an_lmod_module_folder_on_the_loader_path_is_named(scenario_venv: SimEnv) -> None:
    """A module file (named in ``_LMFILES_``) prepends an old cuDNN's folder: the finding
    names the module file and line, and the plain run is fixed by preloading the wheel's
    libraries, not by a variable it would never read."""
    env = scenario_venv
    old = env.root / "apps" / "cudnn" / "9.1.0" / "lib"
    sim.write_system_libs(
        env.root, [{"dir": str(old.relative_to(env.root)), "libs": ["cudnn 9.1.0"]}]
    )
    module = env.root / "apps" / "modulefiles" / "cudnn" / "9.1.0.lua"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(f'help("cuDNN 9.1")\nprepend_path("LD_LIBRARY_PATH", "{old}")\n')
    shell = {
        "LD_LIBRARY_PATH": f"{old}:{env.env['LD_LIBRARY_PATH']}",
        "LOADEDMODULES": "cudnn/9.1.0",
        "_LMFILES_": str(module),
    }
    diag = diagnosis_of(env, shell)
    shadow = next(f for f in diag["findings"] if f["id"] == "ld-library-path-shadowing")
    assert f"{module} line 2" in shadow["title"]

    # The activate-script fix (the folder off LD_LIBRARY_PATH) reaches activated shells only.
    activate = env.venv / "bin" / "activate"
    text = activate.read_bytes()
    write_edits(env.venv, [EnvEdit(EditOp.REMOVE, "LD_LIBRARY_PATH", str(old))], conda=False)
    hook = None
    try:
        diag = diagnosis_of(env, shell)
        assert _entry(diag, "activated")["usable"] is True
        assert "DNN library initialization failed" in _entry(diag, "plain")["error"]
        finding = next(f for f in diag["findings"] if f["id"] == "entry-point-gpu-unusable")
        assert f"{module} line 2" in finding["title"]
        steps = [s for s in diag["plan"] if "entry-point-gpu-unusable" in s["resolves"]]
        assert [s["kind"] for s in steps] == ["import-hook"]
        assert any("libcudnn.so.9" in p and str(env.venv) in p for p in steps[0]["preload"])
        hook = reach.for_step(_step(steps[0]), env.site_packages)
        assert hook is not None
        hook.apply()
        plain = env.run([str(env.python), "-c", CELL], env={**env.env, **shell})
        assert '"conv2d": "/job:localhost/replica:0/task:0/device:GPU:0"' in plain.stdout, plain
        assert _entry(diagnosis_of(env, shell), "plain")["usable"] is True
    finally:
        if hook is not None:
            assert hook.revert() == []
        activate.write_bytes(text)
    assert not list(env.site_packages.glob("*tffix*hook*"))


# --------------------------------------------------------------------------- tffix itself


def test_tffix_yes_fixes_the_kernel_and_undo_restores_its_kernelspec_exactly(
    kernel_venv: SimEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole loop through the command line: ``tffix --yes`` edits the kernelspec (the
    journal records its bytes), the kernel then gets the GPU, ``tffix undo`` puts the file
    back byte for byte and the kernel is masked again."""
    env = kernel_venv
    spec = _write_kernelspec(env, "loop", {"CUDA_VISIBLE_DEVICES": "-1", "A": "b"})
    original = spec.read_bytes()
    try:
        done = env.run_tffix("--yes", "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        outcome = json.loads(done.stdout)
        assert [s["kind"] for s in outcome["steps"] if s["status"] == "applied"] == [
            "kernelspec-env"
        ]
        assert {e["kind"]: e["usable"] for e in outcome["entry_points"]} == {
            "activated": True,
            "plain": True,
            "kernel": True,
        }
        assert json.loads(spec.read_text())["env"] == {"A": "b"}
        assert run_cell(env, "loop", monkeypatch)["gpus"] == ["/physical_device:GPU:0"]

        undone = env.run_tffix("undo", "--yes")
        assert undone.returncode == 0, undone.stdout + undone.stderr
        assert spec.read_bytes() == original
        assert run_cell(env, "loop", monkeypatch)["gpus"] == []
    finally:
        shutil.rmtree(spec.parent)


def test_tffix_offers_the_bashrc_edit_only_with_unsafe_and_undo_restores_it(
    scenario_venv: SimEnv,
) -> None:
    env = scenario_venv
    home = env.root / "home"
    bashrc = home / ".bashrc"
    rc_text = b"export PATH=$PATH:/opt/bin\nexport CUDA_VISIBLE_DEVICES=-1\n"
    bashrc.write_bytes(rc_text)
    site = env.site_packages
    shell = {"CUDA_VISIBLE_DEVICES": "-1", "SHELL": "/bin/bash"}
    activate = env.venv / "bin" / "activate"
    act_text = activate.read_bytes()

    def tffix(*args: str) -> subprocess.CompletedProcess[str]:
        return env.run(
            [sys.executable, "-m", "tffix", *args, "--venv", str(env.venv)],
            env={**env.env, **shell, **sim.pip_env(env.index), "TFFIX_SYSROOT": str(env.root)},
        )

    try:
        dry = tffix("--dry-run")
        assert f"{bashrc} line 2" in dry.stdout
        assert "--unsafe" in dry.stdout and "Comment out" not in dry.stdout
        shown = tffix("--dry-run", "--unsafe")
        assert "-export CUDA_VISIBLE_DEVICES=-1" in shown.stdout, shown.stdout

        safe = tffix("--yes")
        assert bashrc.read_bytes() == rc_text  # never without --unsafe
        assert (site / "_tffix_hook.py").exists(), safe.stdout + safe.stderr
        unsafe = tffix("--yes", "--unsafe")
        assert b"# disabled by tffix" in bashrc.read_bytes(), unsafe.stdout + unsafe.stderr
        assert (home / ".bashrc.tffix-backup").read_bytes() == rc_text

        for _ in range(2):  # two runs changed things: undo is a stack
            undone = tffix("undo", "--yes")
            assert undone.returncode == 0, undone.stdout + undone.stderr
        assert bashrc.read_bytes() == rc_text
        assert not (home / ".bashrc.tffix-backup").exists()
        assert not list(site.glob("*tffix*hook*"))
        assert activate.read_bytes() == act_text
    finally:
        activate.write_bytes(act_text)
        bashrc.unlink(missing_ok=True)
        for leftover in site.glob("*tffix*hook*"):
            leftover.unlink()
