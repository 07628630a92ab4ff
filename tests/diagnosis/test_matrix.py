"""The release matrix: the generator's parsing over the recorded index answers (offline), the
generated rules/matrix.toml agreeing with them and with the shared reference matrix."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.diagnosis.conftest import ROOT
from tffix.ruleset import Ruleset, parse_rules

RECORDED = ROOT / "fixtures" / "index"
REFERENCE = ROOT.parent / "shared" / "reference" / "matrix.json"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_matrix", ROOT / "scripts" / "gen_matrix.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _generator()
RECORDS = sorted(RECORDED.glob("tensorflow-*.json"))


def test_recorded_answers_cover_2_12_to_the_newest():
    versions = {p.stem.removeprefix("tensorflow-") for p in RECORDS}
    assert {"2.12.0", "2.15.0", "2.16.1", "2.18.1", "2.21.0"} <= versions


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.stem)
def test_the_generated_matrix_is_what_the_recorded_answers_say(path: Path, rules: Ruleset):
    entry = gen.entry_from_record(json.loads(path.read_text(encoding="utf-8")))
    text = gen.render_toml({path.stem.removeprefix("tensorflow-"): entry}, generated="test")
    regenerated = parse_rules({"rules/matrix.toml": text}).releases[0]
    shipped = rules.release(regenerated.version)
    assert shipped is not None
    assert shipped.python == regenerated.python
    assert shipped.and_cuda == regenerated.and_cuda
    assert shipped.requires_python == regenerated.requires_python
    assert shipped.glibc == regenerated.glibc
    assert shipped.and_cuda_resolves == regenerated.and_cuda_resolves
    assert shipped.source["and_cuda"] == "measured"


def test_every_release_says_where_its_values_come_from(rules: Ruleset):
    for release in rules.releases:
        assert release.source.get("python") in {"measured", "read:reference"}, release.version
        assert release.source.get("build_info") == "table"


def test_parsing_of_pip_output():
    text = (
        "tensorflow (2.21.0)\nAvailable versions: 2.21.0, 2.20.0rc1, 2.15.0.post1, 2.9.3, 2.12.0\n"
    )
    assert gen.parse_index_versions(text) == ("2.12.0", "2.15.0.post1", "2.21.0")
    with pytest.raises(ValueError):
        gen.parse_index_versions("ERROR: no such package")
    assert (
        gen.glibc_tag(
            "https://x/tensorflow-2.21.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"
        )
        == "manylinux_2_27"
    )
    assert gen.glibc_tag("tensorflow-2.12.0-cp311-cp311-manylinux2014_x86_64.whl") == (
        "manylinux_2_17"
    )
    reqs = gen.and_cuda_requirements(
        [
            "numpy >=1.26.0",
            "nvidia-cudnn-cu11 (==8.7.0.84) ; extra == 'and-cuda'",
            'nvidia-nccl-cu12 <3.0,>=2.25.1 ; extra == "and-cuda"',
        ]
    )
    assert reqs == ("nvidia-cudnn-cu11==8.7.0.84", "nvidia-nccl-cu12<3.0,>=2.25.1")
    pip_output = (
        "x\nERROR: Could not find a version\n"
        "ERROR: No matching distribution found for tensorrt-libs==8.6.1\n"
    )
    assert gen.pip_error_line(pip_output) == (
        "No matching distribution found for tensorrt-libs==8.6.1"
    )


def test_trim_report_keeps_only_what_is_read():
    report = {
        "pip_version": "26.3",
        "environment": {"python_version": "3.11"},
        "install": [
            {
                "metadata": {
                    "name": "tensorflow",
                    "version": "2.18.1",
                    "requires_python": ">=3.9",
                    "requires_dist": ["a"],
                    "provides_extra": ["and-cuda"],
                    "description": "long",
                },
                "download_info": {"url": "u"},
                "requested": True,
            },
            {"metadata": {"name": "numpy", "version": "2.0.2", "requires_dist": ["x"]}},
        ],
    }
    trimmed = gen.trim_report(report)
    assert trimmed["install"][1] == {"name": "numpy", "version": "2.0.2"}
    assert "description" not in trimmed["install"][0]


@pytest.mark.skipif(
    not REFERENCE.exists(), reason="../shared/reference is not beside this checkout"
)
def test_the_matrix_agrees_with_the_reference(rules: Ruleset):
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))["tensorflow"]
    compared = 0
    for release in rules.releases:
        theirs = ref.get(release.version)
        if theirs is None:
            continue
        compared += 1
        linux = theirs["wheels"]["linux_x86_64"]
        assert list(release.python) == linux["python"], release.version
        assert release.requires_python == theirs["requires_python"], release.version
        assert release.cuda == theirs["cuda"] or release.cuda.startswith(theirs["cuda"])
        assert release.cudnn == theirs["cudnn"], release.version
        assert list(release.compute_capabilities) == theirs["cuda_compute_capabilities"]
        pins = {}
        for name, spec in theirs["and_cuda_pins"].items():
            pins[name] = spec if isinstance(spec, str) else ",".join(spec)
        mine = {}
        for text in release.and_cuda:
            from packaging.requirements import Requirement

            req = Requirement(text)
            mine[req.name] = str(req.specifier)
        from packaging.specifiers import SpecifierSet

        assert {k: SpecifierSet(v) for k, v in mine.items()} == {
            k: SpecifierSet(v) for k, v in pins.items()
        }, release.version
    assert compared >= 20
