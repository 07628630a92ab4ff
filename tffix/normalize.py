"""Loose facts as people write them -> the values diagnosis works with.

Pure functions over text (and the rules' tables): a GPU name ("5070TI", "RTX2080ti", "4080 RTX",
"Radeon RX 560", "Intel HD Graphics 630") to vendor, family and compute capability; a
TensorFlow release string ("2.18", "2.18.0rc1", "1.15.5+nv22.12", "2.19.0.dev20250208",
"v2.4.1-28-g551d9173703") to a version and an era; the driver and CUDA versions from
``nvidia-smi`` output; package lists from ``pip list``, ``pip freeze`` and ``conda list``.
Nothing here reads the machine; a fact that cannot be read is ``None``, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

from tffix.eras import Era
from tffix.lazyre import Pattern, lazy
from tffix.model import frozen_map
from tffix.pkgname import canonicalize_name
from tffix.record import record

if TYPE_CHECKING:
    from tffix.ruleset import GpuName, Ruleset

# --------------------------------------------------------------------------- releases


@record
class TfRelease:
    """A TensorFlow release string, read."""

    text: str
    version: Version
    line: str
    """``major.minor`` (the release line: ``2.18``)."""
    era: str | None
    """The id of its ``[[tf_era]]``; None when no era covers it."""
    exact: bool
    """False when the text named only a line (``2.18``), not a patch release."""
    nightly: bool = False
    prerelease: bool = False
    build: str | None = None
    """What follows ``+`` (``nv22.12`` for NVIDIA's builds) or a git describe suffix."""
    vendor: str | None = None
    """``nvidia`` for NVIDIA's ``+nvYY.MM`` builds."""


_RELEASE = lazy(
    r"(?<![\w.])v?(?P<num>[12]\.\d{1,2}(?:\.\d{1,2})?)"
    r"(?P<pre>[-.]?(?:rc|a|b|alpha|beta)[-.]?\d*)?"
    r"(?P<dev>[-.]?dev(?:\d{8}|\d*))?"
    r"(?P<post>\.post\d+)?"
    r"(?:\+(?P<local>[\w.]+)|-(?P<git>\d+-g[0-9a-f]{7,40}))?"
    r"(?![\w])",
    re.IGNORECASE,
)
_NIGHTLY_NAME = lazy(r"tf[-_]nightly|nightly", re.IGNORECASE)
_NV_BUILD = lazy(r"^nv\d{2}\.\d{2}$")


def _pep440(match: re.Match[str]) -> Version | None:
    text = match.group("num")
    pre = (match.group("pre") or "").strip("-.").lower()
    pre = pre.replace("alpha", "a").replace("beta", "b").replace("-", "").replace(".", "")
    dev = (match.group("dev") or "").strip("-.").lower().replace("-", "")
    post = match.group("post") or ""
    local = match.group("local")
    full = f"{text}{pre}{post}{'.' + dev if dev else ''}{'+' + local if local else ''}"
    try:
        return Version(full)
    except InvalidVersion:
        return None


def era_of(version: Version, eras: Sequence[Era]) -> str | None:
    """The id of the first era that contains *version*.

    A pre-release or nightly belongs to the era of the release it leads to (``2.0.0rc2`` and
    ``2.19.0.dev20250208`` to those of 2.0.0 and 2.19.0), which PEP 440's ``<2.0`` would not say.
    """
    base = Version(version.base_version)
    for era in eras:
        if era.contains(base):
            return era.id
    return None


def normalize_release(text: str, eras: Sequence[Era] = ()) -> TfRelease | None:
    """The first TensorFlow release named in *text*, or None.

    Takes a bare version or one embedded in a line ("tensorflow==2.18.0rc1", "TF 2.9.1",
    "tf-nightly 2.19.0.dev20250208", the git describe of ``tf.version.GIT_VERSION``).
    """
    match = _RELEASE.search(text)
    if match is None:
        return None
    version = _pep440(match)
    if version is None:
        return None
    local = match.group("local")
    git = match.group("git")
    nightly = version.is_devrelease or bool(_NIGHTLY_NAME.search(text))
    return TfRelease(
        text=text.strip(),
        version=version,
        line=f"{version.major}.{version.minor}",
        era=era_of(version, eras),
        exact=len(version.release) >= 3,
        nightly=nightly,
        prerelease=version.is_prerelease,
        build=local or git,
        vendor="nvidia" if local and _NV_BUILD.match(local) else None,
    )


# --------------------------------------------------------------------------- cuDNN


def cudnn_version(text: str) -> str | None:
    """A cuDNN version as TensorFlow prints it, dotted: ``7104`` -> ``7.1.4``, ``90300`` ->
    ``9.3.0``, ``8.6.0`` unchanged.

    cuDNN's integer ``CUDNN_VERSION`` is ``major*1000 + minor*100 + patch`` up to cuDNN 8 and
    ``major*10000 + minor*100 + patch`` from cuDNN 9 on (cudnn_version.h); TensorFlow 1.x printed
    the integer.
    """
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+){1,3}", text):
        return text
    if not re.fullmatch(r"\d{4,6}", text):
        return None
    number = int(text)
    if number >= 90000:
        major, rest = divmod(number, 10000)
    else:
        major, rest = divmod(number, 1000)
    minor, patch = divmod(rest, 100)
    return f"{major}.{minor}.{patch}"


# --------------------------------------------------------------------------- GPU names


@record
class GpuModel:
    """A GPU name, read: who makes it, its canonical spelling, family and compute capability."""

    text: str
    vendor: str
    """``nvidia``, ``amd``, ``intel``, ``apple`` or ``unknown``."""
    name: str
    family: str | None = None
    compute_capability: str | None = None
    """Only NVIDIA GPUs have one; None when the table does not know the GPU."""


_TRADEMARKS = lazy(r"\((?:R|TM)\)|[®™]", re.IGNORECASE)
_MEMORY = lazy(r"(?:^|[\s,|(])\d{1,3}\s*(?:GB|GiB)\b.*$", re.IGNORECASE)
_GEFORCE = lazy(
    r"(?<![\w-])(?:(?P<series>RTX|GTX|GT|MX)\s*)?(?P<num>[1-9]\d{2,3})\s*"
    r"(?P<suffix>Ti|SUPER|S)?(?:\s+(?P<after>RTX|GTX))?(?![\w-])",
    re.IGNORECASE,
)
_LAPTOP = lazy(r"\b(laptop|mobile|max-?q|notebook)\b", re.IGNORECASE)
_VENDOR_HINTS: tuple[tuple[str, Pattern], ...] = (
    ("amd", lazy(r"\b(AMD|Radeon|Instinct|ROCm|gfx\d{3,4}|Vega)\b", re.IGNORECASE)),
    (
        "intel",
        lazy(r"\b(Intel|Iris|UHD Graphics|HD Graphics|Arc\s+[AB]\d{3})\b", re.IGNORECASE),
    ),
    ("apple", lazy(r"\bApple\s+M\d\b|\bM[1-5]\s+(Pro|Max|Ultra)\b", re.IGNORECASE)),
    (
        "nvidia",
        lazy(r"\b(NVIDIA|GeForce|Quadro|Tesla|TITAN|RTX|GTX|Jetson)\b", re.IGNORECASE),
    ),
)


def _series(num: str) -> str | None:
    """GeForce series a bare model number belongs to (``5070`` -> RTX, ``1080`` -> GTX)."""
    if len(num) == 4:
        if num.endswith("000"):
            return None  # no GeForce x000: a workstation part ("Quadro 5000", "RTX 5000 Ada")
        head = num[:2]
        if head in {"20", "30", "40", "50"}:
            return "RTX"
        if head in {"10", "16"}:
            return "GTX"
        return None
    if num[0] in "6789" and num.endswith("0"):
        return "GTX"
    return None


def _geforce(text: str) -> str | None:
    """The canonical GeForce spelling of *text* ("GeForce RTX 5070 Ti"), or None."""
    match = _GEFORCE.search(text)
    if match is None:
        return None
    num = match.group("num")
    given = match.group("series") or match.group("after")
    series = given.upper() if given else _series(num)
    if series is None or (series in {"MX"} and len(num) != 3):
        return None
    if series in {"RTX", "GTX"} and len(num) == 4 and _series(num) is None:
        return None
    suffix = (match.group("suffix") or "").lower()
    tail = {"ti": " Ti", "super": " SUPER", "s": " SUPER"}.get(suffix, "")
    laptop = " Laptop GPU" if _LAPTOP.search(text) else ""
    gap = "" if series == "MX" else " "
    return f"GeForce {series}{gap}{num}{tail}{laptop}"


_SERIES_SPELLING = lazy(
    r"(?<![\w-])(?:(?P<series>RTX|GTX)\s*(?P<head>10|16|30|40|50)\s*(?:[x*]{2}|-?series)"
    r"|(?P<bare>10|16|30|40|50)[x*]{2})(?![\w-])",
    re.IGNORECASE,
)
"""A whole GeForce series as people write it ("RTX 50xx", "rtx50xx", "40-series")."""
_SERIES_MODEL = {
    "10": "GTX 1080",
    "16": "GTX 1660",
    "30": "RTX 3080",
    "40": "RTX 4080",
    "50": "RTX 5080",
}
"""A model of each series that every member shares its compute capability with (the 20 series
is left out: the RTX 2050 is an Ampere part, unlike the Turing rest)."""


def _series_name(text: str) -> str | None:
    """``GeForce RTX 5080`` for "RTX 50xx": a member of the series, for its family and CC."""
    match = _SERIES_SPELLING.search(text)
    if match is None:
        return None
    model = _SERIES_MODEL[match.group("head") or match.group("bare")]
    given = match.group("series")
    if given is not None and given.upper() != model.split()[0]:
        return None
    return f"GeForce {model}"


def _clean(text: str) -> str:
    text = _TRADEMARKS.sub(" ", text)
    text = _MEMORY.sub("", text)
    return " ".join(text.replace("_", " ").split())


def _vendor(text: str) -> str:
    for vendor, pattern in _VENDOR_HINTS:
        if pattern.search(text):
            return vendor
    return "unknown"


def _lookup(name: str, table: Iterable[GpuName]) -> GpuName | None:
    for entry in table:
        if entry.match.search(name):
            return entry
    return None


def normalize_gpu(text: str, rules: Ruleset) -> GpuModel:
    """Read a GPU name as people write it, through the rules' GPU table (``[[gpu]]``)."""
    cleaned = _clean(text)
    hinted = _vendor(cleaned)
    name = cleaned
    if hinted in {"nvidia", "unknown"}:
        name = _geforce(cleaned) or cleaned
    entry = _lookup(name, rules.gpus)
    series = _series_name(cleaned) if entry is None and hinted in {"nvidia", "unknown"} else None
    if series is not None and (by_series := _lookup(series, rules.gpus)) is not None:
        return GpuModel(
            text=text,
            vendor=by_series.vendor,
            name=cleaned,
            family=by_series.family or None,
            compute_capability=by_series.compute_capability or None,
        )
    if entry is None and name != cleaned:
        entry = _lookup(cleaned, rules.gpus)
    if entry is not None and (hinted in {"unknown", entry.vendor} or entry.vendor != "nvidia"):
        return GpuModel(
            text=text,
            vendor=entry.vendor,
            name=name,
            family=entry.family or None,
            compute_capability=entry.compute_capability or None,
        )
    vendor = "nvidia" if hinted == "unknown" and name.startswith("GeForce ") else hinted
    return GpuModel(text=text, vendor=vendor, name=name)


# --------------------------------------------------------------------------- nvidia-smi


@record
class SmiFacts:
    """What an ``nvidia-smi`` header (or ``-q``, ``-L`` output) says."""

    driver: str | None = None
    cuda: str | None = None
    """The newest CUDA the driver supports (not an installed toolkit)."""
    smi: str | None = None
    gpus: tuple[str, ...] = ()


_SMI_VERSION = lazy(r"NVIDIA-SMI\s+(\d+(?:\.\d+)+)")
_SMI_DRIVER = lazy(r"Driver Version\s*:\s*(\d+(?:\.\d+)+)")
_SMI_CUDA = lazy(r"CUDA Version\s*:\s*(\d+\.\d+)")
_SMI_ROW = lazy(r"^\|\s*(\d{1,2})\s+(.+?)\s+(?:On|Off|WDDM|TCC)\s*\|")
"""A GPU row of the table: index, name (cut to fit, ending in "..."), persistence or, on
Windows, driver model."""
_SMI_LIST = lazy(r"^GPU (\d+): (.+?) \(UUID: ")
_SMI_PRODUCT = lazy(r"^\s*Product Name\s*:\s*(.+?)\s*$")


def _first(pattern: Pattern, lines: Sequence[str]) -> str | None:
    for line in lines:
        match = pattern.search(line)
        if match:
            return match.group(1)
    return None


def _smi_gpus(lines: Sequence[str]) -> tuple[str, ...]:
    names: list[str] = []
    for line in lines:
        for pattern in (_SMI_ROW, _SMI_LIST):
            match = pattern.match(line)
            if match:
                names.append(match.group(2).removesuffix("...").strip())
        product = _SMI_PRODUCT.match(line)
        if product:
            names.append(product.group(1))
    return tuple(names)


def parse_nvidia_smi(text: str) -> SmiFacts | None:
    """Driver, CUDA and GPU names from ``nvidia-smi`` text; None when it shows none of them."""
    lines = text.splitlines()
    facts = SmiFacts(
        driver=_first(_SMI_DRIVER, lines),
        cuda=_first(_SMI_CUDA, lines),
        smi=_first(_SMI_VERSION, lines),
        gpus=_smi_gpus(lines),
    )
    if facts.driver is None and facts.cuda is None and facts.smi is None and not facts.gpus:
        return None
    return facts


# --------------------------------------------------------------------------- package lists


@record
class PackageList:
    """A package list pasted as text."""

    kind: str
    """``pip list``, ``pip freeze``, ``conda list``, ``pip show`` or ``mixed``."""
    packages: Mapping[str, str] = field(default_factory=frozen_map)
    """Canonical name -> version."""
    channels: Mapping[str, str] = field(default_factory=frozen_map)
    """``conda list`` only: canonical name -> channel (``pypi`` = installed by pip)."""


_FREEZE_ROW = lazy(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*===?\s*(?P<version>[0-9][\w.+!-]*)\s*"
    r"(?:;.*)?$"
)
_PIP_LIST_HEADER = lazy(r"^\s*Package\s+Version(\s+\S+)*\s*$")
_DASHES = lazy(r"^\s*-{3,}(\s+-{3,})+\s*$")
_PIP_LIST_ROW = lazy(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s+(?P<version>[0-9][\w.+!-]*)(\s+\S.*)?$"
)
_CONDA_HEADER = lazy(r"^#\s*Name\s+Version\s+Build(\s+Channel)?\s*$")
_CONDA_ENV = lazy(r"^#\s*packages in environment at ")
_CONDA_ROW = lazy(
    r"^(?P<name>[A-Za-z0-9_][A-Za-z0-9._-]*)\s+(?P<version>[0-9][\w.+!]*)\s+(?P<build>\S+)"
    r"(?:\s+(?P<channel>\S+))?\s*$"
)
_SHOW_NAME = lazy(r"^Name:\s*(\S+)\s*$")
_SHOW_VERSION = lazy(r"^Version:\s*([0-9][\w.+!-]*)\s*$")


class _Rows:
    """Accumulates rows and which kinds of list they came from."""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.packages: dict[str, str] = {}
        self.channels: dict[str, str] = {}

    def add(self, kind: str, name: str, version: str, channel: str | None = None) -> None:
        if kind not in self.kinds:
            self.kinds.append(kind)
        key = name.lower() if name.startswith("_") else canonicalize_name(name)
        self.packages.setdefault(key, version)
        if channel:
            self.channels.setdefault(key, channel)


def _table_mode(line: str, mode: str | None) -> tuple[str | None, bool]:
    """(the table a line opens or keeps, whether the line was a header)."""
    if _PIP_LIST_HEADER.match(line) or (_DASHES.match(line) and mode == "pip list"):
        return "pip list", True
    if _CONDA_HEADER.match(line) or _CONDA_ENV.match(line):
        return "conda list", True
    return mode, False


def _row(line: str, mode: str | None, rows: _Rows) -> str | None:
    """Record *line* as a row of the table in *mode*; the mode that holds after it."""
    if mode == "conda list" and (conda := _CONDA_ROW.match(line)):
        rows.add("conda list", conda["name"], conda["version"], conda["channel"] or "")
        return mode
    if mode == "pip list" and (row := _PIP_LIST_ROW.match(line)):
        rows.add("pip list", row["name"], row["version"])
        return mode
    if freeze := _FREEZE_ROW.match(line):
        rows.add("pip freeze", freeze["name"], freeze["version"])
        return mode
    return None if line.strip() and not line.lstrip().startswith("#") else mode


def parse_package_list(text: str) -> PackageList | None:
    """Packages and versions from ``pip list``/``pip freeze``/``conda list``/``pip show`` text.

    Rows count only inside a table whose header was seen (``Package Version``, conda's
    ``# Name Version Build Channel``), except ``name==version`` lines, which stand alone.
    None when the text holds no package row.
    """
    rows = _Rows()
    mode: str | None = None
    shown: str | None = None
    for line in text.splitlines():
        mode, header = _table_mode(line, mode)
        if header:
            continue
        if name := _SHOW_NAME.match(line):
            shown = name.group(1)
            continue
        if shown and (version := _SHOW_VERSION.match(line)):
            rows.add("pip show", shown, version.group(1))
            shown = None
            continue
        mode = _row(line, mode, rows)
    if not rows.packages:
        return None
    kind = rows.kinds[0] if len(rows.kinds) == 1 else "mixed"
    return PackageList(kind, frozen_map(rows.packages), frozen_map(rows.channels))


# --------------------------------------------------------------------------- requirement pins

_PIN_LINE = lazy(
    r"""^\s*(?P<q>["']?)(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[0-9][\w.+!-]*)"""
    r"""(?P=q),?\s*$"""
)
"""One exact pin on a line of its own: a ``pip freeze`` row or a requirements file line
(``tensorflow[and-cuda]==2.13.0``), or an item of a quoted dependency list as in
``pyproject.toml``/``setup.py`` (``"tensorflow==2.15.0",``). Nothing else on the line, so that
prose and commands (``pip install x==1`` may have failed) are not read as installed."""


def pinned_requirements(lines: Iterable[str]) -> dict[str, tuple[str, int]]:
    """Canonical name -> (version, line index) of every exact pin on a line of its own."""
    out: dict[str, tuple[str, int]] = {}
    for index, line in enumerate(lines):
        match = _PIN_LINE.match(line[:512])
        if match:
            out.setdefault(canonicalize_name(match.group("name")), (match.group("version"), index))
    return out
