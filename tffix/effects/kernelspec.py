"""Edit a Jupyter kernelspec's ``env``: the one place a kernel's environment is decided.

A Jupyter kernel never sources ``activate``; the server starts ``argv`` with its own
environment plus the kernelspec's ``env`` map. A variable set there (``CUDA_VISIBLE_DEVICES``,
``LD_LIBRARY_PATH``, ``XLA_FLAGS``) is what TensorFlow sees in every notebook on that kernel,
so that is where a fix for the kernel goes. ``edit_env`` rewrites ``kernel.json`` atomically
inside its own folder (a ``kernel.json`` that is a link out of the folder is refused) and
returns the ``Saved`` bytes that undo writes back exactly.

The new text is rendered by the pure :func:`render_env`; keys other than ``env`` are kept.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tffix.effects import saved
from tffix.effects.saved import Saved
from tffix.envedit import EditOp, EnvEdit
from tffix.errors import ApplyError
from tffix.model import frozen_map

SPEC_FILE = "kernel.json"
MAX_BYTES = 1024 * 1024


def _edited(env: dict[str, str], edit: EnvEdit) -> dict[str, str]:
    out = dict(env)
    name, value = edit.variable, edit.value or ""
    if edit.op is EditOp.SET:
        out[name] = value
    elif edit.op is EditOp.UNSET:
        out.pop(name, None)
    elif edit.op is EditOp.PREPEND:
        rest = [p for p in out.get(name, "").split(os.pathsep) if p and p != value]
        out[name] = os.pathsep.join([value, *rest])
    elif edit.op is EditOp.REMOVE:
        kept = [p for p in out.get(name, "").split(os.pathsep) if p and p.rstrip("/") != value]
        if kept:
            out[name] = os.pathsep.join(kept)
        else:
            out.pop(name, None)
    return out


def render_env(data: bytes, edit: EnvEdit) -> bytes:
    """The kernelspec *data* with *edit* applied to its ``env`` (pure).

    ``ApplyError`` when *data* is not a kernelspec (not a JSON object, ``env`` not an object
    of strings).
    """
    if len(data) > MAX_BYTES:
        raise ApplyError(f"a kernelspec of {len(data)} bytes is not one tffix edits")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ApplyError(f"the kernelspec is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ApplyError("the kernelspec is not a JSON object")
    env = doc.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ApplyError("the kernelspec's `env` is not an object of strings")
    new_env = _edited({str(k): v for k, v in env.items()}, edit)
    if new_env:
        doc["env"] = new_env
    else:
        doc.pop("env", None)
    # jupyter_client writes kernel.json with indent=1; any indentation reads the same.
    return (json.dumps(doc, indent=1) + "\n").encode("utf-8")


def edit_env(spec_dir: Path, edit: EnvEdit) -> Saved:
    """Apply *edit* to ``spec_dir/kernel.json``; returns the bytes it replaced.

    ``ApplyError`` when the file is missing or not a kernelspec; ``safepath.PathEscape``
    when it is a link out of *spec_dir*.
    """
    try:
        before = saved.read(spec_dir, SPEC_FILE)
    except OSError as exc:
        raise ApplyError(f"cannot read {spec_dir / SPEC_FILE}: {exc.strerror}") from exc
    if before is None:
        raise ApplyError(f"{spec_dir / SPEC_FILE} does not exist")
    after = render_env(before, edit)
    record = Saved(str(spec_dir), frozen_map({SPEC_FILE: before}))
    if after != before:
        try:
            saved.write(spec_dir, SPEC_FILE, after)
        except OSError as exc:
            raise ApplyError(f"cannot write {spec_dir / SPEC_FILE}: {exc.strerror}") from exc
    return record
