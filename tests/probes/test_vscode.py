"""VS Code as an entry point: ``settings.json`` read as the untrusted JSON-with-comments it is,
its variables substituted as VS Code substitutes them, and the ``python.envFile`` read and
merged by the Python extension's own rules (vscode-python
``src/client/common/variables/environment.ts``), not python-dotenv's. Real files, a real venv."""

from __future__ import annotations

import json
import os
import sys
import venv
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tffix.probes import entrycheck
from tffix.probes.entrypoints import (
    EntryPoint,
    parse_jsonc,
    substitute,
    vscode_env_file,
    vscode_merge,
    vscode_origins,
    vscode_settings,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="POSIX paths")


def _settings(project: Path, text: str) -> Path:
    path = project / ".vscode" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- JSON with comments


def test_comments_and_trailing_commas_go_but_strings_stay_as_written() -> None:
    text = (
        "\ufeff{\n"
        "  // a line comment\n"
        '  "a": "http://x//not-a-comment", /* a block\n comment */\n'
        '  "b": "ends with ,}",\n'
        '  "c": [1, 2,],\n'
        '  "d": "quote \\" // still a string",\n'
        "}\n"
    )
    doc, error = parse_jsonc(text)
    assert error is None
    assert doc == {
        "a": "http://x//not-a-comment",
        "b": "ends with ,}",
        "c": [1, 2],
        "d": 'quote " // still a string',
    }


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('{\n  "a": 1\n  "b": 2\n}', 3),
        ('{\n  /* two\n  lines */\n  "a" 1\n}', 4),
        ("{", 1),
        ('{"a": "unterminated}', 1),
    ],
)
def test_a_bad_file_is_a_note_with_the_line_the_editor_shows(text: str, line: int) -> None:
    doc, error = parse_jsonc(text)
    assert doc is None and error is not None
    assert f"line {line} " in error


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='{}[]",:/*\n\\ab1 \t', max_size=60))
def test_any_text_gives_a_value_or_a_note_never_an_exception(text: str) -> None:
    doc, error = parse_jsonc(text)
    assert (error is None) or (doc is None and isinstance(error, str))


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=8,
    )
)
def test_plain_json_reads_as_json(value: object) -> None:
    assert parse_jsonc(json.dumps(value, indent=1)) == (value, None)


def test_a_broken_settings_file_naming_the_venv_is_an_entry_point_with_a_note(
    project_venv: Path,
) -> None:
    project = project_venv.parent
    path = _settings(project, '{\n "python.defaultInterpreterPath": ".venv/bin/python"\n "x": 1}')
    try:
        [ep] = vscode_settings(project, project_venv / "bin" / "python", project_venv)
        assert ep.note is not None and str(path) in ep.note and "line 3" in ep.note
        state = entrycheck.check_all(
            [ep], {}, project_venv, project_venv / "bin" / "python", {}, timeout=5
        )[0]
        assert state.usable is None and state.error == ep.note  # no check, the note shown
        _settings(project, '{"x": 1,, }')  # broken, and nothing names this venv
        assert vscode_settings(project, project_venv / "bin" / "python", project_venv) == []
        _settings(project, "[1, 2]")
        assert vscode_settings(project, project_venv / "bin" / "python", project_venv) == []
    finally:
        path.unlink()


# --------------------------------------------------------------------------- settings


def test_variables_in_settings_are_substituted_as_vscode_does(tmp_path: Path) -> None:
    project, home = tmp_path / "p", tmp_path / "h"

    def sub(value: str) -> str:
        return substitute(value, project=project, home=home, environ={"ENVDIR": "/e"})

    assert sub("${workspaceFolder}/.env") == f"{project}/.env"
    assert sub("${env:ENVDIR}/x") == "/e/x"
    assert sub("${env:MISSING}x") == "x"
    assert sub("~/venv/bin/python") == f"{home}/venv/bin/python"
    assert sub("${userHome}|${workspaceFolderBasename}") == f"{home}|p"
    assert sub("${command:pick}") == "${command:pick}"  # not a variable tffix can know


def test_settings_selecting_the_venv_by_folder_with_env_file_and_terminal_env(
    project_venv: Path,
) -> None:
    project = project_venv.parent
    path = _settings(
        project,
        "{\n"
        "  // the project's interpreter, as a folder (the extension allows it)\n"
        '  "python.defaultInterpreterPath": "${workspaceFolder}/.venv",\n'
        '  "python.envFile": "${env:CONF}/gpu.env",\n'
        '  "terminal.integrated.env.linux": {\n'
        '    "LD_LIBRARY_PATH": "/opt/cuda/lib64:${env:LD_LIBRARY_PATH}",\n'
        '    "CUDA_HOME": null,\n'
        "  },\n"
        "}\n",
    )
    try:
        environ = {"CONF": str(project / "conf"), "LD_LIBRARY_PATH": "/drv"}
        python = project_venv / "bin" / "python"
        [ep] = vscode_settings(project, python, project_venv, environ=environ)
        assert ep.argv == (str(project_venv / "bin" / "python"),)
        assert ep.env_file == str(project / "conf" / "gpu.env")
        assert dict(ep.env) == {"LD_LIBRARY_PATH": "/opt/cuda/lib64:/drv"}
        assert ep.unset == ("CUDA_HOME",)
        assert ep.note is None
        # another interpreter selected: not this venv's entry point
        _settings(project, '{"python.defaultInterpreterPath": "/usr/bin/python3"}')
        assert vscode_settings(project, project_venv / "bin" / "python", project_venv) == []
    finally:
        path.unlink()


def test_the_default_env_file_is_the_workspace_dot_env(project_venv: Path) -> None:
    project = project_venv.parent
    path = _settings(project, f'{{"python.defaultInterpreterPath": "{project_venv}/bin/python3"}}')
    try:
        [ep] = vscode_settings(project, project_venv / "bin" / "python", project_venv)
        assert ep.env_file == str(project / ".env")
    finally:
        path.unlink()


# --------------------------------------------------------------------------- the envFile


def test_env_file_lines_as_the_extension_reads_them() -> None:
    text = (
        "# a comment\n"
        "export CUDA_VISIBLE_DEVICES=0\n"  # not NAME=VALUE: the extension skips it
        "XLA_FLAGS=--x # kept: no inline comments\n"
        "  SPACED  =  'quoted value '  \n"
        'NL="a\\nb"\n'
        "_UNDERSCORE=1\n"  # names start with a letter
        "LIB=/opt/lib:${LD_LIBRARY_PATH}\n"
        "BOTH=${LIB}:${MISSING}end\n"
        "KEEP=\\${LIB} costs \\$5\n"
        "BAD=${LIB:-x}\n"
        "EMPTY=\n"
        "CRLF=v\r\n"
    )
    got = vscode_env_file(text, {"LD_LIBRARY_PATH": "/drv", "LIB": "not-this"})
    assert got == {
        "XLA_FLAGS": "--x # kept: no inline comments",
        "SPACED": "quoted value ",
        "NL": "a\nb",
        "LIB": "/opt/lib:/drv",
        "BOTH": "/opt/lib:/drv:end",
        "KEEP": "${LIB} costs $5",
        "BAD": "${LIB:-x}",
        "EMPTY": "",
        "CRLF": "v",
    }


def test_merge_file_wins_except_path_and_pythonpath_which_are_joined() -> None:
    base = {"PATH": "/usr/bin", "PYTHONPATH": "/b", "HOME": "/h", "CUDA_VISIBLE_DEVICES": "0"}
    merged = vscode_merge({"CUDA_VISIBLE_DEVICES": "-1", "PATH": "/opt/bin"}, base)
    assert merged == {
        "CUDA_VISIBLE_DEVICES": "-1",
        "PATH": "/opt/bin:/usr/bin",
        "PYTHONPATH": "/b",
        "HOME": "/h",
    }
    assert vscode_merge({}, {}) == {}


def test_the_vscode_environment_and_where_each_value_is_written(tmp_path: Path) -> None:
    settings_file = tmp_path / ".vscode" / "settings.json"
    settings_file.parent.mkdir()
    settings_file.write_text(
        '{\n  "terminal.integrated.env.linux": {\n    "XLA_FLAGS": "--t"\n  }\n}\n'
    )
    env_file = tmp_path / ".env"
    env_file.write_text("# gpu\nCUDA_VISIBLE_DEVICES=-1\n#CUDA_VISIBLE_DEVICES=0\n")
    ep = EntryPoint(
        "vscode",
        "VS Code",
        str(settings_file),
        argv=("/v/bin/python",),
        env={"XLA_FLAGS": "--t"},
        unset=("CUDA_HOME",),
        env_file=str(env_file),
    )
    base = {"PATH": "/usr/bin", "CUDA_HOME": "/usr/local/cuda", "CUDA_VISIBLE_DEVICES": "0"}
    env = entrycheck.vscode_env(ep, base)
    assert env == {"PATH": "/usr/bin", "XLA_FLAGS": "--t", "CUDA_VISIBLE_DEVICES": "-1"}
    found = [(o.variable, o.file, o.line, o.kind) for o in vscode_origins(ep, entrycheck.TRACED)]
    assert found == [
        ("XLA_FLAGS", str(settings_file), 3, "vscode"),
        ("CUDA_VISIBLE_DEVICES", str(env_file), 2, "dotenv"),
    ]


def test_discover_finds_vscode_and_trace_names_the_env_file_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prefix = home / "proj" / ".venv"
    venv.EnvBuilder(with_pip=False).create(prefix)
    _settings(home / "proj", '{"python.defaultInterpreterPath": ".venv/bin/python",}')
    (home / "proj" / "gpu.env").write_text("CUDA_VISIBLE_DEVICES=-1\n")
    _settings(
        home / "proj",
        '{"python.defaultInterpreterPath": ".venv/bin/python", '
        '"python.envFile": "${workspaceFolder}/gpu.env",}',
    )
    environ = {"HOME": str(home), "PATH": os.defpath, "TFFIX_SYSROOT": str(tmp_path / "root")}
    points = entrycheck.discover(prefix, prefix / "bin" / "python", environ, project=None)
    [vs] = [p for p in points if p.kind == "vscode"]
    env = entrycheck.environment_for(vs, environ, prefix, environ)
    assert env["CUDA_VISIBLE_DEVICES"] == "-1"
    prov = entrycheck.trace(
        ["CUDA_VISIBLE_DEVICES"],
        environ=environ,
        prefix=prefix,
        site_dirs=[],
        kernelspecs=[],
        project=home / "proj",
        extra=[o for p in points for o in p.origins],
    )
    assert [(o.file, o.line, o.kind) for o in prov.origins["CUDA_VISIBLE_DEVICES"]] == [
        (str(home / "proj" / "gpu.env"), 1, "dotenv")
    ]
    assert str(home / "proj" / "gpu.env") in prov.searched
