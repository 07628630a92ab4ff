"""The project's non-Python files that decide whether TensorFlow gets a GPU: requirement
lists naming ``tensorflow-gpu``, Dockerfiles that hide the GPU or build on an image without
CUDA, compose files that reserve no GPU, and ``.env`` files that mask devices.

Pure: text in, findings out, each with the line and the edit to make. Line-based on purpose
(no YAML or TOML parser is needed to find these lines, and a file that does not parse must
still be read); a recogniser fires only on what the line itself says.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from tffix.model import Finding, FixSide, Severity

MASKED = "cuda-visible-devices-masked"
TF_GPU = "code-tensorflow-gpu-requirement"
IMAGE = "code-docker-image-without-cuda"
COMPOSE = "code-compose-no-gpu-reservation"
VISIBLE = "CUDA_VISIBLE_DEVICES"

REQUIREMENTS = "requirements"
PYPROJECT = "pyproject"
SETUP_CFG = "setup.cfg"
DOCKERFILE = "dockerfile"
COMPOSE_FILE = "compose"
DOTENV = "dotenv"

_KINDS: tuple[tuple[str, str], ...] = (
    ("requirements*.txt", REQUIREMENTS),
    ("*requirements.txt", REQUIREMENTS),
    ("constraints*.txt", REQUIREMENTS),
    ("pyproject.toml", PYPROJECT),
    ("setup.cfg", SETUP_CFG),
    ("Dockerfile", DOCKERFILE),
    ("Dockerfile.*", DOCKERFILE),
    ("*.Dockerfile", DOCKERFILE),
    ("*.dockerfile", DOCKERFILE),
    ("Containerfile", DOCKERFILE),
    ("docker-compose*.yml", COMPOSE_FILE),
    ("docker-compose*.yaml", COMPOSE_FILE),
    ("compose*.yml", COMPOSE_FILE),
    ("compose*.yaml", COMPOSE_FILE),
    (".env", DOTENV),
    (".env.*", DOTENV),
)
STUB_FROM = "2.12.0"
"""``tensorflow-gpu`` from 2.12 on is a stub whose install fails on purpose."""
_LAST_REAL = "2.11"
_STUB_ERA = ("2.12.0", "2.12.1", "2.13.0", "2.14.0", "2.15.0", "2.16.1", "2.18.0", "2.20.0", "3.0")
"""Versions a specifier may let pip pick from the stub era (any one allowed: pip may pick it)."""
_MAX_SNIPPET = 100

_TF_GPU_RE = re.compile(r"(?<![\w.\-\[])tensorflow[-_.]gpu(?![\w\-])(?P<rest>[^\s\"',;#\]]*)", re.I)
_ENV_PAIR_RE = re.compile(r"""(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>"[^"]*"|'[^']*'|\S*)""")
_BARE_TF_RE = re.compile(r"(?<![\w.\-\[/])tensorflow(?![\w\-\[])(?:[=<>~!]=?[\w.*]+)?")
_GPU_IMAGE_RE = re.compile(r"cuda|nvidia|nvcr\.io|-gpu|gpu-|rocm", re.I)
_GPU_REQUEST_RE = re.compile(
    r"capabilities\s*:[^\n]*gpu|runtime\s*:\s*nvidia|^\s*gpus\s*:|device_requests|"
    r"NVIDIA_VISIBLE_DEVICES",
    re.I | re.M,
)


def kind_of(name: str) -> str | None:
    """Which recogniser reads a file called *name* (None: not a project file of interest)."""
    for pattern, kind in _KINDS:
        if fnmatch.fnmatchcase(name, pattern):
            return kind
    return None


@dataclass
class _Out:
    display: str
    severities: dict[str, Severity]
    lines: Sequence[str]
    found: list[Finding] = field(default_factory=list)

    def add(
        self,
        cause: str,
        lineno: int,
        title: str,
        why: str,
        edit: str,
        *,
        severity: Severity | None = None,
    ) -> None:
        snippet = self.lines[lineno - 1].strip() if 0 < lineno <= len(self.lines) else ""
        if len(snippet) > _MAX_SNIPPET:
            snippet = snippet[: _MAX_SNIPPET - 1] + "…"
        location = f"{self.display}:{lineno}"
        fix = f"edit {self.display} line {lineno}: " + edit.replace("{code}", f"`{snippet}`")
        self.found.append(
            Finding(
                id=cause,
                severity=severity or self.severities.get(cause, Severity.ERROR),
                fix=FixSide.OUTSIDE,
                title=title,
                evidence=(f"code:{location}",),
                detail=f"code: {snippet}\nwhy: {why}\nfix: {fix}",
                location=location,
            )
        )


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _hides(value: str, judge: Callable[[str], str | None]) -> str | None:
    return judge(_unquote(value))


# --------------------------------------------------------------------------- requirements


def _specifier(rest: str) -> SpecifierSet | None:
    rest = rest.strip().lstrip("[").strip()
    if not rest:
        return SpecifierSet()
    try:
        return SpecifierSet(rest.split(";")[0].strip().strip("()"))
    except InvalidSpecifier:
        return None


def _requirement_lines(out: _Out, comment: str) -> None:
    for lineno, line in enumerate(out.lines, start=1):
        text = (
            line.split(comment, 1)[0]
            if comment in line and not line.lstrip().startswith("-")
            else line
        )
        if line.lstrip().startswith(comment):
            continue
        hit = _TF_GPU_RE.search(text)
        if hit is None:
            continue
        spec = _specifier(hit.group("rest"))
        written = hit.group(0)
        if spec is None:
            continue
        if any(spec.contains(v, prereleases=True) for v in _STUB_ERA):
            out.add(
                TF_GPU,
                lineno,
                f"{written} names the removed tensorflow-gpu package: from {STUB_FROM} it is a "
                "stub whose install fails",
                f"tensorflow-gpu was the GPU package up to {_LAST_REAL}; from 2.12 on pip "
                "installs a stub that stops with 'tensorflow-gpu has been removed'. The GPU "
                "install is now tensorflow[and-cuda], which also brings the CUDA libraries",
                f"in {{code}}, replace {written} with 'tensorflow[and-cuda]' (keep a version "
                "pin of 2.14 or later: [and-cuda] starts there)",
            )
        else:
            out.add(
                TF_GPU,
                lineno,
                f"{written} pins the old tensorflow-gpu package (up to {_LAST_REAL}), which "
                "stops at 2.11",
                "up to 2.11, the tensorflow package is the same GPU build under the name that "
                "continues; tensorflow-gpu has no release after 2.11 and needs a system CUDA 11",
                f"in {{code}}, replace {written} with tensorflow{hit.group('rest')} (and, to "
                "move on, tensorflow[and-cuda] 2.14 or later)",
                severity=Severity.WARNING,
            )


# --------------------------------------------------------------------------- Dockerfile


def _instructions(lines: Sequence[str]) -> Iterator[tuple[int, str, str]]:
    """(first line number, INSTRUCTION, arguments) with ``\\`` continuations joined."""
    start, parts = 0, list[str]()
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not parts and (not stripped or stripped.startswith("#")):
            continue
        if not parts:
            start = lineno
        if stripped.endswith("\\"):
            parts.append(stripped[:-1])
            continue
        parts.append(stripped)
        text = " ".join(parts)
        parts = []
        word, _, args = text.partition(" ")
        yield start, word.upper(), args.strip()


def _env_values(args: str) -> Iterator[tuple[str, str]]:
    pairs = list(_ENV_PAIR_RE.finditer(args))
    if pairs:
        for pair in pairs:
            yield pair.group("key"), pair.group("value")
        return
    key, _, value = args.partition(" ")  # the old form: ENV KEY value
    if key:
        yield key, value.strip()


def _line_naming(lines: Sequence[str], start: int, word: str) -> int:
    """The line of a continued instruction (from *start*) that names *word*."""
    for lineno in range(start, min(len(lines), start + 200) + 1):
        if word in lines[lineno - 1]:
            return lineno
        if not lines[lineno - 1].rstrip().endswith("\\"):
            break
    return start


def _image_parts(args: str) -> tuple[str, str | None]:
    image = args.split()[0] if args.split() else ""
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    return (name, tag or None) if name else (image, None)


def _env_instruction(
    out: _Out, judge: Callable[[str], str | None], lineno: int, word: str, args: str
) -> None:
    for key, value in _env_values(args):
        why = _hides(value, judge) if key == VISIBLE else None
        if why:
            out.add(
                MASKED,
                _line_naming(out.lines, lineno, VISIBLE),
                f"{word} {VISIBLE}={_unquote(value)!r} hides every GPU from TensorFlow in "
                "this image",
                f"{why}; every container of this image starts with it",
                f"in {{code}}, delete the {VISIBLE} setting (choose GPUs when the container "
                "starts: docker run --gpus device=0)",
            )


def _dockerfile(out: _Out, judge: Callable[[str], str | None]) -> None:
    base: tuple[int, str, str | None] | None = None
    bare_installs: list[tuple[int, str]] = []
    for lineno, word, args in _instructions(out.lines):
        if word == "FROM":
            name, tag = _image_parts(args)
            base, bare_installs = (lineno, name, tag), []
        elif word in ("ENV", "ARG"):
            _env_instruction(out, judge, lineno, word, args)
        elif word == "RUN" and "install" in args:
            hit = _BARE_TF_RE.search(args)
            if hit and "pip" in args:
                bare_installs.append((lineno, hit.group(0)))
    if base is None:
        return
    lineno, name, tag = base
    if name.endswith("tensorflow/tensorflow") and "gpu" not in (tag or ""):
        gpu_tag = f"{tag}-gpu" if tag else "latest-gpu"
        out.add(
            IMAGE,
            lineno,
            f"FROM {name}:{tag or 'latest'} is TensorFlow's CPU-only image",
            "TensorFlow's images come in two kinds: the plain tags are CPU-only builds without "
            "CUDA; the -gpu tags carry the CUDA build and its libraries",
            f"in {{code}}, use {name}:{gpu_tag}",
        )
        return
    if _GPU_IMAGE_RE.search(f"{name}:{tag or ''}"):
        return
    for run_line, written in bare_installs:
        out.add(
            IMAGE,
            run_line,
            f"the image ({name}{':' + tag if tag else ''}) has no CUDA, and {written!r} "
            "installs no CUDA libraries either",
            "a base image without CUDA is fine for TensorFlow only when pip brings the CUDA "
            "libraries, which tensorflow[and-cuda] does and plain tensorflow does not",
            f"in {{code}}, install 'tensorflow[and-cuda]' instead of {written} (or build "
            "FROM an nvidia/cuda or tensorflow/tensorflow:*-gpu image)",
        )


# --------------------------------------------------------------------------- compose, .env

_RESERVATION = (
    "deploy: {resources: {reservations: {devices: [{driver: nvidia, count: all, "
    "capabilities: [gpu]}]}}}"
)
_COMPOSE_ENV_RE = re.compile(
    rf"""^\s*-?\s*["']?{VISIBLE}["']?\s*[:=]\s*(?P<value>"[^"]*"|'[^']*'|[^\s#]*)"""
)


def _compose(out: _Out, judge: Callable[[str], str | None]) -> None:
    text = "\n".join(out.lines)
    asks_for_gpu = _GPU_REQUEST_RE.search(text) is not None
    for lineno, line in enumerate(out.lines, start=1):
        if line.lstrip().startswith("#"):
            continue
        env = _COMPOSE_ENV_RE.match(line)
        if env:
            why = _hides(env.group("value"), judge)
            if why:
                out.add(
                    MASKED,
                    lineno,
                    f"the compose file sets {VISIBLE}={_unquote(env.group('value'))!r}, which "
                    "hides every GPU from TensorFlow",
                    f"{why}; the service's containers start with it",
                    f"in {{code}}, delete the {VISIBLE} entry",
                )
        image = re.match(r"^\s*image\s*:\s*[\"']?(?P<image>[^\s\"'#]+)", line)
        if image and not asks_for_gpu and _GPU_IMAGE_RE.search(image.group("image")):
            out.add(
                COMPOSE,
                lineno,
                f"the service using {image.group('image')} reserves no GPU, so its container "
                "gets none",
                "Compose passes a GPU into a container only when the service asks for one "
                "(deploy.resources.reservations.devices with capabilities [gpu], or gpus:); a "
                "CUDA image alone does not",
                f"under this service, add {_RESERVATION}",
            )


def _dotenv(out: _Out, judge: Callable[[str], str | None]) -> None:
    for lineno, line in enumerate(out.lines, start=1):
        stripped = line.strip().removeprefix("export ").strip()
        key, sep, value = stripped.partition("=")
        if not sep or key.strip() != VISIBLE:
            continue
        value = value.split(" #", 1)[0]
        why = _hides(value, judge)
        if why:
            out.add(
                MASKED,
                lineno,
                f".env sets {VISIBLE}={_unquote(value)!r}, which hides every GPU from TensorFlow",
                f"{why}; whatever loads this file (docker compose, python-dotenv, an IDE) "
                "passes it on",
                f"in {{code}}, delete the line (or name the GPUs to use, {VISIBLE}=0)",
            )


def analyze_project_file(
    kind: str,
    text: str,
    display: str,
    *,
    severities: dict[str, Severity],
    judge: Callable[[str], str | None],
) -> tuple[Finding, ...]:
    """The findings in the project file *text* of *kind* (``kind_of``); *judge* returns why a
    ``CUDA_VISIBLE_DEVICES`` value hides every GPU, or None."""
    out = _Out(display, severities, text.splitlines())
    if kind in (REQUIREMENTS, PYPROJECT, SETUP_CFG):
        _requirement_lines(out, "#")
    elif kind == DOCKERFILE:
        _dockerfile(out, judge)
    elif kind == COMPOSE_FILE:
        _compose(out, judge)
    elif kind == DOTENV:
        _dotenv(out, judge)
    return tuple(out.found)
