"""The import hook in a real venv: it acts when (and only when) TensorFlow is imported, in a
process that never sourced activate, and a library it preloads by full path is the one a
later dlopen by soname returns (the real loader, a real C library)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.probes.conftest import compile_lib
from tffix.hook import MODULE_NAME, PTH_NAME, PTH_TEXT, is_ours, render_module

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the loader tests are Linux's")

FAKE_TF = """
import ctypes, json, os, sys
lib = ctypes.CDLL("libcudnn.so.9")  # by soname, as TensorFlow's dso loader does
lib.cudnnGetVersion.restype = ctypes.c_size_t
print(json.dumps({
    "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
    "cudnn": lib.cudnnGetVersion(),
}))
"""


def _site(root: Path) -> Path:
    paths = sysconfig.get_paths(vars={"base": str(root), "platbase": str(root)})
    return Path(paths["purelib"])


@pytest.fixture()
def hooked(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(root)
    site = _site(root)
    (site / "tensorflow").mkdir()
    (site / "tensorflow" / "__init__.py").write_text(FAKE_TF)
    (tmp_path / "cache").mkdir()
    wheel_lib = compile_lib(
        tmp_path / "cache",
        "libcudnn.c",
        site / "nvidia" / "cudnn" / "lib" / "libcudnn.so.9",
        soname="libcudnn.so.9",
        defines={"VERSION": 90300},
    )
    stale = compile_lib(
        tmp_path / "cache",
        "libcudnn.c",
        tmp_path / "stale" / "libcudnn.so.9",
        soname="libcudnn.so.9",
        defines={"VERSION": 90100},
    )
    (site / MODULE_NAME).write_text(
        render_module(
            set_vars={"XLA_FLAGS": f"--xla_gpu_cuda_data_dir={site}/nvidia/cuda_nvcc"},
            unset_vars=["CUDA_VISIBLE_DEVICES"],
            preload=[str(wheel_lib)],
        )
    )
    (site / PTH_NAME).write_text(PTH_TEXT)
    return root, stale.parent


def _run(root: Path, code: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(root / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=root,
    )
    return proc.stdout.strip()


def test_a_plain_run_gets_the_settings_and_the_preloaded_library(
    hooked: tuple[Path, Path],
) -> None:
    import json

    root, stale_dir = hooked
    # started the way a cron job or a kernel would be: a masking variable, a stale cuDNN first
    # on LD_LIBRARY_PATH, no activation
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "-1", "LD_LIBRARY_PATH": str(stale_dir)}
    seen = json.loads(_run(root, "import tensorflow", env))
    assert seen["CUDA_VISIBLE_DEVICES"] is None
    assert seen["XLA_FLAGS"].startswith("--xla_gpu_cuda_data_dir=")
    assert seen["cudnn"] == 90300  # the wheel's, preloaded, not the stale one on the path


def test_it_does_nothing_until_tensorflow_is_imported(hooked: tuple[Path, Path]) -> None:
    root, _ = hooked
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "-1"}
    code = (
        "import os, sys, json; print(os.environ['CUDA_VISIBLE_DEVICES'], 'ctypes' in sys.modules)"
    )
    assert _run(root, code, env) == "-1 False"


def test_without_the_hook_the_stale_library_wins(hooked: tuple[Path, Path]) -> None:
    """The control: the test above can fail."""
    import json

    root, stale_dir = hooked
    (_site(root) / PTH_NAME).unlink()
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "-1", "LD_LIBRARY_PATH": str(stale_dir)}
    seen = json.loads(_run(root, "import tensorflow", env))
    assert seen == {"CUDA_VISIBLE_DEVICES": "-1", "XLA_FLAGS": None, "cudnn": 90100}


def test_values_are_data_never_code() -> None:
    text = render_module(set_vars={"XLA_FLAGS": '"; import os; os.system("id") #'})
    namespace: dict[str, object] = {}
    exec(compile(text, MODULE_NAME, "exec"), namespace)
    assert namespace["SET"] == {"XLA_FLAGS": '"; import os; os.system("id") #'}
    assert is_ours(text)
    with pytest.raises(ValueError, match="not a variable name"):
        render_module(unset_vars=["A; rm -rf /"])
