#!/usr/bin/env python3
"""Regenerate ``rules/matrix.toml`` (the TensorFlow release matrix) from the real package index.

What it asks the index, per release, with pip's own resolver (metadata only, never whole
wheels, thanks to ``--use-feature=fast-deps``):

* ``pip index versions tensorflow``: which releases exist;
* per Python version, ``pip install --dry-run --no-deps ... tensorflow==V``: whether a Linux
  x86_64 wheel exists for that Python (the ``python`` list);
* once per release, ``pip install --dry-run --report ... 'tensorflow[and-cuda]==V'``: the wheel
  METADATA (``Requires-Python``, the ``and-cuda`` Requires-Dist exactly as published, the wheel's
  glibc tag) and whether the extra resolves at all (2.15.0's TensorRT pins do not).

``build_info`` values (CUDA, cuDNN, compute capabilities) are not in the metadata; they come from
``BUILD_INFO`` below, a small hand-kept table (read out of the wheels' ``build_info.py``), which a
test cross-checks against the shared reference matrix.

Releases the run could not query (time, network) are filled from the reference matrix
(``--reference``); every release says in its ``source`` table which values were measured and
which were read. The raw pip reports used are recorded (trimmed to the fields read here) under
``fixtures/index/`` so that the parsing is tested offline.

Usage::

    python scripts/gen_matrix.py                       # query everything (slow: minutes)
    python scripts/gen_matrix.py --releases 2.18.1 --reference ../shared/reference/matrix.json
    python scripts/gen_matrix.py --offline             # rebuild from fixtures/index only
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    from packaging.requirements import Requirement
except ImportError:  # pip's own copy, when run with a bare interpreter that has pip
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "fixtures" / "index"
OUTPUT = ROOT / "rules" / "matrix.toml"

FIRST_RELEASE = (2, 10)
"""2.12 onwards is what tffix installs; 2.10/2.11 are kept for Windows and legacy diagnosis."""

PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
PLATFORMS = (
    "manylinux_2_39_x86_64",
    "manylinux_2_35_x86_64",
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)

# (cuda, cudnn, compute capabilities) per release line, as tf.sysconfig.get_build_info() of
# the Linux x86_64 wheels says (cuDNN as the docs' tested-build row gives it, since build_info
# only carries the major). Keep in step with https://www.tensorflow.org/install/source#gpu.
_ARCH_OLD = ("sm_35", "sm_50", "sm_60", "sm_70", "sm_75", "compute_80")
_ARCH_215 = ("sm_50", "sm_60", "sm_70", "sm_75", "compute_80")
_ARCH_216 = ("sm_50", "sm_60", "sm_70", "sm_80", "compute_90")
_ARCH_217 = ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90")
BUILD_INFO: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "2.10": ("11.2", "8.1", _ARCH_OLD),
    "2.11": ("11.2", "8.1", _ARCH_OLD),
    "2.12": ("11.8", "8.6", _ARCH_OLD),
    "2.13": ("11.8", "8.6", _ARCH_OLD),
    "2.14": ("11.8", "8.7", _ARCH_OLD),
    "2.15": ("12.2", "8.9", _ARCH_215),
    "2.16": ("12.3", "8.9", _ARCH_216),
    "2.17": ("12.3", "8.9", _ARCH_217),
    "2.18": ("12.5", "9.3", _ARCH_217),
    "2.19": ("12.5", "9.3", _ARCH_217),
    "2.20": ("12.5", "9.3", _ARCH_217),
    "2.21": ("12.5", "9.3", _ARCH_217),
}

_RELEASE_RE = re.compile(r"^\d+\.\d+\.\d+(\.post\d+)?$")
_EXTRA_RE = re.compile(r"""\s*;\s*extra\s*==\s*["']and-cuda["']\s*$""")
_GLIBC_RE = re.compile(r"manylinux_(\d+)_(\d+)_x86_64")


# --------------------------------------------------------------------------- pure parsing


def parse_index_versions(text: str) -> tuple[str, ...]:
    """The final releases in ``pip index versions`` output, oldest first, from FIRST_RELEASE."""
    match = re.search(r"Available versions:\s*(.+)", text)
    if not match:
        raise ValueError("no 'Available versions:' line in pip index output")
    out = []
    for item in match.group(1).split(","):
        version = item.strip()
        if not _RELEASE_RE.match(version):
            continue  # pre-releases and dev builds are not in the matrix
        major, minor = (int(p) for p in version.split(".")[:2])
        if (major, minor) >= FIRST_RELEASE:
            out.append(version)
    return tuple(sorted(out, key=_version_key))


def _version_key(version: str) -> tuple[int, ...]:
    parts = version.replace(".post", ".").split(".")
    nums = [int(p) for p in parts]
    return (*nums[:3], nums[3] if len(nums) > 3 else -1)


def trim_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """Keep only what the generator reads from a ``pip install --report`` document."""
    items = []
    for item in report.get("install", []):
        meta = item.get("metadata", {})
        entry = {"name": meta.get("name"), "version": meta.get("version")}
        if str(meta.get("name", "")).lower() == "tensorflow":
            entry.update(
                requires_python=meta.get("requires_python"),
                requires_dist=meta.get("requires_dist", []),
                provides_extra=meta.get("provides_extra", []),
                url=item.get("download_info", {}).get("url", ""),
                requested=item.get("requested", False),
            )
        items.append(entry)
    env = report.get("environment", {})
    return {
        "pip_version": report.get("pip_version"),
        "python_version": env.get("python_version"),
        "install": items,
    }


def and_cuda_requirements(requires_dist: Iterable[str]) -> tuple[str, ...]:
    """The ``and-cuda`` Requires-Dist entries, marker dropped, in one spelling.

    METADATA spells them ``nvidia-cudnn-cu12 ==9.3.0.75`` or (2.14) ``nvidia-cudnn-cu11
    (==8.7.0.84)``; both become ``nvidia-cudnn-cu12==9.3.0.75`` (specifiers sorted, as
    ``packaging`` writes a specifier set)."""
    out = []
    for line in requires_dist:
        if _EXTRA_RE.search(line):
            req = Requirement(_EXTRA_RE.sub("", line))
            out.append(f"{req.name}{req.specifier}")
    return tuple(sorted(out))


def glibc_tag(url: str) -> str | None:
    """``manylinux_2_17`` from a wheel URL (the oldest glibc tag it names)."""
    tags = sorted((int(a), int(b)) for a, b in _GLIBC_RE.findall(url))
    if tags:
        return f"manylinux_{tags[0][0]}_{tags[0][1]}"
    if "manylinux2014" in url:
        return "manylinux_2_17"
    return None


def tensorflow_item(report: Mapping[str, Any]) -> Mapping[str, Any]:
    """The tensorflow entry of a trimmed report."""
    for item in report["install"]:
        if str(item["name"]).lower() == "tensorflow":
            return item  # type: ignore[no-any-return]
    raise ValueError("report has no tensorflow entry")


def release_from_reports(
    version: str,
    resolved: Mapping[str, Any] | None,
    pythons: Sequence[str],
    resolve_error: str | None,
) -> dict[str, Any]:
    """One release's matrix entry from its measured pip reports."""
    line = ".".join(version.split(".")[:2])
    cuda, cudnn, caps = BUILD_INFO[line]
    entry: dict[str, Any] = {
        "python": list(pythons),
        "cuda": cuda,
        "cudnn": cudnn,
        "compute_capabilities": list(caps),
    }
    source = {"python": "measured", "build_info": "table"}
    if resolved is not None:
        tf = tensorflow_item(resolved)
        entry["requires_python"] = tf["requires_python"] or ""
        entry["glibc"] = glibc_tag(tf["url"]) or ""
        entry["and_cuda"] = list(and_cuda_requirements(tf["requires_dist"]))
        entry["and_cuda_resolves"] = True
        source.update(requires_python="measured", glibc="measured", and_cuda="measured")
    if resolve_error is not None:
        entry["and_cuda_resolves"] = False
        entry["and_cuda_error"] = resolve_error
    entry["source"] = source
    return entry


def release_from_reference(version: str, ref: Mapping[str, Any]) -> dict[str, Any]:
    """One release's entry read from the shared reference matrix (not measured by this run)."""
    line = ".".join(version.split(".")[:2])
    cuda, cudnn, caps = BUILD_INFO[line]
    linux = ref.get("wheels", {}).get("linux_x86_64", {})
    tags = " ".join(linux.get("platform_tags", []))
    pins = ref.get("and_cuda_pins", {})
    and_cuda = []
    for name, spec in sorted(pins.items()):
        spec = spec if isinstance(spec, str) else ",".join(spec)
        and_cuda.append(f"{name}{spec}")
    unresolvable = version in {"2.15.0"}
    entry: dict[str, Any] = {
        "python": list(linux.get("python", ref.get("python", []))),
        "requires_python": ref.get("requires_python", ""),
        "glibc": glibc_tag(tags.replace(".", " ")) or "",
        "cuda": cuda,
        "cudnn": cudnn,
        "compute_capabilities": list(caps),
        "and_cuda": and_cuda,
        "and_cuda_resolves": bool(and_cuda) and not unresolvable,
        "source": {
            "python": "read:reference",
            "requires_python": "read:reference",
            "glibc": "read:reference",
            "and_cuda": "read:reference",
            "build_info": "table",
        },
    }
    if unresolvable:
        entry["and_cuda_error"] = "No matching distribution found for tensorrt-libs==8.6.1"
    return entry


def pip_error_line(stderr: str) -> str:
    """The line of pip's output that says why a resolve failed."""
    for line in stderr.splitlines():
        if line.startswith("ERROR: No matching distribution") or "ResolutionImpossible" in line:
            return line.removeprefix("ERROR: ").strip()
    errors = [line for line in stderr.splitlines() if line.startswith("ERROR:")]
    return errors[-1].removeprefix("ERROR: ").strip() if errors else "pip failed"


# --------------------------------------------------------------------------- TOML output


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        if not value:
            return "[]"
        if len(value) > 4:
            inner = "".join(f"  {_toml_value(v)},\n" for v in value)
            return "[\n" + inner + "]"
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def render_toml(releases: Mapping[str, Mapping[str, Any]], *, generated: str) -> str:
    """The text of rules/matrix.toml."""
    lines = [
        "# The TensorFlow release matrix. GENERATED by scripts/gen_matrix.py: do not edit by hand;",
        "# rerun the script when TensorFlow releases. Each release's `source` says which values",
        "# were measured from the package index and which were read from the reference matrix.",
        f"# generated = {generated}",
        "",
    ]
    for version in sorted(releases, key=_version_key):
        lines.append(f'[release."{version}"]')
        for key, value in releases[version].items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the index


class Pip:
    """Runs the pip of *python* against the real index (the only network code here)."""

    def __init__(self, python: str) -> None:
        self.python = python

    def _run(self, args: Sequence[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.python, "-m", "pip", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def versions(self) -> str:
        return self._run(["index", "versions", "tensorflow"]).stdout

    def dry_run(
        self, requirement: str, python: str, *, deps: bool
    ) -> tuple[dict[str, Any] | None, str]:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "r.json"
            args = [
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--report",
                str(report),
                "--use-feature=fast-deps",
                "--only-binary=:all:",
                "--python-version",
                python,
                "--target",
                str(Path(tmp) / "t"),
            ]
            for plat in PLATFORMS:
                args += ["--platform", plat]
            if not deps:
                args.append("--no-deps")
            done = self._run([*args, requirement])
            if done.returncode != 0 or not report.exists():
                return None, pip_error_line(done.stderr)
            return json.loads(report.read_text(encoding="utf-8")), ""


def measure(pip: Pip, version: str, record: Path | None) -> dict[str, Any]:
    """Query the index for one release and return its matrix entry."""
    pythons = []
    for py in PYTHONS:
        report, _ = pip.dry_run(f"tensorflow=={version}", py, deps=False)
        if report is not None:
            pythons.append(py)
    if not pythons:
        raise RuntimeError(f"no Linux x86_64 wheel of tensorflow {version} for any Python")
    # Resolve the extra for the newest Python first; if it does not resolve there (2.14's
    # tensorrt pin has wheels for Python <= 3.10 only), try the oldest one too.
    report, error, target_py = None, "", pythons[-1]
    for target_py in dict.fromkeys([pythons[-1], pythons[0]]):
        report, error = pip.dry_run(f"tensorflow[and-cuda]=={version}", target_py, deps=True)
        if report is not None:
            break
    trimmed = None if report is None else trim_report(report)
    if trimmed is None:
        # The extra does not resolve: still read the metadata of the wheel itself.
        bare, _ = pip.dry_run(f"tensorflow=={version}", target_py, deps=False)
        trimmed_bare = None if bare is None else trim_report(bare)
    else:
        trimmed_bare = None
    if record is not None:
        record.mkdir(parents=True, exist_ok=True)
        doc = {
            "release": version,
            "pythons": pythons,
            "resolved_python": target_py,
            "resolved": trimmed,
            "bare": trimmed_bare,
            "error": error or None,
        }
        (record / f"tensorflow-{version}.json").write_text(
            json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
    return entry_from_record(
        {
            "release": version,
            "resolved_python": target_py,
            "pythons": pythons,
            "resolved": trimmed,
            "bare": trimmed_bare,
            "error": error or None,
        }
    )


def entry_from_record(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A release entry from one recorded query (what ``measure`` wrote under fixtures/index)."""
    version = doc["release"]
    resolved = doc.get("resolved")
    error = doc.get("error")
    if resolved is None and doc.get("bare") is not None:
        entry = release_from_reports(version, doc["bare"], doc["pythons"], error)
        entry["and_cuda_resolves"] = False
        return entry
    return release_from_reports(version, resolved, doc["pythons"], error)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter whose pip to use")
    parser.add_argument("--releases", help="comma-separated releases to measure (default: all)")
    parser.add_argument("--reference", type=Path, help="reference matrix.json to fill the rest")
    parser.add_argument("--offline", action="store_true", help="only use fixtures/index")
    parser.add_argument("--budget", type=float, default=3600, help="seconds to spend querying")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    opts = parser.parse_args(argv)

    pip = Pip(opts.python)
    reference = {}
    if opts.reference:
        reference = json.loads(opts.reference.read_text(encoding="utf-8"))["tensorflow"]
    if opts.offline:
        candidates = _recorded_versions() | set(reference)
        versions = tuple(sorted((v for v in candidates if _RELEASE_RE.match(v)), key=_version_key))
    else:
        versions = parse_index_versions(pip.versions())
        # `pip index versions` lists only releases with a wheel for pip's own Python: add
        # the reference's older releases so that they are at least read.
        extra = {v for v in reference if _RELEASE_RE.match(v) and _line_known(v)}
        versions = tuple(sorted(set(versions) | extra, key=_version_key))
    versions = tuple(v for v in versions if _RELEASE_RE.match(v) and _line_known(v))
    wanted = set(opts.releases.split(",")) if opts.releases else set(versions)

    releases: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + opts.budget
    for version in versions:
        recorded = RECORDED / f"tensorflow-{version}.json"
        if version in wanted and not opts.offline and time.monotonic() < deadline:
            print(f"querying {version} …", file=sys.stderr)
            releases[version] = measure(pip, version, RECORDED)
        elif recorded.exists():
            releases[version] = entry_from_record(json.loads(recorded.read_text("utf-8")))
        elif version in reference:
            releases[version] = release_from_reference(version, reference[version])
        else:
            print(f"skipping {version}: not measured and not in the reference", file=sys.stderr)
    opts.output.write_text(
        render_toml(releases, generated=time.strftime("%Y-%m-%d")), encoding="utf-8"
    )
    print(f"wrote {opts.output} ({len(releases)} releases)", file=sys.stderr)
    return 0


def _recorded_versions() -> set[str]:
    return {p.stem.removeprefix("tensorflow-") for p in RECORDED.glob("tensorflow-*.json")}


def _line_known(version: str) -> bool:
    return ".".join(version.split(".")[:2]) in BUILD_INFO


if __name__ == "__main__":
    raise SystemExit(main())
