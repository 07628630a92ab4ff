"""Evidence read from reports as people paste them: a traceback cut short inside TensorFlow's
own import, a TensorFlow message whose head was retyped but whose fixed tail was copied."""

from __future__ import annotations

import pytest

from tffix.diagnosis import diagnose
from tffix.document import parse_snapshot
from tffix.facts import Facts
from tffix.logparse import scan_log
from tffix.ruleset import Ruleset


def _ids(rules: Ruleset, log: list[str], **doc: object) -> list[str]:
    snap = parse_snapshot({"schema": "tffix.snapshot/1", "log": log, **doc})
    return [f.id for f in diagnose(snap, rules).findings]


SITE = "/opt/env/lib/python3.10/site-packages/tensorflow"


def _traceback(*frames: tuple[str, str, str], head: str = "import tensorflow as tf") -> list[str]:
    """A traceback of ``python train.py`` importing TensorFlow, with *frames* (file under the
    package, function, source line) after the script's own frame, and no exception line."""
    lines = [
        "Traceback (most recent call last):",
        '  File "train.py", line 1, in <module>',
        f"    {head}",
    ]
    for file, func, code in frames:
        lines += [f'  File "{SITE}/{file}", line 37, in {func}', f"    {code}"]
    return lines


INIT = ("__init__.py", "<module>", "from tensorflow.python import pywrap_tensorflow")
PYTHON_INIT = ("python/__init__.py", "<module>", "from tensorflow.python.eager import context")


@pytest.mark.parametrize(
    "last",
    [
        ("python/eager/context.py", "<module>", "from tensorflow.core.protobuf import config_pb2"),
        ("python/framework/dtypes.py", "<module>", "import numpy as np"),
        ("_api/v2/__init__.py", "<module>", "from tensorflow._api.v2 import compat"),
    ],
)
def test_traceback_cut_inside_tf_import_is_an_import_error(rules: Ruleset, last) -> None:
    ids = _ids(rules, _traceback(INIT, PYTHON_INIT, last), python={"version": "3.10.12"})
    assert ids[0] == "tf-import-error"
    assert "unrecognized-error" not in ids  # the Traceback line is explained


@pytest.mark.parametrize(
    "log",
    [
        # the last frame loads the native library: a shared library failed, not Python
        _traceback(
            INIT,
            (
                "python/pywrap_tensorflow.py",
                "<module>",
                "from tensorflow.python._pywrap_tensorflow_internal import *",
            ),
        ),
        # the exception line is there: the existing readers of exception text decide
        [*_traceback(INIT, PYTHON_INIT), "RuntimeError: the frobnicator is not available"],
        # a failure while running TensorFlow (not at module level): not the import
        _traceback(
            ("python/eager/execute.py", "quick_execute", "tensors = pywrap_tfe.TFE_Py_Execute("),
            head="model.fit(x, y)",
        ),
        _traceback(
            INIT,
            ("python/keras/engine/training.py", "fit", "tmp_logs = self.train_function(iterator)"),
        ),
        # a CUDA library failing to load in the same log: the library checks say which
        [
            "Could not load dynamic library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: "
            "cannot open shared object file: No such file or directory",
            *_traceback(INIT, PYTHON_INIT),
        ],
        # a folder of the user's named tensorflow, not the installed package
        [
            "Traceback (most recent call last):",
            '  File "/home/u/tensorflow/train.py", line 3, in <module>',
            "    import helpers",
        ],
    ],
)
def test_other_tracebacks_are_not_an_import_error(rules: Ruleset, log: list[str]) -> None:
    assert "tf-import-error" not in _ids(rules, log)


def _findings(rules: Ruleset, log: list[str], **doc: object):
    snap = parse_snapshot({"schema": "tffix.snapshot/1", "log": log, **doc})
    return diagnose(snap, rules).findings


TAIL_7X = (
    "CuDNN library major and minor version needs to match or have higher minor version in "
    "case of CuDNN 7.0 or later version."
)
TAIL_8X = "CuDNN library needs to have matching major version and equal or higher minor version."
REST = [
    "If using a binary install, upgrade your CuDNN library.",
    "If building from sources, make sure the library loaded at runtime is compatible with the "
    "version specified during compile configuration.",
]


@pytest.mark.parametrize("tail", [TAIL_7X, TAIL_8X])
@pytest.mark.parametrize(
    "head",
    [
        "the runtime cuDNN is 7.0 but TF was compiled with 7.4 - got this:",  # retyped
        "2021-03-01 10:00:00.123456: E tensorflow/stream_executor/cuda/cuda_dnn.cc:3",  # cut
        "",  # the first line left out of the paste
    ],
)
def test_cudnn_mismatch_read_by_its_fixed_second_sentence(rules: Ruleset, head, tail) -> None:
    found = _findings(rules, [head, tail, *REST] if head else [tail, *REST])
    assert found[0].id == "cudnn-version-mismatch"
    assert "None" not in found[0].title


def test_cudnn_mismatch_split_keeps_its_versions(rules: Ruleset) -> None:
    log = ["Loaded runtime CuDNN library: 7.0.5 but source was compiled with: 7.1.4.", TAIL_7X]
    found = _findings(rules, log)
    assert found[0].id == "cudnn-version-mismatch"
    assert "7.0.5" in found[0].title and "7.1.4" in found[0].title


def test_the_sentence_quoted_inside_prose_is_not_the_message(rules: Ruleset) -> None:
    log = [f"the docs say: {TAIL_7X}"]
    assert "cudnn-version-mismatch" not in [f.id for f in _findings(rules, log)]


CONTAINER = {"platform": {"os": "linux", "container": "docker"}, "gpus": [{"name": "Tesla T4"}]}


@pytest.mark.parametrize(
    ("line", "driver", "cuda"),
    [
        ("docker run --gpus all -it tensorflow/tensorflow:2.5.0-gpu bash", "418.87", "11.2"),
        ("FROM tensorflow/tensorflow:1.15.5-gpu-py3", "384.81", "10.0"),
        ("$ docker pull docker.io/tensorflow/tensorflow:2.4.1-gpu-jupyter", "418.87", "11.0"),
    ],
)
def test_the_release_is_read_from_a_tensorflow_image_tag(rules: Ruleset, line, driver, cuda):
    found = _findings(rules, [line], driver={"version": driver}, **CONTAINER)
    old = [f for f in found if f.id == "driver-too-old"]
    assert old and cuda in old[0].title and "log[0]" in old[0].evidence


def _image_version(rules: Ruleset, log: list[str], **doc: object) -> str | None:
    snap = parse_snapshot({"schema": "tffix.snapshot/1", "log": log, **doc})
    return Facts(snap, rules, scan_log(snap.log, rules)).tf_version


@pytest.mark.parametrize(
    ("log", "doc", "version"),
    [
        (["docker run tensorflow/tensorflow:latest-gpu"], {}, None),  # no release in the tag
        (["docker run tensorflow/tensorflow:nightly-gpu"], {}, None),
        (
            ["tried tensorflow/tensorflow:2.4.1-gpu", "then tensorflow/tensorflow:2.6.0-gpu"],
            {},
            None,
        ),
        (["docker run myorg/tensorflow:2.4.1-gpu"], {}, None),  # not TensorFlow's own image
        (
            ["docker run tensorflow/tensorflow:2.4.1-gpu"],
            {"tensorflow": {"version": "2.6.0"}},
            "2.6.0",
        ),
        (
            ["docker run tensorflow/tensorflow:2.4.1-gpu"],
            {"packages": {"tensorflow": "2.6.0"}},
            "2.6.0",
        ),
        (
            ["docker run tensorflow/tensorflow:2.4.1-gpu", "tensorflow/tensorflow:2.4.1-gpu"],
            {},
            "2.4.1",
        ),
    ],
)
def test_an_image_tag_names_the_release_only_alone(rules: Ruleset, log, doc, version) -> None:
    assert _image_version(rules, log, **doc) == version


STAMP = "2019-05-02 10:00:00.123456"
STARTUP = [
    f"{STAMP}: I tensorflow/core/platform/cpu_feature_guard.cc:141] Your CPU supports "
    "instructions that this TensorFlow binary was not compiled to use: AVX2 FMA",
    f"{STAMP}: I tensorflow/core/common_runtime/process_util.cc:71] Creating new thread pool "
    "with default inter op setting: 2.",
]
NO_DEVICES = "Device mapping: no known devices."


@pytest.mark.parametrize(
    "log",
    [
        [*STARTUP, NO_DEVICES],
        [
            STARTUP[0],
            f"{STAMP}: I tensorflow/core/common_runtime/direct_session.cc:317] {NO_DEVICES}",
        ],
        [
            "I0000 00:00:1745040030.652070    1012 cpu_feature_guard.cc:210] This TensorFlow "
            "binary is optimized",
            f"I0000 00:00:1745040030.652070    1012 direct_session.cc:404] {NO_DEVICES}",
        ],
    ],
)
def test_a_log_with_no_gpu_setup_at_all_is_a_cpu_build(rules: Ruleset, log) -> None:
    found = _findings(rules, log, gpus=[{"name": "Quadro P2000"}], platform={"os": "linux"})
    assert found[0].id == "tf-cpu-only-build"


@pytest.mark.parametrize(
    "log",
    [
        # the GPU setup is there: CUDA was tried
        [
            *STARTUP,
            f"{STAMP}: E tensorflow/stream_executor/cuda/cuda_driver.cc:300] failed call to "
            "cuInit: CUDA_ERROR_NO_DEVICE",
            NO_DEVICES,
        ],
        [
            *STARTUP,
            f"{STAMP}: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1432] Found device 0 "
            "with properties:",
            NO_DEVICES,
        ],
        [
            "Could not load dynamic library 'libcudart.so.10.1'; dlerror: libcudart.so.10.1: "
            "cannot open shared object file",
            *STARTUP,
            NO_DEVICES,
        ],
        # no INFO line of TensorFlow's: the log level may hide the GPU setup
        [NO_DEVICES],
        [f"{STAMP}: W tensorflow/core/frob.cc:3] a warning", NO_DEVICES],
        # the session maps a device, or nothing says what it maps
        STARTUP,
    ],
)
def test_cuda_tried_or_hidden_is_not_read_as_a_cpu_build(rules: Ruleset, log) -> None:
    found = _findings(rules, log, gpus=[{"name": "Quadro P2000"}], platform={"os": "linux"})
    assert "tf-cpu-only-build" not in [f.id for f in found]
