"""The repair's one look per step: the TensorFlow probe's child answers the snapshot and the
op checks, and the state recorded before a step reads the metadata without a new process.

The child's answers are read from recorded output (``interpret`` is pure) and from a real child
interpreter with a stand-in ``tensorflow`` on ``PYTHONPATH``; the listing is compared with what
the target interpreter itself lists, on a real venv.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from tests.repair.conftest import DemoVenv
from tffix import _subprocess
from tffix._subprocess import Completed
from tffix.effects.pip import PackageManager
from tffix.probes import tensorflow as tf_probe
from tffix.probes import verify

MARK = "@@tffix-tf "


def report(**data: object) -> str:
    return MARK + json.dumps(data) + "\n"


def listed(**extra: object) -> str:
    """The child's line for a TensorFlow 2.18.1 that lists one GPU (with *extra* keys)."""
    return report(
        stage="done", import_error=None, version="2.18.1", gpus=["/physical_device:GPU:0"], **extra
    )


def test_the_log_after_the_marker_is_the_verifications() -> None:
    out = listed()
    out += listed(
        deep={
            "gpus": ["/physical_device:GPU:0"],
            "op_device": "/device:GPU:0",
            "dnn_device": "/device:GPU:0",
            "xla_value": 4.0,
        },
    )
    stderr = f"loader line\n{tf_probe.OPS_MARK}\nExecuting op Sum in device GPU:0\n"
    got = tf_probe.interpret(Completed(("python",), 0, out, stderr, 1.0), 120, ops=True)
    assert got.log == ("loader line",)
    assert got.verification is not None and got.verification.ok
    assert got.verification.log == ("Executing op Sum in device GPU:0",)
    plain = tf_probe.interpret(Completed(("python",), 0, out, stderr, 1.0), 120)
    assert plain.verification is None and plain.log == got.log


def test_a_crash_in_the_op_checks_fails_them_and_keeps_the_snapshot() -> None:
    out = listed()
    out += listed(
        deep={"gpus": ["/physical_device:GPU:0"], "op_device": "/device:GPU:0"},
    )
    got = tf_probe.interpret(Completed(("python",), -11, out, "", 1.0), 120, ops=True)
    assert got.unknown is None and got.info is not None and got.info.exit is None
    assert got.verification is not None and not got.verification.ok
    assert got.verification.error == "killed by SIGSEGV"
    assert got.verification.imported is True


def test_an_import_failure_is_a_verification_that_did_not_import() -> None:
    out = report(stage="import-failed", import_error="ImportError: libcudart.so.12: cannot open")
    got = tf_probe.interpret(Completed(("python",), 0, out, "", 1.0), 120, ops=True)
    assert got.verification is not None
    assert got.verification.imported is False and "libcudart" in (got.verification.error or "")


STAND_IN = """
import os
__version__ = "2.18.1"
class _Dev:
    def __init__(self, name): self.name = name
class _T:
    def __init__(self, device): self.device = device
    def numpy(self): return 4.0
class config:
    @staticmethod
    def list_physical_devices(kind=None):
        return [_Dev("/physical_device:GPU:0")]
class sysconfig:
    @staticmethod
    def get_build_info(): return {"cuda_version": "12.5.1"}
class debugging:
    @staticmethod
    def set_log_device_placement(on): pass
class _Device:
    def __enter__(self): return self
    def __exit__(self, *a): return False
def device(name): return _Device()
def ones(shape): return _T("/device:GPU:0")
def reduce_sum(x): return _T("/device:GPU:0")
class nn:
    @staticmethod
    def conv2d(*a, **k):
        if os.environ.get("STAND_IN_NO_CUDNN"):
            raise RuntimeError("DNN library is not found.")
        return _T("/device:GPU:0")
def function(jit_compile=False):
    return lambda fn: fn
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(textwrap.dedent(STAND_IN))
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


@pytest.mark.parametrize("no_cudnn", [False, True])
def test_one_child_says_what_the_verification_child_says(
    stand_in: dict[str, str], no_cudnn: bool
) -> None:
    env = {**stand_in, **({"STAND_IN_NO_CUDNN": "1"} if no_cudnn else {})}
    python = Path(sys.executable)
    merged = tf_probe.probe_tensorflow(python, env, ops="xla").verification
    alone = verify.deep_verify(python, env)
    assert merged is not None
    fields = ("gpus", "op_device", "dnn_device", "dnn_error", "xla_ok", "error", "imported")
    assert {f: getattr(merged, f) for f in fields} == {f: getattr(alone, f) for f in fields}
    assert merged.ok is (not no_cudnn)


@pytest.mark.slow
def test_the_listing_without_a_process_is_the_interpreters(
    demo_venv: DemoVenv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = PackageManager(demo_venv.python, demo_venv.venv, demo_venv.env, say=lambda _t: None)
    first = manager.installed()
    children: list[object] = []
    real = _subprocess.run

    def counting(argv, **kw):  # type: ignore[no-untyped-def]
        children.append(argv)
        return real(argv, **kw)

    monkeypatch.setattr(_subprocess, "run", counting)
    assert manager.installed() == first and children == []
    assert demo_venv.pip("install", "extra==1.0").returncode == 0
    assert manager.installed() == {**first, "extra": "1.0"} and children == []

    # a .pth naming a folder with a distribution in it: the path changed, so ask again
    other = tmp_path / "elsewhere"
    (other / "outside-1.0.dist-info").mkdir(parents=True)
    (other / "outside-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: outside\nVersion: 1.0\n"
    )
    site = next(demo_venv.venv.glob("lib/python*/site-packages"))
    (site / "elsewhere.pth").write_text(f"{other}\n")
    listed = manager.installed()
    assert listed["outside"] == "1.0" and len(children) == 1
    assert manager.installed() == listed and len(children) == 1


def test_the_closed_loop_looks_once_per_group_whatever_it_replans() -> None:
    """Each step fixes one problem and reveals the next, for as many rounds as the loop
    allows: the run looks once after each group of steps, and never to re-plan."""
    from tests.repair.test_transaction import FakeAction, FakeRecorder, World
    from tffix import transaction as core
    from tffix.model import Diagnosis, PlanStep, Safety, StepKind

    world = World({"p0"})
    looks: list[int] = []
    counter = iter(range(1, 100))

    def diagnose() -> Diagnosis:
        current = sorted(world.problems)[0]
        world.plan = (
            PlanStep(StepKind.ENV_SET, f"fix {current}", Safety.SAFE, (current,), variable=current),
        )
        return World.diagnose(world)

    def observe() -> core.Observation:
        looks.append(1)
        return core.Observation(diagnose(), verify.DeepVerification(imported=True))

    first = core.Observation(diagnose(), verify.DeepVerification(imported=True))
    outcome = core.repair(
        first,
        confirm=core.AutoConfirm(),
        actions=lambda s: FakeAction(
            world, s, removes=frozenset(s.resolves), adds=frozenset({f"p{next(counter)}"})
        ),
        observe=observe,
        recorder=FakeRecorder(),
        capture=dict,
    )
    ran = [s for s in outcome.steps if s.status is core.StepStatus.APPLIED]
    assert len(ran) == core.MAX_ROUNDS
    assert len(looks) == len(ran)
