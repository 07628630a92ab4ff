"""Headless Chromium for the report page: a screenshot, the rendered DOM, the console.

``render(html_file, out_dir)`` returns None when no Chromium is installed (the caller skips);
CI installs it with ``apt-get install chromium`` where it can.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass(frozen=True)
class Rendered:
    screenshot: Path
    dom: str
    console: list[str]
    """Every ``CONSOLE`` line Chromium logged (a script error, a blocked load, a CSP report)."""


def chromium() -> str | None:
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def _run(binary: str, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless=new",
            "--no-sandbox",  # tests run as root in containers, where the sandbox cannot start
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={home / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )


def render(page: Path, out_dir: Path, *, size: str = "1280,1800") -> Rendered | None:
    binary = chromium()
    if binary is None:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / f"{page.stem}.png"
    url = page.resolve().as_uri()
    first = _run(binary, f"--window-size={size}", f"--screenshot={shot}", url, home=out_dir)
    dom = _run(binary, "--dump-dom", url, home=out_dir)
    console = [
        line
        for line in (first.stderr + dom.stderr).splitlines()
        if ":CONSOLE" in line or "Content Security Policy" in line
    ]
    assert shot.exists(), first.stderr[-2000:]
    return Rendered(shot, dom.stdout, console)


_FETCHES = re.compile(
    r"<script|<link|<iframe|<object|<embed|\b(?:src|srcset|href|action)\s*=|url\(|@import", re.I
)


def fetches(html: str) -> list[str]:
    """What in *html* would make a browser load something (a self-contained page has none)."""
    return _FETCHES.findall(html)
