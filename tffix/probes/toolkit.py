"""CUDA toolkits installed the system way (``/usr/local/cuda-12.4``, ``/usr/local/cuda``,
``/opt/cuda``): where each is, its version, and which CUDA libraries its lib folder holds.

Read-only: lists folders and reads ``version.json`` / ``version.txt``. Every path is under
*root* (``$TFFIX_SYSROOT`` or ``/``), so a simulated machine's root or a mounted image of a
broken machine's root is read the same way. Whether the loader finds a toolkit is not this
probe's question: the diagnosis compares the folders it reports with the loader's path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_PATTERNS = ("usr/local/cuda", "usr/local/cuda-*", "opt/cuda", "opt/cuda-*")
_LIB_DIRS = ("lib64", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib", "lib")
_LIBS = ("libcudart.so", "libcublas.so", "libcufft.so", "libcusparse.so", "libcudnn.so")
_VERSION = re.compile(r"(\d+\.\d+(?:\.\d+)?)")
MAX_TOOLKITS = 16


def _version(folder: Path) -> str | None:
    try:
        data = json.loads((folder / "version.json").read_text(encoding="utf-8")[:65536])
        value = data.get("cuda", {}).get("version") if isinstance(data, dict) else None
        if isinstance(value, str) and _VERSION.fullmatch(value):
            return value
    except (OSError, ValueError, AttributeError):
        pass
    try:
        hit = _VERSION.search((folder / "version.txt").read_text(encoding="utf-8")[:4096])
        if hit:
            return hit.group(1)
    except (OSError, ValueError):
        pass
    hit = re.fullmatch(r"cuda-(\d+\.\d+)", folder.name)
    return hit.group(1) if hit else None


def _libraries(lib_dir: Path) -> list[str]:
    try:
        names = sorted(p.name for p in lib_dir.iterdir())
    except OSError:
        return []
    return [n for n in names if n.startswith(_LIBS) and ".so." in n and n.count(".") <= 3]


def probe_toolkits(root: Path) -> list[dict[str, object]]:
    """Each toolkit folder under *root*: ``{"path", "version", "lib_dir", "libraries"}``
    (``path`` and ``lib_dir`` as the machine names them, without *root*); a symlink such as
    ``/usr/local/cuda`` is listed with ``"link"``: the folder it resolves to."""
    found: list[dict[str, object]] = []
    for pattern in _PATTERNS:
        for folder in sorted(root.glob(pattern)):
            if len(found) >= MAX_TOOLKITS or not folder.is_dir():
                continue
            lib_dir = next((folder / d for d in _LIB_DIRS if (folder / d).is_dir()), None)
            if lib_dir is None:
                continue
            entry: dict[str, object] = {
                "path": "/" + folder.relative_to(root).as_posix(),
                "version": _version(folder),
                "lib_dir": "/" + lib_dir.relative_to(root).as_posix(),
                "libraries": _libraries(lib_dir),
            }
            if folder.is_symlink():
                try:
                    entry["link"] = "/" + folder.resolve().relative_to(root.resolve()).as_posix()
                except (OSError, ValueError):
                    entry["link"] = None
            found.append(entry)
    return found
