"""Real pip against the local index really breaks and really repairs the simulated TensorFlow."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import SimEnv, catalog
from tests.harness.build import build_index
from tffix.probes.elf import read_dynamic

pytestmark = pytest.mark.slow

GPU0 = ["/physical_device:GPU:0"]


def test_install_and_uninstall_change_what_tensorflow_reports(
    make_scenario: Callable[[str], SimEnv],
) -> None:
    env = make_scenario("cuda-libs-missing-tf218")
    before = env.tf_report()
    assert before.gpus == []
    assert before.has_log("Cannot dlopen some GPU libraries")

    assert env.pip("install", "tensorflow[and-cuda]==2.18.1").returncode == 0
    fixed = env.tf_report()
    assert fixed.gpus == GPU0, str(fixed)
    assert not fixed.has_log("Cannot dlopen")
    assert fixed.loaded["libcudnn.so.9"] == str(
        env.site_packages / "nvidia/cudnn/lib/libcudnn.so.9"
    )

    assert env.pip("uninstall", "-y", "nvidia-cudnn-cu12").returncode == 0
    broken = env.tf_report()
    assert broken.gpus == []
    assert broken.has_log("Cannot dlopen some GPU libraries")

    assert env.pip("install", "nvidia-cudnn-cu12==9.1.0.70").returncode == 0
    old = env.tf_report()
    assert old.gpus == GPU0  # a cuDNN of the wrong minor still lists the GPU...
    assert "DNN library initialization failed" in old.data["dnn_error"]  # ...the first DNN op fails
    assert old.has_log("Loaded runtime CuDNN library: 9.1.0 but source was compiled with: 9.3.0")


def test_tensorflow_gpu_stub_fails_to_build(make_scenario: Callable[[str], SimEnv]) -> None:
    env = make_scenario("tf-not-installed")
    proc = env.pip("install", "tensorflow-gpu")
    assert proc.returncode != 0
    assert 'The "tensorflow-gpu" package has been removed!' in proc.stdout + proc.stderr
    assert (
        env.tf_report().data["import_error"] == "ModuleNotFoundError: No module named 'tensorflow'"
    )


def test_and_cuda_pins_are_the_real_ones(sim_index: Path) -> None:
    for rel in catalog.RELEASES:
        wheel = next(sim_index.glob(f"{rel.dist.replace('-', '_')}-{rel.version}-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            meta = zf.read(
                f"{rel.dist.replace('-', '_')}-{rel.version}.dist-info/METADATA"
            ).decode()
        assert f"Requires-Python: {rel.requires_python}" in meta
        for extra, pins in rel.extras.items():
            for pkg, spec in pins.items():
                assert f'Requires-Dist: {pkg}{spec}; extra == "{extra}"' in meta
    assert catalog.PINS_218["nvidia-cudnn-cu12"] == "==9.3.0.75"
    assert catalog.PINS_216["nvidia-cudnn-cu12"] == "==8.9.7.29"


@pytest.mark.parametrize(
    ("version", "dirs"),
    [
        ("2.16.1", {"cuda_runtime"}),
        ("2.16.2", {"cublas", "cuda_runtime", "cudnn", "cufft", "cusolver", "cusparse"}),
        ("2.18.1", {"cublas", "cuda_runtime", "cudnn", "cufft", "cusolver", "cusparse"}),
    ],
)
def test_framework_library_has_the_release_runpath(
    sim_index: Path, tmp_path: Path, version: str, dirs: set[str]
) -> None:
    with zipfile.ZipFile(next(sim_index.glob(f"tensorflow-{version}-*.whl"))) as zf:
        so = tmp_path / "libtensorflow_framework.so.2"
        so.write_bytes(zf.read("tensorflow/libtensorflow_framework.so.2"))
    dyn = read_dynamic(so)
    assert dyn.soname == "libtensorflow_framework.so.2"
    assert not dyn.rpath
    named = {e.split("/nvidia/")[1].split("/")[0] for e in dyn.runpath if "/nvidia/" in e}
    assert named == dirs
    assert "$ORIGIN/../nvidia/cuda_runtime/lib" in dyn.runpath


def test_index_is_cached_between_sessions(sim_index: Path) -> None:
    assert build_index() == sim_index
    assert (sim_index / ".complete").exists()


def test_ld_library_path_workaround_for_2161(make_scenario: Callable[[str], SimEnv]) -> None:
    """The documented 2.16.1 workaround works for the real loader reason: LD_LIBRARY_PATH."""
    env = make_scenario("cuda-libs-not-found-tf2161")
    assert env.tf_report().gpus == []
    dirs = sorted(str(p) for p in (env.site_packages / "nvidia").glob("*/lib"))
    path = ":".join([*dirs, env.env["LD_LIBRARY_PATH"]])
    fixed = env.tf_report(extra_env={"LD_LIBRARY_PATH": path})
    assert fixed.gpus == GPU0, str(fixed)
    assert fixed.loaded["libcudnn.so.8"] == str(
        env.site_packages / "nvidia/cudnn/lib/libcudnn.so.8"
    )
