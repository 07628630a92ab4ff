"""Fuzzing what tffix reads from outside: whatever the input, no traceback, no exit 5, every
error on one line, and nothing a terminal acts on in what is printed.

Each *target* below is an input kind tffix does not trust: a strategy that draws an input
and a runner that hands it to the real command line (``tffix.cli.main``, in process) and
returns (exit code, stdout, stderr). The same invariants are checked for every target.

Budget: ``TFFIX_FUZZ_EXAMPLES`` examples per target (default 40, what CI runs, with a fixed
seed so CI is repeatable); ``TFFIX_FUZZ_EXAMPLES=5000 python -m pytest tests/security/
test_fuzz.py`` is the long run (README, Development), with a fresh seed each time.

Extension point: another input kind (the journal under ``<venv>/.tffix``) joins by adding
a ``Target`` to ``TARGETS``: its strategy draws the input, its runner writes it where tffix
reads it and calls ``cli.main`` (for a journal: write ``journal.jsonl`` into a throw-away
venv and run ``undo`` and ``--resume``); the invariants then apply to it unchanged.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES, ROOT
from tffix import cli
from tffix.errors import ExitCode

EXAMPLES = int(os.environ.get("TFFIX_FUZZ_EXAMPLES", "40"))
LONG_RUN = "TFFIX_FUZZ_EXAMPLES" in os.environ
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

Result = tuple[int, str, str]


@dataclass(frozen=True)
class Target:
    """One kind of untrusted input: how to draw it and how to feed it to tffix."""

    name: str
    strategy: st.SearchStrategy[Any]
    run: Callable[[Any, Path], list[str]]
    """Write the input under the folder given and return the ``tffix`` arguments."""


# --------------------------------------------------------------------------- pieces

HOSTILE_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
        st.sampled_from("\x1b\x07\x9b\r\n\t\x00\u202e\u2028'\"$`\\{}[]"),
        st.sampled_from("\x1b\x07\x9b\n\u202e"),  # drawn often: what a terminal acts on
    ),
    max_size=40,
)
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    HOSTILE_TEXT,
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(HOSTILE_TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)


def _snapshots() -> list[dict[str, Any]]:
    paths = sorted((FIXTURES / "snapshots").rglob("*.json"))
    paths += sorted(p for p in (ROOT.parent / "shared" / "realworld").glob("*.json"))
    docs = []
    for path in paths:
        if path.name == "expected.json":
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "schema" in data:
            docs.append(data)
    return docs


SNAPSHOTS = _snapshots()
LOG_LINES = sorted({line for doc in SNAPSHOTS for line in doc.get("log") or [] if line})


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:8]):
            out += _paths(item, (*prefix, i))
    return out


PRINTED = [
    ("python", "executable"),
    ("python", "version"),
    ("packages", None),
    ("packages", "tensorflow"),
    ("env", "CUDA_VISIBLE_DEVICES"),
    ("env", "LD_LIBRARY_PATH"),
    ("env", None),
    ("platform", "os"),
    ("platform", "shell"),
    ("driver", "version"),
    ("tensorflow", "version"),
    ("tensorflow", "import_error"),
]
"""(section, key) of values the report prints or an error names; None: a hostile key."""


@st.composite
def mutated_snapshot(draw: st.DrawFn) -> bytes:
    """A real snapshot with a few values (or keys) replaced by arbitrary JSON."""
    doc = json.loads(json.dumps(draw(st.sampled_from(SNAPSHOTS))))
    for _ in range(draw(st.integers(0, 2))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            parent[draw(HOSTILE_TEXT)] = parent.pop(path[-1])  # a hostile key
        else:
            parent[path[-1]] = draw(JSON)
    for _ in range(draw(st.integers(1, 4))):  # where a value is printed or quoted in errors
        section, key = draw(st.sampled_from(PRINTED))
        table = doc.get(section)
        if not isinstance(table, dict):
            table = doc[section] = {}
        table[draw(HOSTILE_TEXT) if key is None else key] = draw(HOSTILE_TEXT | HOSTILE_TEXT | JSON)
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


SNAPSHOT_INPUT = st.one_of(
    mutated_snapshot(),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)

LOG_INPUT = st.one_of(
    st.lists(st.one_of(st.sampled_from(LOG_LINES or ["x"]), HOSTILE_TEXT), max_size=30).map(
        lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")
    ),
    st.binary(max_size=300),
)

CODE = st.sampled_from(
    [
        'import os\nos.environ["CUDA_VISIBLE_DEVICES"] = "-1"\n',
        "import tensorflow as tf\ntf.config.set_visible_devices([], 'GPU')\n",
        "with tf.device('/CPU:0'):\n    model.fit(x)\n",
        "%env CUDA_VISIBLE_DEVICES=-1\n",
        "!export CUDA_VISIBLE_DEVICES=1; python train.py\n",
        "%%bash\nexport CUDA_VISIBLE_DEVICES=\n",
        "def f(:\n",
        "x = (\n" * 30,
        "import os\nos.environ['LD_LIBRARY_PATH'] = '/usr/local/cuda/lib64'\n",
    ]
)
SOURCE = st.one_of(CODE, HOSTILE_TEXT, st.lists(st.one_of(CODE, HOSTILE_TEXT), max_size=4))


@st.composite
def notebook(draw: st.DrawFn) -> bytes:
    cells = draw(
        st.lists(
            st.fixed_dictionaries(
                {"cell_type": st.sampled_from(["code", "markdown", "raw"]) | JSON},
                optional={"source": SOURCE | JSON, "input": SOURCE, "outputs": JSON},
            ),
            max_size=8,
        )
    )
    doc: dict[str, Any] = {"cells": cells, "nbformat": draw(st.sampled_from([3, 4]) | JSON)}
    if draw(st.booleans()):
        doc = {"worksheets": [doc], "nbformat": 3}
    return json.dumps(doc).encode()


NOTEBOOK_INPUT = st.one_of(notebook(), JSON.map(lambda v: json.dumps(v).encode()), st.binary())
PYTHON_INPUT = st.one_of(
    st.lists(st.one_of(CODE, HOSTILE_TEXT), max_size=6).map(
        lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
    ),
    st.binary(max_size=200),
)


def _file(name: str, *command: str) -> Callable[[bytes, Path], list[str]]:
    def run(data: bytes, folder: Path) -> list[str]:
        path = folder / name
        path.write_bytes(data)
        return [*command, str(path)]

    return run


TARGETS: dict[str, Target] = {
    "snapshot": Target("snapshot", SNAPSHOT_INPUT, _file("s.json", "diagnose", "--snapshot")),
    "log": Target("log", LOG_INPUT, _file("tf.log", "explain", "-v")),
    "notebook": Target("notebook", NOTEBOOK_INPUT, _file("n.ipynb", "scan")),
    "python": Target("python", PYTHON_INPUT, _file("train.py", "scan")),
}
"""Every input kind fuzzed here; add one (a journal) by adding a ``Target``."""


# --------------------------------------------------------------------------- invariants


def check(result: Result) -> None:
    """The promises for any input: no crash, one-line errors, nothing raw on the terminal."""
    code, out, err = result
    assert code != ExitCode.INTERNAL, err
    assert code in {int(c) for c in ExitCode}, code
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("tffix: error")]
    assert len(errors) <= 1, err
    if code == ExitCode.USAGE:
        assert errors and err.endswith("\n") and err.count("\n") == 1, err
    assert not RAW.search(out + err), repr(RAW.search(out + err))


def run_target(target: Target, data: Any, capsys: pytest.CaptureFixture[str]) -> Result:
    with tempfile.TemporaryDirectory() as folder:
        argv = target.run(data, Path(folder))
        for variant in (argv, [*argv, "--json"]):
            code = cli.main(variant)
            out, err = capsys.readouterr()
            check((code, out, err))
    return code, out, err


def _settings(test: Callable[..., None]) -> Callable[..., None]:
    configured = settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not LONG_RUN,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )(test)
    return configured if LONG_RUN else seed(20261201)(configured)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_untrusted_input_never_crashes_tffix(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = TARGETS[name]
    if name == "snapshot" and not SNAPSHOTS:
        pytest.skip("no snapshot fixtures to mutate")

    @_settings
    @given(data=target.strategy)
    def fuzz(data: Any) -> None:
        run_target(target, data, capsys)

    fuzz()
