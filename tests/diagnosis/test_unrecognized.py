"""An error line nothing explains becomes an ``unrecognized-error`` finding that quotes it.

Also the per-era check of ``tffix explain``: a log pasted in the format of each source tree of
the catalogue (its noise lines and one catalogued message) names that message's cause.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.diagnosis.test_messages import RULES, printed_forms
from tffix.cli import main
from tffix.diagnosis import diagnose, exit_code
from tffix.document import parse_snapshot
from tffix.errors import ExitCode
from tffix.logparse import (
    clean_line,
    is_error_line,
    scan_log,
    snapshot_from_text,
    unrecognized_errors,
)
from tffix.messages import NOISE
from tffix.model import Severity

UNKNOWN_ERRORS = [
    # glog (TensorFlow's own prefix), absl and plain glog forms of an unknown E/F line
    "2021-03-01 10:00:00.123456: E tensorflow/core/kernels/frob.cc:12] Frobnicator jammed",
    "E0000 00:00:1745040030.652070    1012 frob.cc:12] Frobnicator jammed",
    "F1201 12:00:00.123456 4242 frob.cc:12] Check failed: frob != nullptr",
    # a known statement with an error tffix has no rule for
    "2021-03-01 10:00:00.123456: E tensorflow/stream_executor/cuda/cuda_driver.cc:318] failed "
    "call to cuInit: CUDA_ERROR_OPERATING_SYSTEM: OS call failed or operation not supported",
    "ERROR: Exception: pip's temporary directory vanished",
    "RuntimeError: the frobnicator is not available",
    "tensorflow.python.framework.errors_impl.UnknownError: frobnication failed [Op:Frob]",
    "2021-03-01 10:00:00.123456: W tensorflow/stream_executor/cuda/cuda_driver.cc:900] failed "
    "call to cuCtxCreate: CUDA_ERROR_OUT_OF_MEMORY: out of memory",
    "Segmentation fault (core dumped)",
    # the same forms behind a terminal's colours, a notebook's or a container runtime's prefix
    "\x1b[31mE0000 00:00:1745040030.652070    1012 frob.cc:12] Frobnicator jammed\x1b[0m",
    "trainer-1  | E0000 00:00:1745040030.652070    1012 frob.cc:12] Frobnicator jammed",
    # statuses printed at the start of a line: absl's names (2.x, XLA) and 1.x's error_name
    "INTERNAL: Frobnicator jammed while initialising",
    "FAILED_PRECONDITION: the frobnicator is not ready",
    "Internal: Frobnicator jammed while initialising",
    # a failed load in words no catalogued message uses (cuDNN's own loader, for one)
    "Could not load library libfrob_infer.so.8. Error: libfrob.so: cannot open shared object",
]
NOT_ERRORS = [
    "I tensorflow/core/common_runtime/gpu/gpu_device.cc:1418] Created TensorFlow device",
    "W tensorflow/core/frob.cc:3] a warning",
    "this is prose that mentions errors and exceptions in passing",
    "    raise RuntimeError('x')",
    "Package    Version",
    "Internal tools are not installed",  # a status name needs its colon and text
    "\x1b[32mI tensorflow/core/frob.cc:3] all good\x1b[0m",
]


@pytest.mark.parametrize("line", UNKNOWN_ERRORS)
def test_an_unknown_error_line_is_reported_and_quoted(line: str):
    assert is_error_line(line)
    snap = snapshot_from_text(f"tensorflow==2.15.0\n{line}", RULES)
    diag = diagnose(snap, RULES)
    found = [f for f in diag.findings if f.id == "unrecognized-error"]
    assert len(found) == 1
    assert found[0].evidence == ("log[1]",)
    assert " ".join(clean_line(line).split())[:120] in found[0].title
    assert found[0].severity == Severity.ERROR
    assert exit_code(diag) != ExitCode.OK


@pytest.mark.parametrize("line", NOT_ERRORS)
def test_lines_that_are_not_errors_are_left_alone(line: str):
    assert not is_error_line(line)
    assert unrecognized_errors([line], scan_log([line], RULES)) == ()


def test_known_noise_at_error_level_is_not_reported():
    lines = [
        "E0000 00:00:1745040030.652070    1012 cuda_dnn.cc:8579] Unable to register cuDNN "
        "factory: Attempting to register factory for plugin cuDNN when one has already been "
        "registered",
        "E0000 00:00:1745040030.652070    1012 cuda_blas.cc:1407] Unable to register cuBLAS "
        "factory: Attempting to register factory for plugin cuBLAS",
    ]
    assert unrecognized_errors(lines, scan_log(lines, RULES)) == ()


def test_a_recognised_error_is_not_reported_twice():
    line = (
        "2021-03-01 10:00:00.123456: E tensorflow/stream_executor/cuda/cuda_driver.cc:318] "
        "failed call to cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected"
    )
    diag = diagnose(snapshot_from_text(line, RULES), RULES)
    assert "unrecognized-error" not in [f.id for f in diag.findings]


def test_a_line_another_finding_cites_is_not_unrecognized():
    # cuInit's CUDA_ERROR_NOT_FOUND matches no catalogued message, but inside a WSL2 container
    # the container check names its cause and cites the line; the unknown line stays quoted
    cuinit = (
        "2024-05-27 18:05:31.089452: E external/local_xla/xla/stream_executor/cuda/"
        "cuda_driver.cc:282] failed call to cuInit: CUDA_ERROR_NOT_FOUND: named symbol not found"
    )
    doc = {
        "schema": "tffix.snapshot/1",
        "platform": {"os": "linux", "wsl": True, "container": "docker"},
        "log": [cuinit, UNKNOWN_ERRORS[0]],
    }
    findings = diagnose(parse_snapshot(doc), RULES).findings
    toolkit = next(f for f in findings if f.id == "container-toolkit-outdated")
    assert "log[0]" in toolkit.evidence
    [unknown] = [f for f in findings if f.id == "unrecognized-error"]
    assert unknown.evidence == ("log[1]",)
    # outside a container nothing explains it, so it is quoted
    doc["platform"] = {"os": "linux"}
    [unknown] = [
        f for f in diagnose(parse_snapshot(doc), RULES).findings if f.id == "unrecognized-error"
    ]
    assert unknown.evidence == ("log[0]", "log[1]")


def test_several_unknown_lines_make_one_finding_that_points_at_each():
    lines = [UNKNOWN_ERRORS[0], "I ok.cc:1] fine", UNKNOWN_ERRORS[5], UNKNOWN_ERRORS[6]]
    diag = diagnose(snapshot_from_text("\n".join(lines), RULES), RULES)
    found = [f for f in diag.findings if f.id == "unrecognized-error"]
    assert len(found) == 1
    assert found[0].evidence == ("log[0]", "log[2]", "log[3]")
    assert "(and 2 more error lines)" in found[0].title


def test_a_traceback_cut_short_is_reported_by_its_header():
    lines = ["Traceback (most recent call last):", '  File "train.py", line 3, in <module>']
    assert unrecognized_errors(lines, scan_log(lines, RULES)) == (0,)
    complete = [*lines, "    import frob", "ModuleNotFoundError: No module named 'frob'"]
    assert unrecognized_errors(complete, scan_log(complete, RULES)) == (3,)


def test_an_unknown_error_ranks_after_the_causes_tffix_can_name():
    text = "\n".join(
        [
            "2021-03-01 10:00:00.123456: E tensorflow/stream_executor/cuda/cuda_driver.cc:318]"
            " failed call to cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected",
            UNKNOWN_ERRORS[0],
        ]
    )
    diag = diagnose(snapshot_from_text(text, RULES), RULES)
    ids = [f.id for f in diag.findings]
    errors = [
        i
        for i, f in enumerate(diag.findings)
        if str(f.severity) == "error" and f.id != "unrecognized-error"
    ]
    assert errors and ids.index("unrecognized-error") > max(errors)
    assert all(
        str(f.severity) == "info" for f in diag.findings[ids.index("unrecognized-error") + 1 :]
    )


def test_explain_quotes_the_unknown_line(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    log = tmp_path / "tf.log"
    log.write_text(UNKNOWN_ERRORS[1] + "\n", encoding="utf-8")
    code = main(["explain", str(log)])
    out = capsys.readouterr().out
    assert code == ExitCode.OUTSIDE
    assert "unrecognized-error" in out and "Frobnicator jammed" in out
    assert "No problem found" not in out


# --------------------------------------------------------------------------- per-era explain


def _era_cases() -> list[tuple[str, str, str, str]]:
    """(tree, message id, cause, pasted log): that tree's noise lines around one message."""
    cases = []
    for tree in RULES.message_sources:
        noise = [
            line
            for msg in RULES.messages
            if msg.cause == NOISE
            for t, line in printed_forms(msg)
            if t == tree
        ][:12]
        for msg in RULES.messages:
            if msg.cause in {NOISE, ""}:
                continue
            lines = [line for t, line in printed_forms(msg) if t == tree]
            if not lines:
                continue
            around = noise
            if ".dll" in lines[0]:  # a Windows log: no Linux-only noise around it
                around = [n for n in noise if ".so" not in n and "/sys/" not in n]
            cases.append((tree, msg.id, msg.cause, "\n".join([*around[:6], lines[0], *around[6:]])))
    return cases


ERA_CASES = _era_cases()


def test_every_tree_has_era_cases():
    assert {tree for tree, *_ in ERA_CASES} == set(RULES.message_sources)


@pytest.mark.parametrize(
    ("tree", "message", "cause", "text"), ERA_CASES, ids=[f"{c[0]}:{c[1]}" for c in ERA_CASES]
)
def test_explain_names_the_cause_in_each_era(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tree: str,
    message: str,
    cause: str,
    text: str,
):
    release = RULES.message_sources[tree].release
    header = "" if "dev" in release else f"tensorflow=={release}\n"
    log = tmp_path / "pasted.log"
    log.write_text(header + text + "\n", encoding="utf-8")
    code = main(["explain", str(log)])
    out = capsys.readouterr().out
    assert f"[{cause}]" in out, out
    assert "unrecognized-error" not in out, out
    assert code != ExitCode.OK or cause == "gpu-arch-unsupported", out


def test_an_unknown_error_while_the_gpu_is_listed_is_a_warning():
    text = "\n".join(
        [
            "2021-03-01 10:00:00.123456: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1700]"
            " Adding visible gpu devices: 0",
            UNKNOWN_ERRORS[0],
        ]
    )
    diag = diagnose(snapshot_from_text(text, RULES), RULES)
    found = [f for f in diag.findings if f.id == "unrecognized-error"]
    assert diag.gpu_visible is True
    assert len(found) == 1 and found[0].severity == Severity.WARNING
    assert exit_code(diag) == ExitCode.OK


# ---- a message wrapped by a terminal or a text box is matched as one line

FFT = (
    "2025-01-06 12:00:00.000001: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:477] "
    "Unable to register cuFFT factory: Attempting to register factory for plugin cuFFT when one "
    "has already been registered"
)


@pytest.mark.parametrize("cut", [60, 100, len(FFT) - 12])
def test_a_wrapped_noise_line_is_noise_and_its_tail_no_error(cut: int):
    lines = [FFT[:cut], FFT[cut:]]
    facts = scan_log(lines, RULES)
    assert 0 in facts.noise and facts.hits == ()
    assert unrecognized_errors(lines, facts) == ()
    if cut < 100:  # the head alone is too short for the noise pattern: matched joined
        assert facts.noise == (0, 1)


def test_a_wrapped_catalogued_message_is_matched_and_keeps_its_facts():
    line = (
        "2021-03-01 10:00:00.123456: E tensorflow/stream_executor/cuda/cuda_dnn.cc:328] Loaded "
        "runtime CuDNN library: 8.0.4 but source was compiled with: 8.1.0.  CuDNN library needs "
        "to have matching major version and equal or higher minor version."
    )
    cut = 130
    facts = scan_log([line[:cut], line[cut:]], RULES)
    assert [h.signal for h in facts.hits] == ["cudnn-runtime-mismatch"]
    assert facts.hits[0].groups["loaded"] == "8.0.4" and facts.joined == (1,)


def test_a_new_record_is_never_read_as_the_tail_of_the_line_before():
    lines = [FFT[:100], "2025-01-06 12:00:00.000002: I tensorflow/core/frob.cc:1] hello"]
    facts = scan_log(lines, RULES)
    assert 1 not in facts.noise and 1 not in facts.joined


def test_ansi_colours_do_not_hide_a_catalogued_message():
    line = (
        "\x1b[1;31m2021-03-01 10:00:00.123456: E tensorflow/stream_executor/cuda/cuda_driver.cc"
        ":318] failed call to cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected"
        "\x1b[0m"
    )
    assert [h.signal for h in scan_log([line], RULES).hits] == ["no-device"]
