"""The packages probe on site-packages folders laid out as pip leaves them (dist-info with
METADATA and RECORD), and pip-api against a real interpreter."""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tffix.probes.packages import (
    PackagesReport,
    find_tensorflow_dir,
    list_with_pip_api,
    probe_packages,
    read_metadata,
    tensorflow_version,
)


def _dist(site: Path, name: str, version: str, files: list[str]) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    record = [f"{f},," for f in files] + [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")
    for f in files:
        path = site / f
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")


def test_two_distributions_sharing_tensorflow_dir(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _dist(site, "tensorflow", "2.18.1", ["tensorflow/__init__.py", "tensorflow/python/x.py"])
    _dist(site, "tensorflow-cpu", "2.16.1", ["tensorflow/__init__.py"])
    _dist(site, "Nvidia_CUDNN_cu12", "9.3.0.75", ["nvidia/cudnn/lib/libcudnn.so.9"])
    _dist(site, "nvidia-cublas-cu12", "12.5.3.2", ["nvidia/cublas/lib/libcublas.so.12"])
    report = probe_packages(Path(sys.executable), [str(site), str(tmp_path / "missing")])
    assert report.packages == {
        "nvidia-cublas-cu12": "12.5.3.2",
        "nvidia-cudnn-cu12": "9.3.0.75",
        "tensorflow": "2.18.1",
        "tensorflow-cpu": "2.16.1",
    }
    assert report.tensorflow_owners == ("tensorflow", "tensorflow-cpu")
    assert report.tensorflow_dir == site / "tensorflow"
    assert report.nvidia_lib_dirs == (
        str(site / "nvidia/cublas/lib"),
        str(site / "nvidia/cudnn/lib"),
    )
    assert report.source == "metadata"
    assert tensorflow_version(report) == "2.18.1"


def test_first_on_the_path_wins(tmp_path: Path) -> None:
    user, site = tmp_path / "user", tmp_path / "site"
    _dist(user, "numpy", "2.0.2", ["numpy/__init__.py"])
    _dist(site, "numpy", "1.26.4", ["numpy/__init__.py"])
    packages, _owners, locations = read_metadata([str(user), str(site)])
    assert packages == {"numpy": "2.0.2"}
    assert locations == {"numpy": str(user)}


def test_tf_nightly_version_is_tensorflows() -> None:
    report = PackagesReport(packages={"tf-nightly": "2.23.0.dev20261026"})
    assert tensorflow_version(report) == "2.23.0.dev20261026"
    assert tensorflow_version(PackagesReport(packages={"numpy": "2"})) is None
    assert tensorflow_version(PackagesReport(packages=None)) is None


def test_no_tensorflow_dir_without_init(tmp_path: Path) -> None:
    (tmp_path / "tensorflow").mkdir()  # a namespace leftover after an uninstall
    assert find_tensorflow_dir([str(tmp_path)]) is None


def test_pip_api_asks_the_given_interpreter() -> None:
    # The dev environment's own interpreter has pip and pytest installed.
    packages = list_with_pip_api(Path(sys.executable))
    assert "pytest" in packages
    assert "pip" in packages


def test_a_pip_stash_left_by_a_killed_uninstall_is_not_installed(tmp_path: Path) -> None:
    """``kill -9`` during ``pip uninstall`` leaves ``~ensorflow-2.18.1.dist-info`` (pip's
    rename); importlib.metadata reads it as tensorflow 2.18.1, pip and ``import`` do not."""
    site = tmp_path / "site-packages"
    _dist(site, "tensorflow", "2.18.1", ["tensorflow/__init__.py"])
    _dist(site, "numpy", "2.1.0", ["numpy/__init__.py"])
    (site / "tensorflow-2.18.1.dist-info").rename(site / "~ensorflow-2.18.1.dist-info")
    (site / "tensorflow").rename(site / "~ensorflow")
    packages, owners, _ = read_metadata([str(site)])
    assert packages == {"numpy": "2.1.0"}
    assert owners == ()


def test_each_metadata_file_is_read_once_and_the_library_owners_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Distribution.metadata`` parses METADATA at every use: the probe's readings (name,
    version, the nvidia wheels' libraries) share one parse per distribution."""
    site = tmp_path / "site-packages"
    _dist(site, "tensorflow", "2.18.1", ["tensorflow/__init__.py"])
    _dist(site, "Nvidia_CUDNN_cu12", "9.3.0.75", ["nvidia/cudnn/lib/libcudnn.so.9"])
    _dist(site, "numpy", "2.1.0", ["numpy/__init__.py"])
    reads: list[str] = []
    read_text = metadata.PathDistribution.read_text

    def counting(self: metadata.PathDistribution, filename: str) -> str | None:
        if filename == "METADATA":
            reads.append(str(self._path))  # type: ignore[attr-defined]
        return read_text(self, filename)

    monkeypatch.setattr(metadata.PathDistribution, "read_text", counting)
    report = probe_packages(Path(sys.executable), [str(site)])
    assert report.packages == {
        "nvidia-cudnn-cu12": "9.3.0.75",
        "numpy": "2.1.0",
        "tensorflow": "2.18.1",
    }
    lib = os.path.realpath(site / "nvidia/cudnn/lib/libcudnn.so.9")
    assert report.library_owners == {lib: ("nvidia-cudnn-cu12", "9.3.0.75")}
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 3
