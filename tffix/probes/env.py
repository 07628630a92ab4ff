"""The environment probe: the variables that matter, and the environment the target runs in.

``activated_env`` (pure) answers "which environment does TensorFlow see when the user runs the
target's python": the caller's environment, plus what activating the venv sets (``VIRTUAL_ENV``,
its ``bin`` first on ``PATH``, no ``PYTHONHOME``) and the edits recorded in the activate
script's tffix block. Applying them to an already active venv changes nothing (each edit is
idempotent), and after a repair it gives the environment the user will get.

``activate_settings`` (pure) reports what the activate script sets: the tffix block's edits, and
plain ``export NAME=value`` lines users add by hand, verbatim (shell code is never evaluated).
``select_env`` picks the variables a diagnosis needs. Only ``read_activate`` touches a file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from tffix.envedit import BLOCK_BEGIN, BLOCK_END, apply_edits, parse_block

NAMED = (
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "XLA_FLAGS",
    "CUDA_HOME",
    "CUDA_PATH",
    "CUDA_ROOT",
    "CUDNN_PATH",
    "PATH",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "GPU_DEVICE_ORDINAL",
    "SLURM_JOB_ID",
    "SLURM_JOB_GPUS",
    "SLURM_STEP_GPUS",
    "KUBERNETES_SERVICE_HOST",
    "WSL_DISTRO_NAME",
    "RAY_JOB_ID",
    "RAY_RAYLET_PID",
    "RAY_ADDRESS",
)
"""Variables recorded verbatim when set."""

PREFIXES = (
    "TF_CPP_",  # logging: TF_CPP_MIN_LOG_LEVEL, TF_CPP_MAX_VLOG_LEVEL, TF_CPP_VMODULE
    "TF_FORCE_GPU_",  # TF_FORCE_GPU_ALLOW_GROWTH
    "TF_FORCE_UNIFIED_",  # TF_FORCE_UNIFIED_MEMORY
    "TF_GPU_",  # TF_GPU_ALLOCATOR, TF_GPU_THREAD_MODE, TF_GPU_HOST_MEM_LIMIT_IN_MB
    "TF_XLA_",  # TF_XLA_FLAGS
    "TF_CUDNN_",  # TF_CUDNN_USE_AUTOTUNE, TF_CUDNN_DETERMINISTIC, …
    "TF_CUDA_",  # TF_CUDA_HOST_MEM_LIMIT_IN_MB, build-time TF_CUDA_* of a source build
    "TF_ENABLE_",  # TF_ENABLE_ONEDNN_OPTS, TF_ENABLE_GPU_GARBAGE_COLLECTION, …
    "TF_DISABLE_",
    "TF_DETERMINISTIC_",  # TF_DETERMINISTIC_OPS
    "TF_USE_",  # TF_USE_LEGACY_KERAS
    "TF_NUM_",  # TF_NUM_INTEROP_THREADS, TF_NUM_INTRAOP_THREADS
    "TF_NEED_",  # a source build's TF_NEED_CUDA
    "TF_PER_DEVICE_",  # TF_PER_DEVICE_MEMORY_LIMIT_MB
)
"""TensorFlow's own variable families, recorded too. Not the bare ``TF_`` prefix: Terraform
reads ``TF_VAR_*``, ``TF_TOKEN_*``, ``TF_CLI_ARGS*`` and ``TF_LOG`` from the same namespace,
and those often carry credentials that have no place in a shared snapshot."""

_STANDARD_ACTIVATE = re.compile(
    r"^(VIRTUAL_ENV|VIRTUAL_ENV_PROMPT|PS1|PYTHONHOME|_OLD_VIRTUAL_\w*)$"
)
_OWN_VALUE = re.compile(r"VIRTUAL_ENV|\$Venv|_OLD_VIRTUAL", re.IGNORECASE)
"""A value that refers to the venv itself: the activate script's own bookkeeping."""

ACTIVATE_SCRIPTS = ("activate", "activate.fish", "activate.csh", "Activate.ps1")

_ASSIGNMENTS = {
    "activate": re.compile(r"^\s*export\s+([A-Za-z_]\w*)=(.*)$"),
    "activate.fish": re.compile(
        r"^\s*set\s+(?:-[a-zA-Z]+\s+)*?-[a-zA-Z]*x[a-zA-Z]*\s+(\w+)\s*(.*)$"
    ),
    "activate.csh": re.compile(r"^\s*setenv\s+(\w+)\s*(.*)$"),
    "Activate.ps1": re.compile(r"^\s*\$env:(\w+)\s*=\s*(.*)$", re.IGNORECASE),
}
"""How each shell's activate script sets an exported variable (``export``, ``set -gx``,
``setenv``, ``$env:``)."""


def select_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that matter to the diagnosis, verbatim ("" is a value, kept)."""
    out = {name: environ[name] for name in NAMED if name in environ}
    out.update({k: v for k, v in environ.items() if k.startswith(PREFIXES)})
    return out


def scheduler(environ: Mapping[str, str]) -> str | None:
    """``slurm``, ``kubernetes`` or ``ray`` when a scheduler launched this environment."""
    if "SLURM_JOB_ID" in environ or "SLURM_JOBID" in environ:
        return "slurm"
    if "KUBERNETES_SERVICE_HOST" in environ:
        return "kubernetes"
    if any(k in environ for k in ("RAY_JOB_ID", "RAY_RAYLET_PID", "RAY_ADDRESS")):
        return "ray"
    return None


def activated_env(
    environ: Mapping[str, str], target_prefix: str | os.PathLike[str], activate_text: str | None
) -> dict[str, str]:
    """*environ* as it is after sourcing the venv's activate script (tffix block included).

    *activate_text* is the text of ``bin/activate`` (None when the target has none: then
    *environ* is returned unchanged, as for a conda or system interpreter).
    """
    env = dict(environ)
    if activate_text is None:
        return env
    prefix = os.fspath(target_prefix)
    env["VIRTUAL_ENV"] = prefix
    env.pop("PYTHONHOME", None)
    bin_dir = os.path.join(prefix, "bin")
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p.rstrip("/") != bin_dir]
    env["PATH"] = os.pathsep.join([bin_dir, *rest])
    return apply_edits(env, parse_block(activate_text))


def activate_settings(activate_text: str, script: str = "activate") -> dict[str, object]:
    """What one activate script sets: tffix's edits, and hand-written exports, verbatim.

    *script* is the script's file name (``activate``, ``activate.fish``, ``activate.csh``,
    ``Activate.ps1``); it picks the assignment syntax.
    """
    edits = [
        {"op": str(e.op), "variable": e.variable, **({"value": e.value} if e.value else {})}
        for e in parse_block(activate_text)
    ]
    pattern = _ASSIGNMENTS.get(script, _ASSIGNMENTS["activate"])
    exports = []
    inside = False
    for number, line in enumerate(activate_text.splitlines(), start=1):
        stripped = line.strip()
        if stripped == BLOCK_BEGIN:
            inside = True
            continue
        if stripped == BLOCK_END:
            inside = False
            continue
        match = pattern.match(line)
        if inside or not match:
            continue
        name, value = match.groups()
        if _STANDARD_ACTIVATE.match(name) or _OWN_VALUE.search(value):
            continue  # the activate script's own bookkeeping
        exports.append({"script": script, "variable": name, "line": number, "text": line.rstrip()})
    return {"tffix_edits": edits, "exports": exports}


def other_activate_exports(bin_dir: Path) -> list[dict[str, object]]:
    """Hand-written exports in the fish, csh and PowerShell activate scripts (when present)."""
    out: list[dict[str, object]] = []
    for script in ACTIVATE_SCRIPTS[1:]:
        try:
            text = (bin_dir / script).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        exports = activate_settings(text, script)["exports"]
        assert isinstance(exports, list)
        out.extend(exports)
    return out


def read_activate(prefix: Path) -> tuple[str | None, str | None]:
    """(text of ``bin/activate``, None) or (None, why not)."""
    path = prefix / "bin" / "activate"
    try:
        return path.read_text(encoding="utf-8", errors="replace"), None
    except FileNotFoundError:
        return None, f"{path} does not exist"
    except OSError as exc:
        return None, f"{path}: {exc.strerror}"
