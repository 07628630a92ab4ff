"""Compound scenarios: every pair of venv-fixable causes, and each cause with a healthy look-alike.

A scenario of the catalog is two layers: what is installed in the venv (``[packages]``) and what
is around it (the machine, system CUDA folders, the user's variables, activate-script edits,
project files). ``combine`` lays one scenario's packages over the other's and joins the rest:
the scenario whose packages differ from the common base (``tensorflow[and-cuda]==2.18.1``) is
installed first, and the other one's own packages follow (its ``then``, or its ``install`` when
that is not the base), so a CPU-only package plus a stray cuDNN wheel, or a tf-nightly over a
TensorFlow with a system CUDA on LD_LIBRARY_PATH, are real states made by real pip.

``check`` runs what a user would and returns a ``Verdict`` with the invariants of a repair:
``tffix --yes`` (``--unsafe`` added only when an unsafe step was held back) ends with the GPU
working or exits 3/4 with the reason; a TensorFlow installed at the start is installed at the
end; a second ``--yes`` changes nothing; ``tffix undo`` repeated until nothing is left restores
``pip freeze --all`` and every activate script byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.sim import SimEnv, load_scenario, make_env, scenario_names

BASE_INSTALL = ["tensorflow[and-cuda]==2.18.1"]
PATH_VARIABLES = ("LD_LIBRARY_PATH", "PATH", "PYTHONPATH")
MAX_UNDO = 8
"""``tffix undo`` calls before giving up on "Nothing to undo" (one per run, and a few more)."""

LOOKALIKE: dict[str, Any] = {
    "name": "healthy-lookalike",
    "cause": "healthy",
    "description": "settings that look like causes and are not: CUDA_VISIBLE_DEVICES=0 naming "
    "the one GPU, and an LD_LIBRARY_PATH folder that holds no CUDA library",
    "env": {"CUDA_VISIBLE_DEVICES": "0", "LD_LIBRARY_PATH": "{root}/opt/tools/lib"},
    "files": {"../../opt/tools/lib/README": "an unrelated library folder\n"},
    "packages": {"install": BASE_INSTALL},
    "healthy": {"fix": "none"},
}
"""A healthy look-alike: combined with a cause, the repair must fix the cause and leave these."""


def representatives() -> dict[str, str]:
    """One venv-fixable scenario per cause (the first by name), cause -> scenario name."""
    out: dict[str, str] = {}
    for name in scenario_names():
        spec = load_scenario(name)
        if spec.get("healthy", {}).get("fix") == "venv":
            out.setdefault(str(spec["cause"]), name)
    return out


def _packages_only_base(spec: Mapping[str, Any]) -> bool:
    packages = spec.get("packages", {})
    return list(packages.get("install", [])) == BASE_INSTALL and not (
        packages.get("then") or packages.get("uninstall") or packages.get("attempt")
    )


def _join_env(first: Mapping[str, str], second: Mapping[str, str]) -> dict[str, str]:
    out = dict(first)
    for key, value in second.items():
        if key in out and key in PATH_VARIABLES and out[key] != value:
            out[key] = f"{out[key]}{os.pathsep}{value}"
        else:
            out.setdefault(key, value)
    return out


def _packages(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """The first's pip runs, then the second's own packages, then the second's ``then`` (each
    its own pip run, as in the scenarios: NumPy 2 over TensorFlow 2.16 is a second run)."""
    a, b = first.get("packages", {}), second.get("packages", {})
    install, then = list(a.get("install", [])), list(a.get("then", []))
    own = list(b.get("install", []))
    if own in (install, BASE_INSTALL):
        own = []
    later = [r for r in b.get("then", []) if not str(b["then"][0]).startswith("-")]
    runs = [r for r in (then, own, later) if r]
    out: dict[str, Any] = {"install": install}
    out.update(zip(("then", "last", "final")[: len(runs)], runs, strict=True))
    uninstall = [*a.get("uninstall", []), *b.get("uninstall", [])]
    if uninstall:
        out["uninstall"] = uninstall
    attempt = a.get("attempt") or b.get("attempt")
    if attempt:
        out["attempt"] = list(attempt)
    return out


def combine(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """One scenario with both *a*'s and *b*'s causes (see the module docstring)."""
    first, second = (b, a) if _packages_only_base(a) and not _packages_only_base(b) else (a, b)
    machine = {**second.get("machine", {}), **first.get("machine", {})}
    edits = [
        *first.get("activate", {}).get("edits", []),
        *second.get("activate", {}).get("edits", []),
    ]
    activated = any(s.get("activate", {}).get("activated") for s in (a, b))
    spec: dict[str, Any] = {
        "name": f"{a['name']}+{b['name']}",
        "cause": f"{a['cause']}+{b['cause']}",
        "description": f"{a.get('description', '')} AND {b.get('description', '')}",
        "machine": machine,
        "system": [*first.get("system", []), *second.get("system", [])],
        "env": _join_env(first.get("env", {}), second.get("env", {})),
        "files": {**second.get("files", {}), **first.get("files", {})},
        "shell": {**second.get("shell", {}), **first.get("shell", {})},
        "packages": _packages(first, second),
        "healthy": {"fix": "venv"},
    }
    if edits or activated:
        spec["activate"] = {"activated": activated, "edits": edits}
    return spec


def combinations() -> list[dict[str, Any]]:
    """Every pair of representatives, then each representative with the look-alike."""
    reps = sorted(representatives().items())
    specs = [load_scenario(name) for _, name in reps]
    out = [combine(specs[i], specs[j]) for i in range(len(specs)) for j in range(i + 1, len(specs))]
    out += [combine(spec, LOOKALIKE) for spec in specs]
    return out


def sample(specs: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """A fixed, spread-out sample (every k-th by name), the same on every run."""
    ordered = sorted(specs, key=lambda s: str(s["name"]))
    if size >= len(ordered):
        return ordered
    step = len(ordered) / size
    return [ordered[int(i * step)] for i in range(size)]


# --------------------------------------------------------------------------- checking


@dataclass
class Verdict:
    """What one compound scenario came to."""

    name: str
    outcome: str = "unknown"
    """``fixed``, ``left`` (exit 3/4 with the reason), ``lost`` or ``unbuildable``."""
    reason: str = ""
    exit_code: int | None = None
    violations: list[str] = field(default_factory=list)
    undo_restored: bool | None = None
    undo_runs: int = 0
    runs_changed: int = 0
    """tffix runs that changed the venv (more than one needs undo to work as a stack)."""
    seconds: float = 0.0


def state(sim: SimEnv) -> tuple[str, dict[str, bytes]]:
    """``pip freeze --all`` and the bytes of every activate script."""
    freeze = sim.pip("freeze", "--all").stdout
    scripts = {p.name: p.read_bytes() for p in sorted((sim.venv / "bin").glob("*ctivate*"))}
    return freeze, scripts


def tensorflow_installed(freeze: str) -> set[str]:
    names = {"tensorflow", "tensorflow-cpu", "tf-nightly", "tensorflow-gpu"}
    return {
        line.split("==")[0].lower().replace("_", "-")
        for line in freeze.splitlines()
        if line.split("==")[0].lower().replace("_", "-") in names
    }


def _doc(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _reason(doc: Mapping[str, Any]) -> str:
    left = [f["id"] for f in doc.get("findings", []) if f.get("status") != "resolved"]
    steps = [f"{s['step']} {s['status']}" for s in doc.get("steps", [])]
    return f"remaining: {', '.join(left) or 'none'}; steps: {', '.join(steps) or 'none'}"


def _first_run(sim: SimEnv, verdict: Verdict) -> tuple[list[str], dict[str, Any]]:
    flags = ["--yes"]
    done = sim.run_tffix(*flags, "--json", timeout=600)
    doc = _doc(done.stdout)
    verdict.runs_changed += bool(doc.get("changed"))
    if done.returncode != 0 and any(s.get("status") == "not offered" for s in doc.get("steps", [])):
        flags.append("--unsafe")
        done = sim.run_tffix(*flags, "--json", timeout=600)
        doc = _doc(done.stdout)
        verdict.runs_changed += bool(doc.get("changed"))
    verdict.exit_code = done.returncode
    if not doc:
        verdict.violations.append(
            f"--yes printed no outcome (exit {done.returncode}): "
            + (done.stderr.strip().splitlines() or ["?"])[-1]
        )
    return flags, doc


def _judge_first(sim: SimEnv, verdict: Verdict, doc: Mapping[str, Any]) -> None:
    code = verdict.exit_code
    if code == 0:
        report = sim.tf_report()
        if report.gpus and "op_error" not in report.data and "dnn_error" not in report.data:
            verdict.outcome = "fixed"
            return
        verdict.violations.append(f"exit 0 but TensorFlow reports {report.gpus}: {report.data}")
    verdict.outcome = "left"
    verdict.reason = f"exit {code}; {_reason(doc)}"
    if code not in (0, 3, 4):
        verdict.violations.append(f"--yes ended with exit {code}, not 0, 3 or 4: {verdict.reason}")


def undo_all(sim: SimEnv, verdict: Verdict) -> None:
    for _ in range(MAX_UNDO):
        done = sim.run_tffix("undo", "--yes") if _undo_takes_yes(sim) else sim.run_tffix("undo")
        if "Nothing to undo" in done.stdout + done.stderr:
            return
        verdict.undo_runs += 1
        if done.returncode != 0:
            verdict.violations.append(
                f"tffix undo exit {done.returncode}: "
                + (done.stderr.strip().splitlines() or ["?"])[-1]
            )
            return
    verdict.violations.append(f"tffix undo still had runs to undo after {MAX_UNDO} calls")


_UNDO_YES: dict[str, bool] = {}


def _undo_takes_yes(sim: SimEnv) -> bool:
    if "yes" not in _UNDO_YES:
        done = sim.run_tffix("undo", "--help")
        _UNDO_YES["yes"] = "--yes" in done.stdout
    return _UNDO_YES["yes"]


def check(spec: Mapping[str, Any], folder: Path, index: Path) -> Verdict:
    """Build *spec* in *folder* and hold the repair to its invariants."""
    import time

    start = time.monotonic()
    verdict = Verdict(str(spec["name"]))
    try:
        sim = make_env(str(spec["name"]), folder, index, spec=spec)
    except RuntimeError as exc:
        verdict.outcome = "unbuildable"
        verdict.reason = str(exc).splitlines()[0]
        return verdict
    original = state(sim)
    had_tf = tensorflow_installed(original[0])
    flags, doc = _first_run(sim, verdict)
    _judge_first(sim, verdict, doc)
    after = state(sim)
    if had_tf and not tensorflow_installed(after[0]):
        verdict.outcome = "lost"
        verdict.violations.append(f"TensorFlow ({', '.join(sorted(had_tf))}) is gone after --yes")
    second = sim.run_tffix(*flags, "--json", timeout=600)
    if _doc(second.stdout).get("changed") or state(sim) != after:
        verdict.violations.append("a second --yes changed the venv")
    undo_all(sim, verdict)
    verdict.undo_restored = state(sim) == original
    if not verdict.undo_restored:
        verdict.violations.append("undo did not restore pip freeze --all and the activate scripts")
    verdict.seconds = time.monotonic() - start
    return verdict


def run_all(
    specs: list[dict[str, Any]],
    base: Path,
    index: Path,
    *,
    workers: int = 2,
    progress: Callable[[Verdict], None] | None = None,
) -> list[Verdict]:
    """Check every spec, *workers* at a time, each in its own folder under *base*."""
    from concurrent.futures import ThreadPoolExecutor

    def one(spec: dict[str, Any]) -> Verdict:
        folder = base / str(spec["name"]).replace("+", "__")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        verdict = check(spec, folder, index)
        if progress is not None:
            progress(verdict)
        if not verdict.violations:
            shutil.rmtree(folder, ignore_errors=True)
        return verdict

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, specs))
