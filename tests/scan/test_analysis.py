"""The pure analysis, on strings: aliases, values, conditions, notebooks, the judgements."""

from __future__ import annotations

import json
import textwrap

import pytest

from tffix.errors import RuleError
from tffix.model import Severity
from tffix.resources import rules_dir
from tffix.scan import (
    analyze_notebook,
    analyze_source,
    canonical_name,
    judge_visible_devices,
    parse_device,
    parse_scan_rules,
)


def ids(text: str, gpus: int | None = 1, name: str = "train.py") -> list[tuple[str, str, str]]:
    found = analyze_source(textwrap.dedent(text), name, gpu_count=gpus)
    return [(f.id, str(f.severity), f.location or "") for f in found]


# --------------------------------------------------------------------------- judgements


@pytest.mark.parametrize(
    ("value", "gpus", "verdict"),
    [
        ("-1", None, "hides"),
        ("", None, "hides"),
        ("  ", 4, "hides"),
        ("NoDevFiles", 2, "hides"),
        ("-1,0", 2, "hides"),
        ("0", 1, "selects"),
        ("1", 1, "hides"),
        ("1", None, "selects"),  # unknown count: indices are not judged
        ("1", 0, "selects"),  # no GPU at all: the machine is the problem, not the index
        ("0,1", 2, "selects"),
        ("0,2", 2, "partial"),
        ("0,-1", None, "partial"),
        ("GPU-8f3c2a51-0d3e-4b7f-9a1e-2c6b5d4e3f21", 1, "selects"),
        ("MIG-1a2b", 1, "selects"),
        ("cpu", 1, "hides"),
    ],
)
def test_judge_visible_devices(value: str, gpus: int | None, verdict: str) -> None:
    assert judge_visible_devices(value, gpus).verdict == verdict


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("/CPU:0", ("CPU", 0)),
        ("/cpu:0", ("CPU", 0)),
        ("/device:CPU:0", ("CPU", 0)),
        ("CPU:0", ("CPU", 0)),
        ("cpu", ("CPU", None)),
        ("/job:localhost/replica:0/task:0/device:GPU:1", ("GPU", 1)),
        ("/gpu:3", ("GPU", 3)),
        ("/GPU:*", ("GPU", None)),
        ("not a device!", None),
    ],
)
def test_parse_device(spec: str, parsed: tuple[str, int | None] | None) -> None:
    assert parse_device(spec) == parsed


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        (
            "tensorflow.compat.v1.config.experimental.set_visible_devices",
            "tensorflow.config.set_visible_devices",
        ),
        ("tensorflow.keras.layers.Dense", "keras.layers.Dense"),
        ("tensorflow.compat.v1.keras.Sequential", "keras.Sequential"),
        ("tensorflow.keras", "keras"),
        ("os.environ", "os.environ"),
    ],
)
def test_canonical_name(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


# --------------------------------------------------------------------------- environment


def test_plain_assignment_and_its_edit() -> None:
    (finding,) = analyze_source(
        'import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "-1"\n', "src/train.py"
    )
    assert finding.id == "cuda-visible-devices-masked"
    assert finding.severity is Severity.ERROR
    assert finding.location == "src/train.py:2"
    assert finding.detail.splitlines() == [
        'code: os.environ["CUDA_VISIBLE_DEVICES"] = "-1"',
        "why: '-1' is not a GPU index or UUID, so CUDA makes no GPU visible; TensorFlow then "
        "finds no GPU and runs on the CPU",
        'fix: edit src/train.py line 2: delete `os.environ["CUDA_VISIBLE_DEVICES"] = "-1"` '
        '(to choose a GPU, set it to "0" instead)',
    ]


@pytest.mark.parametrize(
    "code",
    [
        'import os as o\no.environ["CUDA_VISIBLE_DEVICES"] = "-1"',
        'from os import environ\nenviron["CUDA_VISIBLE_DEVICES"] = "-1"',
        'from os import environ as E\nE.setdefault("CUDA_VISIBLE_DEVICES", "-1")',
        'import os\nos.putenv("CUDA_VISIBLE_DEVICES", "")',
        'import os\nos.environ.update({"CUDA_VISIBLE_DEVICES": "-1"})',
        'import os\nos.environ.update(CUDA_VISIBLE_DEVICES="-1")',
        'import os\nos.environ.update(dict(CUDA_VISIBLE_DEVICES="-1"))',
        'import os\nos.environ |= {"CUDA_VISIBLE_DEVICES": "-1"}',
        'import os\nenv = os.environ\nenv["CUDA_VISIBLE_DEVICES"] = "-1"',
        'import os\nV = "CUDA_VISIBLE_DEVICES"\nN = -1\nos.environ[V] = str(N)',
        'import os\nN = 1\nos.environ["CUDA_VISIBLE_DEVICES"] = f"{-N}"',
        'import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "-" + "1"',
        'import os\nos.environ["CUDA_VISIBLE_DEVICES"]: str = "-1"',
        'import os\ndef main():\n    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"',
        'import os\nif __name__ == "__main__":\n    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"',
        'get_ipython().run_line_magic("env", "CUDA_VISIBLE_DEVICES=-1")',
        'get_ipython().system("CUDA_VISIBLE_DEVICES=-1 python train.py")',
    ],
)
def test_spellings_of_hiding_every_gpu(code: str) -> None:
    assert [i for i, s, _ in ids(code)] == ["cuda-visible-devices-masked"]
    assert all(s == "error" for _, s, _ in ids(code))


@pytest.mark.parametrize(
    "code",
    [
        '"""Set CUDA_VISIBLE_DEVICES="-1" to use the CPU."""',
        "print(\"os.environ['CUDA_VISIBLE_DEVICES'] = '-1'\")",
        "import argparse\n"
        'argparse.ArgumentParser().add_argument("--cpu", help="CUDA_VISIBLE_DEVICES=-1")',
        'import os\nx = os.environ.get("CUDA_VISIBLE_DEVICES", "-1")',
        'import os\nos.environ["CUDA_VISIBLE_DEVICES"] = args.gpus',  # unknown value
        'import os\nfor v in ("-1", "0"):\n    os.environ["CUDA_VISIBLE_DEVICES"] = v',
        'import os\nG = "-1"\nG = "0"\nos.environ["CUDA_VISIBLE_DEVICES"] = G',  # not constant
        'import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "0"',
        'import os\nos.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"',
        'import os\ndel os.environ["CUDA_VISIBLE_DEVICES"]',
        'environ = {}\nenviron["CUDA_VISIBLE_DEVICES"] = "-1"',  # not os.environ
        'import os\ndef test_cpu():\n    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"',
        "import os\nfrom typing import TYPE_CHECKING\n"
        'if TYPE_CHECKING:\n    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"',
        # A module run as a script only to run its tests.
        'import os, pytest\nos.environ["CUDA_VISIBLE_DEVICES"] = "-1"\n'
        'if __name__ == "__main__":\n    pytest.main([__file__])',
        "import os\nfrom tensorflow.python.platform import test\n"
        'os.environ["CUDA_VISIBLE_DEVICES"] = ""\nif __name__ == "__main__":\n    test.main()',
        # A missing tf.device is not a problem: TensorFlow uses a visible GPU by itself.
        "import tensorflow as tf\nmodel = tf.keras.Sequential()\nmodel.fit(x, y)",
        "import tensorflow as tf\ngpus = tf.config.list_physical_devices('GPU')\n"
        "for g in gpus:\n    tf.config.experimental.set_memory_growth(g, True)",
    ],
)
def test_near_misses_do_not_fire(code: str) -> None:
    assert ids(code) == []


def test_conditional_code_is_one_severity_lower_and_says_when() -> None:
    code = """
        import os
        if args.cpu:
            os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1" if args.cpu else "0"
        try:
            import tensorflow
        except ImportError:
            os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    """
    found = analyze_source(textwrap.dedent(code), "t.py", gpu_count=1)
    assert [(f.location, f.severity) for f in found] == [
        ("t.py:4", Severity.WARNING),
        ("t.py:6", Severity.WARNING),
        ("t.py:7", Severity.WARNING),
        ("t.py:11", Severity.WARNING),
    ]
    assert found[0].title.endswith("(only when `args.cpu`)")
    assert found[1].title.endswith("(only when `not (args.cpu)`)")


def test_gpu_count_decides_indices() -> None:
    code = 'import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "1"'
    assert ids(code, gpus=1) == [("cuda-visible-devices-masked", "error", "train.py:2")]
    assert ids(code, gpus=2) == []
    assert ids(code, gpus=None) == []


# --------------------------------------------------------------------------- TensorFlow calls


@pytest.mark.parametrize(
    "code",
    [
        "import tensorflow as tf\ntf.config.set_visible_devices([], 'GPU')",
        "import tensorflow as tf\ntf.config.experimental.set_visible_devices([], 'GPU')",
        "import tensorflow as tf\ntf.compat.v1.config.set_visible_devices([], device_type='gpu')",
        "from tensorflow import config\nconfig.set_visible_devices([], 'GPU')",
        "from tensorflow.config.experimental import set_visible_devices as svd\nsvd((), 'GPU')",
        "import tensorflow as tf\ncpus = tf.config.list_physical_devices('CPU')\n"
        "tf.config.set_visible_devices(cpus)",
        "import tensorflow as tf\n"
        "tf.config.set_visible_devices([tf.config.list_physical_devices('CPU')[0]])",
        "import tensorflow.compat.v1 as tf\n"
        "s = tf.Session(config=tf.ConfigProto(device_count={'GPU': 0}))",
    ],
)
def test_hiding_gpus_through_tensorflow(code: str) -> None:
    assert [i for i, _, _ in ids(code)] == ["code-hides-gpus"]


def test_cpu_block_fires_only_around_training() -> None:
    code = """
        import tensorflow as tf
        from tensorflow.keras import layers
        with tf.device("/CPU:0"):
            ds = tf.data.Dataset.range(10).map(lambda x: x * 2).batch(2)
        with tf.device("/CPU:0"):
            dense = layers.Dense(4)
        with tf.device("/CPU:0"):
            for x in ds:
                with tf.GradientTape() as tape:
                    y = x
        with tf.device("/CPU:0"):
            train_model(ds)
        with tf.device("/CPU:0"):
            model = tf.keras.models.load_model("m.keras")
        with tf.device("/CPU:0"):
            out = model.predict(ds)
        with tf.device("/CPU:0"):
            net = MyModel(units=4)
    """
    assert [loc for _, _, loc in ids(code)] == [
        "train.py:6",
        "train.py:8",
        "train.py:12",
        "train.py:14",
        "train.py:18",
    ]


def test_keras3_device_and_one_device_strategy() -> None:
    code = """
        import keras
        import tensorflow as tf
        with keras.device("cpu:0"):
            model = keras.Sequential([keras.layers.Dense(1)])
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    """
    assert [(i, loc) for i, _, loc in ids(code)] == [
        ("code-pins-cpu", "train.py:4"),
        ("code-pins-cpu", "train.py:6"),
    ]


def test_gpu_index_severity_follows_soft_placement() -> None:
    eager = "import tensorflow as tf\nwith tf.device('/GPU:2'):\n    y = 1"
    assert ids(eager, gpus=2) == [("code-gpu-index-out-of-range", "info", "train.py:2")]
    assert ids(eager, gpus=3) == []
    assert ids(eager, gpus=None) == []
    strict = (
        "import tensorflow as tf\ntf.config.set_soft_device_placement(False)\n"
        + eager.split("\n", 1)[1]
    )
    assert ids(strict, gpus=2) == [("code-gpu-index-out-of-range", "error", "train.py:3")]
    graph = (
        "import tensorflow.compat.v1 as tf\ntf.disable_eager_execution()\n"
        "with tf.device('/GPU:2'):\n    y = 1\n"
    )
    assert ids(graph, gpus=2) == [("code-gpu-index-out-of-range", "error", "train.py:3")]
    soft = graph + "s = tf.Session(config=tf.ConfigProto(allow_soft_placement=True))\n"
    assert ids(soft, gpus=2) == [("code-gpu-index-out-of-range", "info", "train.py:3")]


def test_other_variables() -> None:
    code = """
        import os
        os.environ["CUDA_DEVICE_ORDER"] = "1"
        os.environ["KERAS_BACKEND"] = "torch"
        os.environ["LD_LIBRARY_PATH"] = os.environ["HOME"] + "/cuda/lib64"
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    """
    assert ids(code) == [
        ("code-cuda-device-order", "warning", "train.py:3"),
        ("code-keras-backend-not-tensorflow", "warning", "train.py:4"),
        ("code-ld-library-path-too-late", "warning", "train.py:5"),
        ("code-tf-log-silenced", "info", "train.py:6"),
    ]


def test_fastest_first_with_an_index_warns_only_on_several_gpus() -> None:
    code = (
        'import os\nos.environ["CUDA_DEVICE_ORDER"] = "FASTEST_FIRST"\n'
        'os.environ["CUDA_VISIBLE_DEVICES"] = "0"\n'
    )
    assert ids(code, gpus=2) == [("code-cuda-device-order", "warning", "train.py:2")]
    assert ids(code, gpus=1) == []


def test_syntax_error_raises_for_the_caller_to_count() -> None:
    with pytest.raises(SyntaxError):
        analyze_source("import os\nos.environ['CUDA_VISIBLE_DEVICES'] = (\n", "bad.py")


# --------------------------------------------------------------------------- notebooks


def notebook(*cells: str) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code", "source": c.splitlines(keepends=True), "outputs": []}
                for c in cells
            ],
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def nb_ids(*cells: str, gpus: int | None = 1) -> list[tuple[str, str, str]]:
    found = analyze_notebook(notebook(*cells), "nb.ipynb", gpu_count=gpus)
    return [(f.id, str(f.severity), f.location or "") for f in found]


@pytest.mark.parametrize(
    "line",
    [
        "%env CUDA_VISIBLE_DEVICES=-1",
        "%env CUDA_VISIBLE_DEVICES -1",
        "%env CUDA_VISIBLE_DEVICES=''",
        "%set_env CUDA_VISIBLE_DEVICES=-1",
        "!CUDA_VISIBLE_DEVICES=-1 python train.py",
        "!export CUDA_VISIBLE_DEVICES=-1; python train.py",
        "!env CUDA_VISIBLE_DEVICES= python train.py",
    ],
)
def test_notebook_lines_that_hide_gpus(line: str) -> None:
    assert nb_ids("x = 1", line) == [
        ("cuda-visible-devices-masked", "error", "nb.ipynb:cell 2:line 1")
    ]


def test_env_magic_keeps_quotes_as_ipython_does() -> None:
    (finding,) = analyze_notebook(notebook('%env CUDA_VISIBLE_DEVICES="0"'), "nb.ipynb")
    assert finding.id == "cuda-visible-devices-masked"
    assert "'\"0\"' is not a GPU index or UUID" in finding.detail
    assert "(%env keeps the quotes: write %env CUDA_VISIBLE_DEVICES=0)" in finding.detail
    assert nb_ids("%env CUDA_VISIBLE_DEVICES=$GPU", "%env CUDA_VISIBLE_DEVICES={gpu}") == []


def test_notebook_export_alone_has_no_effect_and_edit_says_restart() -> None:
    assert nb_ids("!export CUDA_VISIBLE_DEVICES=-1") == [
        ("code-shell-export-no-effect", "info", "nb.ipynb:cell 1:line 1")
    ]
    (finding,) = analyze_notebook(notebook("%env CUDA_VISIBLE_DEVICES=-1"), "nb.ipynb")
    assert finding.detail.endswith(
        "then restart the kernel (the old setting stays until it restarts)"
    )
    assert "edit nb.ipynb cell 1 line 1: delete `%env CUDA_VISIBLE_DEVICES=-1`" in finding.detail
    # A shell line's setting lives in its child process: no restart is needed.
    (shell,) = analyze_notebook(notebook("!CUDA_VISIBLE_DEVICES=-1 python t.py"), "nb.ipynb")
    assert shell.detail.endswith(
        "in `!CUDA_VISIBLE_DEVICES=-1 python t.py`, drop the CUDA_VISIBLE_DEVICES setting "
        '(to choose a GPU, set it to "0" instead)'
    )


def test_notebook_imports_carry_across_cells_and_bad_cells_are_left_out() -> None:
    found = nb_ids(
        "import tensorflow as T",
        "def broken(:",
        "%%capture\nwith T.device('/CPU:0'):\n    m = build_model()\n    !nvidia-smi",
    )
    assert found == [("code-pins-cpu", "error", "nb.ipynb:cell 3:line 2")]


def test_notebook_near_misses() -> None:
    assert (
        nb_ids(
            "%env CUDA_VISIBLE_DEVICES=0",
            "%env CUDA_VISIBLE_DEVICES",
            "%env",
            "!export CUDA_VISIBLE_DEVICES=0",
            "files = !ls\nprint(files)",
            "%%writefile run.py\nimport os\nos.environ['CUDA_VISIBLE_DEVICES'] = '-1'",
            "%%html\n<p>CUDA_VISIBLE_DEVICES=-1</p>",
            "tf.device?",
        )
        == []
    )


@pytest.mark.parametrize("text", ["[]", "{}", '{"cells": 3}', "not json"])
def test_not_a_notebook(text: str) -> None:
    with pytest.raises(ValueError):
        analyze_notebook(text, "x.ipynb")


def test_nbformat3_worksheets() -> None:
    doc = {
        "worksheets": [
            {"cells": [{"cell_type": "code", "input": ["%env CUDA_VISIBLE_DEVICES=-1\n"]}]}
        ],
        "nbformat": 3,
    }
    (finding,) = analyze_notebook(json.dumps(doc), "old.ipynb")
    assert finding.location == "old.ipynb:cell 1:line 1"


# --------------------------------------------------------------------------- rules data


def test_shipped_rules_parse_and_define_every_emitted_id() -> None:
    text = rules_dir().joinpath("code.toml").read_text(encoding="utf-8")
    rules = parse_scan_rules(text)
    assert "cuda-visible-devices-masked" in rules.causes
    assert all(c.startswith("code-") or c == "cuda-visible-devices-masked" for c in rules.causes)


def test_code_toml_ids_are_not_defined_twice() -> None:
    import tomllib

    folder = rules_dir()
    code_ids = set(tomllib.loads(folder.joinpath("code.toml").read_text())["causes"])
    assert "cuda-visible-devices-masked" not in code_ids  # defined by causes.md / causes.toml
    for entry in folder.iterdir():
        if entry.name.endswith(".toml") and entry.name != "code.toml":
            other = tomllib.loads(entry.read_text(encoding="utf-8")).get("causes", {})
            assert not code_ids & set(other), entry.name


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[scan]", "[nothing]"), "scan.triggers must be a list of strings"),
        (('severity = "error"', 'severity = "fatal"', 1), "causes.code-hides-gpus"),
        (("max_python_bytes = 2_097_152", "max_python_bytes = -1"), "scan.max_python_bytes must"),
        (("[scan.training]", "[scan.trainingx]"), "[scan.training] must be a table"),
        (('"(^|_)(train', '"((^|_)(train'), "scan.training.function_patterns"),
        (("[causes.code-pins-cpu]", "[causes.renamed]"), "missing [causes.code-pins-cpu]"),
    ],
)
def test_broken_rules_name_the_key(edit: tuple, message: str) -> None:
    text = rules_dir().joinpath("code.toml").read_text(encoding="utf-8")
    broken = text.replace(*edit)
    assert broken != text
    with pytest.raises(RuleError, match=__import__("re").escape(message)):
        parse_scan_rules(broken)
