"""Where the interpreter really runs, and where a variable really comes from: a real venv's
activate script sourced by real bash, real start-up files, kernelspecs and VS Code settings
laid out as Jupyter and VS Code lay them out."""

from __future__ import annotations

import json
import shutil
import sys
import venv
from pathlib import Path

import pytest

from tffix.probes.activation import changes, deactivated, sourced_environment
from tffix.probes.entrypoints import (
    jupyter_data_dirs,
    kernelspecs,
    read_dotenv,
    vscode_settings,
)
from tffix.probes.provenance import Places, module_files, origins, where_set

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="POSIX shells and paths")


@pytest.fixture(scope="module")
def real_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ep") / "venv"
    venv.EnvBuilder(with_pip=False).create(root)
    return root


def _base_env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_sourcing_sees_the_users_own_export_at_the_end_of_activate(
    real_venv: Path, tmp_path: Path
) -> None:
    script = real_venv / "bin" / "activate"
    original = script.read_text()
    try:
        script.write_text(original + "\nexport CUDA_VISIBLE_DEVICES=-1\n")
        env, why = sourced_environment(real_venv, _base_env(tmp_path))
    finally:
        script.write_text(original)
    assert why is None and env is not None
    assert env["CUDA_VISIBLE_DEVICES"] == "-1"
    assert env["VIRTUAL_ENV"] == str(real_venv)
    assert env["PATH"].split(":")[0] == str(real_venv / "bin")
    changed = changes(_base_env(tmp_path), env)
    assert changed["CUDA_VISIBLE_DEVICES"] == "-1" and "HOME" not in changed


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_hostile_value_in_the_environment_does_not_run(real_venv: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    env = {**_base_env(tmp_path), "LD_LIBRARY_PATH": f"$(touch {marker})", "X": "`id`"}
    out, why = sourced_environment(real_venv, env)
    assert why is None and out is not None
    assert out["LD_LIBRARY_PATH"] == f"$(touch {marker})" and out["X"] == "`id`"
    assert not marker.exists()


def test_a_missing_activate_script_is_a_reason_not_an_error(tmp_path: Path) -> None:
    env, why = sourced_environment(tmp_path, _base_env(tmp_path))
    assert env is None and why is not None and "does not exist" in why


def test_plain_run_drops_only_activations_traces(real_venv: Path) -> None:
    env = {
        "VIRTUAL_ENV": str(real_venv),
        "PATH": f"{real_venv}/bin:/usr/bin",
        "LD_LIBRARY_PATH": "/opt/x",
    }
    assert deactivated(env, real_venv) == {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/opt/x"}
    other = {"VIRTUAL_ENV": "/elsewhere", "PATH": "/usr/bin"}
    assert deactivated(other, real_venv) == other


def test_bashrc_export_is_found_with_file_and_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text(
        "# ~/.bashrc\nalias ll='ls -l'\n# export CUDA_VISIBLE_DEVICES=0\n"
        "export CUDA_VISIBLE_DEVICES=-1\n"
        "LD_LIBRARY_PATH=/usr/local/cuda-11.8/lib64:$LD_LIBRARY_PATH\n"
        "export LD_LIBRARY_PATH\n"
    )
    found = origins(
        ["CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"], Places(home=home, shell="/bin/bash")
    )
    assert [(o.variable, Path(o.file).name, o.line, o.kind) for o in found] == [
        ("CUDA_VISIBLE_DEVICES", ".bashrc", 4, "shell"),
        ("LD_LIBRARY_PATH", ".bashrc", 5, "shell"),
        ("LD_LIBRARY_PATH", ".bashrc", 6, "shell"),
    ]
    assert str(home / ".bashrc") in where_set(Places(home=home, shell="/bin/bash"))


def test_zsh_and_fish_files_are_read_in_their_syntax(tmp_path: Path) -> None:
    (tmp_path / ".zshrc").write_text("typeset -x XLA_FLAGS=--xla_gpu_cuda_data_dir=/x\n")
    fish = tmp_path / ".config" / "fish"
    fish.mkdir(parents=True)
    (fish / "config.fish").write_text("set -gx CUDA_VISIBLE_DEVICES ''\n")
    z = origins(["XLA_FLAGS"], Places(home=tmp_path, shell="zsh"))
    f = origins(["CUDA_VISIBLE_DEVICES"], Places(home=tmp_path, shell="/usr/bin/fish"))
    assert [(Path(o.file).name, o.line) for o in z] == [(".zshrc", 1)]
    assert [(Path(o.file).name, o.line) for o in f] == [("config.fish", 1)]


def test_an_lmod_module_that_prepends_to_the_loader_path(tmp_path: Path) -> None:
    lua = tmp_path / "modulefiles" / "cuda" / "11.8.lua"
    lua.parent.mkdir(parents=True)
    lua.write_text(
        'help([[CUDA 11.8]])\nprepend_path("PATH", "/sw/cuda/11.8/bin")\n'
        'prepend_path("LD_LIBRARY_PATH", "/sw/cuda/11.8/lib64")\n'
    )
    tcl = tmp_path / "modules" / "cudnn" / "8.6"
    tcl.parent.mkdir(parents=True)
    tcl.write_text("#%Module\nprepend-path LD_LIBRARY_PATH /sw/cudnn/8.6/lib\n")
    environ = {"_LMFILES_": f"{lua}:{tcl}", "LOADEDMODULES": "cuda/11.8:cudnn/8.6"}
    assert module_files(environ) == [lua, tcl]
    found = origins(["LD_LIBRARY_PATH"], Places(environ=environ))
    assert [(o.file, o.line, o.kind) for o in found] == [
        (str(lua), 3, "module"),
        (str(tcl), 2, "module"),
    ]


def test_conda_config_vars_sitecustomize_kernelspec_and_dotenv(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta" / "state").write_text(json.dumps({"env_vars": {"XLA_FLAGS": "--x"}}))
    site = prefix / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "sitecustomize.py").write_text('import os\nos.environ["CUDA_VISIBLE_DEVICES"] = ""\n')
    spec = tmp_path / "kernel.json"
    spec.write_text(json.dumps({"argv": ["python"], "env": {"CUDA_VISIBLE_DEVICES": "-1"}}))
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".env").write_text("CUDA_VISIBLE_DEVICES=3\n")
    where = Places(prefix=prefix, site_dirs=(site,), kernelspecs=(spec,), project=project)
    found = origins(["CUDA_VISIBLE_DEVICES", "XLA_FLAGS"], where)
    assert [(o.variable, o.kind, o.line) for o in found] == [
        ("XLA_FLAGS", "conda", None),
        ("CUDA_VISIBLE_DEVICES", "python", 2),
        ("CUDA_VISIBLE_DEVICES", "kernelspec", None),
        ("CUDA_VISIBLE_DEVICES", "dotenv", 1),
    ]


def _kernel(folder: Path, name: str, argv: list[str], env: dict[str, str] | None = None) -> Path:
    spec = folder / "kernels" / name / "kernel.json"
    spec.parent.mkdir(parents=True)
    doc: dict[str, object] = {"argv": argv, "display_name": name.title(), "language": "python"}
    if env is not None:
        doc["env"] = env
    spec.write_text(json.dumps(doc))
    return spec


def test_kernelspecs_that_run_this_interpreter(real_venv: Path, tmp_path: Path) -> None:
    python = real_venv / "bin" / "python"
    user = tmp_path / "share" / "jupyter"
    mine = _kernel(
        user,
        "tf",
        [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        {"CUDA_VISIBLE_DEVICES": "-1"},
    )
    _kernel(user, "other", ["/usr/bin/python3", "-m", "ipykernel_launcher"])
    _kernel(user, "bare", ["python", "-m", "ipykernel_launcher"])
    (user / "kernels" / "broken").mkdir()
    (user / "kernels" / "broken" / "kernel.json").write_text("{not json")
    dirs = jupyter_data_dirs({"XDG_DATA_HOME": str(tmp_path / "share")}, tmp_path, [real_venv])
    assert dirs[0] == user
    found = kernelspecs(dirs, python, real_venv)
    assert [(k.name, k.source, dict(k.env)) for k in found] == [
        ("Tf", str(mine), {"CUDA_VISIBLE_DEVICES": "-1"})
    ]


def test_vscode_settings_with_comments_and_env_file(real_venv: Path, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / ".vscode").mkdir(parents=True)
    (project / ".vscode" / "settings.json").write_text(
        "{\n  // the project's interpreter\n"
        f'  "python.defaultInterpreterPath": "{real_venv}/bin/python",\n'
        '  "python.envFile": "${workspaceFolder}/gpu.env",\n'
        '  "terminal.integrated.env.linux": {"LD_LIBRARY_PATH": "/opt/cuda/lib64"},\n}\n'
    )
    (project / "gpu.env").write_text(
        '# comment\nexport CUDA_VISIBLE_DEVICES="0"\nXLA_FLAGS=x # c\n'
    )
    [entry] = vscode_settings(project, real_venv / "bin" / "python", real_venv)
    assert entry.env_file == str(project / "gpu.env")
    assert dict(entry.env) == {"LD_LIBRARY_PATH": "/opt/cuda/lib64"}
    assert read_dotenv(Path(entry.env_file)) == {"CUDA_VISIBLE_DEVICES": "0", "XLA_FLAGS": "x"}
    assert vscode_settings(project, Path("/usr/bin/python3"), Path("/usr")) == []
