"""Loose facts as people write them: GPU names, release strings, nvidia-smi text, package lists.

The spellings are those of public reports (the URL beside each); the expected values come from
NVIDIA's compute-capability tables and the PyPI release history, not from this code.
"""

from __future__ import annotations

import pytest
from packaging.version import Version

from tffix.diagnosis import diagnose
from tffix.logparse import snapshot_from_text
from tffix.normalize import (
    cudnn_version,
    normalize_gpu,
    normalize_release,
    parse_nvidia_smi,
    parse_package_list,
)
from tffix.ruleset import Ruleset, load_rules

RULES: Ruleset = load_rules()

GPU_SPELLINGS = [
    # (as written, canonical name, vendor, family, compute capability)
    ("5070TI", "GeForce RTX 5070 Ti", "nvidia", "Blackwell", "12.0"),  # tffix issue text
    ("RTX 5070ti", "GeForce RTX 5070 Ti", "nvidia", "Blackwell", "12.0"),  # tffix issue text
    # https://github.com/huggingface/accelerate/issues/4029
    (
        "NVIDIA GeForce RTX 5070 Ti Laptop GPU",
        "GeForce RTX 5070 Ti Laptop GPU",
        "nvidia",
        "Blackwell",
        "12.0",
    ),
    ("RTX 5090", "GeForce RTX 5090", "nvidia", "Blackwell", "12.0"),  # tensorflow#89272
    ("4080 RTX", "GeForce RTX 4080", "nvidia", "Ada Lovelace", "8.9"),  # tensorflow#85006
    ("NVIDIA RTX 3060, 12 GB", "GeForce RTX 3060", "nvidia", "Ampere", "8.6"),  # tensorflow#96707
    ("RTX2080ti", "GeForce RTX 2080 Ti", "nvidia", "Turing", "7.5"),  # tensorflow#23341
    ("RTX2080TI", "GeForce RTX 2080 Ti", "nvidia", "Turing", "7.5"),  # keras-team/keras#13070
    ("gtx 1660ti", "GeForce GTX 1660 Ti", "nvidia", "Turing", "7.5"),  # tensorflow#44000
    ("NVIDIA GTX 1650 Max-Q", "GeForce GTX 1650 Laptop GPU", "nvidia", "Turing", "7.5"),  # #77729
    ("GTX1080", "GeForce GTX 1080", "nvidia", "Pascal", "6.1"),  # tffix issue text
    ("1080 Ti", "GeForce GTX 1080 Ti", "nvidia", "Pascal", "6.1"),  # tffix issue text
    ("1080ti", "GeForce GTX 1080 Ti", "nvidia", "Pascal", "6.1"),  # keras-team/keras#13070
    ("GeForce GTX 1080 Ti", "GeForce GTX 1080 Ti", "nvidia", "Pascal", "6.1"),  # tensorflow#47876
    ("GeForce GTX 1050TI", "GeForce GTX 1050 Ti", "nvidia", "Pascal", "6.1"),  # tensorflow#47359
    ("nvidia GTX 1060 6GB", "GeForce GTX 1060", "nvidia", "Pascal", "6.1"),  # tensorflow#62375
    ("GTX 770", "GeForce GTX 770", "nvidia", "Kepler", "3.0"),  # tensorflow#53062
    ("RTX 2050", "GeForce RTX 2050", "nvidia", "Ampere", "8.6"),  # an Ampere despite its number
    ("MX450", "GeForce MX450", "nvidia", "Turing", "7.5"),
    ("Tesla T4", "Tesla T4", "nvidia", "Turing", "7.5"),
    ("NVIDIA A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB", "nvidia", "Ampere", "8.0"),
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100", "nvidia", "Hopper", "9.0"),
]
NOT_NVIDIA = [
    ("Intel HD Graphics 630", "intel"),  # tensorflow#47359
    ("Intel(R) UHD Graphics 620", "intel"),
    ("Radeon RX 560", "amd"),  # ROCm/tensorflow-upstream#1372
    ("Vega 10 [Radeon Instinct MI25]", "amd"),  # ROCm/legacy-rocm-build#1286
    ("AMD Radeon RX 7900 XTX", "amd"),
    ("Apple M2", "apple"),
]


@pytest.mark.parametrize(("text", "name", "vendor", "family", "cc"), GPU_SPELLINGS)
def test_gpu_spellings(text: str, name: str, vendor: str, family: str, cc: str):
    model = normalize_gpu(text, RULES)
    assert (model.name, model.vendor, model.family, model.compute_capability) == (
        name,
        vendor,
        family,
        cc,
    )
    assert model.text == text


@pytest.mark.parametrize(("text", "vendor"), NOT_NVIDIA)
def test_gpus_that_are_not_nvidia_have_no_compute_capability(text: str, vendor: str):
    model = normalize_gpu(text, RULES)
    assert model.vendor == vendor and model.compute_capability is None


def test_a_gpu_the_table_does_not_know_stays_unknown():
    model = normalize_gpu("Matrox G200eW", RULES)
    assert model.compute_capability is None and model.family is None


SERIES = [
    # a whole series, as reports name it; every member shares the compute capability
    ("RTX 50xx", "Blackwell", "12.0"),
    ("rtx50xx", "Blackwell", "12.0"),
    ("RTX 50-series", "Blackwell", "12.0"),
    ("50xx", "Blackwell", "12.0"),
    ("RTX 40xx", "Ada Lovelace", "8.9"),
    ("RTX 30xx", "Ampere", "8.6"),
    ("GTX 16xx", "Turing", "7.5"),
    ("GTX 10xx", "Pascal", "6.1"),
]


@pytest.mark.parametrize(("text", "family", "cc"), SERIES)
def test_a_series_spelling_gives_the_series_family(text: str, family: str, cc: str):
    model = normalize_gpu(text, RULES)
    assert (model.vendor, model.family, model.compute_capability) == ("nvidia", family, cc)


@pytest.mark.parametrize(
    ("text", "cc"),
    [
        ("RTX 20xx", None),  # the RTX 2050 is an Ampere, the rest Turing: not one answer
        ("RTX 10xx", None),  # there is no RTX 10 series
        ("50 series", None),  # prose, not a GPU
        ("Quadro 5000", None),  # a Fermi workstation part, not a GeForce 5000
        ("NVIDIA RTX 5000 Ada Generation", "8.9"),
        ("Quadro RTX 5000", "7.5"),
    ],
)
def test_workstation_and_ambiguous_names_are_not_read_as_geforce(text: str, cc: str | None):
    assert normalize_gpu(text, RULES).compute_capability == cc


def test_a_series_name_alone_is_judged_against_the_newest_release():
    """A Blackwell GPU named only by its series, with no TensorFlow version: no PyPI release
    has code for compute capability 12.0."""
    from tffix.document import parse_snapshot

    snap = parse_snapshot(
        {"schema": "tffix.snapshot/1", "platform": {"os": "linux"}, "gpus": [{"name": "RTX 50xx"}]}
    )
    first = diagnose(snap, RULES).findings[0]
    assert first.id == "gpu-arch-unsupported" and "12.0" in first.title


@pytest.mark.parametrize("text", [g[0] for g in GPU_SPELLINGS])
def test_spelling_does_not_matter(text: str):
    """Upper case, lower case, no spaces: the same GPU."""
    base = normalize_gpu(text, RULES)
    for variant in (text.upper(), text.lower()):
        assert normalize_gpu(variant, RULES).compute_capability == base.compute_capability


RELEASES = [
    # (as written, version, line, era, exact, nightly)
    ("2.18", "2.18", "2.18", "2.14-2.19", False, False),
    ("2.18.0rc1", "2.18.0rc1", "2.18", "2.14-2.19", True, False),
    ("1.15.5+nv22.12", "1.15.5+nv22.12", "1.15", "1.x", True, False),
    ("tf-nightly 2.19.0.dev20250208", "2.19.0.dev20250208", "2.19", "2.14-2.19", True, True),
    (
        "tf_nightly-2.21.0.dev20250601-cp312-cp312",
        "2.21.0.dev20250601",
        "2.21",
        "2.20+",
        True,
        True,
    ),
    ("TF 2.9.1", "2.9.1", "2.9", "2.0-2.10", True, False),  # tensorflow#56690
    # tf.version.GIT_VERSION of a tensorflow-rocm build, ROCm/tensorflow-upstream#1372
    ("v2.4.1-28-g551d9173703", "2.4.1", "2.4", "2.0-2.10", True, False),
    ("tensorflow==2.16.1", "2.16.1", "2.16", "2.14-2.19", True, False),
    ("tensorflow-gpu 2.11.0", "2.11.0", "2.11", "2.11", True, False),
    ("2.12.0", "2.12.0", "2.12", "2.12-2.13", True, False),
    ("2.0.0-rc2", "2.0.0rc2", "2.0", "2.0-2.10", True, False),
    ("2.21.0", "2.21.0", "2.21", "2.20+", True, False),
]


@pytest.mark.parametrize(("text", "version", "line", "era", "exact", "nightly"), RELEASES)
def test_release_strings(text: str, version: str, line: str, era: str, exact: bool, nightly: bool):
    rel = normalize_release(text, RULES.eras)
    assert rel is not None
    assert (str(rel.version), rel.line, rel.era, rel.exact, rel.nightly) == (
        str(Version(version)),
        line,
        era,
        exact,
        nightly,
    )


def test_nvidia_builds_are_marked():
    rel = normalize_release("1.15.5+nv22.12", RULES.eras)
    assert rel is not None and rel.vendor == "nvidia" and rel.build == "nv22.12"


@pytest.mark.parametrize("text", ["", "no version here", "CUDA 12.2.1 driver", "python 3.12.4"])
def test_text_without_a_tensorflow_release(text: str):
    assert normalize_release(text, RULES.eras) is None


def test_every_release_falls_in_one_era():
    for minor in range(0, 30):
        for text in (f"2.{minor}.0", f"2.{minor}.0rc1", f"2.{minor}.0.dev20250101"):
            rel = normalize_release(text, RULES.eras)
            assert rel is not None and rel.era is not None, text
    eras = [e.id for e in RULES.eras]
    assert len(eras) == len(set(eras))


# https://github.com/tensorflow/tensorflow/issues/29362 (an old header: no CUDA Version)
SMI_384 = """\
+-----------------------------------------------------------------------------+
| NVIDIA-SMI 384.130                Driver Version: 384.130                   |
|-------------------------------+----------------------+----------------------+
| GPU  Name        Persistence-M| Bus-Id        Disp.A | Volatile Uncorr. ECC |
| Fan  Temp  Perf  Pwr:Usage/Cap|         Memory-Usage | GPU-Util  Compute M. |
|===============================+======================+======================|
|   0  GeForce GTX 1080    Off  | 00000000:02:00.0  On |                  N/A |
|  0%   49C    P8    15W / 260W |      2MiB /  8105MiB |      0%      Default |
+-------------------------------+----------------------+----------------------+
|   1  GeForce GTX 1080    Off  | 00000000:03:00.0 Off |                  N/A |
"""
# https://github.com/tensorflow/tensorflow/issues/77729 (Windows: driver model, cut name)
SMI_560 = """\
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 560.94                 Driver Version: 560.94         CUDA Version: 12.6     |
|-----------------------------------------+------------------------+----------------------+
| GPU  Name                  Driver-Model | Bus-Id          Disp.A | Volatile Uncorr. ECC |
|=========================================+========================+======================|
|   0  NVIDIA GeForce GTX 1650 ...  WDDM  |   00000000:01:00.0 Off |                  N/A |
"""
SMI_Q = """\
Driver Version                            : 580.65.06
CUDA Version                              : 13.0
Attached GPUs                             : 1
GPU 00000000:01:00.0
    Product Name                          : NVIDIA GeForce RTX 5080
"""
SMI_L = "GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-5a7e6b1c-0000-0000-0000-000000000000)\n"


@pytest.mark.parametrize(
    ("text", "driver", "cuda", "gpus"),
    [
        (SMI_384, "384.130", None, ("GeForce GTX 1080", "GeForce GTX 1080")),
        (SMI_560, "560.94", "12.6", ("NVIDIA GeForce GTX 1650",)),
        (SMI_Q, "580.65.06", "13.0", ("NVIDIA GeForce RTX 5080",)),
        (SMI_L, None, None, ("NVIDIA GeForce RTX 4090",)),
    ],
)
def test_nvidia_smi(text: str, driver: str | None, cuda: str | None, gpus: tuple[str, ...]):
    facts = parse_nvidia_smi(text)
    assert facts is not None
    assert (facts.driver, facts.cuda, facts.gpus) == (driver, cuda, gpus)


def test_text_without_nvidia_smi():
    assert parse_nvidia_smi("Traceback (most recent call last):\nValueError: x\n") is None


# https://github.com/conda-forge/tensorflow-feedstock/issues/365 (rows as pasted, abridged)
CONDA_LIST = """\
# packages in environment at /home/user/miniforge3/envs/tf:
#
# Name                    Version                   Build  Channel
_libgcc_mutex             0.1                 conda_forge    conda-forge
absl-py                   2.0.0              pyhd8ed1ab_0    conda-forge
tensorflow                2.15.0          cuda120py311heb1bdc4_3    conda-forge
tensorflow-base           2.15.0          cuda120py311h6fbfbd4_3    conda-forge
nvidia-cudnn-cu12         8.9.4.25                 pypi_0    pypi
"""
PIP_FREEZE = """\
absl-py==2.1.0
-e git+https://github.com/example/proj.git@0123abc#egg=proj
mylib @ file:///home/user/mylib
tensorflow[and-cuda]==2.18.0
nvidia-cudnn-cu12==9.3.0.75
"""
PIP_LIST = """\
Package                      Version
---------------------------- -----------
tensorflow                   2.16.1
tensorflow-io-gcs-filesystem 0.37.0
nvidia-cublas-cu12           12.3.4.1
"""
PIP_SHOW = """\
Name: tensorflow
Version: 2.10.1
Summary: TensorFlow is an open source machine learning framework for everyone.
"""


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        (
            CONDA_LIST,
            "conda list",
            {"tensorflow": "2.15.0", "tensorflow-base": "2.15.0", "nvidia-cudnn-cu12": "8.9.4.25"},
        ),
        (PIP_FREEZE, "pip freeze", {"tensorflow": "2.18.0", "nvidia-cudnn-cu12": "9.3.0.75"}),
        (PIP_LIST, "pip list", {"tensorflow": "2.16.1", "nvidia-cublas-cu12": "12.3.4.1"}),
        (PIP_SHOW, "pip show", {"tensorflow": "2.10.1"}),
    ],
)
def test_package_lists(text: str, kind: str, expected: dict[str, str]):
    listed = parse_package_list(text)
    assert listed is not None and listed.kind == kind
    assert {k: listed.packages[k] for k in expected} == expected


def test_conda_list_tells_pip_rows_from_conda_rows():
    listed = parse_package_list(CONDA_LIST)
    assert listed is not None
    assert listed.channels["nvidia-cudnn-cu12"] == "pypi"
    assert listed.channels["tensorflow"] == "conda-forge"


def test_prose_is_not_a_package_list():
    assert parse_package_list("tensorflow 2 is great\nI use numpy 1.26 daily\n") is None


def test_explain_reads_a_conda_list_and_an_old_smi_header():
    snap = snapshot_from_text(CONDA_LIST + SMI_384, RULES)
    assert snap.packages is not None and snap.packages["tensorflow"] == "2.15.0"
    assert snap.driver is not None and snap.driver.version == "384.130"
    assert snap.gpus is not None and [g.name for g in snap.gpus] == ["GeForce GTX 1080"] * 2


@pytest.mark.parametrize(
    ("text", "dotted"),
    [
        ("7104", "7.1.4"),
        ("6021", "6.0.21"),
        ("5105", "5.1.5"),
        ("8907", "8.9.7"),
        ("90300", "9.3.0"),
        ("8.6.0", "8.6.0"),
        ("x", None),
        ("12", None),
    ],
)
def test_cudnn_integer_versions(text: str, dotted: str | None):
    assert cudnn_version(text) == dotted


def test_a_tf1_integer_cudnn_mismatch_is_named():
    # the form TensorFlow 1.x before 1.12 printed, as quoted in public notes on upgrading cuDNN
    line = (
        "2018-02-22 10:00:00.000000: E tensorflow/stream_executor/cuda/cuda_dnn.cc:378] Loaded "
        "runtime CuDNN library: 7003 (compatibility version 7000) but source was compiled with "
        "6021 (compatibility version 6000).  If using a binary install, upgrade your CuDNN "
        "library to match."
    )
    diag = diagnose(snapshot_from_text(line, RULES), RULES)
    assert [f.id for f in diag.findings][:1] == ["cudnn-version-mismatch"]
    assert "7.0.3" in diag.findings[0].title and "6.0.21" in diag.findings[0].title


@pytest.mark.parametrize(
    ("line", "pin"),
    [
        ("tensorflow==2.15.0", ("tensorflow", "2.15.0")),  # pip freeze, requirements.txt
        ("tensorflow[and-cuda]==2.16.1", ("tensorflow", "2.16.1")),
        ('    "tensorflow==2.15.0",', ("tensorflow", "2.15.0")),  # a pyproject dependency list
        ("  'torch==2.5.1+cu121',", ("torch", "2.5.1+cu121")),
        ("TensorFlow_GPU==1.15.0", ("tensorflow-gpu", "1.15.0")),
    ],
)
def test_exact_pins_on_lines_of_their_own(line: str, pin: tuple[str, str]):
    from tffix.normalize import pinned_requirements

    assert pinned_requirements([line]) == {pin[0]: (pin[1], 0)}


@pytest.mark.parametrize(
    "line",
    [
        "pip install tensorflow==2.15.0",  # a command, which may have failed
        "ERROR: No matching distribution found for tensorflow==2.15.0",
        "I use tensorflow==2.15.0 here",
        "tensorflow>=2.15",
        "\"tensorflow==2.15.0',",  # unbalanced quotes
    ],
)
def test_commands_prose_and_ranges_are_not_pins(line: str):
    from tffix.normalize import pinned_requirements

    assert pinned_requirements([line]) == {}


def test_a_pin_in_the_log_fills_a_package_the_snapshot_does_not_list():
    from tffix.document import parse_snapshot
    from tffix.facts import Facts

    snap = parse_snapshot(
        {
            "schema": "tffix.snapshot/1",
            "packages": {"torch": "2.5.1", "tensorflow": "2.16.1"},
            "log": ["tensorflow==2.15.0", "keras==3.3.3"],
        }
    )
    facts = Facts(snap, RULES)
    assert facts.packages["tensorflow"] == "2.16.1"  # the snapshot's own list wins
    assert facts.packages["keras"] == "3.3.3" and facts.log_pins == {"keras": ("3.3.3", 1)}
