"""Secrets stay out of the documents users share: the variables collected, the values kept,
the log lines quoted, and (with ``--redact-paths``) the user's home and name.

The secret shapes below are the real formats of real credentials (made-up values)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.test_snapshot_cmd import _snapshot, shell, tf_venv  # noqa: F401  (fixtures)
from tffix.document import diagnosis_to_dict, parse_snapshot, snapshot_to_json
from tffix.probes.env import select_env
from tffix.redact import REDACTED, redact_paths, redact_text, redact_value

SECRETS = {
    "github classic": "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "github fine-grained": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGH",
    "gitlab": "glpat-Abcdefghij0123456789",
    "hugging face": "hf_abcdefghijklmnopqrstuvwxyzABCDEF",
    "slack": "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
    "aws key id": "AKIAIOSFODNN7EXAMPLE",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "api key": "sk-proj-abcdefghijklmnopqrstuvwx",
}


@pytest.mark.parametrize("shape", sorted(SECRETS))
def test_token_shapes_are_withheld_in_any_text(shape: str) -> None:
    secret = SECRETS[shape]
    out = redact_text(f"export SOMETHING={secret} # and more")
    assert secret not in out
    assert REDACTED in out and out.startswith("export SOMETHING=") and out.endswith("and more")


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("https://alice:s3cr3t-pw@pypi.corp.example/simple", "https://alice:", "s3cr3t-pw"),
        ("--index-url http://u:p4ss@10.0.0.1:8080/", "http://u:", "p4ss"),
        ("mysql password=hunter2 host=db", "host=db", "hunter2"),
        ('DB_PASSWORD="hunter2"', "DB_PASSWORD=", "hunter2"),
        ("Authorization: Bearer abcdefghijklmnopqrstu", "Authorization: Bearer", "abcdefghijklm"),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n"
            "-----END OPENSSH PRIVATE KEY-----",
            "",
            "b3BlbnNzaC1rZXktdjEAAAA",
        ),
    ],
)
def test_credentials_in_urls_and_assignments(text: str, kept: str, gone: str) -> None:
    out = redact_text(text)
    assert gone not in out and kept in out


@pytest.mark.parametrize(
    "text",
    [
        "/usr/local/cuda-12.4/lib64:/opt/conda/lib",
        "Could not load dynamic library 'libcudnn.so.8'; dlerror: libcudnn.so.8: cannot open",
        "https://download.pytorch.org/whl/cu121",
        "--xla_gpu_cuda_data_dir=/usr/local/cuda",
        "TF_GPU_ALLOCATOR=cuda_malloc_async",
        "0000:01:00.0 NVIDIA GeForce RTX 4090",
    ],
)
def test_ordinary_diagnostic_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_a_variable_named_as_a_secret_loses_its_whole_value() -> None:
    assert redact_value("TF_VAR_db_password", "hunter2") == REDACTED
    assert redact_value("HF_TOKEN", "anything at all") == REDACTED
    assert redact_value("CUDA_VISIBLE_DEVICES", "0,1") == "0,1"
    assert redact_value("MY_API_KEY", "") == ""  # nothing to hide: an empty value is a fact


def test_only_tensorflows_own_variable_families_are_collected() -> None:
    environ = {
        "TF_VAR_db_password": "hunter2",  # Terraform
        "TF_TOKEN_app_terraform_io": "abc.atlasv1.def",  # Terraform
        "TF_CLI_ARGS_plan": "-var secret=1",
        "TF_LOG": "DEBUG",
        "RAY_REDIS_PASSWORD": "pw",
        "TF_CPP_MIN_LOG_LEVEL": "0",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "TF_GPU_ALLOCATOR": "cuda_malloc_async",
        "TF_XLA_FLAGS": "--tf_xla_auto_jit=2",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "RAY_JOB_ID": "02000000",
    }
    assert set(select_env(environ)) == {
        "TF_CPP_MIN_LOG_LEVEL",
        "TF_FORCE_GPU_ALLOW_GROWTH",
        "TF_GPU_ALLOCATOR",
        "TF_XLA_FLAGS",
        "TF_ENABLE_ONEDNN_OPTS",
        "RAY_JOB_ID",
    }


def test_a_snapshot_document_never_carries_a_secret() -> None:
    token = SECRETS["github classic"]
    snap = parse_snapshot(
        {
            "schema": "tffix.snapshot/1",
            "env": {"CUDA_HOME": "/usr/local/cuda", "HF_TOKEN": "plain-words-token"},
            "log": [f"fetching https://bob:pw123@index.example/simple with {token}"],
        }
    )
    text = snapshot_to_json(snap)
    for secret in ("plain-words-token", token, "pw123"):
        assert secret not in text
    doc = json.loads(text)
    assert doc["env"]["CUDA_HOME"] == "/usr/local/cuda"
    assert doc["env"]["HF_TOKEN"] == REDACTED


def test_the_diagnosis_document_quotes_no_secret() -> None:
    from tffix.diagnosis import diagnose
    from tffix.ruleset import load_rules

    token = SECRETS["hugging face"]
    snap = parse_snapshot(
        {
            "schema": "tffix.snapshot/1",
            "tensorflow": {"version": "2.18.1", "import_error": f"ImportError: {token} bad"},
            "log": [f"E0000 something failed token={token}"],
        }
    )
    doc = json.dumps(diagnosis_to_dict(diagnose(snap, load_rules())))
    assert token not in doc


def test_redact_paths_hides_home_and_user_but_not_lookalikes() -> None:
    out = redact_paths(
        "/home/alice/proj/.venv/bin/python; alice@gpu01; /srv/alicec/x; /home/alice",
        home="/home/alice",
        user="alice",
    )
    assert out == "~/proj/.venv/bin/python; <user>@gpu01; /srv/alicec/x; ~"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the loader tests are Linux's")
def test_snapshot_command_end_to_end(
    tf_venv: Path,  # noqa: F811
    shell: pytest.MonkeyPatch,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    home = tmp_path / "home" / "carol"
    home.mkdir(parents=True)
    shell.setenv("HOME", str(home))
    shell.setenv("USER", "carol")
    shell.setenv("LOGNAME", "carol")
    shell.setenv("TF_VAR_db_password", "hunter2")
    shell.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    shell.setenv("CUDA_HOME", f"{home}/cuda")
    doc = _snapshot(capsys, "--venv", str(tf_venv))
    text = json.dumps(doc)
    assert "hunter2" not in text and "TF_VAR_db_password" not in text
    assert doc["env"]["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert doc["env"]["CUDA_HOME"] == f"{home}/cuda"

    doc = _snapshot(capsys, "--venv", str(tf_venv), "--redact-paths")
    assert doc["env"]["CUDA_HOME"] == "~/cuda"
    assert str(home) not in json.dumps(doc)
