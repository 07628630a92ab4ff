"""`tffix snapshot` end to end: a real venv with packages pip installed from a local wheel folder
the test builds (a stand-in TensorFlow whose framework library has a real RUNPATH, a wheel
cuDNN), real dlopen, and the real absence of NVML. Also the bad inputs: each gives one line and
a documented exit code, or an "unknown, because" entry, never a traceback."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import fixture_path
from tests.probes.conftest import compile_lib
from tests.probes.wheels import write_wheel
from tffix.cli import main
from tffix.document import parse_snapshot_text
from tffix.errors import ExitCode
from tffix.probes.packages import list_with_pip_api, read_metadata

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the loader tests are Linux's")


def _has_nvml() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def tf_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with a stand-in tensorflow 2.18.1 and nvidia-cudnn-cu12 9.3.0.75 installed
    by real pip from a local wheel folder (no index)."""
    root = tmp_path_factory.mktemp("snapvenv")
    build, cache = root / "build", root / "cache"
    cache.mkdir()
    framework = compile_lib(
        cache,
        "libtensorflow_framework.c",
        build / "libtensorflow_framework.so.2",
        soname="libtensorflow_framework.so.2",
        runpath=["$ORIGIN/../nvidia/cudnn/lib", "$ORIGIN/../nvidia/cublas/lib"],
    )
    # a library with no version entry point: its version comes from the wheel that installed it
    cublas = compile_lib(cache, "libdep.c", build / "libcublas.so.12", soname="libcublas.so.12")
    cudnn = compile_lib(
        cache,
        "libcudnn.c",
        build / "libcudnn.so.9",
        soname="libcudnn.so.9",
        defines={"VERSION": 90300},
    )
    wheels = root / "wheels"
    write_wheel(
        wheels,
        "tensorflow",
        "2.18.1",
        {
            "tensorflow/__init__.py": fixture_path("loader", "fake_tensorflow_init.py").read_text(),
            "tensorflow/libtensorflow_framework.so.2": framework.read_bytes(),
        },
        requires=["nvidia-cudnn-cu12==9.3.0.75", "nvidia-cublas-cu12==12.5.3.2"],
    )
    write_wheel(
        wheels,
        "nvidia-cublas-cu12",
        "12.5.3.2",
        {"nvidia/cublas/lib/libcublas.so.12": cublas.read_bytes()},
    )
    write_wheel(
        wheels,
        "nvidia-cudnn-cu12",
        "9.3.0.75",
        {"nvidia/cudnn/lib/libcudnn.so.9": cudnn.read_bytes()},
    )
    env_dir = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "virtualenv", "-q", "--no-setuptools", "--no-wheel", str(env_dir)],
        check=True,
    )
    subprocess.run(
        [
            str(env_dir / "bin/python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--find-links",
            str(wheels),
            "tensorflow==2.18.1",
        ],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    return env_dir


@pytest.fixture
def stale_cudnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder like /usr/local/cuda-11.8/lib64 holding an older cuDNN 9 (9.1.0)."""
    folder = tmp_path_factory.mktemp("cuda-11.8") / "lib64"
    cache = folder.parent / "cache"
    cache.mkdir()
    compile_lib(
        cache,
        "libcudnn.c",
        folder / "libcudnn.so.9",
        soname="libcudnn.so.9",
        defines={"VERSION": 90100},
    )
    return folder


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The user's shell: no venv active, no CUDA variables, no test mode."""
    for name in (
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "CUDA_VISIBLE_DEVICES",
        "TFFIX_TEST_TF_MODE",
        "PYTHONPATH",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _snapshot(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    code = main(["snapshot", *args])
    captured = capsys.readouterr()
    assert code == ExitCode.OK, captured.err
    assert "Traceback" not in captured.err
    parse_snapshot_text(captured.out)  # the document reads back
    return json.loads(captured.out)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_stale_cudnn_on_ld_library_path_is_named(
    tf_venv: Path, stale_cudnn: Path, shell: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.setenv("LD_LIBRARY_PATH", str(stale_cudnn))
    doc = _snapshot(capsys, "--venv", str(tf_venv))
    site = next(tf_venv.glob("lib/python*/site-packages"))
    cudnn = doc["libraries"]["libcudnn.so.9"]
    assert cudnn["path"] == str(stale_cudnn / "libcudnn.so.9")
    assert cudnn["via"] == "LD_LIBRARY_PATH"
    assert cudnn["version"] == "9.1.0"
    assert cudnn["candidates"] == [
        str(stale_cudnn / "libcudnn.so.9"),
        str(site / "nvidia/cudnn/lib/libcudnn.so.9"),
    ]
    # TensorFlow's own dlopen (from its framework library) picked the same file.
    assert cudnn["loaded"] == str(stale_cudnn / "libcudnn.so.9")
    assert doc["env"]["LD_LIBRARY_PATH"] == str(stale_cudnn)
    assert doc["packages"]["nvidia-cudnn-cu12"] == "9.3.0.75"
    assert doc["extra"]["tensorflow_owners"] == ["tensorflow"]
    assert doc["extra"]["nvidia_lib_dirs"] == [
        str(site / "nvidia/cublas/lib"),
        str(site / "nvidia/cudnn/lib"),
    ]


@pytest.mark.slow
def test_wheel_cudnn_through_runpath_and_what_tensorflow_said(
    tf_venv: Path, shell: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _snapshot(capsys, "--venv", str(tf_venv))
    site = next(tf_venv.glob("lib/python*/site-packages"))
    cudnn = doc["libraries"]["libcudnn.so.9"]
    assert (cudnn["path"], cudnn["via"], cudnn["version"]) == (
        str(site / "nvidia/cudnn/lib/libcudnn.so.9"),
        "RUNPATH",
        "9.3.0",
    )
    assert cudnn["loaded"] == cudnn["path"]
    cublas = doc["libraries"]["libcublas.so.12"]
    assert (cublas["via"], cublas["version"]) == ("RUNPATH", "12.5.3.2")
    assert doc["extra"]["loader"]["version_sources"]["libcublas.so.12"] == (
        "wheel nvidia-cublas-cu12"
    )
    assert doc["libraries"]["libcufft.so.11"]["path"] is None
    tf = doc["tensorflow"]
    assert tf["version"] == "2.18.1"
    assert tf["import_error"] is None
    assert tf["build"]["is_cuda_build"] is True
    assert tf["gpus"] == []
    assert any("Could not find cuda drivers on your machine" in line for line in doc["log"])
    # VLOG 1 makes the loader name each library it could not open.
    assert any("Could not load dynamic library 'libcufft.so.11'" in line for line in doc["log"])
    assert doc["python"]["venv"] == str(tf_venv)
    assert doc["python"]["kind"] == "venv"
    assert doc["env"]["VIRTUAL_ENV"] == str(tf_venv)  # the activated environment
    if not _has_nvml():
        assert doc["driver"] is None
        assert "libnvidia-ml.so.1" in doc["extra"]["driver_probe"]
    assert "tensorflow" not in doc.get("unknown", {})


@pytest.mark.slow
def test_output_file_and_summary(
    tf_venv: Path, shell: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "env.json"
    assert main(["snapshot", "--venv", str(tf_venv), "-o", str(out)]) == ExitCode.OK
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"tffix: wrote {out}: TensorFlow 2.18.1 sees 0 GPU(s)")
    snap = parse_snapshot_text(out.read_text())
    assert snap.packages is not None and snap.packages["tensorflow"] == "2.18.1"
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "exit_text", "why"),
    [
        ("hang", "timeout after 3s", "while importing tensorflow"),
        ("segv", "killed by SIGSEGV", "while importing tensorflow"),
    ],
)
def test_hanging_or_crashing_import_is_recorded(
    tf_venv: Path,
    shell: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    exit_text: str,
    why: str,
) -> None:
    shell.setenv("TFFIX_TEST_TF_MODE", mode)
    doc = _snapshot(capsys, "--venv", str(tf_venv), "--tf-timeout", "3")
    assert doc["tensorflow"]["exit"] == exit_text
    assert why in doc["unknown"]["tensorflow"]
    assert exit_text in doc["unknown"]["tensorflow"]
    assert "import_error" not in doc["tensorflow"]  # unknown, not "imported fine"
    # the rest of the snapshot is still there
    assert doc["libraries"]["libcudnn.so.9"]["version"] == "9.3.0"


@pytest.mark.slow
def test_import_error_text_is_kept(
    tf_venv: Path, shell: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.setenv("TFFIX_TEST_TF_MODE", "importerror")
    doc = _snapshot(capsys, "--venv", str(tf_venv))
    assert doc["tensorflow"]["import_error"] == (
        "ImportError: libcudart.so.11.0: cannot open shared object file: No such file or directory"
    )
    assert "tensorflow" not in doc.get("unknown", {})


@pytest.mark.slow
def test_pip_api_and_metadata_agree(tf_venv: Path) -> None:
    python = tf_venv / "bin/python"
    site = next(tf_venv.glob("lib/python*/site-packages"))
    packages, owners, _ = read_metadata([str(site)])
    assert list_with_pip_api(python) == packages
    assert owners == ("tensorflow",)


def test_venv_without_tensorflow(
    tmp_path: Path, shell: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env_dir = tmp_path / "bare"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    doc = _snapshot(capsys, "--venv", str(env_dir))
    assert doc["tensorflow"] is None
    assert doc["libraries"] == {}
    assert "libraries" not in doc.get("unknown", {})
    assert doc["extra"]["loader"] == {"skipped": "no TensorFlow installed"}


def _broken_interpreter(p: Path) -> Path:
    (p / "bin").mkdir()
    (p / "bin/python").write_text(
        "#!/bin/sh\necho 'Fatal Python error: init_fs_encoding' >&2\nexit 1\n"
    )
    (p / "bin/python").chmod(0o755)
    (p / "pyvenv.cfg").write_text("home = /nonexistent\n")
    return p


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nothing", "no such folder"),
        (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "is a file"),
        (lambda p: p, "not a virtualenv"),
        (_broken_interpreter, "does not run: Fatal Python error"),
    ],
)
def test_bad_venv_is_one_line_and_exit_2(
    tmp_path: Path,
    shell: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    assert main(["snapshot", "--venv", str(make(tmp_path))]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tffix: error: ")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "is a folder"),
        (lambda p: p / "missing" / "env.json", "does not exist"),
    ],
)
def test_bad_output_is_one_line_and_exit_2(
    tmp_path: Path,
    shell: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    code = main(["snapshot", "--python", sys.executable, "-o", str(make(tmp_path))])
    assert code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tffix: error: -o")
    assert message in err


def test_cli_process_has_no_traceback_for_a_bad_venv(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tffix", "snapshot", "--venv", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


def test_non_positive_tf_timeout_is_a_usage_error(
    shell: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["snapshot", "--python", sys.executable, "--tf-timeout", "0"]) == ExitCode.USAGE
    assert capsys.readouterr().err == "tffix: error: --tf-timeout 0: must be more than 0 seconds\n"


@pytest.mark.slow
@pytest.mark.parametrize("command", [["snapshot"], ["--dry-run"]])
def test_ctrl_c_ends_at_once_and_leaves_no_child(tmp_path: Path, command: list[str]) -> None:
    """Also for ``--dry-run``, whose child starts before the probes and the engine are
    imported (``tffix.headstart``): the Ctrl-C may land in one of those imports."""
    import signal
    import time

    import psutil

    env_dir = tmp_path / "hang"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    site = next(env_dir.glob("lib/python*/site-packages"))
    (site / "tensorflow").mkdir()
    (site / "tensorflow" / "__init__.py").write_text("import time\ntime.sleep(3600)\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tffix", *command, "--venv", str(env_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )

    def tf_children() -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["cmdline"]):
            cmd = p.info["cmdline"] or []
            if cmd and cmd[0].startswith(str(env_dir)) and "@@tffix-tf" in " ".join(cmd):
                found.append(p)
        return found

    deadline = time.monotonic() + 30
    while not tf_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tf_children(), "the TensorFlow child never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == ExitCode.INTERRUPTED
    assert err == "tffix: interrupted\n"
    deadline = time.monotonic() + 5
    while tf_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tf_children()


def test_a_ctrl_c_caught_after_it_left_a_string_exec_still_exits_130(tmp_path: Path) -> None:
    """CPython 3.11 marks a ``KeyboardInterrupt`` that leaves an ``exec`` of a string as
    unhandled, even when it is caught later, and a ``python -m`` run (the console script's
    way too) then ends by ``SIGINT`` at exit. Making a dataclass runs such an ``exec``, so a
    Ctrl-C during a lazy import did that to ``tffix`` (exit -2 instead of 130). The command
    here raises its Ctrl-C from inside one."""
    (tmp_path / "interrupted_command.py").write_text(
        "from tffix import cli\n"
        "class Command:\n"
        "    @staticmethod\n"
        "    def add_arguments(parser):\n"
        "        pass\n"
        "    @staticmethod\n"
        "    def run(options):\n"
        "        exec('raise KeyboardInterrupt')\n"
        "cli._command_module = lambda name: Command\n"
        "raise SystemExit(cli.main(['snapshot']))\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "interrupted_command"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert (done.returncode, done.stderr) == (ExitCode.INTERRUPTED, "tffix: interrupted\n")
