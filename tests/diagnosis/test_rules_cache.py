"""The parsed-TOML cache of the rules: same rules as a cold parse, keyed by the files' bytes,
and ignored when it is not this user's own, untouched file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tffix import ruleset
from tffix.resources import rules_dir


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TFFIX_NO_CACHE", raising=False)
    ruleset.clear_cache()
    yield tmp_path / "cache" / "tffix"
    ruleset.clear_cache()


def _copy_rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(str(rules_dir()), folder)
    return folder


def test_a_warm_load_gives_the_rules_of_a_cold_parse(cache: Path, tmp_path: Path) -> None:
    folder = _copy_rules(tmp_path)
    cold = ruleset.parse_rules(ruleset.read_rule_files(folder))
    first = ruleset.load_rules(folder)
    (kept,) = cache.glob("rules-*.json")
    assert kept.stat().st_mode & 0o077 == 0
    ruleset.clear_cache()
    assert ruleset.load_rules(folder) == first == cold


def test_an_edited_rules_file_is_never_served_from_the_cache(cache: Path, tmp_path: Path) -> None:
    folder = _copy_rules(tmp_path)
    assert ruleset.load_rules(folder).fixes.numpy_1 == "numpy==1.26.4"
    fixes = folder / "fixes.toml"
    fixes.write_text(fixes.read_text().replace('"numpy==1.26.4"', '"numpy==1.26.3"'))
    ruleset.clear_cache()
    assert ruleset.load_rules(folder).fixes.numpy_1 == "numpy==1.26.3"
    assert len(list(cache.glob("rules-*.json"))) == 2


def _tamper(cache: Path, mode: int) -> None:
    (kept,) = cache.glob("rules-*.json")
    data = json.loads(kept.read_text())
    data["rules/fixes.toml"]["fixes"]["numpy_1"] = "numpy==1.0"
    kept.write_text(json.dumps(data))
    kept.chmod(mode)


def test_a_cache_others_could_write_is_ignored(cache: Path, tmp_path: Path) -> None:
    folder = _copy_rules(tmp_path)
    ruleset.load_rules(folder)
    _tamper(cache, 0o666)
    ruleset.clear_cache()
    assert ruleset.load_rules(folder).fixes.numpy_1 == "numpy==1.26.4"


def test_a_cache_failing_the_checks_is_ignored(cache: Path, tmp_path: Path) -> None:
    folder = _copy_rules(tmp_path)
    ruleset.load_rules(folder)
    (kept,) = cache.glob("rules-*.json")
    data = json.loads(kept.read_text())
    data["rules/fixes.toml"]["fixes"]["numpy_1"] = "numpy>=1"  # not a pin: RuleError
    kept.write_text(json.dumps(data))
    ruleset.clear_cache()
    assert ruleset.load_rules(folder).fixes.numpy_1 == "numpy==1.26.4"


def test_no_cache_when_asked(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFFIX_NO_CACHE", "1")
    ruleset.load_rules(_copy_rules(tmp_path))
    assert not cache.exists()


def _break_a_pattern(cache: Path) -> None:
    """Make the first noise pattern of the kept cache one that cannot compile (and that has
    no text to look for first, so the first line of any log compiles it)."""
    (kept,) = cache.glob("rules-*.json")
    data = json.loads(kept.read_text())
    for document in data.values():
        if document.get("noise"):
            document["noise"][0]["pattern"] = "("
            break
    kept.write_text(json.dumps(data))
    kept.chmod(0o600)


def test_a_bad_pattern_in_the_cache_is_one_line_and_exit_2(cache: Path, tmp_path: Path) -> None:
    """Patterns read from the cache compile when first used: a bad one there still ends the
    run with the rules' exit code and one line naming the cache, never a traceback."""
    ruleset.load_rules()
    _break_a_pattern(cache)
    snapshot = tmp_path / "s.json"
    snapshot.write_text(json.dumps({"schema": "tffix.snapshot/1", "log": ["W0000 hello"]}))
    env = {**os.environ, "XDG_CACHE_HOME": str(cache.parent)}
    env.pop("TFFIX_NO_CACHE", None)
    done = subprocess.run(
        [sys.executable, "-m", "tffix", "diagnose", "--snapshot", str(snapshot)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "noise[0].pattern" in line and "rules cache" in line


def test_a_repair_meets_a_bad_cached_pattern_before_it_changes_anything(cache: Path) -> None:
    from tffix.commands.repair import load_diagnoser
    from tffix.errors import RuleError

    ruleset.load_rules()
    _break_a_pattern(cache)
    ruleset.clear_cache()
    with pytest.raises(RuleError, match="rules cache"):
        load_diagnoser()
