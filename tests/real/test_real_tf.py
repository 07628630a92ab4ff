"""`tffix snapshot` against the real TensorFlow 2.21.0 wheel from the package index.

Opt-in (``pytest -m real_tf``): it downloads about 600 MB. Set ``TFFIX_REAL_TF_VENV`` to a
venv that already has ``tensorflow==2.21.0`` to skip the download (the benchmark uses one too).
On a machine without an NVIDIA driver the snapshot must show a CUDA build of CUDA 12.5.x, no
GPU, no driver, and the line TensorFlow printed about the missing driver.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.real_tf, pytest.mark.slow]

TF_VERSION = "2.21.0"


def _has_nvml() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def real_tf_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("TFFIX_REAL_TF_VENV")
    if given:
        return Path(given)
    env_dir = tmp_path_factory.mktemp("realtf") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
    subprocess.run(
        [str(env_dir / "bin/python"), "-m", "pip", "install", "-q", f"tensorflow=={TF_VERSION}"],
        check=True,
    )
    return env_dir


@pytest.mark.skipif(_has_nvml(), reason="this test describes a machine without a driver")
def test_snapshot_of_real_tensorflow_without_a_gpu(real_tf_venv: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "LD_LIBRARY_PATH")}
    out = tmp_path / "snap.json"
    result = subprocess.run(
        [sys.executable, "-m", "tffix", "snapshot", "--venv", str(real_tf_venv), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    tf = doc["tensorflow"]
    assert tf["version"] == TF_VERSION
    assert tf["import_error"] is None
    assert tf["build"]["is_cuda_build"] is True
    assert tf["build"]["cuda_version"].startswith("12.5.")
    assert tf["gpus"] == []
    assert doc["driver"] is None
    assert "libnvidia-ml.so.1" in doc["extra"]["driver_probe"]
    assert any(
        "Could not find cuda drivers on your machine, GPU will not be used." in line
        for line in doc["log"]
    )
    assert doc["packages"]["tensorflow"] == TF_VERSION
    assert doc["extra"]["tensorflow_owners"] == ["tensorflow"]
    # No nvidia wheels: nothing resolves for the CUDA runtime through TensorFlow's RUNPATH.
    assert doc["libraries"]["libcudart.so.12"]["path"] is None
    assert "tensorflow" not in doc.get("unknown", {})
