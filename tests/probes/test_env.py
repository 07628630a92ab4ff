"""The environment probe's pure parts: the activated environment, activate-script settings,
the variables recorded, the scheduler."""

from __future__ import annotations

import pytest

from tffix.envedit import BLOCK_BEGIN, BLOCK_END, EditOp, EnvEdit
from tffix.probes.env import activate_settings, activated_env, scheduler, select_env

ACTIVATE = f"""\
deactivate () {{
    export PATH
}}
VIRTUAL_ENV="/home/u/proj/.venv"
export VIRTUAL_ENV
_OLD_VIRTUAL_PATH="$PATH"
PATH="$VIRTUAL_ENV/bin:$PATH"
export PATH
export LD_LIBRARY_PATH=/usr/local/cuda-11.8/lib64:$LD_LIBRARY_PATH
{BLOCK_BEGIN}
{EnvEdit(EditOp.REMOVE, "LD_LIBRARY_PATH", "/usr/local/cuda-11.8/lib64").encode()}
{EnvEdit(EditOp.SET, "XLA_FLAGS", "--xla_gpu_cuda_data_dir=/x").encode()}
export XLA_FLAGS=--xla_gpu_cuda_data_dir=/x
{BLOCK_END}
"""


def test_activated_env_overlays_the_venv_and_tffix_edits() -> None:
    environ = {
        "PATH": "/usr/bin:/bin",
        "LD_LIBRARY_PATH": "/usr/local/cuda-11.8/lib64:/opt/other",
        "PYTHONHOME": "/wrong",
    }
    env = activated_env(environ, "/home/u/proj/.venv", ACTIVATE)
    assert env["VIRTUAL_ENV"] == "/home/u/proj/.venv"
    assert env["PATH"] == "/home/u/proj/.venv/bin:/usr/bin:/bin"
    assert env["LD_LIBRARY_PATH"] == "/opt/other"
    assert env["XLA_FLAGS"] == "--xla_gpu_cuda_data_dir=/x"
    assert "PYTHONHOME" not in env
    assert environ["PATH"] == "/usr/bin:/bin"  # the input is not changed


def test_activated_env_is_idempotent_for_an_active_venv() -> None:
    once = activated_env({"PATH": "/usr/bin"}, "/v", ACTIVATE)
    assert activated_env(once, "/v", ACTIVATE) == once


def test_no_activate_script_leaves_the_environment_alone() -> None:
    environ = {"PATH": "/usr/bin", "CONDA_PREFIX": "/c"}
    assert activated_env(environ, "/c", None) == environ


def test_activate_settings_reports_edits_and_hand_written_exports() -> None:
    info = activate_settings(ACTIVATE)
    assert info["tffix_edits"] == [
        {"op": "remove", "variable": "LD_LIBRARY_PATH", "value": "/usr/local/cuda-11.8/lib64"},
        {"op": "set", "variable": "XLA_FLAGS", "value": "--xla_gpu_cuda_data_dir=/x"},
    ]
    assert info["exports"] == [
        {
            "script": "activate",
            "variable": "LD_LIBRARY_PATH",
            "line": 9,
            "text": "export LD_LIBRARY_PATH=/usr/local/cuda-11.8/lib64:$LD_LIBRARY_PATH",
        }
    ]


def test_select_env_keeps_what_matters_verbatim() -> None:
    environ = {
        "CUDA_VISIBLE_DEVICES": "",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "HOME": "/root",
        "LD_LIBRARY_PATH": "/a:/b",
    }
    assert select_env(environ) == {
        "CUDA_VISIBLE_DEVICES": "",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "LD_LIBRARY_PATH": "/a:/b",
    }


def test_scheduler() -> None:
    assert scheduler({"SLURM_JOB_ID": "1"}) == "slurm"
    assert scheduler({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) == "kubernetes"
    assert scheduler({"RAY_JOB_ID": "01"}) == "ray"
    assert scheduler({}) is None


@pytest.mark.parametrize(
    ("script", "text", "variable"),
    [
        (
            "activate.fish",
            "set -gx VIRTUAL_ENV '/v'\nset -gx CUDA_HOME /usr/local/cuda\n",
            "CUDA_HOME",
        ),
        (
            "activate.csh",
            'setenv PATH "$VIRTUAL_ENV/bin:$PATH"\nsetenv XLA_FLAGS --x\n',
            "XLA_FLAGS",
        ),
        (
            "Activate.ps1",
            "$env:VIRTUAL_ENV = $VenvDir\n$env:CUDA_VISIBLE_DEVICES = '1'\n",
            "CUDA_VISIBLE_DEVICES",
        ),
    ],
)
def test_exports_in_other_shells_scripts(script: str, text: str, variable: str) -> None:
    exports = activate_settings(text, script)["exports"]
    assert [e["variable"] for e in exports] == [variable]  # type: ignore[index,union-attr]
