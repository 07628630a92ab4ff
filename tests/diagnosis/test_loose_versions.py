"""Versions people paste beside TensorFlow's lines, and the causes they decide.

The issue template's "CUDA/cuDNN version:" answer, the banner of NVIDIA's CUDA images, and the
CUDA variant another framework was installed in: each read as the version it states, and used
against what the TensorFlow release was built for.
"""

from __future__ import annotations

import pytest

from tffix.diagnosis import diagnose
from tffix.document import parse_snapshot
from tffix.facts import Facts
from tffix.logparse import scan_log
from tffix.ruleset import Ruleset


def _snap(**doc: object):
    return parse_snapshot({"schema": "tffix.snapshot/1", **doc})


def _facts(rules: Ruleset, **doc: object) -> Facts:
    snap = _snap(**doc)
    return Facts(snap, rules, scan_log(snap.log, rules))


def _ids(rules: Ruleset, **doc: object) -> list[str]:
    return [f.id for f in diagnose(_snap(**doc), rules).findings]


@pytest.mark.parametrize(
    ("line", "cudnn"),
    [
        ("- CUDA/cuDNN version: 10.1/8.0.2.39", "8.0.2.39"),
        ("CUDA/cuDNN version: 11.2, 8.1.1", "8.1.1"),
        ("CUDA/cuDNN version: CUDA 11.2 / cuDNN 8.1", "8.1"),
        ("CUDA/cuDNN version: 11.0 / 8", "8"),
        ("CUDA/cuDNN version: 11.2 and 8.1", "8.1"),
        ("cuDNN version: 8.1", "8.1"),
        ("CUDA 10.0, CUDNN 7.4.1", "7.4.1"),
        ("cudnn=8.1.0", "8.1.0"),
        ("cudnn                     8.0.5.39             h01f27c4_1", "8.0.5.39"),
        # the issue form's answer, its label a heading of its own
        ("12.5/9.2.1", "9.2.1"),
        (" 11.2 / 8.1.0 ", "8.1.0"),
        ("2023/12/25", None),
        # no cuDNN in the answer: the CUDA version alone is not split into a cuDNN
        ("CUDA/cuDNN version: 11.2", None),
        ("- CUDA/cuDNN version: N/A", None),
    ],
)
def test_the_issue_templates_cudnn_answer(rules: Ruleset, line: str, cudnn: str | None):
    got = [str(v) for v, _ in _facts(rules, log=[line]).cudnn_reported]
    assert got == ([cudnn] if cudnn else [])


@pytest.mark.parametrize(
    ("line", "toolkit"),
    [
        ("CUDA Version 12.1.1", "12.1"),  # the nvidia/cuda image banner: the image's toolkit
        ("  CUDA Version 11.8.0  ", "11.8"),
        # nvidia-smi's header: the driver's ceiling, not a toolkit
        ("| NVIDIA-SMI 535.54.03   Driver Version: 535.54.03   CUDA Version: 12.2     |", None),
        ("The CUDA Version 12.1.1 image did not work", None),  # prose, not the banner
        # a Windows toolkit folder, a `conda list` row
        (r"set PATH=C:\Program Files\NVIDIA GPU Computing Toolkit\CUDA\v11.2\bin;%PATH%", "11.2"),
        ("cudatoolkit               11.2.2              he111cf0_8    conda-forge", "11.2"),
        ("cuda-version              12.4                 h3060b56_3    conda-forge", "12.4"),
    ],
)
def test_the_cuda_image_banner_is_the_images_toolkit(rules: Ruleset, line: str, toolkit):
    got = [f"{v.major}.{v.minor}" for v, _ in _facts(rules, log=[line]).cuda_toolkits]
    assert got == ([toolkit] if toolkit else [])


def test_a_cuda_image_of_another_major_is_a_version_mismatch(rules: Ruleset):
    ids = _ids(
        rules,
        platform={"os": "linux", "container": "docker"},
        tensorflow={"version": "2.13"},
        log=["CUDA Version 12.1.1"],
    )
    assert ids[:1] == ["cuda-version-mismatch"]


CUDNN7 = (
    "W tensorflow/stream_executor/platform/default/dso_loader.cc:59] Could not load dynamic "
    "library 'libcudnn.so.7'; dlerror: libcudnn.so.7: cannot open shared object file: No such "
    "file or directory"
)


def test_a_cudnn_of_another_major_installed_is_not_a_missing_library(rules: Ruleset):
    doc = {"platform": {"os": "linux"}, "tensorflow": {"version": "2.3.0"}}
    with_version = _ids(rules, **doc, log=["- CUDA/cuDNN version: 10.1/8.0.2.39", CUDNN7])
    assert with_version == ["cudnn-version-mismatch"]
    # without the installed version the same failed load is a missing library
    assert _ids(rules, **doc, log=[CUDNN7])[:1] == ["cuda-libs-missing"]


def test_a_cudnn_of_the_asked_major_does_not_explain_a_failed_load(rules: Ruleset):
    doc = {"platform": {"os": "linux"}, "tensorflow": {"version": "2.3.0"}}
    ids = _ids(rules, **doc, log=["- CUDA/cuDNN version: 10.1/7.6.5", CUDNN7])
    assert "cuda-libs-missing" in ids or "cuda-libs-not-found" in ids


@pytest.mark.parametrize(
    ("tf", "line", "conflict"),
    [
        ("2.13.0", 'pip install "jax[cuda12_pip]==0.4.34" -f https://x/jax_releases.html', True),
        ("2.13.0", "pip install jax[cuda12]", True),
        ("2.15.0", "pip install -U jax[cuda11_pip]", True),
        ("2.15.0", "pip install -U jax[cuda12_pip]", False),  # 2.15 is a CUDA 12 build
        ("2.16.1", "pip install torch==2.0.1+cu118", True),
        ("2.16.1", "pip install torch --index-url https://download.pytorch.org/whl/cu118", True),
        ("2.16.1", "pip install torch --index-url https://download.pytorch.org/whl/cu121", False),
        ("2.16.1", "pip install jax", False),  # no CUDA variant named
    ],
)
def test_another_frameworks_cuda_major(rules: Ruleset, tf: str, line: str, conflict: bool):
    ids = _ids(rules, platform={"os": "linux"}, tensorflow={"version": tf}, log=[line])
    assert ("framework-pin-conflict" in ids) is conflict


def test_a_framework_variant_from_the_package_list(rules: Ruleset):
    ids = _ids(
        rules,
        platform={"os": "linux"},
        packages={"tensorflow": "2.13.1", "jax-cuda12-plugin": "0.4.30"},
    )
    assert ids[:1] == ["framework-pin-conflict"]


@pytest.mark.parametrize(
    ("doc", "guessed"),
    [
        ({"driver": {"version": "581.15", "cuda": "13.0"}}, True),
        ({"platform": {"os": "linux"}, "gpus": [{"name": "NVIDIA GeForce RTX 3090"}]}, True),
        ({"gpus": [{"name": "AMD Radeon RX 6800"}]}, False),  # no NVIDIA GPU shown
        ({"platform": {"os": "macos"}, "driver": {"version": "581.15"}}, False),
        # the CUDA the machine has is shown: nothing to guess from an unknown release
        (
            {"driver": {"version": "550.54.14"}, "log": ["Cuda compilation tools, release 12.3"]},
            False,
        ),
        (
            {"driver": {"version": "550.54.14"}, "packages": {"nvidia-cudnn-cu12": "9.3.0.75"}},
            False,
        ),
    ],
)
def test_a_best_guess_without_the_release(rules: Ruleset, doc, guessed: bool):
    findings = diagnose(_snap(**doc), rules).findings
    guess = [f for f in findings if f.title.startswith("best guess")]
    assert bool(guess) is guessed
    if guessed:
        assert guess[0].id == "cuda-libs-missing" and "which TensorFlow release" in guess[0].title


NO_DEVICE = (
    "E tensorflow/stream_executor/cuda/cuda_driver.cc:318] failed call to cuInit: "
    "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected"
)
RETRIEVING = (
    "I tensorflow/stream_executor/cuda/cuda_diagnostics.cc:169] retrieving CUDA diagnostic "
    "information for host: worker-3"
)
WIN_RETRIEVING = (
    "I c:\\tf_jenkins\\workspace\\tensorflow\\stream_executor\\cuda\\cuda_diagnostics.cc:158] "
    "retrieving CUDA diagnostic information for host: DESKTOP-1"
)
NOT_RUNNING = (
    "I tensorflow/stream_executor/cuda/cuda_diagnostics.cc:156] kernel driver does not appear "
    "to be running on this host (box): /proc/driver/nvidia/version does not exist"
)


@pytest.mark.parametrize(
    ("doc", "first"),
    [
        # past the driver and /dev/nvidia0 checks, cuInit finds nothing: the GPUs are hidden
        (
            {"platform": {"os": "linux"}, "log": [NO_DEVICE, RETRIEVING]},
            "cuda-visible-devices-masked",
        ),
        (
            {"gpus": [{"name": "NVIDIA A2"}], "log": [NO_DEVICE, RETRIEVING]},
            "cuda-visible-devices-masked",
        ),
        # without the diagnostics line, or with the driver not running, it is not masking
        ({"platform": {"os": "linux"}, "log": [NO_DEVICE]}, "no-nvidia-gpu"),
        ({"platform": {"os": "linux"}, "log": [NO_DEVICE, NOT_RUNNING]}, "driver-not-loaded"),
    ],
)
def test_cuinit_no_device_past_the_device_node_checks(rules: Ruleset, doc, first: str):
    ids = _ids(rules, **doc)
    assert ids[:1] == [first]
    if first == "cuda-visible-devices-masked":
        assert "no-nvidia-gpu" not in ids and "driver-not-loaded" not in ids


@pytest.mark.parametrize(
    "doc",
    [
        # Windows builds skip the checks before that line: it proves nothing there
        {"platform": {"os": "windows"}, "log": [NO_DEVICE, RETRIEVING]},
        {"log": [NO_DEVICE, WIN_RETRIEVING]},
        # a container's own checks explain a missing device better
        {"platform": {"os": "linux", "container": "docker"}, "log": [NO_DEVICE, RETRIEVING]},
        # a live snapshot shows the variable when it is set: unset means not masked
        {
            "platform": {"os": "linux"},
            "packages": {"tensorflow": "2.15.0"},
            "extra": {"packages_source": "metadata"},
            "log": [NO_DEVICE, RETRIEVING],
        },
    ],
)
def test_no_masking_inferred_where_the_line_proves_nothing(rules: Ruleset, doc):
    findings = diagnose(_snap(**doc), rules).findings
    assert not any(f.title.startswith("the driver runs and /dev/nvidia0") for f in findings)


@pytest.mark.parametrize(
    ("doc", "no_gpu"),
    [
        ({"gpus": [{"name": "Intel (R) UHD Graphics 620"}]}, True),
        ({"platform": {"os": "windows"}, "gpus": [{"name": "AMD Radeon RX 580"}]}, True),
        (
            {
                "gpus": [{"name": "Intel Iris Xe"}, {"name": "AMD Radeon Vega 8"}],
                "log": [NO_DEVICE],
            },
            True,
        ),
        # an NVIDIA one beside it, or an NVIDIA driver answering: the iGPU is not the story
        ({"gpus": [{"name": "Intel UHD 630"}, {"name": "GeForce GTX 1650"}]}, False),
        ({"gpus": [{"name": "Intel UHD 630"}], "driver": {"version": "550.54.14"}}, False),
        # macOS has its own cause; ROCm builds use AMD GPUs on purpose
        ({"platform": {"os": "macos"}, "gpus": [{"name": "AMD Radeon Pro 5500M"}]}, False),
        (
            {"packages": {"tensorflow-rocm": "2.14.0"}, "gpus": [{"name": "AMD Radeon RX 7900"}]},
            False,
        ),
    ],
)
def test_only_another_vendors_gpu_listed(rules: Ruleset, doc, no_gpu: bool):
    ids = _ids(rules, **doc)
    assert (ids[:1] == ["no-nvidia-gpu"]) is no_gpu


METAL_DEVICE = (
    "2021-11-22 08:20:43.007998: I tensorflow/core/common_runtime/pluggable_device/"
    "pluggable_device_factory.cc:271] Created TensorFlow device (/job:localhost/replica:0/task:0/"
    "device:GPU:0 with 0 MB memory) -> physical PluggableDevice (device: 0, name: METAL, pci bus "
    "id: <undefined>)"
)


def test_a_gpu_created_by_a_device_plugin_is_a_listed_gpu(rules: Ruleset):
    snap = _snap(platform={"os": "macos"}, gpus=[{"name": "Apple M1 Pro"}], log=[METAL_DEVICE])
    diag = diagnose(snap, rules)
    assert diag.gpu_visible is True
    assert not [f for f in diag.findings if f.severity.value == "error"]


NO_TF = "ModuleNotFoundError: No module named 'tensorflow'"


@pytest.mark.parametrize(
    ("doc", "first"),
    [
        # Python has no tensorflow, and nothing shows one installed
        (
            {"platform": {"os": "linux"}, "log": ["import tensorflow as tf", NO_TF]},
            "tf-not-installed",
        ),
        ({"log": ["ImportError: No module named tensorflow"]}, "tf-not-installed"),
        # ... while pip or the package list shows it installed: another interpreter runs the code
        (
            {
                "log": [
                    "Requirement already satisfied: tensorflow in ./venv/lib/python3.10/"
                    "site-packages (2.15.0)",
                    NO_TF,
                ]
            },
            "wrong-interpreter",
        ),
        ({"packages": {"tensorflow": "2.15.0"}, "log": [NO_TF]}, "wrong-interpreter"),
    ],
)
def test_python_saying_there_is_no_tensorflow(rules: Ruleset, doc, first: str):
    diag = diagnose(_snap(**doc), rules)
    assert [f.id for f in diag.findings][:1] == [first]
    assert "unrecognized-error" not in [f.id for f in diag.findings]


@pytest.mark.parametrize(
    "line",
    [
        "ModuleNotFoundError: No module named 'tensorflow.python'",
        "ImportError: No module named tensorflow.contrib",
        "ModuleNotFoundError: No module named 'tensorflow_hub'",
    ],
)
def test_a_missing_submodule_or_other_package_is_not_a_missing_tensorflow(rules: Ruleset, line):
    ids = _ids(rules, packages={"tensorflow": "2.15.0"}, log=[line])
    assert "tf-not-installed" not in ids and "wrong-interpreter" not in ids


NONE_FOUND = (
    "ERROR: Could not find a version that satisfies the requirement {req} (from versions: {av})"
)


@pytest.mark.parametrize(
    ("python", "req", "available", "title"),
    [
        # the release asked for has no wheel for this Python: pip's list shows what it has
        ("3.12", "tensorflow==2.15.0", "2.16.0rc0, 2.16.1", "TensorFlow 2.15.0 has no wheels"),
        ("3.11", "tensorflow-gpu==2.10.0", "none", "TensorFlow 2.10.0 has no wheels"),
        (None, "tensorflow==2.15.0", "2.16.1", "pip found no TensorFlow 2.15.0 wheel"),
        # a Python current releases support, yet no wheel at all: the interpreter or platform
        ("3.11", "tensorflow", "none", "a 32-bit Python, or a platform without"),
    ],
)
def test_pip_finding_no_wheel(rules: Ruleset, python, req: str, available: str, title: str):
    doc: dict[str, object] = {"log": [NONE_FOUND.format(req=req, av=available)]}
    if python:
        doc["python"] = {"version": python}
    first = diagnose(_snap(**doc), rules).findings[0]
    assert first.id == "python-version-unsupported" and title in first.title


def test_a_pip_list_holding_the_version_asked_is_not_a_missing_wheel(rules: Ruleset):
    line = NONE_FOUND.format(req="tensorflow==2.15.0", av="2.14.0, 2.15.0, 2.16.1")
    assert "python-version-unsupported" not in _ids(rules, python={"version": "3.11"}, log=[line])


CUDART11 = (
    "W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic "
    "library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: cannot open shared object file: "
    "No such file or directory"
)


@pytest.mark.parametrize(
    ("extra", "first"),
    [
        # the toolkit the build loads is shown installed: the loader does not find it
        (
            {"log": ["Cuda compilation tools, release 11.2, V11.2.152", CUDART11]},
            "cuda-libs-not-found",
        ),
        ({"packages": {"cudatoolkit": "11.2.2"}, "log": [CUDART11]}, "cuda-libs-not-found"),
        (
            {"log": ["/usr/local/cuda-11.2/lib64/libcudart.so.11.0", CUDART11]},
            "cuda-libs-not-found",
        ),
        # another CUDA shown: a version mismatch; nothing shown: missing
        (
            {"log": ["Cuda compilation tools, release 10.1, V10.1.243", CUDART11]},
            "cuda-version-mismatch",
        ),
        ({"log": [CUDART11]}, "cuda-libs-missing"),
    ],
)
def test_a_failed_load_of_a_library_the_report_shows_installed(rules: Ruleset, extra, first):
    doc = {"platform": {"os": "linux"}, "tensorflow": {"version": "2.10.0"}, **extra}
    assert _ids(rules, **doc)[:1] == [first]


@pytest.mark.parametrize(
    "lines",
    [
        [
            "tensorflow.python.framework.errors_impl.NotFoundError: dlopen(/Users/u/miniforge3/lib/"
            "python3.9/site-packages/tensorflow-plugins/libmetal_plugin.dylib, 0x0006): symbol "
            "not found in flat namespace (__ZN10tensorflow16TensorShapeProtoC1ERKS0_)"
        ],
        [
            "  Symbol not found: _TF_AssignUpdateVariable",
            "  Referenced from: /Users/u/venv/lib/python3.8/site-packages/tensorflow-plugins/"
            "libmetal_plugin.dylib",
        ],
    ],
)
def test_dylds_words_for_a_metal_plugin_that_does_not_load(rules: Ruleset, lines):
    ids = _ids(rules, platform={"os": "macos"}, log=lines)
    assert ids[:1] == ["metal-plugin-incompatible"]


@pytest.mark.parametrize(
    ("doc", "first"),
    [
        # NVIDIA's images put their CUDA runtime on the path: no cudart there is another CUDA
        (
            {
                "platform": {"os": "linux", "container": "docker"},
                "env": {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib:/usr/local/nvidia/lib64"},
                "log": [CUDART11],
            },
            "cuda-version-mismatch",
        ),
        # not a container, or not NVIDIA's image layout: nothing says a CUDA is there
        (
            {
                "platform": {"os": "linux"},
                "env": {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib64"},
                "log": [CUDART11],
            },
            "cuda-libs-missing",
        ),
        (
            {"platform": {"os": "linux", "container": "docker"}, "log": [CUDART11]},
            "cuda-libs-missing",
        ),
        # cuDNN is only in the -cudnn images: its absence is not another version
        (
            {
                "platform": {"os": "linux", "container": "docker"},
                "env": {"LD_LIBRARY_PATH": "/usr/local/nvidia/lib:/usr/local/nvidia/lib64"},
                "log": [CUDNN7],
            },
            "cuda-libs-missing",
        ),
    ],
)
def test_a_cuda_image_without_the_runtime_tensorflow_loads(rules: Ruleset, doc, first: str):
    assert _ids(rules, **doc)[:1] == [first]


@pytest.mark.parametrize(
    ("lines", "gpus"),
    [
        (["Num GPUs Available:  0"], False),
        (["Num GPUs Available:  2"], True),
        ([">>> tf.config.list_physical_devices('GPU')", "[]"], False),
        (["In [3]: tf.config.list_physical_devices(device_type='GPU')", "Out[3]: []"], False),
        (["print(tf.test.is_gpu_available())", "", "False"], False),
        (["GPU available: False"], False),
        (["is_gpu_available: True"], True),
        # a session's device placement log that maps no GPU
        (["Device mapping: no known devices."], False),
        # a call without its answer, or an answer to something else, says nothing
        ([">>> tf.config.list_physical_devices('GPU')"], None),
        ([">>> tf.config.list_physical_devices('CPU')", "[]"], None),
        (["import tensorflow as tf", "False"], None),
    ],
)
def test_what_the_reports_own_gpu_check_printed(rules: Ruleset, lines, gpus):
    assert _facts(rules, log=lines).gpu_visible is gpus


def test_a_printed_is_built_with_cuda_false_is_a_cpu_build(rules: Ruleset):
    doc = {"platform": {"os": "linux"}, "tensorflow": {"version": "2.15.0"}}
    lines = [">>> tf.test.is_built_with_cuda()", "False"]
    first = diagnose(_snap(**doc, log=lines), rules).findings[0]
    assert first.id == "tf-cpu-only-build" and first.evidence[0] == "log[1]"
    assert diagnose(_snap(**doc, log=["Num GPUs Available:  1"]), rules).gpu_visible is True


@pytest.mark.parametrize(
    "line",
    [
        "UnimplementedError: DNN library is not found. [[node conv2d/Conv2D]]",
        "InvalidArgumentError: No DNN in stream executor.",
        "InternalError: No DNN support for stream.",
    ],
)
def test_an_op_without_cudnn_names_cudnn(rules: Ruleset, line: str):
    ids = _ids(rules, platform={"os": "linux"}, log=[line])
    assert ids[:1] == ["cudnn-version-mismatch"]
    # with the loader saying libcudnn is not there, that comes first
    lines = [CUDNN7, line]
    assert _ids(rules, platform={"os": "linux"}, tensorflow={"version": "2.3.0"}, log=lines)[
        :1
    ] == ["cuda-libs-missing"]


CUSOLVER10 = (
    "Could not load dynamic library 'libcusolver.so.10'; dlerror: libcusolver.so.10: cannot "
    "open shared object file: No such file or directory"
)


@pytest.mark.parametrize(
    ("toolkit", "first"),
    [
        # libcusolver.so.10 is what the CUDA 10.1 and 11.0 lines load: CUDA 11.2 cannot serve it
        ("Cuda compilation tools, release 11.2, V11.2.152", "cuda-version-mismatch"),
        ("Cuda compilation tools, release 10.2, V10.2.89", "cuda-version-mismatch"),
        # CUDA 11.0 ships it: installed, and not found
        ("Cuda compilation tools, release 11.0, V11.0.221", "cuda-libs-not-found"),
    ],
)
def test_a_library_soname_against_the_toolkit_shown(rules: Ruleset, toolkit: str, first: str):
    assert _ids(rules, platform={"os": "linux"}, log=[toolkit, CUSOLVER10])[:1] == [first]


def test_pips_two_lines_for_a_missing_wheel_are_one_known_failure(rules: Ruleset):
    # a report that cut the "(from versions: …)" list off the first line
    log = [
        "ERROR: Could not find a version that satisfies the requirement tensorflow-gpu==1.15",
        "ERROR: No matching distribution found for tensorflow-gpu==1.15",
    ]
    assert _ids(rules, log=log) == ["python-version-unsupported"]


@pytest.mark.parametrize(
    ("os", "first"), [("macos", "cuda-version-mismatch"), ("linux", "cuda-version-mismatch")]
)
def test_dyld_failing_to_load_cuda_on_a_cuda_era_mac(rules: Ruleset, os: str, first: str):
    # TensorFlow up to 1.1 had CUDA builds for macOS: dyld's words for a CUDA library it
    # could not load are a CUDA library failure there, not an unknown error
    log = [
        "ImportError: dlopen(/Library/Python/3.5/site-packages/tensorflow/python/"
        "_pywrap_tensorflow.so, 10): Library not loaded: @rpath/libcudart.8.0.dylib",
        "  Reason: image not found",
    ]
    ids = _ids(rules, platform={"os": os}, log=log)
    assert ids[0] == first and "unrecognized-error" not in ids
    assert "cuda-libs-missing" in ids


def test_a_mac_without_a_failed_cuda_library_still_needs_metal(rules: Ruleset):
    assert _ids(rules, platform={"os": "macos"}, packages={"tensorflow": "2.15.0"})[0] == (
        "macos-needs-metal"
    )


@pytest.mark.parametrize(
    ("rows", "many"),
    [
        # conda-forge's CPU build beside defaults' GPU metapackage: two builds, one folder
        (["tensorflow 1.10.0 py36_0 conda-forge", "tensorflow-gpu 1.10.0 hf154084_0 defaults"], 1),
        # one pip installed beside conda's
        (["tensorflow-gpu 2.4.1 h30adc30_0 defaults", "tensorflow 2.4.1 pypi_0 pypi"], 1),
        # defaults' metapackages over one tensorflow-base build
        (
            [
                "tensorflow 2.4.1 gpu_py38h8a7d6ce_0 defaults",
                "tensorflow-base 2.4.1 gpu_py38h29c2da4_0 defaults",
                "tensorflow-gpu 2.4.1 h30adc30_0 defaults",
            ],
            0,
        ),
    ],
)
def test_conda_rows_of_two_channels_are_two_tensorflows(rules: Ruleset, rows, many: int):
    packages = {r.split()[0]: r.split()[1] for r in rows}
    ids = _ids(rules, packages=packages, log=["# Name Version Build Channel", *rows])
    assert ids.count("tf-multiple-distributions") == many


def test_the_container_toolkit_finding_no_driver_on_the_host(rules: Ruleset):
    log = [
        "docker run --gpus all -it --rm nvcr.io/nvidia/tensorflow:22.11-tf2-py3",
        "nvidia-container-cli: initialization error: load library failed: libnvidia-ml.so.1: "
        "cannot open shared object file: no such file or directory: unknown.",
    ]
    ids = _ids(rules, platform={"os": "linux", "container": "docker"}, log=log)
    assert ids[0] == "driver-not-loaded" and "container-toolkit-outdated" not in ids
    # the toolkit's other initialisation errors are still the toolkit's
    other = ["nvidia-container-cli: initialization error: nvml error: driver/library mismatch"]
    assert "container-toolkit-outdated" in _ids(rules, platform={"os": "linux"}, log=other)


@pytest.mark.parametrize("cut", ["NVIDIA-SMI", "IDIA-SMI", "SMI"])
def test_nvidia_smi_failing_with_the_start_of_its_line_cut(rules: Ruleset, cut: str):
    line = f"{cut} has failed because it couldn't communicate with the NVIDIA driver."
    ids = _ids(rules, platform={"os": "linux"}, gpus=[{"name": "GeForce GTX 1080"}], log=[line])
    assert ids[0] == "driver-not-loaded"


@pytest.mark.parametrize(
    ("version", "command", "first"),
    [
        ("2.16.1", "pip install tensorflow[and-cuda]", "cuda-libs-not-found"),
        ("2.16.1", "pip install tensorflow", "cuda-libs-missing"),
        ("2.15.1", "pip install tensorflow[and-cuda]", "cuda-libs-missing"),
    ],
)
def test_a_best_guess_for_a_release_that_does_not_find_its_wheels(
    rules: Ruleset, version: str, command: str, first: str
):
    # nothing failed in the log: only the install command, the release and the GPU are shown
    doc = {
        "platform": {"os": "linux"},
        "packages": {"tensorflow": version},
        "tensorflow": {"version": version},
        "gpus": [{"name": "NVIDIA GeForce RTX 3090"}],
        "log": [command],
    }
    assert _ids(rules, **doc)[0] == first


_OPENED = (
    "I tensorflow/stream_executor/platform/default/dso_loader.cc:49] Successfully opened "
    "dynamic library libcudart.so.11.0"
)


@pytest.mark.parametrize(
    ("failed", "first"),
    [
        # CUDA 12's cuSOLVER kept soname 11 and links nvJitLink 12: another CUDA's copy
        ("'libcusolver.so.11'; dlerror: libnvJitLink.so.12", "cuda-version-mismatch"),
        # a dependency of TensorFlow's own CUDA major: its folder is not on the path
        ("'libcublas.so.11'; dlerror: libcublasLt.so.11", "cuda-libs-not-found"),
        # the library itself is not there
        ("'libcusolver.so.11'; dlerror: libcusolver.so.11", "cuda-libs-missing"),
    ],
)
def test_a_library_found_whose_dependency_is_not(rules: Ruleset, failed: str, first: str):
    line = (
        "W tensorflow/stream_executor/platform/default/dso_loader.cc:60] Could not load "
        f"dynamic library {failed}: cannot open shared object file: No such file or directory"
    )
    assert _ids(rules, platform={"os": "linux"}, log=[_OPENED, line])[0] == first
