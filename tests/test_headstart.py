"""The live look's head start: the TensorFlow child starts before the rest of tffix loads,
and a look begun that way is the same look."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import venv
from pathlib import Path

import pytest

from tffix import activate_text, collect, headstart
from tffix.envedit import EditOp, EnvEdit
from tffix.probes.target import resolve_target

ROOT = Path(__file__).resolve().parent.parent

LATE = (
    "tffix.collect",
    "tffix.model",
    "tffix.diagnosis",
    "tffix.ruleset",
    "tffix.report",
    "tffix.probes.packages",
    "tffix.probes.loader",
    "tffix.probes.gpu",
    "tffix.probes.entrycheck",
    "concurrent.futures",
)
"""What a live diagnosis imports only once its TensorFlow child runs."""


def _loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(f"{n}.") for n in names))


@pytest.fixture
def bare_venv(tmp_path: Path) -> Path:
    path = tmp_path / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    script = path / "bin" / "activate"
    edits = [EnvEdit(EditOp.SET, "TF_FORCE_GPU_ALLOW_GROWTH", "true")]
    text = script.read_text() + "export CUDA_HOME=/usr/local/cuda-11.8\n"
    script.write_text(activate_text.render(activate_text.Shell.POSIX, text, edits))
    return path


_DRY_RUN = """\
import contextlib, io, json, sys
from tffix.probes import tensorflow
seen = []
probe = tensorflow.probe_tensorflow
def recording(*args, **kwargs):
    seen.append(sorted(sys.modules))
    return probe(*args, **kwargs)
tensorflow.probe_tensorflow = recording
from tffix.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "seen": seen, "out": out.getvalue()}))
"""


@pytest.mark.parametrize(
    ("argv", "printed"),
    [(["--dry-run", "--no-scan"], "tffix diagnosis of"), (["snapshot"], '"tffix.snapshot/1"')],
    ids=["dry-run", "snapshot"],
)
def test_a_live_look_starts_the_tensorflow_child_before_the_probes_and_the_engine_load(
    bare_venv: Path, tmp_path: Path, argv: list[str], printed: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _DRY_RUN, *argv, "--venv", str(bare_venv)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert printed in result["out"]  # the whole command ran
    assert len(result["seen"]) == 1  # one TensorFlow child
    assert _loaded(result["seen"][0], LATE) == []


def test_the_head_start_imports_nothing_the_child_does_not_need() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, tffix.headstart; print(json.dumps(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    assert _loaded(json.loads(done.stdout), LATE) == []


def test_a_look_begun_early_is_the_same_snapshot(bare_venv: Path) -> None:
    environ = {"PATH": os.environ["PATH"], "LD_LIBRARY_PATH": "/usr/local/cuda/lib64"}
    target = resolve_target(venv=str(bare_venv), environ=environ)
    started = headstart.start_snapshot(target, environ=environ, tf_timeout=60)
    early = collect.collect_snapshot(target, environ=environ, tf_timeout=60, started=started)
    late = collect.collect_snapshot(target, environ=environ, tf_timeout=60)
    assert early == late
    assert early.env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"  # sourced in the head start
    assert started.ops == "ops"  # a venv's entry points take the child's op checks


@pytest.mark.parametrize(
    "change",
    [{"tf_timeout": 30.0}, {"with_tensorflow": False}, {"environ": {"PATH": "/nowhere"}}],
)
def test_a_look_begun_for_other_arguments_is_refused(
    bare_venv: Path, change: dict[str, object]
) -> None:
    environ = {"PATH": os.environ["PATH"]}
    target = resolve_target(venv=str(bare_venv), environ=environ)
    begun: dict[str, object] = {"environ": environ, "tf_timeout": 60.0, **change}
    started = headstart.start_snapshot(target, **begun)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="another look"):
        collect.collect_snapshot(target, environ=environ, tf_timeout=60, started=started)
    started.tensorflow.result(timeout=60)


def test_pending_gives_the_value_the_error_or_no_answer() -> None:
    assert headstart.in_thread(lambda: 42).result(timeout=10) == 42

    def broken() -> None:
        raise RuntimeError("a probe bug")

    with pytest.raises(RuntimeError, match="a probe bug"):
        headstart.in_thread(broken).result(timeout=10)
    gate = threading.Event()
    pending = headstart.in_thread(gate.wait, name="tffix-test")
    with pytest.raises(headstart.NoAnswer):
        pending.result(timeout=0.05)
    assert any(t.name == "tffix-test" and t.daemon for t in threading.enumerate())
    gate.set()
    assert pending.result(timeout=10) is True
