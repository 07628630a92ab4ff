"""The simulated GPU machine: scenarios turned into a fake driver folder and a real venv.

A scenario (``fixtures/sim/scenarios/<name>.toml``) names the machine (driver, GPUs, kernel
module), the packages installed with real pip from the local wheel index, system CUDA folders,
the user's environment and activate-script state, and what TensorFlow reports before and after a
repair. ``make_env`` builds all of it in a folder; ``SimEnv`` runs things on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from tests.harness import build
from tffix.envedit import BLOCK_BEGIN, BLOCK_END, EditOp, EnvEdit, apply_edits, parse_block

SCENARIOS = build.SIM / "scenarios"

# name -> (compute capability, memory MiB, SMs, clock kHz, memory clock kHz, bus width, L2 bytes)
GPU_PRESETS: dict[str, tuple[str, int, int, int, int, int, int]] = {
    "NVIDIA GeForce RTX 3090": ("8.6", 24576, 82, 1695000, 9751000, 384, 6291456),
    "NVIDIA GeForce RTX 4090": ("8.9", 24564, 128, 2520000, 10501000, 384, 75497472),
    "NVIDIA GeForce RTX 5090": ("12.0", 32607, 170, 2407000, 14001000, 512, 100663296),
    "NVIDIA GeForce GTX 980": ("5.2", 4096, 16, 1216000, 3505000, 256, 2097152),
    "NVIDIA A100-SXM4-40GB": ("8.0", 40960, 108, 1410000, 1215000, 5120, 41943040),
    "NVIDIA H100 80GB HBM3": ("9.0", 81559, 132, 1980000, 2619000, 5120, 52428800),
    "Tesla K80": ("3.7", 11441, 13, 823500, 2505000, 384, 1572864),
    "Tesla T4": ("7.5", 15360, 40, 1590000, 5001000, 256, 4194304),
}

DEFAULT_DRIVER_DIR = "usr/lib/x86_64-linux-gnu"
CUDA_ERRORS = {"no-device": 100, "unknown": 999, "driver-mismatch": 803, "compat": 804}


def scenario_names() -> list[str]:
    """Every scenario, for ``pytest.mark.parametrize``."""
    return sorted(p.stem for p in SCENARIOS.glob("*.toml"))


def load_toml(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def load_scenario(name: str) -> dict[str, Any]:
    spec = load_toml(SCENARIOS / f"{name}.toml")
    spec.setdefault("name", name)
    return spec


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class TfReport:
    """What the (fake) TensorFlow in the venv said, from a fresh process."""

    returncode: int
    stdout: str
    stderr: str
    data: Mapping[str, Any] = field(default_factory=dict)
    """The JSON object the report snippet printed (empty when it crashed or *code* was custom)."""

    @property
    def gpus(self) -> list[str] | None:
        """GPU names from ``list_physical_devices('GPU')``; None when TensorFlow did not import."""
        value = self.data.get("gpus")
        return list(value) if value is not None else None

    @property
    def log(self) -> list[str]:
        """stderr, line by line."""
        return self.stderr.splitlines()

    def has_log(self, text: str) -> bool:
        return text in self.stderr

    @property
    def loaded(self) -> dict[str, str]:
        """soname -> real path of every library the fake TensorFlow dlopened."""
        return dict(self.data.get("loaded") or {})

    def __str__(self) -> str:
        return f"rc={self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


REPORT_SNIPPET = r"""
import json, sys
out = {}
try:
    import tensorflow as tf
except Exception as exc:
    out["import_error"] = "%s: %s" % (type(exc).__name__, exc)
    print(json.dumps(out)); sys.exit(0)
out["version"] = tf.__version__
out["file"] = tf.__file__
out["build"] = dict(tf.sysconfig.get_build_info())
out["is_built_with_cuda"] = tf.test.is_built_with_cuda()
tf.debugging.set_log_device_placement(True)
gpus = tf.config.list_physical_devices("GPU")
out["gpus"] = [g.name for g in gpus]
from tensorflow.python import _sim_api
out["gpu_details"] = _sim_api.gpu_details()
try:
    with tf.device("/GPU:0"):
        t = tf.reduce_sum(tf.ones([2, 2]))
    out["op_device"] = t.device
    out["op_value"] = float(t.numpy())
except Exception as exc:
    out["op_error"] = "%s: %s" % (type(exc).__name__, exc)
if "op_error" not in out:
    try:
        with tf.device("/GPU:0"):
            c = tf.nn.conv2d(tf.ones([1, 2, 2, 1]), tf.ones([1, 1, 1, 1]))
        out["dnn_device"] = c.device
    except Exception as exc:
        out["dnn_error"] = "%s: %s" % (type(exc).__name__, exc)
if "op_error" not in out and gpus:
    @tf.function(jit_compile=True)
    def _xla(x):
        return tf.reduce_sum(x)
    try:
        with tf.device("/GPU:0"):
            _xla(tf.ones([2, 2]))
    except Exception as exc:
        out["xla_error"] = "%s: %s" % (type(exc).__name__, exc)
out["loaded"] = _sim_api.loaded_libraries()
print(json.dumps(out))
"""


# --------------------------------------------------------------------------- the environment


@dataclass(frozen=True, slots=True)
class SimEnv:
    """One scenario on its simulated machine, in its own folder."""

    name: str
    spec: Mapping[str, Any]
    root: Path
    """The scenario's folder: the machine's file system root for ``{root}`` paths."""
    venv: Path
    python: Path
    machine_dir: Path
    """The fake driver folder (libcuda.so.1, libnvidia-ml.so.1, machine.conf)."""
    env: dict[str, str]
    index: Path
    setup_log: str = ""
    """Output of the scenario's set-up pip runs (including the failing ``attempt``)."""

    @property
    def site_packages(self) -> Path:
        return next((self.venv / "lib").glob("python*/site-packages"))

    def shell_env(self) -> dict[str, str]:
        """``env`` plus what the venv's activate-script tffix block sets."""
        activate = self.venv / "bin" / "activate"
        edits = parse_block(activate.read_text()) if activate.exists() else ()
        return apply_edits(self.env, edits)

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            env=dict(env if env is not None else self.env),
            cwd=self.root / "home",
            stdin=subprocess.DEVNULL,  # no one to ask, even when pytest runs in a terminal
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def pip(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Real pip of the venv against the local index only, in the activated shell's env."""
        env = {**self.shell_env(), **pip_env(self.index)}
        return self.run([str(self.python), "-m", "pip", *args], env=env, timeout=timeout)

    def run_tffix(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``<dev python> -m tffix <args> --venv <venv>`` in the user's environment."""
        # The machine's /proc and /dev (driver version, device nodes, container markers) are
        # written under the scenario root; the probes read them there.
        env = {**self.env, **pip_env(self.index), "TFFIX_SYSROOT": str(self.root)}
        return self.run(
            [sys.executable, "-m", "tffix", *args, "--venv", str(self.venv)],
            env=env,
            timeout=timeout,
        )

    def tf_report(
        self,
        code: str | None = None,
        *,
        python: Path | None = None,
        extra_env: Mapping[str, str | None] | None = None,
        timeout: float = 60,
    ) -> TfReport:
        """Run the venv's TensorFlow in a fresh process; *code* replaces the report snippet.

        *extra_env* changes the environment for this run only (``None`` unsets a variable).
        """
        env = self.shell_env()
        for key, value in (extra_env or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        proc = self.run(
            [str(python or self.python), "-c", code or REPORT_SNIPPET], env=env, timeout=timeout
        )
        data: dict[str, Any] = {}
        if code is None:
            for line in reversed(proc.stdout.splitlines()):
                if line.startswith("{"):
                    data = json.loads(line)
                    break
        return TfReport(proc.returncode, proc.stdout, proc.stderr, data)


def pip_env(index: Path) -> dict[str, str]:
    return {
        "PIP_FIND_LINKS": str(index),
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_COMPILE": "1",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_NO_INPUT": "1",
        # The same for uv, should the repair pick it: never the network.
        "UV_FIND_LINKS": str(index),
        "UV_NO_INDEX": "1",
        "UV_OFFLINE": "1",
    }


# --------------------------------------------------------------------------- machine


def _gpu_lines(spec: Mapping[str, Any], name: str) -> list[str]:
    gpus = spec.get("gpus", [])
    lines = [f"gpu_count={len(gpus)}"]
    for i, gpu in enumerate(gpus):
        if isinstance(gpu, str):
            gpu = {"name": gpu}
        preset = GPU_PRESETS.get(gpu["name"], ("8.6", 16384, 80, 1500000, 7000000, 384, 6291456))
        cc = str(gpu.get("cc", preset[0]))
        major, minor = cc.split(".")
        uid = gpu.get("uuid") or "GPU-" + str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"tffix-sim/{name}/{i}")
        )
        values = {
            "name": gpu["name"],
            "uuid": uid,
            "pci_bus_id": gpu.get("pci_bus_id", f"0000:{i + 1:02x}:00.0"),
            "cc_major": major,
            "cc_minor": minor,
            "memory_mib": gpu.get("memory_mib", preset[1]),
            "sm_count": preset[2],
            "clock_khz": preset[3],
            "mem_clock_khz": preset[4],
            "bus_width": preset[5],
            "l2_bytes": preset[6],
        }
        lines += [f"gpu{i}.{k}={v}" for k, v in values.items()]
    return lines


def cuda_int(text: str) -> int:
    major, _, minor = str(text).partition(".")
    return int(major) * 1000 + int(minor or 0) * 10


def machine_conf(spec: Mapping[str, Any], name: str) -> str:
    """machine.conf text for the fake driver (see fixtures/sim/c/simmachine.h)."""
    driver = str(spec.get("driver", "550.54.14"))
    lines = [
        "# The simulated machine (written by tests/harness/sim.py; read by the fake driver).",
        f"driver_version={driver}",
        f"kernel_module={int(spec.get('kernel_module', True))}",
        f"kernel_module_version={spec.get('kernel_module_version', driver)}",
        f"uvm={int(spec.get('uvm', True))}",
        f"cuda_version={cuda_int(spec.get('cuda', '12.4'))}",
    ]
    if "cuinit_error" in spec:
        err = spec["cuinit_error"]
        lines.append(f"cuinit_error={CUDA_ERRORS.get(err, err)}")
    return "\n".join(lines + _gpu_lines(spec, name)) + "\n"


def write_sysroot(root: Path, spec: Mapping[str, Any]) -> None:
    """The files a Linux host shows about itself, under *root* (for probes that take a root).

    ``proc/driver/nvidia/version`` and ``dev/nvidia*`` (plain files) while a kernel module is
    loaded, ``proc/sys/kernel/osrelease`` (a WSL kernel when ``wsl = true``), ``etc/os-release``,
    and ``.dockerenv`` + ``proc/1/cgroup`` for ``container = "docker"``.
    """
    driver = spec.get("driver", "550.54.14")
    kmod = str(spec.get("kernel_module_version", driver))
    files: dict[str, str] = {
        "etc/os-release": 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\nVERSION_ID="22.04"\n',
        "proc/sys/kernel/osrelease": (
            "5.15.153.1-microsoft-standard-WSL2\n" if spec.get("wsl") else "6.5.0-35-generic\n"
        ),
        "proc/1/cgroup": "0::/init.scope\n",
    }
    if not spec.get("wsl"):
        # The PCI bus shows the GPUs whatever the driver's state (WSL2 shows none: its GPU is
        # paravirtualised through /dev/dxg). A host bridge keeps the folder from being empty.
        pci = "sys/bus/pci/devices"
        files[f"{pci}/0000:00:00.0/vendor"] = "0x8086\n"
        files[f"{pci}/0000:00:00.0/class"] = "0x060000\n"
        for i, _ in enumerate(spec.get("gpus", [])):
            files[f"{pci}/0000:{i + 1:02x}:00.0/vendor"] = "0x10de\n"
            files[f"{pci}/0000:{i + 1:02x}:00.0/class"] = "0x030000\n"
    if spec.get("container") == "docker":
        files[".dockerenv"] = ""
        files["proc/1/cgroup"] = "0::/docker/4f7c1e2a9b\n"
    if driver not in (False, None, "") and spec.get("kernel_module", True) and not spec.get("wsl"):
        files["proc/driver/nvidia/version"] = (
            f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {kmod}  "
            "Thu Feb 22 01:44:30 UTC 2024\n"
            "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n"
        )
        nodes = ["nvidiactl", *(f"nvidia{i}" for i in range(len(spec.get("gpus", []))))]
        if spec.get("uvm", True):
            nodes += ["nvidia-uvm", "nvidia-uvm-tools"]
        files.update({f"dev/{n}": "" for n in nodes})
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def write_machine(root: Path, spec: Mapping[str, Any], name: str) -> Path:
    """Install the fake driver under *root* as a driver package would; return its folder."""
    write_sysroot(root, spec)
    machine_dir = root / spec.get("driver_dir", DEFAULT_DRIVER_DIR)
    machine_dir.mkdir(parents=True, exist_ok=True)
    (machine_dir / "machine.conf").write_text(machine_conf(spec, name))
    (machine_dir / "machine.json").write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    if spec.get("driver", "550.54.14") in (False, None, ""):
        return machine_dir  # no driver installed: only the description is there
    version = str(spec.get("driver", "550.54.14"))
    cuda, nvml = build.driver_libraries()
    libs = [("libcuda.so", cuda)]
    if spec.get("nvml", True):
        libs.append(("libnvidia-ml.so", nvml))
    for stem, src in libs:
        real = machine_dir / f"{stem}.{version}"
        shutil.copyfile(src, real)
        (machine_dir / f"{stem}.1").symlink_to(real.name)
        (machine_dir / stem).symlink_to(f"{stem}.1")
    return machine_dir


def write_system_libs(root: Path, dirs: Sequence[Mapping[str, Any]]) -> None:
    """System CUDA folders (``[[system]] dir = …, libs = ["cudnn 9.1.0", …]``)."""
    for entry in dirs:
        folder = root / entry["dir"]
        folder.mkdir(parents=True, exist_ok=True)
        for item in entry.get("libs", []):
            kind, version = item.split()
            src = build.system_library(kind, version)
            shutil.copyfile(src, folder / src.name)


# --------------------------------------------------------------------------- venv


def create_venv(path: Path) -> Path:
    """A real virtualenv with pip (no setuptools/wheel: nothing here needs them)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "virtualenv",
            "-q",
            "--no-setuptools",
            "--no-wheel",
            "--no-periodic-update",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return path / "bin" / "python"


def _expand(text: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _system_path() -> str:
    """PATH without the dev environment's own bin folder."""
    dev_bin = str(Path(sys.executable).parent)
    keep = [
        p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p and p != dev_bin
    ]
    return os.pathsep.join(keep or ["/usr/local/bin", "/usr/bin", "/bin"])


def write_activate_block(venv: Path, edits: Sequence[EnvEdit]) -> None:
    """Put a tffix block recording *edits* at the end of the venv's activate script."""
    activate = venv / "bin" / "activate"
    lines = [BLOCK_BEGIN]
    for edit in edits:
        lines.append(edit.encode())
        if edit.op is EditOp.SET:
            lines.append(f"export {edit.variable}='{edit.value}'")
        elif edit.op is EditOp.UNSET:
            lines.append(f"unset {edit.variable}")
        elif edit.op is EditOp.PREPEND:
            lines.append(
                f'export {edit.variable}="{edit.value}${{{edit.variable}:+:${{{edit.variable}}}}}"'
            )
    lines.append(BLOCK_END)
    with open(activate, "a") as fh:
        fh.write("\n" + "\n".join(lines) + "\n")


def make_env(
    name: str, folder: Path, index: Path, spec: Mapping[str, Any] | None = None
) -> SimEnv:
    """Build scenario *name* (or the scenario *spec*) in *folder*: machine, system libraries,
    venv, packages, env."""
    spec = dict(spec) if spec is not None else load_scenario(name)
    root = folder
    (root / "home").mkdir(parents=True, exist_ok=True)
    machine = spec.get("machine", {})
    machine_dir = write_machine(root, machine, name)
    write_system_libs(root, spec.get("system", []))
    venv = root / "home" / "project" / ".venv"
    python = create_venv(venv)
    site = next((venv / "lib").glob("python*/site-packages"))
    values = {"root": str(root), "venv": str(venv), "site": str(site), "driver": str(machine_dir)}

    env: dict[str, str] = {
        "HOME": str(root / "home"),
        "PATH": _system_path(),
        "LANG": "C.UTF-8",
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
    }
    for key, value in spec.get("env", {}).items():
        env[key] = _expand(str(value), values)
    ld = [e for e in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if e]
    if machine.get("on_loader_path", True) and machine.get("driver", "550.54.14") not in (
        False,
        None,
        "",
    ):
        ld.append(str(machine_dir))
    if ld:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(ld)
    else:
        env.pop("LD_LIBRARY_PATH", None)
    activate = spec.get("activate", {})
    if activate.get("activated", False):
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    shell = spec.get("shell", {})
    if shell.get("other_python"):
        other = create_venv(root / "home" / "other-env")
        env["PATH"] = f"{other.parent}{os.pathsep}{env['PATH']}"

    for rel, text in spec.get("files", {}).items():
        target = root / "home" / "project" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_expand(text, values))

    sim = SimEnv(name, spec, root, venv, python, machine_dir, env, index)
    log: list[str] = []
    packages = spec.get("packages", {})
    for step in ("install", "then", "last", "final"):
        reqs = [_expand(r, values) for r in packages.get(step, [])]
        if reqs:
            proc = sim.pip("install", *reqs)
            log.append(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"scenario {name}: pip install {reqs} failed:\n{proc.stdout}\n{proc.stderr}"
                )
    if packages.get("uninstall"):
        proc = sim.pip("uninstall", "-y", *packages["uninstall"])
        log.append(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError(f"scenario {name}: pip uninstall failed:\n{proc.stderr}")
    if packages.get("attempt"):
        proc = sim.pip("install", *[_expand(r, values) for r in packages["attempt"]])
        log.append(proc.stdout + proc.stderr)
        if proc.returncode == 0:
            raise RuntimeError(
                f"scenario {name}: pip install {packages['attempt']} was meant to fail"
            )
    edits = [
        EnvEdit(
            EditOp(e["op"]), e["variable"], _expand(e["value"], values) if "value" in e else None
        )
        for e in activate.get("edits", [])
    ]
    if edits:
        write_activate_block(venv, edits)
    return SimEnv(name, spec, root, venv, python, machine_dir, env, index, "\n".join(log))
