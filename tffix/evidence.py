"""Evidence pointers (``env.LD_LIBRARY_PATH``, ``libraries.libcudnn.so.9``, ``log[3]``) turned
back into what tffix saw: the value, the file and its version, the version needed, the line.

Pure. A finding's evidence points into the snapshot so that a JSON reader can follow it; a
person reading ``-v`` wants the thing itself. A pointer that the snapshot cannot resolve is
shown as the pointer, so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tffix.lazyre import lazy
from tffix.model import Snapshot
from tffix.ruleset import Ruleset

_LOG = lazy(r"log\[(\d+)\]\Z")
_WIDTH = 160


def _short(text: str, width: int = _WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _needed(name: str, snap: Snapshot, rules: Ruleset | None) -> str | None:
    """What the installed TensorFlow release pins for the distribution *name*."""
    tf = (snap.packages or {}).get("tensorflow")
    release = rules.release(tf.split("+")[0]) if rules and tf else None
    if release is None:
        return None
    spec = release.pins().get(name)
    return f"TensorFlow {release.version} needs {name}{spec}" if spec is not None else None


def _library(soname: str, snap: Snapshot, rules: Ruleset | None) -> str | None:
    lib = snap.libraries.get(soname)
    if lib is None:
        return None
    if not isinstance(lib.path, str):
        found = "nothing resolves" if lib.path is None else "not checked"
        return f"{soname}: {found}"
    version = f" (version {lib.version})" if lib.version else ""
    via = f" via {lib.via}" if lib.via else ""
    text = f"{soname} → {lib.path}{version}{via}"
    if lib.loaded and lib.loaded != lib.path:
        text += f"; TensorFlow had {lib.loaded} mapped"
    others = [c for c in lib.candidates if c != lib.path]
    if others:
        text += f"; also on the search path: {', '.join(others)}"
    if lib.error:
        text += f"; dlerror: {_short(lib.error)}"
    return text


def _package(name: str, snap: Snapshot, rules: Ruleset | None) -> str | None:
    packages = snap.packages or {}
    if name not in packages:
        return f"{name}: not installed" if snap.packages is not None else None
    need = _needed(name, snap, rules)
    return f"{name} {packages[name]}" + (f" ({need})" if need else "")


def _env(name: str, snap: Snapshot, rules: Ruleset | None) -> str | None:
    if name not in snap.env:
        return f"{name} is unset"
    return f"{name}={snap.env[name]}"


def _log(index: str, snap: Snapshot, rules: Ruleset | None) -> str | None:
    i = int(index)
    return f"log line {i + 1}: {_short(snap.log[i])}" if 0 <= i < len(snap.log) else None


def _toolkits(snap: Snapshot) -> str | None:
    found = snap.extra.get("cuda_toolkits")
    if not isinstance(found, list):
        return None
    shown = [
        f"{t.get('path')} (CUDA {t.get('version') or '?'}, libraries in {t.get('lib_dir')})"
        for t in found
        if isinstance(t, dict)
    ]
    return "CUDA toolkits on this machine: " + ", ".join(shown) if shown else None


def _attribute(obj: object, path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, Mapping) else getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _value(top: str) -> Callable[[str, Snapshot, Ruleset | None], str | None]:
    def show(rest: str, snap: Snapshot, rules: Ruleset | None) -> str | None:
        value = _attribute(getattr(snap, top), rest)
        if value is None or callable(value):
            return None
        if isinstance(value, (tuple, list)):
            value = ", ".join(map(str, value)) or "none"
        return f"{top}.{rest}: {_short(str(value))}"

    return show


_BY_PREFIX: dict[str, Callable[[str, Snapshot, Ruleset | None], str | None]] = {
    "libraries": _library,
    "packages": _package,
    "env": _env,
    "tensorflow": _value("tensorflow"),
    "driver": _value("driver"),
    "platform": _value("platform"),
    "python": _value("python"),
    "extra": _value("extra"),
}


def show_one(pointer: str, snap: Snapshot | None, rules: Ruleset | None = None) -> str:
    """What *pointer* shows in *snap*, as one line (the pointer itself when unresolvable)."""
    if snap is None:
        return pointer
    hit = _LOG.match(pointer)
    if hit:
        return _log(hit.group(1), snap, rules) or pointer
    if pointer == "extra.cuda_toolkits":
        return _toolkits(snap) or pointer
    top, _, rest = pointer.partition(".")
    fn = _BY_PREFIX.get(top)
    if fn is None or not rest:
        return pointer
    try:
        return fn(rest, snap, rules) or pointer
    except (ValueError, TypeError, AttributeError):
        return pointer


def show(
    pointers: Iterable[str],
    snap: Snapshot | None,
    rules: Ruleset | None = None,
    *,
    verbose: int = 1,
) -> list[str]:
    """Lines of evidence for ``-v``: what each pointer shows; with ``-vv`` the pointer too."""
    lines: list[str] = []
    for pointer in dict.fromkeys(pointers):
        if pointer == "packages" and snap is not None and snap.packages is not None:
            nvidia = sorted(n for n in snap.packages if n.startswith("nvidia-"))
            lines.append(
                "seen: nvidia-* wheels installed: "
                + (", ".join(f"{n} {snap.packages[n]}" for n in nvidia) or "none")
            )
            continue
        if pointer in ("packages", "libraries", "env", "log"):
            continue  # the whole section: the lines about its members say what matters
        text = show_one(pointer, snap, rules)
        if verbose > 1 and text != pointer:
            text += f"  [{pointer}]"
        lines.append(f"seen: {text}")
    return lines
