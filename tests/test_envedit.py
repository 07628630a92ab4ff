"""Environment edits as data: applying them and reading them back from a block."""

from __future__ import annotations

import pytest

from tffix.envedit import BLOCK_BEGIN, BLOCK_END, EditOp, EnvEdit, apply_edits, parse_block

E = EnvEdit


@pytest.mark.parametrize(
    ("before", "edits", "after"),
    [
        ({}, [E(EditOp.SET, "X", "1")], {"X": "1"}),
        ({"X": "1"}, [E(EditOp.UNSET, "X")], {}),
        ({}, [E(EditOp.UNSET, "X")], {}),
        ({"P": "/a:/b"}, [E(EditOp.PREPEND, "P", "/b")], {"P": "/b:/a"}),
        ({}, [E(EditOp.PREPEND, "P", "/b")], {"P": "/b"}),
        ({"P": "/a:/b/:/c"}, [E(EditOp.REMOVE, "P", "/b")], {"P": "/a:/c"}),
        ({}, [E(EditOp.REMOVE, "P", "/b")], {}),
        ({"C": ""}, [E(EditOp.SET, "C", "")], {"C": ""}),
    ],
)
def test_apply(before: dict[str, str], edits: list[EnvEdit], after: dict[str, str]) -> None:
    given = dict(before)
    assert apply_edits(before, edits) == after
    assert before == given  # the input is not changed in place


def test_block_round_trip_ignores_noise() -> None:
    edits = [E(EditOp.REMOVE, "LD_LIBRARY_PATH", "/usr/local/cuda/lib64"), E(EditOp.UNSET, "X")]
    text = "\n".join(
        [
            "export A=1",
            edits[0].encode(),
            BLOCK_BEGIN,
            edits[0].encode(),
            "# tffix-edit {bad",
            "export LD_LIBRARY_PATH=...",
            edits[1].encode(),
            BLOCK_END,
            edits[1].encode(),
        ]
    )
    assert parse_block(text) == tuple(edits)
