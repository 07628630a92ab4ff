"""Partial and odd snapshots: unknown is never false, and nothing crashes."""

from __future__ import annotations

import json
import random

import pytest

from tests.diagnosis.conftest import SNAPSHOTS
from tffix.diagnosis import diagnose, exit_code
from tffix.document import parse_snapshot
from tffix.errors import ExitCode, InputError
from tffix.report import render_json, render_text
from tffix.ruleset import Ruleset


def test_an_empty_snapshot_finds_nothing(rules: Ruleset):
    snap = parse_snapshot({"schema": "tffix.snapshot/1"})
    diag = diagnose(snap, rules)
    assert diag.findings == () and diag.plan == () and diag.gpu_visible is None
    assert exit_code(diag) == ExitCode.OK
    text = render_text(diag, snap, rules=rules)
    assert "[??] NVIDIA driver: unknown" in text
    assert "whether TensorFlow sees the GPU is unknown" in text


def test_a_pasted_pip_list_alone_is_not_a_missing_library(rules: Ruleset):
    snap = parse_snapshot({"schema": "tffix.snapshot/1", "packages": {"tensorflow": "2.18.1"}})
    assert diagnose(snap, rules).findings == ()


WEIRD = ["", "abc", "2", "1.2.3.4.5", "-1", "9999", "12.0", "Ωmega", "sm_", "compute_", "64_"]


def _mutate(obj, rng: random.Random) -> None:
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    for key, value in list(items):
        if isinstance(value, (dict, list)):
            _mutate(value, rng)
        elif isinstance(value, str) and rng.random() < 0.15:
            obj[key] = rng.choice(WEIRD)


def test_mutated_fixtures_never_crash(rules: Ruleset):
    docs = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(SNAPSHOTS.rglob("*.json"))
        if p.name != "expected.json"
    ]
    rng = random.Random(1)
    diagnosed = 0
    for _ in range(400):
        doc = json.loads(json.dumps(rng.choice(docs)))
        for key in list(doc):
            if key != "schema" and rng.random() < 0.3:
                doc.pop(key)
        _mutate(doc, rng)
        try:
            snap = parse_snapshot(doc)
        except InputError:
            continue
        diag = diagnose(snap, rules)
        render_text(diag, snap, rules=rules, verbose=2, show_unsafe=True)
        render_json(diag)
        diagnosed += 1
    assert diagnosed > 200


# ---- a partial report that shows a GPU setup but nothing wrong gets a ranked best guess


def _partial(**doc: object):
    return parse_snapshot({"schema": "tffix.snapshot/1", **doc})


FACTORY = (
    "2024-03-01 10:00:00.000001: E external/local_xla/xla/stream_executor/cuda/cuda_dnn.cc:9261] "
    "Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN when one "
    "has already been registered"
)


@pytest.mark.parametrize(
    "doc",
    [
        {"packages": {"tensorflow": "2.15.1"}, "gpus": [{"name": "Tesla T4"}]},
        {"tensorflow": {"version": "2.18.0"}, "driver": {"version": "550.54.14"}},
        {"platform": {"os": "linux"}, "tensorflow": {"version": "2.16.1"}, "log": [FACTORY]},
    ],
)
def test_a_gpu_setup_with_no_library_shown_guesses_missing_libraries(rules: Ruleset, doc):
    diag = diagnose(_partial(**doc), rules)
    first = diag.findings[0]
    assert first.id == "cuda-libs-missing" and first.severity.value == "error"
    assert first.title.startswith("best guess from a partial report")
    assert exit_code(diag) == ExitCode.FIXABLE


@pytest.mark.parametrize(
    "doc",
    [
        # a pip list alone shows no GPU setup
        {"packages": {"tensorflow": "2.18.1"}},
        # TensorFlow lists the GPU: nothing to guess
        {
            "tensorflow": {"version": "2.18.0", "gpus": ["/physical_device:GPU:0"]},
            "driver": {"version": "550.54.14"},
        },
        # the release's own CUDA wheels are there
        {
            "packages": {"tensorflow": "2.18.0", "nvidia-cudnn-cu12": "9.3.0.75"},
            "driver": {"version": "550.54.14"},
        },
        # macOS and native Windows do not load CUDA from pip wheels
        {
            "platform": {"os": "macos"},
            "tensorflow": {"version": "2.15.0"},
            "gpus": [{"name": "Tesla T4"}],
        },
        # the loader's answers are known: the library checks decide
        {
            "tensorflow": {"version": "2.18.0"},
            "driver": {"version": "550.54.14"},
            "libraries": {"libcudnn.so.9": {"path": "/x/libcudnn.so.9", "version": "9.3.0"}},
        },
        # a CPU build
        {"packages": {"tensorflow-cpu": "2.15.0"}, "gpus": [{"name": "Tesla T4"}]},
    ],
)
def test_no_best_guess_where_the_facts_do_not_call_for_one(rules: Ruleset, doc):
    diag = diagnose(_partial(**doc), rules)
    assert all(not f.title.startswith("best guess") for f in diag.findings)


def test_a_best_guess_never_displaces_a_finding(rules: Ruleset):
    snap = _partial(
        tensorflow={"version": "2.18.0"},
        driver={"version": "550.54.14"},
        env={"CUDA_VISIBLE_DEVICES": "-1"},
    )
    ids = [f.id for f in diagnose(snap, rules).findings]
    assert ids[0] == "cuda-visible-devices-masked" and "cuda-libs-missing" not in ids


@pytest.mark.parametrize(("python", "fires"), [("3.6.8", False), ("3.5", False), ("3.10", True)])
def test_an_unstated_release_on_windows_is_bounded_by_the_python(rules: Ruleset, python, fires):
    """No release after 2.10 (the last Windows GPU build) has a wheel for Python 3.6 or older,
    so a Windows report with such a Python is of the era when Windows had a GPU build."""
    snap = _partial(platform={"os": "windows"}, python={"version": python})
    ids = [f.id for f in diagnose(snap, rules).findings]
    assert ("windows-native-unsupported" in ids) is fires


@pytest.mark.parametrize(
    ("doc", "guessed"),
    [
        # the platform stated is context enough: a Linux report about a CUDA build
        ({"platform": {"os": "linux"}, "packages": {"tensorflow": "2.12.0"}}, True),
        ({"platform": {"os": "linux", "wsl": True}, "tensorflow": {"version": "2.15.1"}}, True),
        # native Windows up to 2.10 loads CUDA from the system too
        ({"platform": {"os": "windows"}, "tensorflow": {"version": "2.10.0"}}, True),
        # ...but the report shows that CUDA installed: not a guess to make
        (
            {
                "platform": {"os": "windows"},
                "tensorflow": {"version": "2.10.0"},
                "log": ["- CUDA/cuDNN version: CUDA 11.2, cuDNN 8.1"],
            },
            False,
        ),
    ],
)
def test_the_best_guess_and_the_platform(rules: Ruleset, doc, guessed):
    findings = diagnose(_partial(**doc), rules).findings
    assert any(f.title.startswith("best guess") for f in findings) is guessed


@pytest.mark.parametrize(
    ("version", "cpu_only"),
    [("1.15.0", False), ("1.15.2", True), ("1.14.0", True), ("2.0.0", True), ("2.1.0", False)],
)
def test_which_pypi_tensorflow_releases_lack_the_gpu_build(rules: Ruleset, version, cpu_only):
    """1.15.0's release notes put GPU support in the tensorflow package; 1.15.2 took it out
    again (tensorflow#36347); from 2.1 on it is there to stay."""
    snap = _partial(
        platform={"os": "linux"}, packages={"tensorflow": version}, gpus=[{"name": "Tesla T4"}]
    )
    ids = [f.id for f in diagnose(snap, rules).findings]
    assert ("tf-cpu-only-package" in ids) is cpu_only


@pytest.mark.parametrize(
    ("line", "soname"),
    [
        # glibc's dlerror text inside the ImportError of a 1.x build, which links CUDA
        (
            "ImportError: libcublas.so.9.0: cannot open shared object file: No such file or "
            "directory",
            "libcublas.so.9.0",
        ),
        # a cuDNN 8 sub-library, as the loader names it
        (
            "ImportError: libcudnn_cnn_infer.so.8: cannot open shared object file: No such file or "
            "directory",
            "libcudnn_cnn_infer.so.8",
        ),
        # ldd's answer
        ("\tlibcudart.so.10.0 => not found", "libcudart.so.10.0"),
    ],
)
def test_the_loaders_own_words_about_a_cuda_library_are_a_failed_load(rules: Ruleset, line, soname):
    from tffix.logparse import snapshot_from_text

    diag = diagnose(snapshot_from_text(line, rules), rules)
    # the first of the readings of a failed load (see the test below), naming the library
    first = diag.findings[0]
    assert first.id in {"cuda-libs-missing", "cuda-version-mismatch"} and soname in first.title
    assert "cuda-libs-missing" in {f.id for f in diag.findings}


LOAD_FAILED = (
    "I tensorflow/stream_executor/platform/default/dso_loader.cc:55] Could not load dynamic "
    "library 'libcudart.so.10.1'; dlerror: libcudart.so.10.1: cannot open shared object file: "
    "No such file or directory"
)


def _ids(diag) -> list[tuple[str, str]]:
    return [(f.id, str(f.severity)) for f in diag.findings]


@pytest.mark.parametrize(
    ("version", "soname", "order"),
    [
        # the file name carries CUDA 10.1's minor: a CUDA 10.0 or 10.2 installed fails too,
        # and another CUDA release installed ranks first
        ("2.3.0", "libcudart.so.10.1", ["cuda-version-mismatch", "cuda-libs-missing"]),
        # from CUDA 11 one name serves every minor: any CUDA 11 would load it
        ("2.4.0", "libcudart.so.11.0", ["cuda-libs-missing", "cuda-version-mismatch"]),
        ("2.12.0", "libcublas.so.11", ["cuda-libs-missing", "cuda-version-mismatch"]),
    ],
)
def test_a_library_that_does_not_load_names_the_readings_the_report_cannot_tell_apart(
    rules: Ruleset, version: str, soname: str, order: list[str]
):
    """Nothing shows what is installed: the likeliest reading is the error, the other two
    follow as info (no step, no exit code of their own), on the same evidence."""
    snap = parse_snapshot(
        {
            "schema": "tffix.snapshot/1",
            "platform": {"os": "linux"},
            "tensorflow": {"version": version},
            "log": [LOAD_FAILED.replace("libcudart.so.10.1", soname)],
        }
    )
    diag = diagnose(snap, rules)
    assert _ids(diag)[:3] == [
        (order[0], "error"),
        (order[1], "info"),
        ("cuda-libs-not-found", "info"),
    ]
    first, *others = diag.findings[:3]
    assert all(o.evidence == first.evidence for o in others)
    assert all(soname in f.title for f in diag.findings[:3])
    assert f"ranked after {order[0]}" in others[0].detail.lower()
    assert exit_code(diag) == ExitCode.FIXABLE
    assert {r for s in diag.plan for r in s.resolves} <= {order[0]}


@pytest.mark.parametrize(
    "shown",
    [
        {"packages": {"tensorflow": "2.3.0", "nvidia-cuda-runtime-cu12": "12.3.101"}},
        {"libraries": {"libcudart.so.10.2": {"path": "/usr/local/cuda-10.2/lib64/libcudart.so"}}},
    ],
)
def test_what_is_installed_once_shown_leaves_one_reading(rules: Ruleset, shown: dict):
    doc = {
        "schema": "tffix.snapshot/1",
        "platform": {"os": "linux"},
        "tensorflow": {"version": "2.3.0"},
        "log": [LOAD_FAILED],
        **shown,
    }
    severities = [str(f.severity) for f in diagnose(parse_snapshot(doc), rules).findings]
    assert "info" not in severities


def test_a_cudnn_line_cut_off_before_its_compiled_version_still_names_the_mismatch(
    rules: Ruleset,
):
    line = (
        "2023-06-01 15:58:54.130390: E tensorflow/compiler/xla/stream_executor/cuda/"
        "cuda_dnn.cc:417] Loaded runtime CuDNN library: 8.1.1 but source was compiled wit"
    )
    snap = parse_snapshot(
        {"schema": "tffix.snapshot/1", "tensorflow": {"version": "2.12.0"}, "log": [line]}
    )
    first = diagnose(snap, rules).findings[0]
    assert first.id == "cudnn-version-mismatch"
    assert "cuDNN 8.1.1" in first.title and "built with cuDNN 8.6" in first.title


RECIPES = [
    "echo 'export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$CONDA_PREFIX/lib/:$CUDNN_PATH/lib' >> x.sh",
    'CUDNN_PATH=$(dirname $(python -c "import nvidia.cudnn;print(nvidia.cudnn.__file__)"))',
    "export LD_LIBRARY_PATH=/home/me/venv/lib/python3.10/site-packages/nvidia/cudnn/lib",
]


@pytest.mark.parametrize("recipe", RECIPES)
def test_the_guides_cudnn_path_recipe_reads_as_an_installed_wheel_the_loader_may_miss(
    rules: Ruleset, recipe: str
):
    doc = {
        "schema": "tffix.snapshot/1",
        "platform": {"os": "linux"},
        "tensorflow": {"version": "2.13.0"},
        "log": [recipe],
    }
    first = diagnose(parse_snapshot(doc), rules).findings[0]
    assert first.id == "cuda-libs-not-found"
    doc["log"] = [
        recipe,
        "E tensorflow/compiler/xla/stream_executor/cuda/cuda_dnn.cc:417] Loaded runtime CuDNN "
        "library: 8.1.0 but source was compiled with: 8.6.0.  CuDNN library needs to have "
        "matching major version and equal or higher minor version.",
    ]
    first = diagnose(parse_snapshot(doc), rules).findings[0]
    assert first.id == "ld-library-path-shadowing"
    assert "cuDNN 8.1.0" in first.title


def test_no_device_in_a_report_that_shows_no_gpus_names_masking_as_the_other_reading(
    rules: Ruleset,
):
    line = (
        "E tensorflow/stream_executor/cuda/cuda_driver.cc:351] failed call to cuInit: "
        "CUDA_ERROR_NO_DEVICE"
    )
    diag = diagnose(parse_snapshot({"schema": "tffix.snapshot/1", "log": [line]}), rules)
    assert _ids(diag)[:2] == [("no-nvidia-gpu", "error"), ("cuda-visible-devices-masked", "info")]
    shown = {"schema": "tffix.snapshot/1", "log": [line], "gpus": [{"name": "Tesla T4"}]}
    assert "info" not in {s for _i, s in _ids(diagnose(parse_snapshot(shown), rules))}


def test_a_windows_dll_that_does_not_load_names_the_same_readings(rules: Ruleset):
    line = (
        "W tensorflow/stream_executor/platform/default/dso_loader.cc:60] Could not load dynamic "
        "library 'cudart64_101.dll'; dlerror: cudart64_101.dll not found"
    )
    doc = {
        "schema": "tffix.snapshot/1",
        "platform": {"os": "windows"},
        "tensorflow": {"version": "2.3.0"},
        "log": [line],
    }
    diag = diagnose(parse_snapshot(doc), rules)
    assert _ids(diag)[:2] == [("cuda-version-mismatch", "error"), ("cuda-libs-missing", "info")]
    readings = {f.id: f for f in diag.findings}
    assert "where cudart64_" in readings["cuda-libs-not-found"].detail
    doc["log"] = [line, r"C:\Program Files\NVIDIA GPU Computing Toolkit\CUDA\v10.2\bin"]
    assert "info" not in {s for _i, s in _ids(diagnose(parse_snapshot(doc), rules))}
