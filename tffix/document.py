"""JSON documents <-> model objects: ``tffix.snapshot/1`` in and out, ``tffix.diagnosis/1`` out.

Pure: takes and returns text and dicts. Reading never requires a field (a missing field means
unknown) but rejects a field of the wrong type with an ``InputError`` that names it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from tffix import redact
from tffix.errors import InputError
from tffix.model import (
    DIAGNOSIS_SCHEMA,
    SNAPSHOT_SCHEMA,
    UNKNOWN,
    Diagnosis,
    Driver,
    EntryPointState,
    Finding,
    Gpu,
    GpuUse,
    Library,
    Origin,
    PlanStep,
    Platform,
    Provenance,
    PythonInfo,
    Snapshot,
    StepKind,
    TensorFlowBuild,
    TensorFlowInfo,
    _Unknown,
    frozen_map,
)

MAX_DOCUMENT_BYTES = 32 * 1024 * 1024
"""A snapshot is a few KiB; anything past this is not one (and would cost memory to parse)."""

MAX_LOG_LINES = 20_000
"""Logs are kept verbatim but bounded; the rest of a longer log is dropped with a note."""

_T = TypeVar("_T")


# --------------------------------------------------------------------------- reading


def _type_name(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _want(where: str, value: object, kinds: tuple[type, ...], what: str) -> Any:
    # bool is an int in Python; a JSON true is not a number here.
    if isinstance(value, bool) and bool not in kinds:
        raise InputError(f"snapshot field {where} must be {what}, not {_type_name(value)}")
    if not isinstance(value, kinds):
        raise InputError(f"snapshot field {where} must be {what}, not {_type_name(value)}")
    return value


def _str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # "version": 2.18 from a hand-written report
    return str(_want(f"{where}.{key}", value, (str,), "a string"))


def _bool(obj: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"  # get_build_info() prints True/False as text
    return bool(_want(f"{where}.{key}", value, (bool,), "true or false"))


def _nullable(obj: Mapping[str, Any], key: str, parse: Callable[[Any], _T]) -> _T | _Unknown | None:
    """Absent -> UNKNOWN, null -> None, else parse(value)."""
    if key not in obj:
        return UNKNOWN
    value = obj[key]
    return None if value is None else parse(value)


def _obj(value: object, where: str) -> Mapping[str, Any]:
    return _want(where, value, (dict,), "an object")  # type: ignore[no-any-return]


def _str_list(value: object, where: str) -> tuple[str, ...]:
    items = _want(where, value, (list,), "a list")
    return tuple(str(_want(f"{where}[{i}]", v, (str,), "a string")) for i, v in enumerate(items))


def _platform(value: object) -> Platform:
    obj = _obj(value, "platform")
    flags = obj.get("cpu_flags")
    return Platform(
        os=_str(obj, "os", "platform"),
        arch=_str(obj, "arch", "platform"),
        wsl=_bool(obj, "wsl", "platform"),
        container=_nullable(obj, "container", lambda v: str(v)),
        libc=_str(obj, "libc", "platform"),
        distro=_str(obj, "distro", "platform"),
        kernel=_str(obj, "kernel", "platform"),
        jetson=_bool(obj, "jetson", "platform"),
        shell=_str(obj, "shell", "platform"),
        scheduler=_nullable(obj, "scheduler", lambda v: str(v)),
        cpu_flags=None if flags is None else _str_list(flags, "platform.cpu_flags"),
    )


def _python(value: object) -> PythonInfo:
    obj = _obj(value, "python")
    return PythonInfo(
        version=_str(obj, "version", "python"),
        executable=_str(obj, "executable", "python"),
        venv=_nullable(obj, "venv", lambda v: str(_want("python.venv", v, (str,), "a string"))),
        kind=_str(obj, "kind", "python"),
        implementation=_str(obj, "implementation", "python"),
    )


def _string_map(value: object, where: str) -> dict[str, str]:
    obj = _obj(value, where)
    out: dict[str, str] = {}
    for key, item in obj.items():
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise InputError(
                f"snapshot field {where}.{key} must be a string, not {_type_name(item)}"
            )
        out[str(key)] = str(item)
    return out


def _driver(value: object) -> Driver:
    obj = _obj(value, "driver")
    return Driver(
        version=_str(obj, "version", "driver"),
        cuda=_str(obj, "cuda", "driver"),
        source=_str(obj, "source", "driver"),
        kernel_module=_str(obj, "kernel_module", "driver"),
        error=_str(obj, "error", "driver"),
    )


def _int(obj: Mapping[str, Any], key: str, where: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    return int(_want(f"{where}.{key}", value, (int,), "a whole number"))


def _gpus(value: object) -> tuple[Gpu, ...]:
    items = _want("gpus", value, (list,), "a list")
    out = []
    for i, item in enumerate(items):
        where = f"gpus[{i}]"
        obj = _obj(item, where)
        out.append(
            Gpu(
                name=_str(obj, "name", where),
                compute_capability=_str(obj, "compute_capability", where),
                uuid=_str(obj, "uuid", where),
                index=_int(obj, "index", where),
                memory_mib=_int(obj, "memory_mib", where),
                mig=_bool(obj, "mig", where),
            )
        )
    return tuple(out)


def _string_parser(where: str) -> Callable[[Any], str]:
    """A parser for ``_nullable`` that wants a string at *where*."""
    return lambda v: str(_want(where, v, (str,), "a string"))


def _libraries(value: object) -> dict[str, Library]:
    obj = _obj(value, "libraries")
    out = {}
    for soname, item in obj.items():
        where = f"libraries.{soname}"
        lib = _obj(item, where)
        out[str(soname)] = Library(
            path=_nullable(lib, "path", _string_parser(f"{where}.path")),
            version=_str(lib, "version", where),
            via=_str(lib, "via", where),
            loaded=_str(lib, "loaded", where),
            candidates=_str_list(lib.get("candidates", []), f"{where}.candidates"),
            error=_str(lib, "error", where),
        )
    return out


def _build(value: object) -> TensorFlowBuild:
    obj = _obj(value, "tensorflow.build")
    caps = obj.get("cuda_compute_capabilities")
    if isinstance(caps, str):  # some builds report "sm_60,sm_70"
        caps = [c.strip() for c in caps.split(",") if c.strip()]
    return TensorFlowBuild(
        cuda_version=_str(obj, "cuda_version", "tensorflow.build"),
        cudnn_version=_str(obj, "cudnn_version", "tensorflow.build"),
        is_cuda_build=_bool(obj, "is_cuda_build", "tensorflow.build"),
        is_rocm_build=_bool(obj, "is_rocm_build", "tensorflow.build"),
        cuda_compute_capabilities=(
            None if caps is None else _str_list(caps, "tensorflow.build.cuda_compute_capabilities")
        ),
    )


def _tensorflow(value: object) -> TensorFlowInfo:
    obj = _obj(value, "tensorflow")
    gpus = obj.get("gpus")
    build = obj.get("build")
    seconds = obj.get("seconds")
    return TensorFlowInfo(
        version=_str(obj, "version", "tensorflow"),
        import_error=_nullable(obj, "import_error", lambda v: str(v)),
        build=None if build is None else _build(build),
        gpus=None if gpus is None else _gpu_names(gpus),
        file=_str(obj, "file", "tensorflow"),
        exit=_str(obj, "exit", "tensorflow"),
        seconds=None
        if seconds is None
        else float(_want("tensorflow.seconds", seconds, (int, float), "a number")),
    )


def _gpu_names(value: object) -> tuple[str, ...]:
    items = _want("tensorflow.gpus", value, (list,), "a list")
    names = []
    for i, item in enumerate(items):
        if isinstance(item, dict):  # {"name": "/physical_device:GPU:0", "device_type": "GPU"}
            names.append(str(item.get("name", f"GPU:{i}")))
        else:
            names.append(str(_want(f"tensorflow.gpus[{i}]", item, (str,), "a string")))
    return tuple(names)


def _log(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.splitlines()
    lines = _want("log", value, (list,), "a list of lines")
    out = []
    for i, line in enumerate(lines[:MAX_LOG_LINES]):
        out.append(str(_want(f"log[{i}]", line, (str,), "a string")))
    return tuple(out)


def _optional_map(value: object, where: str) -> dict[str, str | None]:
    """An object of strings where null means "unsets it"."""
    obj = _obj(value, where)
    return {
        str(k): None if v is None else str(_want(f"{where}.{k}", v, (str,), "a string or null"))
        for k, v in obj.items()
    }


def _entry_points(value: object) -> tuple[EntryPointState, ...]:
    items = _want("entry_points", value, (list,), "a list")
    out = []
    for i, item in enumerate(items):
        where = f"entry_points[{i}]"
        obj = _obj(item, where)
        gpus = obj.get("gpus")
        out.append(
            EntryPointState(
                kind=_str(obj, "kind", where) or "unknown",
                name=_str(obj, "name", where) or "",
                source=_str(obj, "source", where),
                python=_str(obj, "python", where),
                adds=frozen_map(_optional_map(obj.get("adds", {}), f"{where}.adds")),
                values=frozen_map(_string_map(obj.get("values", {}), f"{where}.values")),
                usable=_bool(obj, "usable", where),
                gpus=None if gpus is None else _str_list(gpus, f"{where}.gpus"),
                error=_str(obj, "error", where),
            )
        )
    return tuple(out)


def _provenance(value: object) -> Provenance:
    obj = _obj(value, "provenance")
    origins: dict[str, tuple[Origin, ...]] = {}
    for var, items in _obj(obj.get("origins", {}), "provenance.origins").items():
        where = f"provenance.origins.{var}"
        found = []
        for i, item in enumerate(_want(where, items, (list,), "a list")):
            o = _obj(item, f"{where}[{i}]")
            found.append(
                Origin(
                    file=_str(o, "file", f"{where}[{i}]") or "",
                    line=_int(o, "line", f"{where}[{i}]"),
                    text=_str(o, "text", f"{where}[{i}]") or "",
                    kind=_str(o, "kind", f"{where}[{i}]") or "",
                )
            )
        origins[str(var)] = tuple(found)
    searched = obj.get("searched", [])
    return Provenance(frozen_map(origins), _str_list(searched, "provenance.searched"))


def parse_snapshot_text(text: str | bytes, *, name: str = "snapshot") -> Snapshot:
    """Parse a ``tffix.snapshot/1`` document; raise ``InputError`` naming what is wrong."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise InputError(
            f"{name} is {len(text) // (1024 * 1024)} MiB; a snapshot is at most "
            f"{MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB"
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{name} is not UTF-8 text (byte {exc.start})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{name} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise InputError(f"{name} is nested too deeply to be a snapshot") from exc
    return parse_snapshot(data, name=name)


def parse_snapshot(data: object, *, name: str = "snapshot") -> Snapshot:
    """Build a ``Snapshot`` from a decoded JSON document."""
    if not isinstance(data, dict):
        raise InputError(f"{name} must be a JSON object, not {_type_name(data)}")
    schema = data.get("schema", SNAPSHOT_SCHEMA)  # reading never requires a field
    if schema != SNAPSHOT_SCHEMA:
        raise InputError(f"{name} has schema {schema!r}; expected {SNAPSHOT_SCHEMA!r}")
    driver = _nullable(data, "driver", _driver)
    tensorflow = _nullable(data, "tensorflow", _tensorflow)
    packages = data.get("packages")
    gpus = data.get("gpus")
    return Snapshot(
        platform=_platform(data.get("platform", {})),
        python=_python(data.get("python", {})),
        packages=None
        if packages is None
        else frozen_map(_canonical(_string_map(packages, "packages"))),
        env=frozen_map(_string_map(data.get("env", {}), "env")),
        driver=driver,
        gpus=None if gpus is None else _gpus(gpus),
        libraries=frozen_map(_libraries(data.get("libraries", {}))),
        tensorflow=tensorflow,
        log=_log(data.get("log", [])),
        extra=frozen_map(_obj(data.get("extra", {}), "extra")),
        unknown=frozen_map(_string_map(data.get("unknown", {}), "unknown")),
        entry_points=None
        if data.get("entry_points") is None
        else _entry_points(data["entry_points"]),
        provenance=None if data.get("provenance") is None else _provenance(data["provenance"]),
    )


def _canonical(packages: Mapping[str, str]) -> dict[str, str]:
    from tffix.pkgname import canonicalize_name

    return {canonicalize_name(k): v for k, v in packages.items()}


# --------------------------------------------------------------------------- writing


def _drop_unknown(obj: dict[str, Any]) -> dict[str, Any]:
    """Leave out UNKNOWN values (absent = unknown) and None where None carries no meaning."""
    return {k: v for k, v in obj.items() if v is not UNKNOWN}


def _fields(obj: object, keep_none: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in obj.__slots__:  # type: ignore[attr-defined]
        value = getattr(obj, name)
        if value is UNKNOWN or (value is None and name not in keep_none) or value == ():
            continue
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def snapshot_to_dict(snap: Snapshot) -> dict[str, Any]:
    """The ``tffix.snapshot/1`` document for *snap*."""
    doc: dict[str, Any] = {"schema": SNAPSHOT_SCHEMA}
    doc["platform"] = _fields(snap.platform, keep_none=("container", "scheduler"))
    doc["python"] = _fields(snap.python, keep_none=("venv",))
    if snap.packages is not None:
        doc["packages"] = dict(snap.packages)
    doc["env"] = dict(snap.env)
    if snap.driver is not UNKNOWN:
        doc["driver"] = None if snap.driver is None else _fields(snap.driver)
    if snap.gpus is not None:
        doc["gpus"] = [_fields(g) for g in snap.gpus]
    doc["libraries"] = {k: _fields(v, keep_none=("path",)) for k, v in snap.libraries.items()}
    if snap.tensorflow is not UNKNOWN:
        tf = snap.tensorflow
        if tf is None:
            doc["tensorflow"] = None
        else:
            tf_doc = _fields(tf, keep_none=("import_error",))
            if tf.build is not None:
                tf_doc["build"] = _fields(tf.build)
            if tf.gpus is not None:
                tf_doc["gpus"] = list(tf.gpus)
            doc["tensorflow"] = tf_doc
    doc["log"] = list(snap.log)
    if snap.extra:
        doc["extra"] = dict(snap.extra)
    if snap.unknown:
        doc["unknown"] = dict(snap.unknown)
    if snap.entry_points is not None:
        doc["entry_points"] = [
            {**_fields(e, keep_none=("usable",)), "adds": dict(e.adds), "values": dict(e.values)}
            for e in snap.entry_points
        ]
    if snap.provenance is not None:
        doc["provenance"] = {
            "origins": {
                var: [_fields(o, keep_none=("line",)) for o in found]
                for var, found in snap.provenance.origins.items()
            },
            "searched": list(snap.provenance.searched),
        }
    return _drop_unknown(doc)


def snapshot_to_json(
    snap: Snapshot, *, hide_identity: tuple[str | None, str | None] | None = None
) -> str:
    """Serialise *snap* as indented JSON text (deterministic key order), secrets withheld.

    The snapshot is the document users share, so values that look like secrets never reach
    it (``tffix.redact``). *hide_identity* (home folder, user name) hides those too.
    """
    text: Callable[[str], str] = redact.redact_text
    if hide_identity is not None:
        home, user = hide_identity
        text = functools.partial(_redact_both, home=home, user=user)
    plain = json.loads(json.dumps(snapshot_to_dict(snap), default=_json_default))
    return json.dumps(redact.redact_tree(plain, text=text), indent=2, sort_keys=False) + "\n"


def _redact_both(value: str, *, home: str | None, user: str | None) -> str:
    return redact.redact_paths(redact.redact_text(value), home=home, user=user)


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    """One finding as the diagnosis document says it."""
    out: dict[str, Any] = {
        "id": finding.id,
        "severity": str(finding.severity),
        "fix": str(finding.fix),
        "title": finding.title,
        "evidence": list(finding.evidence),
    }
    if finding.detail:
        out["detail"] = finding.detail
    if finding.blocks:
        out["blocks"] = list(finding.blocks)
    if finding.location:
        out["location"] = finding.location
    return out


def step_to_dict(number: int, step: PlanStep) -> dict[str, Any]:
    """One plan step, with exactly the fields its kind needs."""
    out: dict[str, Any] = {"step": number, "kind": str(step.kind)}
    if step.requirements:
        out["requirements"] = list(step.requirements)
    if step.packages:
        out["packages"] = list(step.packages)
    if step.variable is not None:
        out["variable"] = step.variable
    if step.value is not None:
        out["value"] = step.value
    if step.entry is not None:
        out["entry"] = step.entry
    if step.kind == StepKind.ENV_PATH_PREPEND:
        out["entries"] = list(step.entries) or [step.entry]
    if step.commands:
        out["commands"] = list(step.commands)
    for name in ("op", "path", "line", "before", "after"):
        if getattr(step, name) is not None:
            out[name] = getattr(step, name)
    if step.preload:
        out["preload"] = list(step.preload)
    out["summary"] = step.summary
    out["resolves"] = list(step.resolves)
    out["safety"] = str(step.safety)
    if step.needs:
        out["needs"] = list(step.needs)
    return out


def gpu_use_to_dict(use: GpuUse) -> dict[str, Any]:
    """Listed and usable as separate facts (null: not observed)."""
    return {
        "listed": use.listed,
        "usable": use.usable,
        "op": use.op,
        "cudnn": use.cudnn,
        "xla": use.xla,
        "why": use.why,
    }


def diagnosis_to_dict(diag: Diagnosis) -> dict[str, Any]:
    """The ``tffix.diagnosis/1`` document for *diag*."""
    doc = {
        "schema": DIAGNOSIS_SCHEMA,
        "gpu_visible": diag.gpu_visible,
        "gpu": gpu_use_to_dict(diag.gpu_use or GpuUse(listed=diag.gpu_visible)),
        "findings": [finding_to_dict(f) for f in diag.findings],
        "plan": [step_to_dict(i, s) for i, s in enumerate(diag.plan, start=1)],
    }
    if diag.entry_points is not None:
        doc["entry_points"] = [
            {
                "kind": e.kind,
                "name": e.name,
                **({"source": e.source} if e.source else {}),
                "usable": e.usable,
                **({"error": e.error} if e.error else {}),
            }
            for e in diag.entry_points
        ]
    return dict(redact.redact_tree(doc))  # findings quote log lines and variables
