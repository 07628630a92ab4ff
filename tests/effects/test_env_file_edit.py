"""The unsafe edit of a project's ``.env`` (VS Code's ``python.envFile``): a real file commented
out, kept and restored byte for byte, and the journal's rule for which outside files undo may
write back."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tffix.effects import reach, startup
from tffix.probes.entrypoints import vscode_env_file


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        (".env", True),
        (".env.local", True),
        ("gpu.env", True),
        (".env.tffix-backup", True),
        ("gpu.env.tffix-backup", True),
        (".bashrc", True),
        ("environment", False),
        ("settings.json", False),
        ("env", False),
        ("x.envrc", False),
    ],
)
def test_which_outside_files_undo_may_write_back(name: str, ok: bool) -> None:
    assert reach.allowed("/home/u/proj", name) is ok
    assert reach.allowed("relative/proj", name) is False


def test_an_environment_d_file_is_one_undo_may_restore_and_only_there() -> None:
    """``~/.config/environment.d/*.conf`` lines are traced as ``login`` origins, which the
    unsafe edit may comment out; undo must be able to put them back."""
    assert reach.allowed("/home/u/.config/environment.d", "50-cuda.conf")
    assert reach.allowed("/home/u/.config/environment.d", "50-cuda.conf.tffix-backup")
    assert not reach.allowed("/etc/ld.so.conf.d", "cuda.conf")
    assert not reach.allowed("/home/u", "50-cuda.conf")


def test_the_env_file_line_is_commented_out_kept_and_restored_exactly(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    original = b"# settings\r\nDATA=/d\r\nCUDA_VISIBLE_DEVICES=-1\r\n\xff tail\n"
    dotenv.write_bytes(original)
    saved = startup.comment_out(dotenv, 3, "CUDA_VISIBLE_DEVICES=-1")
    text = dotenv.read_bytes()
    assert text.splitlines()[2].startswith(startup.COMMENT.encode())
    assert text.endswith(b"\xff tail\n") and b"\r\n" in text
    assert (tmp_path / ".env.tffix-backup").read_bytes() == original
    assert "CUDA_VISIBLE_DEVICES" not in vscode_env_file(text.decode("utf-8", "replace"), {})
    assert saved.restore() == []
    assert dotenv.read_bytes() == original
    assert not (tmp_path / ".env.tffix-backup").exists()


_NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
_VALUE = st.text(alphabet="abc-1 ${}:/#'\"\\", max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_NAME, _VALUE), min_size=1, max_size=6), st.data())
def test_commenting_out_a_line_removes_exactly_that_assignment(
    pairs: list[tuple[str, str]], data: st.DataObject
) -> None:
    lines = [f"{name}={value}".rstrip() for name, value in pairs]
    text = "\n".join(lines) + "\n"
    pick = data.draw(st.integers(0, len(lines) - 1))
    edited = startup.render(text, pick + 1, lines[pick])
    name = pairs[pick][0]
    before, after = vscode_env_file(text, {}), vscode_env_file(edited, {})
    others = [n for i, (n, _) in enumerate(pairs) if i != pick]
    if name not in others:
        assert name not in after
    # every other line reads as it did, or as the lines above it now make it read
    assert set(after) == set(before) - ({name} if name not in others else set())
