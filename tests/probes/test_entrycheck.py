"""The environment each entry point gives TensorFlow, and the origin trace (real files, real
bash for the activation; no TensorFlow needed)."""

from __future__ import annotations

import json
import os
import venv
from pathlib import Path

from tffix.probes import activation, entrycheck
from tffix.probes.entrycheck import Looks
from tffix.probes.entrypoints import EntryPoint
from tffix.probes.verify import DeepVerification


def test_kernel_env_substitutes_like_jupyter_client() -> None:
    base = {"LD_LIBRARY_PATH": "/drv", "HOME": "/h"}
    env = entrycheck.kernel_env(base, {"LD_LIBRARY_PATH": "/old:${LD_LIBRARY_PATH}", "X": "$NOPE"})
    assert env["LD_LIBRARY_PATH"] == "/old:/drv"
    assert env["X"] == "$NOPE"  # safe_substitute leaves unknown names as written
    assert env["HOME"] == "/h"


def test_each_entry_point_gets_its_own_environment(tmp_path: Path) -> None:
    prefix = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(prefix)
    with open(prefix / "bin" / "activate", "a") as fh:
        fh.write("\nexport CUDA_VISIBLE_DEVICES=-1\n")  # the user's own line, at the end
    caller = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LD_LIBRARY_PATH": "/drv"}
    sourced, why = activation.sourced_environment(prefix, caller)
    assert sourced is not None, why
    assert sourced["CUDA_VISIBLE_DEVICES"] == "-1"
    kernel = EntryPoint("kernel", "k", env={"XLA_FLAGS": "--x"}, argv=(str(prefix / "bin/python"),))
    plain = EntryPoint("plain", "p", argv=(str(prefix / "bin/python"),))
    assert entrycheck.environment_for(plain, caller, prefix, sourced) == caller
    k = entrycheck.environment_for(kernel, caller, prefix, sourced)
    assert k["XLA_FLAGS"] == "--x" and "CUDA_VISIBLE_DEVICES" not in k
    act = entrycheck.environment_for(EntryPoint("activated", "a"), caller, prefix, sourced)
    assert act["VIRTUAL_ENV"] == str(prefix) and act["CUDA_VISIBLE_DEVICES"] == "-1"


def test_usable_needs_the_op_and_the_conv2d_on_the_gpu() -> None:
    gpu = "/job:localhost/replica:0/task:0/device:GPU:0"
    assert entrycheck.usable(DeepVerification(gpus=("g",), op_device=gpu, dnn_device=gpu))
    assert not entrycheck.usable(DeepVerification(gpus=("g",), op_device=gpu, dnn_error="DNN"))
    assert not entrycheck.usable(DeepVerification(gpus=(), op_device=None))
    state = entrycheck.state(
        EntryPoint("plain", "p"),
        {"CUDA_VISIBLE_DEVICES": "-1", "PATH": "/b"},
        {"PATH": "/b"},
        DeepVerification(gpus=(), error=None),
        Path("/v/bin/python"),
    )
    assert state.usable is False and state.error == "no GPU listed"
    assert dict(state.adds) == {"CUDA_VISIBLE_DEVICES": "-1"}
    assert dict(state.values) == {"CUDA_VISIBLE_DEVICES": "-1"}


def test_discover_and_trace_find_the_kernelspec_and_the_bashrc_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prefix = home / "proj" / ".venv"
    venv.EnvBuilder(with_pip=False).create(prefix)
    spec = home / ".local/share/jupyter/kernels/proj/kernel.json"
    spec.parent.mkdir(parents=True)
    python = prefix / "bin" / "python"
    spec.write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher"],
                "display_name": "Proj",
                "env": {"CUDA_VISIBLE_DEVICES": "-1"},
            }
        )
    )
    other = home / ".local/share/jupyter/kernels/other/kernel.json"
    other.parent.mkdir(parents=True)
    other.write_text(json.dumps({"argv": ["/usr/bin/python3"], "display_name": "Other"}))
    (home / ".bashrc").write_text("# rc\n\nexport CUDA_VISIBLE_DEVICES=-1\n")
    environ = {"HOME": str(home), "PATH": "/usr/bin", "SHELL": "/bin/bash"}
    points = entrycheck.discover(prefix, python, environ, project=None)
    assert [(p.kind, p.name) for p in points if p.kind == "kernel"] == [("kernel", "Proj")]
    assert {p.kind for p in points} == {"activated", "plain", "kernel"}
    prov = entrycheck.trace(
        ["CUDA_VISIBLE_DEVICES", "XLA_FLAGS"],
        environ=environ,
        prefix=prefix,
        site_dirs=[],
        kernelspecs=[spec],
        project=home / "proj",
    )
    found = [(o.file, o.line, o.kind) for o in prov.origins["CUDA_VISIBLE_DEVICES"]]
    assert (str(home / ".bashrc"), 3, "shell") in found
    assert (str(spec), None, "kernelspec") in found
    assert prov.origins["XLA_FLAGS"] == ()
    assert str(home / ".bashrc") in prov.searched


# --------------------------------------------------------------------------- the look's own report


def _report(imported: bool | None = True, error: str | None = None) -> object:
    from tffix.probes.tensorflow import TensorFlowReport
    from tffix.probes.verify import DeepVerification

    verification = DeepVerification(
        gpus=("/physical_device:GPU:0",), imported=imported, error=error
    )
    return TensorFlowReport(info=None, log=(), loaded={}, verification=verification)


def _hook(op: str, variable: str | None, value: str | None = None, preload: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    from tffix.causes.entrypoints import hook_step

    return hook_step(op, variable, value, "why", "cause", preload)


def test_an_unset_only_hook_is_the_only_hook_that_keeps_an_answer() -> None:
    from tffix.effects.steps import hook_unsets

    assert hook_unsets(_hook("unset", "CUDA_VISIBLE_DEVICES")) == {"CUDA_VISIBLE_DEVICES"}
    assert hook_unsets(_hook("set", "TF_FORCE_GPU_ALLOW_GROWTH", "true")) is None
    assert hook_unsets(_hook("set", None, preload=("/v/nvidia/cudnn/lib/libcudnn.so.9",))) is None


def test_the_last_looks_own_report_stands_only_where_nothing_it_depends_on_changed() -> None:
    python = Path("/v/bin/python")
    env = {"PATH": "/v/bin:/usr/bin", "LD_LIBRARY_PATH": "/opt/x"}
    report = _report()
    looks = Looks()
    looks.remember(python, env, report)  # type: ignore[arg-type]
    kept = looks.earlier_report(python, env)
    assert kept is not None and kept[0] is report and "no step ran since" in kept[1]
    # another environment, even by PATH alone (XLA's check finds ptxas there): no
    assert looks.earlier_report(python, {**env, "PATH": "/usr/bin"}) is None
    assert looks.earlier_report(Path("/w/bin/python"), env) is None
    # a hook that unsets a variable this environment does not set: it stands, and says why
    looks.unsets.append(
        ("applied import-hook: Unset CUDA_VISIBLE_DEVICES", frozenset({"CUDA_VISIBLE_DEVICES"}))
    )
    kept = looks.earlier_report(python, env)
    assert kept is not None and "only unsets CUDA_VISIBLE_DEVICES" in kept[1]
    # ... one this environment sets: the hook reaches it, so a child must look again
    assert looks.earlier_report(python, {**env, "CUDA_VISIBLE_DEVICES": "-1"}) is None
    looks.remember(python, {**env, "CUDA_VISIBLE_DEVICES": "-1"}, report)  # type: ignore[arg-type]
    assert looks.earlier_report(python, {**env, "CUDA_VISIBLE_DEVICES": "-1"}) is None
    # any other change to the interpreter's files: nothing stands
    looks.remember(python, env, report)  # type: ignore[arg-type]
    looks.changed.append("applied pip-install: …")
    assert looks.earlier_report(python, env) is None
    assert looks.reusable() == {}


def test_only_a_whole_answer_is_kept() -> None:
    python, env = Path("/v/bin/python"), {"PATH": "/usr/bin"}
    for cut in (_report(imported=None), _report(error="timeout after 120s")):
        looks = Looks()
        looks.remember(python, env, cut)  # type: ignore[arg-type]
        assert looks.own is None and looks.earlier_report(python, env) is None
    looks = Looks()
    looks.remember(python, env, None)
    assert looks.earlier_report(python, env) is None
