"""What a plan would download, and pip's own progress while it does.

Real pip (the one virtualenv seeds) against the local wheel folder of ``conftest.py``, read from
the disk and served over real HTTP on the loopback, so the figures are the files' own sizes.
"""

from __future__ import annotations

import functools
import http.server
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.repair.conftest import DemoVenv
from tffix.effects.pip import PackageManager, Progress, pip_version

pytestmark = pytest.mark.slow


@pytest.fixture
def served(wheelhouse: Path) -> Iterator[str]:
    """The wheel folder as an HTTP find-links page (http.server's directory listing)."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(wheelhouse)
    )
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _sizes(wheelhouse: Path, *names: str) -> int:
    return sum((wheelhouse / name).stat().st_size for name in names)


def _manager(demo: DemoVenv, **env: str) -> PackageManager:
    return PackageManager(demo.python, demo.venv, {**demo.env, **env}, allow_uv=False)


def test_the_size_of_what_pip_would_fetch_from_a_local_folder(demo_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    before = demo_venv.freeze()
    size = _manager(demo_venv).download_size(["demo==2.0"])  # demo 2.0 requires demodep
    expected = _sizes(wheelhouse, "demo-2.0-py3-none-any.whl", "demodep-1.0-py3-none-any.whl")
    assert size == (expected, 2)
    assert _manager(demo_venv).download_size(["demo==1.0"]) == (0, 0)  # already there
    assert demo_venv.freeze() == before  # a dry run


def test_the_size_over_http_and_none_when_offline(demo_venv, wheelhouse, served) -> None:  # type: ignore[no-untyped-def]
    big = _sizes(wheelhouse, "bigdemo-1.0-py3-none-any.whl")
    assert _manager(demo_venv, PIP_FIND_LINKS=served).download_size(["bigdemo"]) == (big, 1)
    with socket.socket() as sock:  # a port nothing listens on: the index is unreachable
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    assert _manager(demo_venv, PIP_FIND_LINKS=closed).download_size(["bigdemo"]) is None


def test_progress_lines_are_drawn_and_kept_out_of_the_output() -> None:
    out: list[str] = []

    class Stream:
        def write(self, text: str) -> None:
            out.append(text)

        def flush(self) -> None:
            pass

    progress = Progress(Stream())
    pip_output = [
        "Collecting bigdemo",
        "  Downloading bigdemo-1.0-py3-none-any.whl (25.2 MB)",
        "Progress 262144 of 25166945",
        "Progress 25166945 of 25166945",
        "Successfully installed bigdemo-1.0",
    ]
    for line in pip_output:
        progress.feed(line)
    progress.close()
    drawn = "".join(out)
    assert "bigdemo-1.0-py3-none-any.whl: 25.2 MB of 25.2 MB, " in drawn and "MB/s" in drawn
    assert drawn.endswith("\r\x1b[K")  # the line is cleared after
    kept = progress.without_progress("\n".join(pip_output) + "\n")
    assert "Progress" not in kept and "Successfully installed bigdemo-1.0" in kept


def test_pip_progress_on_a_terminal(demo_venv, served) -> None:  # type: ignore[no-untyped-def]
    pexpect = pytest.importorskip("pexpect")
    version = pip_version(demo_venv.venv)
    assert version is not None and version >= (24, 1), version  # virtualenv seeds a new pip
    code = (
        "import os, sys; from pathlib import Path\n"
        "from tffix.effects.pip import PackageManager\n"
        "pm = PackageManager(Path(sys.argv[1]), Path(sys.argv[2]), dict(os.environ),"
        " allow_uv=False)\n"
        "pm.install(['bigdemo']); print('INSTALLED')\n"
    )
    env = {**demo_venv.env, "PIP_FIND_LINKS": served, "PYTHONPATH": str(ROOT), "TERM": "xterm"}
    child = pexpect.spawn(
        sys.executable,
        ["-c", code, str(demo_venv.python), str(demo_venv.venv)],
        env=env,
        encoding="utf-8",
        timeout=120,
    )
    child.expect("INSTALLED")
    screen = str(child.before)
    child.expect(pexpect.EOF)
    child.close()
    assert "$ pip install bigdemo" in screen
    assert "bigdemo-1.0-py3-none-any.whl: " in screen and " of 25.2 MB, " in screen, screen
    assert "MB/s" in screen
    assert "Progress " not in screen  # pip's raw lines are drawn, not echoed
    assert "bigdemo" in demo_venv.freeze()
