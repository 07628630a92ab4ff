"""Each scenario, before any fix, makes the fake TensorFlow report what the real release would.

One test per scenario (GPU list, key log lines, op/DNN/XLA errors, which files were loaded), and
one per repairable scenario showing that its ``[healthy]`` repair, done with real pip or a real
activate-script edit, turns it into a working GPU.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.harness import SimEnv, load_scenario, scenario_names
from tests.harness.build import ROOT
from tests.harness.sim import load_toml, write_activate_block
from tffix.envedit import EditOp, EnvEdit

pytestmark = pytest.mark.slow

NAMES = scenario_names()


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)  # type: ignore[arg-type]


def _nvml_init_error(env: SimEnv) -> str | None:
    """nvmlInit through the real nvidia-ml-py in a child with the scenario's environment."""
    code = (
        "import pynvml\n"
        "try:\n    pynvml.nvmlInit()\nexcept pynvml.NVMLError as e:\n    print('ERR', e)\n"
        "else:\n    print('OK', pynvml.nvmlDeviceGetCount())\n"
    )
    out = env.run([sys.executable, "-c", code]).stdout.strip()
    return out[4:] if out.startswith("ERR") else None


def _known_causes() -> set[str]:
    return set(load_toml(ROOT / "rules" / "causes.toml")["causes"])


def test_every_scenario_names_a_known_cause() -> None:
    known = _known_causes()
    for name in NAMES:
        spec = load_scenario(name)
        assert spec.get("cause") in known | {"healthy"}, name
        assert spec.get("description"), name
        assert "expect" in spec and "healthy" in spec, name


@pytest.mark.parametrize("scenario", NAMES)
def test_scenario_reports_what_the_real_release_would(
    scenario: str, sim_scenarios: Callable[[str], SimEnv]
) -> None:
    env = sim_scenarios(scenario)
    expect = env.spec["expect"]
    report = env.tf_report()
    assert report.returncode == 0, str(report)
    data = report.data
    if "import_error" in expect:
        assert expect["import_error"] in data.get("import_error", ""), str(report)
    else:
        assert "import_error" not in data, str(report)
    if "gpus" in expect:
        assert report.gpus == [f"/physical_device:GPU:{i}" for i in range(expect["gpus"])], str(
            report
        )
    for text in _as_list(expect.get("log")):
        assert report.has_log(text), f"missing log line {text!r}\n{report}"
    for text in _as_list(expect.get("no_log")):
        assert text not in report.stderr, f"unexpected {text!r}\n{report}"
    for key in ("op_error", "dnn_error", "xla_error"):
        if key in expect:
            assert expect[key] in data.get(key, ""), f"{key}: {report}"
        elif report.gpus:
            assert key not in data, f"{key}: {report}"
    if report.gpus and "op_error" not in expect:
        assert data["op_device"].endswith("/device:GPU:0"), str(report)
    if "is_cuda_build" in expect:
        assert data["build"]["is_cuda_build"] is expect["is_cuda_build"]
    if "version" in expect:
        assert data["version"] == expect["version"]
    for soname, where in expect.get("loaded", {}).items():
        assert where in report.loaded.get(soname, ""), f"{soname}: {report.loaded}"
    for soname in expect.get("not_loaded", []):
        assert soname not in report.loaded, report.loaded
    if "attempt_log" in expect:
        assert expect["attempt_log"] in env.setup_log, env.setup_log
    if "nvml_error" in expect:
        assert _nvml_init_error(env) == expect["nvml_error"]
    if "path_python_import_error" in expect:
        python3 = shutil.which("python3", path=env.env["PATH"])
        assert python3 and not python3.startswith(str(env.venv))
        proc = env.run([python3, "-c", "import tensorflow"])
        assert expect["path_python_import_error"] in proc.stderr


REPAIRABLE = [
    n
    for n in NAMES
    if load_scenario(n)["healthy"].get("requirements") or load_scenario(n)["healthy"].get("env")
]


@pytest.mark.sim_private
@pytest.mark.parametrize("scenario", REPAIRABLE)
def test_healthy_repair_makes_the_gpu_work(scenario: str, sim_scenarios) -> None:
    env = sim_scenarios.private(scenario)
    healthy = env.spec["healthy"]
    edits = [
        EnvEdit(
            EditOp(e["op"]),
            e["variable"],
            e.get("value", "")
            .replace("{root}", str(env.root))
            .replace("{site}", str(env.site_packages))
            or None,
        )
        for e in healthy.get("env", [])
    ]
    if edits:
        write_activate_block(env.venv, edits)
    if healthy.get("uninstall"):
        proc = env.pip("uninstall", "-y", *healthy["uninstall"])
        assert proc.returncode == 0, proc.stderr
    if healthy.get("requirements"):
        proc = env.pip("install", *healthy["requirements"])
        assert proc.returncode == 0, proc.stdout + proc.stderr
    report = env.tf_report()
    assert report.gpus == [f"/physical_device:GPU:{i}" for i in range(healthy["gpus"])], str(report)
    checks = ["import_error", "op_error", "dnn_error"]
    if env.spec["cause"] == "xla-cuda-tools-missing":
        checks.append("xla_error")  # elsewhere XLA's tools are not part of the repair
    for key in checks:
        assert key not in report.data, str(report)
    assert report.data["op_device"].endswith("/device:GPU:0")


def test_activate_block_is_real_shell(make_scenario: Callable[[str], SimEnv]) -> None:
    """The tffix block the harness writes is what bash gets when it sources activate."""
    env = make_scenario("cuda-visible-devices-activate-script")
    shell_env = {k: v for k, v in env.env.items() if k != "CUDA_VISIBLE_DEVICES"}
    proc = subprocess.run(
        ["bash", "-c", f'. {env.venv}/bin/activate && echo "[$CUDA_VISIBLE_DEVICES]"'],
        env=shell_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "[-1]"
    assert env.shell_env()["CUDA_VISIBLE_DEVICES"] == "-1"
