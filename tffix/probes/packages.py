"""The packages probe: what is installed in the target, who owns ``tensorflow/``, where the
``nvidia/*/lib`` folders are.

Two ways to list distributions, both aimed at the *target* interpreter's environment:

- ``read_metadata`` reads ``*.dist-info``/``*.egg-info`` in the target's ``sys.path`` folders
  directly (what ``importlib.metadata`` does inside the target). It needs no pip and takes a few
  milliseconds, so it is the primary path; it also gives each distribution's ``RECORD``, which
  is how the owners of ``tensorflow/`` are found.
- ``list_with_pip_api`` asks the target's own pip through pip-api (``PIPAPI_PYTHON_LOCATION``
  set to the target interpreter). Measured on a TensorFlow 2.21 venv: 0.9–1.3 s per call against
  about 25 ms for the metadata read, with identical results, so ``probe_packages`` uses it only
  when reading the metadata fails, and only when the target has pip.

Nothing here writes; nothing here raises for the target's sake.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import field
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from tffix.model import frozen_map
from tffix.record import record

TF_PACKAGE_DIR = "tensorflow"
_TF_ENTRY = re.compile(r'^"?(?:\.\./)?tensorflow[/\\]', re.MULTILINE)
"""A RECORD (or egg-info ``installed-files.txt``, relative to the egg-info) line under
``tensorflow/``."""

_PIP_API_LOCK = threading.Lock()
"""pip-api reads ``PIPAPI_PYTHON_LOCATION`` from ``os.environ`` at each call; calls are
serialised so that two targets never see each other's setting."""


@record
class PackagesReport:
    """The packages probe's answer."""

    packages: Mapping[str, str] | None
    """Canonical name -> version; None when unknown."""
    tensorflow_owners: tuple[str, ...] = ()
    """Distributions whose ``RECORD`` lists files under ``tensorflow/``."""
    tensorflow_dir: Path | None = None
    """The ``tensorflow/`` folder the target imports first (None when there is none)."""
    nvidia_lib_dirs: tuple[str, ...] = ()
    locations: Mapping[str, str] = field(default_factory=frozen_map)
    """Canonical name -> the folder its metadata lives in."""
    library_owners: Mapping[str, tuple[str, str]] = field(default_factory=frozen_map)
    """Real path of each shared library an ``nvidia-*`` wheel installed -> (name, version)."""
    source: str | None = None
    """``metadata`` or ``pip-api``."""
    unknown: str | None = None


def _search_dirs(sys_path: Iterable[str]) -> list[str]:
    return [p for p in dict.fromkeys(sys_path) if p and os.path.isdir(p)]


class Listing:
    """The distributions in the folders of a ``sys.path``, each folder listed once and each
    distribution's ``METADATA`` parsed at most once, for the probe's readings to share.

    ``Distribution.metadata`` reads and parses the file again at every use (``.version`` and
    ``.name`` are uses), so reading a name and a version cost three parses, and the library
    owners two more. A listing or a parse that fails raises for the reading that asked, each
    time it asks, as it did before there was a listing to share.
    """

    def __init__(self, sys_path: Iterable[str]) -> None:
        self.folders = _search_dirs(sys_path)
        self._dists: dict[str, list[metadata.Distribution]] = {}
        self._metadata: dict[int, metadata.PackageMetadata] = {}

    def distributions(self, folder: str) -> list[metadata.Distribution]:
        """The distributions whose metadata is in *folder*, in ``importlib.metadata``'s order."""
        if folder not in self._dists:
            self._dists[folder] = list(metadata.distributions(path=[folder]))
        return self._dists[folder]

    def metadata(self, dist: metadata.Distribution) -> metadata.PackageMetadata:
        """``dist.metadata``, parsed the first time only (*dist* from ``distributions``)."""
        key = id(dist)
        if key not in self._metadata:
            self._metadata[key] = dist.metadata
        return self._metadata[key]


def read_metadata(
    sys_path: Iterable[str], listing: Listing | None = None
) -> tuple[dict[str, str], tuple[str, ...], dict[str, str]]:
    """(packages, owners of ``tensorflow/``, locations) from the metadata in *sys_path*
    (*listing*: the same path's ``Listing``, shared with the probe's other readings).

    The first distribution of a name on the path wins, as for ``importlib.metadata``.
    """
    listing = Listing(sys_path) if listing is None else listing
    packages: dict[str, str] = {}
    owners: list[str] = []
    locations: dict[str, str] = {}
    for folder in listing.folders:
        for dist in listing.distributions(folder):
            if _pip_stash(dist):
                continue
            meta = listing.metadata(dist)
            name = meta["Name"] if meta else None
            version = meta["Version"]  # what ``dist.version`` reads
            if not name or version is None:
                continue
            canonical = canonicalize_name(name)
            if canonical in packages:
                continue
            packages[canonical] = str(version)
            locations[canonical] = folder
            if _owns_tensorflow(dist):
                owners.append(canonical)
    return packages, tuple(sorted(owners)), locations


def _pip_stash(dist: metadata.Distribution) -> bool:
    """True for ``~name-1.0.dist-info``: pip renames a distribution's metadata so while it
    uninstalls it, and leaves it so when killed; it is not an installed distribution."""
    path = getattr(dist, "_path", None)
    return isinstance(path, os.PathLike) and os.fspath(path).rsplit(os.sep, 1)[-1].startswith("~")


def _owns_tensorflow(dist: metadata.Distribution) -> bool:
    # RECORD is read as text: TensorFlow's lists ~20k files, and building a PackagePath for
    # each (``dist.files``) costs a quarter of a second.
    try:
        record = dist.read_text("RECORD") or dist.read_text("installed-files.txt") or ""
    except (OSError, ValueError):
        return False
    return _TF_ENTRY.search(record) is not None


def nvidia_library_owners(
    sys_path: Iterable[str], listing: Listing | None = None
) -> dict[str, tuple[str, str]]:
    """Real path of every ``.so`` an ``nvidia-*`` distribution's RECORD lists -> (name, version)
    (*listing*: as for ``read_metadata``).

    The loader probe falls back to the wheel's version for a library that cannot tell its own.
    """
    listing = Listing(sys_path) if listing is None else listing
    out: dict[str, tuple[str, str]] = {}
    for folder in listing.folders:
        for dist in listing.distributions(folder):
            meta = listing.metadata(dist)
            name = meta["Name"] if meta else None
            if not name or not canonicalize_name(name).startswith("nvidia-"):
                continue
            try:
                files = dist.files or ()
            except (OSError, ValueError):
                continue
            for f in files:
                if ".so" in f.name:
                    real = os.path.realpath(os.path.join(folder, str(f)))
                    out.setdefault(real, (canonicalize_name(name), str(meta["Version"])))
    return out


def list_with_pip_api(python: Path) -> dict[str, str]:
    """Ask the target's pip (through pip-api) for name -> version; raises on failure."""
    with _PIP_API_LOCK:
        # pip-api runs `<python> -m pip` in the current folder, which `-m` puts first on
        # sys.path; PYTHONSAFEPATH (Python 3.11+) keeps a `pip.py` in the project from running.
        saved = {k: os.environ.get(k) for k in ("PIPAPI_PYTHON_LOCATION", "PYTHONSAFEPATH")}
        os.environ["PIPAPI_PYTHON_LOCATION"] = str(python)
        os.environ["PYTHONSAFEPATH"] = "1"
        try:
            import pip_api  # imported late: importing it runs `pip --version` in the target

            dists = pip_api.installed_distributions()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    # pip-api hands back its vendored Version; keep the text.
    return {canonicalize_name(name): str(dist.version) for name, dist in dists.items()}


def find_tensorflow_dir(sys_path: Iterable[str]) -> Path | None:
    """The ``tensorflow/`` package the target would import first (a folder with ``__init__``)."""
    for folder in _search_dirs(sys_path):
        candidate = Path(folder) / TF_PACKAGE_DIR
        if (candidate / "__init__.py").is_file():
            return candidate
    return None


def nvidia_lib_dirs(sys_path: Iterable[str]) -> tuple[str, ...]:
    """Every ``nvidia/*/lib`` folder (and ``nvidia/cu13/lib``) in the target's path folders."""
    out: list[str] = []
    for folder in _search_dirs(sys_path):
        base = Path(folder) / "nvidia"
        if not base.is_dir():
            continue
        try:
            children = sorted(base.iterdir())
        except OSError:
            continue
        out.extend(str(child / "lib") for child in children if (child / "lib").is_dir())
    return tuple(out)


def _has_pip(sys_path: Iterable[str]) -> bool:
    return any((Path(p) / "pip" / "__init__.py").is_file() for p in _search_dirs(sys_path))


def probe_packages(python: Path, sys_path: Iterable[str]) -> PackagesReport:
    """List the target's distributions; never raises.

    An environment with no distributions at all is ``{}``, not unknown. pip-api is asked only
    when reading the metadata failed, and only if the target has pip (pip-api lets pip's
    stderr through to tffix's own, so a target without pip would print a stray error).
    """
    paths = list(sys_path)
    listing = Listing(paths)
    unknown = None
    try:
        packages, owners, locations = read_metadata(paths, listing)
        source = "metadata"
    except Exception as exc:  # a corrupt METADATA must not end the snapshot
        packages, owners, locations = {}, (), {}
        failure = f"reading distribution metadata failed ({type(exc).__name__}: {exc})"
        source = None
        if not _has_pip(paths):
            unknown = f"{failure}, and the target has no pip to ask"
        else:
            try:
                packages = list_with_pip_api(python)
                source = "pip-api"
            except Exception as pip_exc:  # pip failing in the target
                unknown = f"{failure}, and pip-api failed ({type(pip_exc).__name__})"
    tf_dir = find_tensorflow_dir(paths)
    try:
        owners_of_libs = nvidia_library_owners(paths, listing)
    except Exception:  # a corrupt RECORD: the fallback version is simply not there
        owners_of_libs = {}
    return PackagesReport(
        packages=None if unknown is not None else frozen_map(packages),
        tensorflow_owners=owners,
        tensorflow_dir=tf_dir,
        nvidia_lib_dirs=nvidia_lib_dirs(paths),
        locations=frozen_map(locations),
        library_owners=frozen_map(owners_of_libs),
        source=source,
        unknown=unknown,
    )


def tensorflow_version(report: PackagesReport) -> str | None:
    """The version of the distribution that provides ``tensorflow/`` (first owner that is a
    TensorFlow distribution, else any TensorFlow-named distribution installed)."""
    if report.packages is None:
        return None
    preferred = (
        "tensorflow",
        "tf-nightly",
        "tensorflow-cpu",
        "tensorflow-gpu",
        "tensorflow-intel",
        "tensorflow-cpu-aws",
        "tensorflow-macos",
        "tensorflow-aarch64",
    )
    for name in report.tensorflow_owners:
        if name in report.packages and name in preferred:
            return report.packages[name]
    for name in preferred:
        if name in report.packages:
            return report.packages[name]
    return None
