"""The pre-filter loses no finding: a scan with it and a scan that parses every file agree.

Over every scan fixture (the fixture projects, the notebooks' code, the code samples written in
the tests) and over generated sources that combine the ways a name reaches ``tf.device``
(import forms, aliases, assignments, names used without an import) with device strings
(literal, a constant, an f-string, a sum), ``with`` statements (several items, parenthesised,
``async``, inside functions and classes) and bodies that train or do not. The default suite
runs a fixed sample of the combinations (4,416 of 57,408, about a second);
``TFFIX_SCAN_PREFILTER_ALL=1`` runs the whole product (about 15 s).
"""

from __future__ import annotations

import ast
import itertools
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tffix import scan
from tffix.model import Finding
from tffix.scan import analyze_source, load_scan_rules, scan_paths

ROOT = Path(__file__).resolve().parents[2]
GPUS = 2
"""Enough for a CPU pin (which needs no count) and an index past the count ('/GPU:3')."""


def _parsed_always(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "_worth_parsing", lambda text, rules: True)


def _analysed(text: str) -> tuple[Finding, ...] | None:
    """The full analysis's findings in *text* (None: not Python)."""
    try:
        return analyze_source(text, "gen.py", gpu_count=GPUS)
    except (SyntaxError, ValueError):
        return None


def _differs(text: str) -> tuple[Finding, ...]:
    """The findings the full analysis has in *text* that a filtered scan would not report."""
    found = _analysed(text) or ()
    return () if scan._worth_parsing(text, load_scan_rules()) else found


# --------------------------------------------------------------------------- fixtures


def _fixture_files() -> list[Path]:
    files = [p for p in (ROOT / "fixtures").rglob("*") if p.suffix in (".py", ".ipynb")]
    return sorted(p for p in files if p.is_file())


@pytest.mark.parametrize("gpus", [None, 1, 4])
def test_every_fixture_file_scans_alike_with_and_without_the_filter(
    gpus: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _fixture_files()
    assert len(files) > 30
    filtered = scan_paths(files, gpu_count=gpus)
    _parsed_always(monkeypatch)
    everything = scan_paths(files, gpu_count=gpus)
    assert filtered.findings == everything.findings
    assert len(everything.findings) > 10  # the fixtures do hold findings to lose


def _notebook_code() -> Iterator[tuple[str, str]]:
    for path in _fixture_files():
        if path.suffix == ".ipynb":
            cells = scan.notebook_cells(path.read_text(encoding="utf-8"))
            yield str(path), "\n".join(c.python for c in cells if c.python is not None)


def _test_samples() -> Iterator[tuple[str, str]]:
    """Every string constant in the tests that is Python code (the samples they analyse)."""
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                code = textwrap.dedent(node.value)
                if "\n" in code.strip() or "(" in code:
                    yield f"{path.name}:{node.lineno}", code


def test_no_finding_of_the_tests_samples_or_notebooks_is_filtered_out() -> None:
    sources = [*_notebook_code(), *_test_samples()]
    lost = {where: _differs(code) for where, code in sources}
    assert not {where: found for where, found in lost.items() if found}
    with_findings = sum(bool(_analysed(code)) for _, code in sources)
    assert with_findings >= 40  # the samples reach the analysis, not only syntax errors


# --------------------------------------------------------------------------- generated

IMPORTS: tuple[tuple[str, str], ...] = (
    # (lines that bind the name, the callee to write in the `with`)
    ("import tensorflow as tf", "tf.device"),
    ("import tensorflow as T", "T.device"),
    ("import tensorflow", "tensorflow.device"),
    ("import tensorflow.compat.v1 as tf", "tf.device"),
    ("import tensorflow.compat.v2 as tf2", "tf2.device"),
    ("import tensorflow as tf", "tf.compat.v1.device"),
    ("from tensorflow.compat import v1", "v1.device"),
    ("from tensorflow import compat", "compat.v2.device"),
    ("from tensorflow import device", "device"),
    ("from tensorflow import device as d", "d"),
    ("from tensorflow.compat.v1 import device as place", "place"),
    ("from tensorflow import (\n    compat,  # (, ) and 'quotes'\n    device,\n)", "device"),
    ("import tensorflow as tf\nd = tf.device", "d"),
    ("import tensorflow as tf\npin: object = tf.device", "pin"),
    ("import tensorflow as tf\nv = tf.compat\nw = v.v1", "w.device"),
    ("import tensorflow as tf\na = b = tf", "a.device"),
    ("import tensorflow as tf\nmod = (\n    tf  # the module\n    .compat.v1\n)", "mod.device"),
    ("import tensorflow as tf\nclass Holder:\n    m = tf", "m.device"),
    ("import os, tensorflow as T", "T.device"),
    ("import tensorflow \\\n    as T", "T.device"),
    ("import tensorflow as tf", "(tf).device"),
    ("import tensorflow as tf", "tf . device"),
    ("import tensorflow as tf", "(tf\n  .device)"),
    ("import tensorflow as tf", "(tf.\n    device)"),
    ("import tensorflow as T", "(T.  # a comment. Then a line break\n    device)"),
    ("import tensorflow as T", "(T  # c \\\n    .device)"),
    ("from tensorflow import keras", "keras.device"),
    ("import tensorflow.keras as tk", "tk.device"),
    ("import keras", "keras.device"),
    ("import keras as K", "K.device"),
    ("from keras import src", "src.device"),
    ("import keras.src as ks", "ks.device"),
    ("import keras.api as ka", "ka.device"),
    ("import tf_keras", "tf_keras.device"),
    ("import tf_keras as tk", "tk.device"),
    ("from tensorflow.python import keras as pk", "pk.device"),
    ("", "tf.device"),  # used without an import (a notebook's import in another cell)
    ("", "keras.device"),
    ("", "tf.compat.v1.device"),
    # names that never reach tensorflow.device: the filter may reject these
    ("from tensorflow.python.framework import ops", "ops.device"),
    ("import torch", "torch.device"),
    ("from mylib import device", "device"),
    ("import tensorflow as tf\nimport mylib as tf", "tf.device"),
    ("import tensorflow as tf\nd = tf.device\nd = None", "d"),
    ("import tensorflow as tf", "tf.config.device"),
    ("import tensorflow as tf", "graph().device"),
)

SPECS: tuple[tuple[str, str], ...] = (
    # (lines that define it, the argument)
    ("", "'/cpu:0'"),
    ("", '"/CPU:0"'),
    ("", "'cpu:0'"),
    ("", "'/device:CPU:0'"),
    ("", "'CPU'"),
    ("", "'/Cpu:0'"),
    ("", "'/job:localhost/replica:0/task:0/device:CPU:0'"),
    ('DEVICE = "/cpu:0"', "DEVICE"),
    ("IDX = 0", 'f"/CPU:{IDX}"'),
    ("", '"/cp" + "u:0"'),
    ("", 'device_name="/cpu:0"'),
    ("", "'/GPU:3'"),  # past the machine's two GPUs
    ("", "'/GPU:0'"),
)

WITHS: tuple[str, ...] = (
    "with {call}:\n{body}",
    "with {call} as scope:\n{body}",
    "with open(__file__) as f, {call}:\n{body}",
    "with (\n    open(__file__) as f,\n    {call},\n):\n{body}",
    "async def main():\n    async with {call}:\n    {body}",
    "def run():\n    with {call}:\n    {body}",
    "class Trainer:\n    def go(self):\n        with {call}:\n        {body}",
    "if USE_CPU:\n    with {call}:\n    {body}",
)

BODIES: tuple[str, ...] = (
    "    model.fit(data, epochs=1)",
    "    model = build_model()",
    "    total = data + 1",
)

SURROUNDINGS: tuple[str, ...] = (
    "{code}",
    '"""Example:\n\n    >>> with tf.device("/cpu:0"):\n    ...     model.fit(x)\n"""\n{code}',
    "# don't: a quote in a comment\nNOTE = '# not a comment'\n{code}",
    "{code}\n\n\ndef later():\n    return '''tf.device(\"/cpu:0\")'''\n",
)


def _source(imports: str, callee: str, spec: tuple[str, str], shape: str, body: str) -> str:
    defines, argument = spec
    with_code = shape.replace("{call}", f"{callee}({argument})").replace("{body}", body)
    return "\n".join(line for line in (imports, defines, with_code) if line) + "\n"


def _cases() -> Iterator[str]:
    product = itertools.product(IMPORTS, SPECS, WITHS, BODIES, SURROUNDINGS)
    everything = os.environ.get("TFFIX_SCAN_PREFILTER_ALL") == "1"
    for n, ((imports, callee), spec, shape, body, around) in enumerate(product):
        # the fixed sample, a thirteenth: every import form, shape, body and surrounding, with
        # one spec for each, the spec turning from one combination to the next
        if everything or spec == SPECS[n // len(SURROUNDINGS) % len(SPECS)]:
            text = around.replace("{code}", _source(imports, callee, spec, shape, body))
            yield text.replace("\n", "\r\n") if n % 3 == 0 else text  # Windows line ends


def test_generated_sources_lose_no_finding() -> None:
    rules = load_scan_rules()
    cases = list(_cases())
    assert len(cases) >= 300
    lost: dict[str, list[str]] = {}
    found = rejected = 0
    for text in cases:
        findings = analyze_source(text, "gen.py", gpu_count=GPUS, rules=rules)
        worth = scan._worth_parsing(text, rules)
        found += bool(findings)
        rejected += not worth
        if findings and not worth:
            lost[text] = [f"{f.id}: {f.title}" for f in findings]
    assert not lost, "\n\n".join(f"{text}-> {why}" for text, why in lost.items())
    # the cases reach the analysis, and the filter does reject some: neither side is vacuous
    assert found >= len(cases) // 3
    assert rejected >= len(cases) // 20


CALLS: tuple[tuple[str, str], ...] = (
    # (lines that bind the name, the call) for the calls judged by qualified name
    ("import tensorflow as tf", 'tf.distribute.OneDeviceStrategy("/cpu:0")'),
    ("import tensorflow as T", 'T.distribute.OneDeviceStrategy(device="/CPU:0")'),
    ("", 'tf.distribute.OneDeviceStrategy("/cpu:0")'),
    ("import tensorflow as tf", 'tf.compat.v1.distribute.OneDeviceStrategy("cpu:0")'),
    ("from tensorflow import distribute", 'distribute.OneDeviceStrategy("/cpu:0")'),
    ("from tensorflow.distribute import OneDeviceStrategy", 'OneDeviceStrategy("/cpu:0")'),
    ("from tensorflow.distribute import OneDeviceStrategy as One", 'One("/cpu:0")'),
    ("import tensorflow as tf\nS = tf.distribute.OneDeviceStrategy", 'S("/cpu:0")'),
    ("import tensorflow as tf\nd = tf.distribute", 'd.OneDeviceStrategy("/cpu:0")'),
    ("import tensorflow as tf", 'tf.config.set_visible_devices([], "GPU")'),
    ("", "tf.config.experimental.set_visible_devices([], 'GPU')"),
    ("import tensorflow as tf", "tf.compat.v1.config.experimental.set_visible_devices([], 'GPU')"),
    ("from tensorflow import config", "config.set_visible_devices([], 'GPU')"),
    ("from tensorflow.config import set_visible_devices as svd", "svd([], 'GPU')"),
    ("import tensorflow as tf\ncfg = tf.config.experimental", "cfg.set_visible_devices([], 'GPU')"),
    ("import keras", 'keras.config.set_backend("jax")'),
    ("from keras import config", 'config.set_backend("torch")'),
    ("from keras.config import set_backend", 'set_backend("jax")'),
    ("import tensorflow as tf", 'tf.keras.config.set_backend("jax")'),
    # names that never resolve to those calls
    ("from tensorflow.python.distribute import one_device_strategy as o", "o.OneDeviceStrategy()"),
    ("from mylib import OneDeviceStrategy", 'OneDeviceStrategy("/cpu:0")'),
    ("from tensorflow.python.framework import config", "config.set_visible_devices([], 'GPU')"),
    ("import mylib", 'mylib.set_backend("jax")'),
)


def test_generated_calls_judged_by_name_lose_no_finding() -> None:
    rules = load_scan_rules()
    shapes = ("{call}\n", "def main():\n    return {call}\n", "if CPU:\n    x = ({call})\n")
    lost, found, rejected = [], 0, 0
    for (imports, call), shape, around in itertools.product(CALLS, shapes, SURROUNDINGS):
        code = "\n".join(line for line in (imports, shape.replace("{call}", call)) if line)
        text = around.replace("{code}", code + "\n")
        findings = analyze_source(text, "gen.py", gpu_count=GPUS, rules=rules)
        worth = scan._worth_parsing(text, rules)
        found += bool(findings)
        rejected += not worth
        if findings and not worth:
            lost.append(text)
    assert not lost, "\n\n".join(lost)
    assert found >= 150
    assert rejected >= 12


RAY_IMPORTS: tuple[tuple[str, str], ...] = (
    # (the import, what the module is called then)
    ("import ray", "ray"),
    ("import os, ray", "ray"),
    ("import os,\\\n    ray", "ray"),
    ("import  ray", "ray"),
    ("import ray.tune as tune\nimport ray", "ray"),
    ("import ray as r", "r"),
    ("from ray import tune, train\nimport ray", "ray"),
    ("import mylib as ray", "ray"),  # not ray: nothing to find
)
RAY_USES: tuple[str, ...] = (
    "@{ray}.remote\ndef work():\n    model.fit(x)\n",
    "@{ray}.remote(num_cpus=2)\nclass Worker:\n    def go(self):\n        model.fit(x)\n",
    '{ray}.tune.run(train, resources_per_trial={{"cpu": 2}})\n',
    "{ray}.train.ScalingConfig(num_workers=2)\n",
)


def test_generated_ray_imports_lose_no_finding() -> None:
    rules = load_scan_rules()
    lost, found = [], 0
    for (imports, name), use, around in itertools.product(RAY_IMPORTS, RAY_USES, SURROUNDINGS):
        text = around.replace("{code}", f"{imports}\n{use.format(ray=name)}")
        findings = analyze_source(text, "gen.py", gpu_count=GPUS, rules=rules)
        found += bool(findings)
        if findings and not scan._worth_parsing(text, rules):
            lost.append(text)
    assert not lost, "\n\n".join(lost)
    assert found >= 60
    assert not scan._worth_parsing("import numpy as np\nx = np.array([1])\n", rules)


@pytest.mark.parametrize(
    "text",
    [
        "from tensorflow.python.framework import ops\nwith ops.device('/cpu:0'):\n    m.fit(x)\n",
        '"""with tf.device("/cpu:0"):\n    model.fit(x)"""\nfrom mylib import ops\n'
        "with ops.device('/cpu:0'):\n    model.fit(x)\n",
        "# with tf.device('/cpu:0'): model.fit(x)\nimport torch\nwith torch.device('cpu'):\n"
        "    model.fit(x)\n",
        "import tensorflow as tf\nx = tf.constant(1)\nprint(x.device)\nwith open('f') as f:\n"
        "    pass\n",
        "with get_default_graph().device('/cpu:0'):\n    model.fit(x)\n",
        "import tensorflow as tf\nwith report.config.device('/cpu:0'):\n    model.fit(x)\n",
    ],
)
def test_code_that_cannot_name_tf_device_is_not_parsed(text: str) -> None:
    """What TensorFlow's own sources are made of: ops.device, tensors' .device, tf.device in
    docstrings and comments."""
    assert not analyze_source(text, "x.py", gpu_count=GPUS)
    assert not scan._worth_parsing(text, load_scan_rules())


def test_identifiers_read_in_nfkc_form_are_not_missed() -> None:
    """Python reads ``ｔｆ`` as ``tf``: code that is not ASCII is parsed."""
    text = "with ｔｆ.device('/cpu:0'):\n    model.fit(x)\n"
    assert analyze_source(text, "x.py", gpu_count=GPUS)
    assert scan._worth_parsing(text, load_scan_rules())


@pytest.mark.parametrize("text", ["s = 'open\n", 'x = 1  # "\ns = "a', "x = 1\n\'\'\'\n"])
def test_text_whose_strings_cannot_be_followed_is_not_blanked(text: str) -> None:
    assert scan._code_only(text) is None


def test_random_token_soup_never_breaks_the_filter_nor_loses_a_finding() -> None:
    """Untrusted text: the filter never raises, and never rejects what the analysis finds."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from(
        [
            "tf", "T", "keras", "compat", "v1", "device", "config", "ops", ".", " ", "\n",
            "\\\n", "(", ")", "[", "]", ",", ":", "=", "==", "#", "'", '"', '"""', "f'",
            "import ", "from ", " as ", "with ", "async ", "'/cpu:0'", "model.fit(x)",
            "    ", "tensorflow", "d", "x", ";", "\r\n", "ｔｆ", "OneDeviceStrategy", "{", "}",
        ]
    )
    rules = load_scan_rules()

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(st.lists(pieces, max_size=30).map("".join))
    def check(text: str) -> None:
        worth = scan._worth_parsing(text, rules)
        if not worth:
            assert not _analysed(text)

    check()
