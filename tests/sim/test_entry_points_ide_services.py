"""VS Code, cron and systemd as entry points, on the simulated GPU machine.

Each scenario is a real project folder or a real crontab / unit file under the simulated
machine's root, diagnosed by the real ``tffix`` (``tffix snapshot`` with ``TFFIX_SYSROOT``),
fixed by tffix's own effects, and checked again the way that entry point runs the
interpreter: VS Code's envFile merged as the Python extension merges it, cron's command run
by ``/bin/sh -c`` in cron's minimal environment. Undo restores every file byte for byte.

The simulated machine's driver folder stands in for ld.so.cache by being on
``LD_LIBRARY_PATH`` (fixtures/README.md); a crontab or unit that starts from an empty
environment therefore names that folder itself, as it would on a machine whose driver lives
outside the loader cache.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import sim
from tests.harness.sim import SimEnv
from tests.sim.test_entry_points import CELL, _entry, _step, diagnosis_of
from tffix.effects import reach
from tffix.probes.services import CRON_PATH, account

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="the simulated machine is Linux's"),
]


@pytest.fixture(scope="module")
def scenario_venv(sim_index: Path, tmp_path_factory: pytest.TempPathFactory) -> SimEnv:
    """A healthy scenario (TF 2.18.1 [and-cuda], RTX 3090); each test restores what it
    changed."""
    return sim.make_env("healthy-tf218-andcuda", tmp_path_factory.mktemp("ide"), sim_index)


def _cell(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    found = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@cell ")]
    assert found, proc.stdout + proc.stderr
    return json.loads(found[-1][len("@@cell ") :])  # type: ignore[no-any-return]


def _by_id(diag: dict[str, Any], cause: str) -> dict[str, Any]:
    return next(f for f in diag["findings"] if f["id"] == cause)


def _steps(diag: dict[str, Any], cause: str) -> list[dict[str, Any]]:
    return [s for s in diag["plan"] if cause in s["resolves"]]


# --------------------------------------------------------------------------- VS Code


def _vscode_project(env: SimEnv) -> tuple[Path, Path]:
    project = env.venv.parent
    settings = project / ".vscode" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(
        "{\n"
        "  // the project's interpreter\n"
        '  "python.defaultInterpreterPath": "${workspaceFolder}/.venv/bin/python",\n'
        '  "python.envFile": "${workspaceFolder}/.env",\n'
        '  "terminal.integrated.env.linux": {"TF_CPP_MIN_LOG_LEVEL": "1",},\n'
        "}\n"
    )
    dotenv = project / ".env"
    dotenv.write_bytes(b"# project settings\nDATA_DIR=${HOME}/data\nCUDA_VISIBLE_DEVICES=-1\n")
    return settings, dotenv


def _as_vscode_runs_it(env: SimEnv) -> dict[str, str]:
    """What the Python extension gives the process, written out by hand from its rules: the
    envFile's variables over the user's environment (``${HOME}`` from that environment)."""
    home = env.env["HOME"]
    return {
        **env.env,
        "TF_CPP_MIN_LOG_LEVEL": "1",
        "DATA_DIR": f"{home}/data",
        "CUDA_VISIBLE_DEVICES": "-1",
    }


def test_a_dot_env_that_masks_the_gpu_is_found_fixed_by_the_hook_and_undone(
    scenario_venv: SimEnv,
) -> None:
    env = scenario_venv
    settings, dotenv = _vscode_project(env)
    original = dotenv.read_bytes()
    vscode_env = _as_vscode_runs_it(env)
    try:
        assert _cell(env.run([str(env.python), "-c", CELL], env=vscode_env))["gpus"] == []

        diag = diagnosis_of(env)
        assert _entry(diag, "activated")["usable"] is True
        assert _entry(diag, "plain")["usable"] is True
        vs = _entry(diag, "vscode")
        assert vs["usable"] is False and vs["source"] == str(settings)
        finding = _by_id(diag, "entry-point-gpu-unusable")
        assert finding["location"] == str(settings)
        assert f"CUDA_VISIBLE_DEVICES='-1' there, from {dotenv} line 3" in finding["title"]
        assert f"{dotenv} line 3" in _by_id(diag, "variable-from-startup-file")["title"]
        [hook_step] = _steps(diag, "entry-point-gpu-unusable")
        assert (hook_step["kind"], hook_step["op"], hook_step["safety"]) == (
            "import-hook",
            "unset",
            "safe",
        )
        [edit_step] = _steps(diag, "variable-from-startup-file")
        assert (edit_step["path"], edit_step["line"], edit_step["safety"]) == (
            str(dotenv),
            3,
            "unsafe",
        )

        hook = reach.for_step(_step(hook_step), env.site_packages)
        assert hook is not None and hook.check() is None
        hook.apply()
        cell = _cell(env.run([str(env.python), "-c", CELL], env=vscode_env))
        assert cell["gpus"] == ["/physical_device:GPU:0"] and "GPU" in cell["conv2d"]
        assert _entry(diagnosis_of(env), "vscode")["usable"] is True
        assert hook.revert() == []
        assert not list(env.site_packages.glob("*tffix*hook*"))

        edit = reach.for_step(_step(edit_step), env.site_packages)
        assert edit is not None and edit.check() is None
        edit.apply()
        assert b"# disabled by tffix" in dotenv.read_bytes()
        assert _entry(diagnosis_of(env), "vscode")["usable"] is True
        assert edit.revert() == []
        assert dotenv.read_bytes() == original
        assert not (dotenv.parent / ".env.tffix-backup").exists()
    finally:
        dotenv.unlink(missing_ok=True)
        settings.unlink(missing_ok=True)


def test_tffix_yes_unsafe_reaches_vscode_and_undo_restores_the_env_file(
    scenario_venv: SimEnv,
) -> None:
    env = scenario_venv
    settings, dotenv = _vscode_project(env)
    original = dotenv.read_bytes()
    site = env.site_packages
    try:
        dry = env.run_tffix("--dry-run")
        assert "--unsafe" in dry.stdout and f"{dotenv} line 3" in dry.stdout, dry.stdout
        shown = env.run_tffix("--dry-run", "--unsafe")
        assert "-CUDA_VISIBLE_DEVICES=-1" in shown.stdout, shown.stdout

        done = env.run_tffix("--yes", "--unsafe", "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        outcome = json.loads(done.stdout)
        applied = sorted(s["kind"] for s in outcome["steps"] if s["status"] == "applied")
        assert applied == ["import-hook", "startup-edit"]
        assert {e["kind"]: e["usable"] for e in outcome["entry_points"]}["vscode"] is True
        assert (dotenv.parent / ".env.tffix-backup").read_bytes() == original

        undone = env.run_tffix("undo", "--yes")
        assert undone.returncode == 0, undone.stdout + undone.stderr
        assert dotenv.read_bytes() == original
        assert not (dotenv.parent / ".env.tffix-backup").exists()
        assert not list(site.glob("*tffix*hook*"))
    finally:
        dotenv.unlink(missing_ok=True)
        settings.unlink(missing_ok=True)
        (dotenv.parent / ".env.tffix-backup").unlink(missing_ok=True)
        for leftover in site.glob("*tffix*hook*"):
            leftover.unlink()


def test_a_settings_file_that_does_not_parse_is_reported_not_a_traceback(
    scenario_venv: SimEnv,
) -> None:
    env = scenario_venv
    settings = env.venv.parent / ".vscode" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('{\n  "python.defaultInterpreterPath": ".venv/bin/python"\n  "x": 1\n}\n')
    try:
        diag = diagnosis_of(env)
        vs = _entry(diag, "vscode")
        assert vs["usable"] is None and "line 3" in vs["error"] and str(settings) in vs["error"]
        report = env.run_tffix("--dry-run")
        assert "Traceback" not in report.stdout + report.stderr
        assert f"{settings}: not valid JSON with comments: line 3" in report.stdout
    finally:
        settings.unlink()


# --------------------------------------------------------------------------- cron and systemd


def test_a_cron_job_gets_crons_environment_and_the_hook_reaches_it(
    scenario_venv: SimEnv,
) -> None:
    env = scenario_venv
    user = account(None, env.env).user
    train = env.venv.parent / "train.py"
    train.write_text(CELL)
    command = f"{env.python} {train} >> {env.root / 'train.log'} 2>&1"
    spool = env.root / "var" / "spool" / "cron" / "crontabs" / user
    spool.parent.mkdir(parents=True, exist_ok=True)
    spool.write_text(
        "# m h dom mon dow command\n"
        f"LD_LIBRARY_PATH={env.machine_dir}\n"
        "CUDA_VISIBLE_DEVICES=-1\n"
        f"0 3 * * * {command}\n"
    )
    # crontab(5): SHELL=/bin/sh, PATH=/usr/bin:/bin, HOME and LOGNAME, then the settings.
    cron_env = {
        "SHELL": "/bin/sh",
        "PATH": CRON_PATH,
        "HOME": env.env["HOME"],
        "LOGNAME": user,
        "LD_LIBRARY_PATH": str(env.machine_dir),
        "CUDA_VISIBLE_DEVICES": "-1",
    }

    def run_job() -> dict[str, Any]:
        (env.root / "train.log").unlink(missing_ok=True)
        subprocess.run(["/bin/sh", "-c", command], env=cron_env, check=False, timeout=120)
        log = (env.root / "train.log").read_text()
        return _cell(subprocess.CompletedProcess([], 0, log, ""))

    hook = None
    try:
        assert run_job()["gpus"] == []
        diag = diagnosis_of(env)
        cron = _entry(diag, "cron")
        assert cron["usable"] is False and cron["source"] == str(spool)
        finding = _by_id(diag, "entry-point-gpu-unusable")
        assert f"from {spool} line 3" in finding["title"]
        assert finding["location"] == str(spool)
        [step] = _steps(diag, "entry-point-gpu-unusable")
        assert (step["kind"], step["op"], step["variable"]) == (
            "import-hook",
            "unset",
            "CUDA_VISIBLE_DEVICES",
        )
        assert not _steps(diag, "variable-from-startup-file")  # a crontab is named, not edited
        hook = reach.for_step(_step(step), env.site_packages)
        assert hook is not None
        hook.apply()
        job = run_job()
        assert job["gpus"] == ["/physical_device:GPU:0"] and "GPU" in job["conv2d"]
        assert _entry(diagnosis_of(env), "cron")["usable"] is True
    finally:
        if hook is not None:
            assert hook.revert() == []
        spool.unlink()
        train.unlink()
    assert not list(env.site_packages.glob("*tffix*hook*"))


def test_a_systemd_unit_whose_loader_path_shadows_cudnn_gets_the_preload(
    scenario_venv: SimEnv,
) -> None:
    env = scenario_venv
    old = env.root / "opt" / "cudnn-9.1" / "lib"
    sim.write_system_libs(
        env.root, [{"dir": str(old.relative_to(env.root)), "libs": ["cudnn 9.1.0"]}]
    )
    units = Path(env.env["HOME"]) / ".config" / "systemd" / "user"
    units.mkdir(parents=True, exist_ok=True)
    unit = units / "train.service"
    unit.write_text(
        "[Unit]\nDescription=training\n\n[Service]\n"
        f"Environment=LD_LIBRARY_PATH={old}:{env.machine_dir}\n"
        f"ExecStart={env.python} -m train\n"
    )
    hook = None
    try:
        diag = diagnosis_of(env)
        svc = _entry(diag, "systemd")
        assert svc["usable"] is False and "DNN library initialization failed" in svc["error"]
        finding = _by_id(diag, "entry-point-gpu-unusable")
        assert f"from {unit} line 5" in finding["title"]
        [step] = _steps(diag, "entry-point-gpu-unusable")
        assert step["kind"] == "import-hook"
        assert any("libcudnn.so.9" in p and str(env.venv) in p for p in step["preload"])
        hook = reach.for_step(_step(step), env.site_packages)
        assert hook is not None
        hook.apply()
        assert _entry(diagnosis_of(env), "systemd")["usable"] is True
    finally:
        if hook is not None:
            assert hook.revert() == []
        unit.unlink()
    assert not list(env.site_packages.glob("*tffix*hook*"))
