"""What the loader's own failure text says, wherever a report puts it: glibc's dlerror
("FILE: cannot open shared object file") in an ImportError, in the log or in the snapshot's
``tensorflow.import_error``, cut after the file name or not, and TensorFlow's line that its
CUDA runtime did not load."""

from __future__ import annotations

import pytest

from tffix.diagnosis import diagnose
from tffix.document import parse_snapshot
from tffix.facts import Facts
from tffix.logparse import scan_log
from tffix.model import Diagnosis
from tffix.ruleset import Ruleset

GLIBC = "cannot open shared object file: No such file or directory"


def _diagnose(rules: Ruleset, **doc: object) -> Diagnosis:
    return diagnose(parse_snapshot({"schema": "tffix.snapshot/1", **doc}), rules)


def _facts(rules: Ruleset, **doc: object) -> Facts:
    snap = parse_snapshot({"schema": "tffix.snapshot/1", **doc})
    return Facts(snap, rules, scan_log(snap.log, rules))


@pytest.mark.parametrize(
    ("error", "soname"),
    [
        (f"ImportError: libcublas.so.9.0: {GLIBC}", "libcublas.so.9.0"),
        ("ImportError: libcublas.so.9.0", "libcublas.so.9.0"),  # cut after the name
        (f"libcudnn.so.7: {GLIBC}", "libcudnn.so.7"),
        (
            f"ImportError: libcudart.so.10.1: {GLIBC}\n\nFailed to load the native",
            "libcudart.so.10.1",
        ),
        # not a library that failed to load: nothing is read from these
        ("ImportError: /x/_pywrap_tensorflow_internal.so: undefined symbol: _ZN10tensorflow", None),
        ("ImportError: libcublas.so.9.0 is the one it wants, says the reporter", None),
        ("ModuleNotFoundError: No module named 'tensorflow'", None),
    ],
)
def test_the_library_an_import_error_names(rules: Ruleset, error: str, soname: str | None) -> None:
    facts = _facts(rules, tensorflow={"version": "1.12.0", "import_error": error})
    assert facts.import_failed_soname == soname


def test_a_cuda_library_in_the_import_error_alone_is_a_library_that_failed(rules: Ruleset) -> None:
    for error in (f"ImportError: libcublas.so.9.0: {GLIBC}", "ImportError: libcublas.so.9.0"):
        diag = _diagnose(
            rules, platform={"os": "linux"}, tensorflow={"version": "1.12.0", "import_error": error}
        )
        first = diag.findings[0]
        # CUDA 9.0's name: another CUDA release installed is the likeliest reading
        assert first.id == "cuda-version-mismatch", diag.findings
        assert "tensorflow.import_error" in first.evidence
        assert "cuda-libs-missing" in {f.id for f in diag.findings}
    other = _diagnose(
        rules,
        platform={"os": "linux"},
        tensorflow={"version": "1.12.0", "import_error": f"ImportError: libfoo.so.1: {GLIBC}"},
    )
    assert "cuda-libs-missing" not in {f.id for f in other.findings}  # not a CUDA library


@pytest.mark.parametrize(
    "where",
    [
        {"log": [f"ImportError: libcuda.so.1: {GLIBC}"]},
        {
            "tensorflow": {
                "version": "1.12.0",
                "import_error": f"ImportError: libcuda.so.1: {GLIBC}",
            }
        },
        {"log": ["W dso_loader.cc:55] Could not load dynamic library 'libcuda.so.1'; dlerror: x"]},
    ],
    ids=["log-glibc", "import-error", "log-tensorflow"],
)
def test_no_libcuda_in_a_container_is_a_container_without_the_gpu(
    rules: Ruleset, where: dict[str, object]
) -> None:
    inside = _diagnose(rules, platform={"os": "linux", "container": "docker"}, **where)
    assert [f.id for f in inside.findings][:1] == ["container-no-gpu"], inside.findings
    outside = _diagnose(rules, platform={"os": "linux", "container": None}, **where)
    assert [f.id for f in outside.findings][:1] == ["driver-not-loaded"], outside.findings
    assert not any(f.id == "unrecognized-error" for f in inside.findings + outside.findings)


def test_no_libcuda_with_nvml_answering_inside_is_not_a_container_without_the_gpu(
    rules: Ruleset,
) -> None:
    """NVML, loaded inside the container, lists a GPU: the runtime mounted the driver's
    libraries, so a missing libcuda there is not 'no GPU access'."""
    diag = _diagnose(
        rules,
        platform={"os": "linux", "container": "docker"},
        driver={"version": "550.54.14", "cuda": "12.4", "source": "nvml"},
        gpus=[{"name": "NVIDIA A100-SXM4-40GB", "compute_capability": "8.0"}],
        log=[f"ImportError: libcuda.so.1: {GLIBC}"],
    )
    assert "container-no-gpu" not in {f.id for f in diag.findings}


STUB = (
    "2025-05-28 22:39:30.743362: I tensorflow/tsl/cuda/cudart_stub.cc:28] Could not find cuda "
    "drivers on your machine, GPU will not be used."
)


def test_the_cudart_stub_line_of_an_unknown_release_is_a_best_guess(rules: Ruleset) -> None:
    diag = _diagnose(rules, platform={"os": "linux"}, log=[STUB, "Num GPUs Available:  0"])
    first = diag.findings[0]
    assert first.id == "cuda-libs-missing" and "best guess" in first.title
    assert "log[0]" in first.evidence and "libcudart" in first.title
    # without TensorFlow's line, nothing says CUDA failed: no guess
    bare = _diagnose(rules, platform={"os": "linux"}, log=["Num GPUs Available:  0"])
    assert "cuda-libs-missing" not in {f.id for f in bare.findings}
    # and where TensorFlow lists the GPU, the line is no problem
    seen = _diagnose(rules, platform={"os": "linux"}, log=[STUB, "Num GPUs Available:  1"])
    assert "cuda-libs-missing" not in {f.id for f in seen.findings}


@pytest.mark.parametrize(
    "line",
    [
        "F c:\\tf_jenkins\\home\\workspace\\release-win\\device\\gpu\\os\\windows\\tensorflow"
        "\\stream_executor\\cuda\\cuda_driver.cc:94] Check failed: s.ok() could not find cuDevice",
        "E tensorflow/stream_executor/cuda/cuda_blas.cc:428] failed to run cuBLAS routine",
    ],
)
def test_a_line_of_the_cuda_platform_code_dates_a_windows_report(rules: Ruleset, line: str) -> None:
    """A Windows report that does not say its release, but whose TensorFlow printed from its
    CUDA platform code (compiled only into CUDA builds), ran a GPU build: one of the releases
    that had Windows GPU builds, so "no GPU build on native Windows" is not its answer."""
    gpu = _diagnose(rules, platform={"os": "windows"}, log=[line])
    assert "windows-native-unsupported" not in {f.id for f in gpu.findings}
    cpu_line = "I tensorflow/core/platform/cpu_feature_guard.cc:142] Your CPU supports AVX2"
    plain = _diagnose(rules, platform={"os": "windows"}, log=[cpu_line])
    assert [f.id for f in plain.findings][:1] == ["windows-native-unsupported"]
