"""Cron jobs and systemd units as entry points: real crontabs, unit files, drop-ins,
environment files and ``environment.d`` laid out in a temporary HOME and machine root, a
real ``crontab`` program on PATH, a real venv. The environment each gets is held against the
documented rules (crontab(5), systemd.exec(5), environment.d(5)), not against the code."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from tffix.probes import entrycheck, services
from tffix.probes.services import (
    CRON_PATH,
    SYSTEMD_PATH,
    account,
    cron_jobs,
    read_assignments,
    systemd_units,
    unit_lines,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="cron and systemd are Linux's")


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _machine(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    root, home = tmp_path / "root", tmp_path / "home"
    home.mkdir()
    root.mkdir()
    me = account(None, {}).user
    environ = {"HOME": str(home), "USER": me, "PATH": "/usr/bin:/bin"}
    return root, home, environ


# --------------------------------------------------------------------------- cron


def test_a_user_crontab_gives_crons_minimal_environment_and_its_own_settings(
    project_venv: Path, tmp_path: Path
) -> None:
    root, home, environ = _machine(tmp_path)
    python = project_venv / "bin" / "python"
    _write(root / "etc" / "environment", 'LANG="C.UTF-8"\nPATH="/should/not/win"\n')
    spool = _write(
        root / "var" / "spool" / "cron" / "crontabs" / environ["USER"],
        "# m h dom mon dow command\n"
        f"0 1 * * * {python} early.py\n"  # before the settings: gets none of them
        "MAILTO=''\n"
        "  PATH = /usr/local/bin:/usr/bin:/bin\n"
        'CUDA_VISIBLE_DEVICES = "-1"\n'
        "LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/opt/x\n"  # no substitution in crontabs
        "LOGNAME=someone-else\n"  # may not be changed
        f"30 3 * * 1-5 cd /proj && {python} train.py >> log 2>&1\n"  # python not first
        f"15 2 * * * {python} -u /proj/train.py --epochs 3 % stdin text\n"
        f"@reboot {project_venv}/bin/tensorboard --logdir /runs\n"  # a script of the venv
        "0 4 * * * /usr/bin/python3 other.py\n",
    )
    jobs = cron_jobs(root, python, project_venv, environ)
    assert [(j.source, j.line) for j in jobs] == [
        (str(spool), 2),
        (str(spool), 9),
        (str(spool), 10),
    ]
    early, late, boot = jobs
    assert dict(early.env) == {
        "LANG": "C.UTF-8",
        "PATH": CRON_PATH,
        "SHELL": "/bin/sh",
        "HOME": str(home),
        "LOGNAME": environ["USER"],
    }
    assert late.env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert late.env["CUDA_VISIBLE_DEVICES"] == "-1"
    assert late.env["LD_LIBRARY_PATH"] == "$LD_LIBRARY_PATH:/opt/x"
    assert late.env["LOGNAME"] == environ["USER"] and late.env["MAILTO"] == ""
    assert boot.env == late.env
    where = {o.variable: (o.line, o.kind) for o in late.origins}
    assert where["CUDA_VISIBLE_DEVICES"] == (5, "cron")
    assert where["LANG"] == (1, "system")  # /etc/environment through pam_env
    assert "PATH" in where and where["PATH"] == (4, "cron")


def test_system_crontabs_name_the_user_and_odd_files_are_skipped(
    project_venv: Path, tmp_path: Path
) -> None:
    root, _, environ = _machine(tmp_path)
    python = project_venv / "bin" / "python"
    _write(
        root / "etc" / "passwd", "nobody:x:65534:65534:nobody:/srv/nobody-home:/usr/sbin/nologin\n"
    )
    _write(root / "etc" / "crontab", f"SHELL=/bin/bash\n17 * * * * root {python} job.py\n")
    _write(root / "etc" / "cron.d" / "train", f"XLA_FLAGS=--x\n@daily nobody {python} -m t\n")
    (root / "etc" / "cron.d" / "a-folder").mkdir()
    os.mkfifo(root / "etc" / "cron.d" / "a-fifo")  # must not block the read
    (root / "var" / "spool" / "cron" / "crontabs" / environ["USER"]).mkdir(parents=True)
    jobs = cron_jobs(root, python, project_venv, environ)
    assert [(Path(j.source).name, j.user) for j in jobs] == [
        ("crontab", "root"),
        ("train", "nobody"),
    ]
    assert jobs[0].env["SHELL"] == "/bin/bash" and jobs[0].env["HOME"] == "/root"
    assert jobs[1].env["XLA_FLAGS"] == "--x"
    assert jobs[1].env["HOME"] == "/srv/nobody-home"  # from the machine root's passwd


def test_crontab_l_is_what_the_users_crontab_is_on_this_machine(
    project_venv: Path, tmp_path: Path
) -> None:
    python = project_venv / "bin" / "python"
    bin_dir = tmp_path / "bin"
    table = tmp_path / "table"
    table.write_text(f"CUDA_VISIBLE_DEVICES=\n*/5 * * * * {python} poll.py\n")
    fake = _write(bin_dir / "crontab", f'#!/bin/sh\n[ "$1" = -l ] && exec cat {table}\nexit 2\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    environ = {"HOME": str(tmp_path), "PATH": f"{bin_dir}:/usr/bin:/bin"}
    text, source = services.user_crontab(Path("/"), account(None, environ), environ)
    assert source == "crontab -l" and text == table.read_text()
    jobs = [j for j in cron_jobs(Path("/"), python, project_venv, environ) if j.source == source]
    assert len(jobs) == 1 and jobs[0].env["CUDA_VISIBLE_DEVICES"] == ""
    fake.write_text('#!/bin/sh\necho "no crontab for $USER" >&2\nexit 1\n')
    text, why = services.user_crontab(Path("/"), account(None, environ), environ)
    assert text is None and "no crontab" in why
    text, why = services.user_crontab(Path("/"), account(None, {}), {"PATH": str(tmp_path)})
    assert text is None


# --------------------------------------------------------------------------- systemd


def test_unit_file_syntax_comments_sections_and_continuations() -> None:
    text = (
        "# comment\n[Unit]\nDescription=x\n; also a comment\n[Service]\n"
        "Environment=A=1 \\\n  B=2\nExecStart=/bin/true\n"
    )
    assert list(unit_lines(text)) == [
        (3, "Unit", "Description", "x"),
        # systemd.syntax(7): the backslash becomes a space, each line stripped first
        (6, "Service", "Environment", "A=1  B=2"),
        (8, "Service", "ExecStart", "/bin/true"),
    ]
    assert [(n, k, v) for n, k, v, _ in read_assignments('# c\n;c\nA="x y"\nB=1 \\\n2\n')] == [
        (3, "A", "x y"),
        (4, "B", "1 2"),
    ]


def test_a_user_unit_with_environment_env_files_drop_ins_and_environment_d(
    project_venv: Path, tmp_path: Path
) -> None:
    root, home, environ = _machine(tmp_path)
    python = project_venv / "bin" / "python"
    _write(root / "etc" / "environment", "LANG=C.UTF-8\n")
    _write(
        home / ".config" / "environment.d" / "50-cuda.conf",
        "LD_LIBRARY_PATH=/opt/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n",
    )
    _write(root / "etc" / "train.env", "# for train\nXLA_FLAGS='--xla_gpu_cuda_data_dir=/c'\n")
    units = home / ".config" / "systemd" / "user"
    unit = _write(
        units / "train.service",
        "[Unit]\nDescription=training\n\n[Service]\n"
        'Environment="TF_CPP_MIN_LOG_LEVEL=1" DATA=%h/data\n'
        "Environment=XLA_FLAGS=--overridden-by-the-file\n"
        "EnvironmentFile=-%h/missing.env\n"
        "EnvironmentFile=/etc/train.env\n"
        f"ExecStart={python} \\\n    -m train --epochs 3\n"
        "UnsetEnvironment=LANG\n",
    )
    drop = _write(
        units / "train.service.d" / "gpu.conf", "[Service]\nEnvironment=CUDA_VISIBLE_DEVICES=-1\n"
    )
    _write(units / "other.service", "[Service]\nExecStart=/usr/bin/python3 x.py\n")
    [found] = systemd_units(root, python, project_venv, environ)
    assert (found.name, found.scope, found.source) == ("train.service", "user", str(unit))
    assert found.problems == ()
    env = dict(found.env)
    assert env["PATH"] == SYSTEMD_PATH and env["HOME"] == str(home)
    assert env["USER"] == env["LOGNAME"] == environ["USER"]
    assert env["LD_LIBRARY_PATH"] == "/opt/cuda/lib64"  # ${…:+…} of an unset variable
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "1" and env["DATA"] == f"{home}/data"
    assert env["XLA_FLAGS"] == "--xla_gpu_cuda_data_dir=/c"  # EnvironmentFile= wins
    assert env["CUDA_VISIBLE_DEVICES"] == "-1"
    assert "LANG" not in env
    where = {(o.variable, o.file, o.line) for o in found.origins}
    assert ("CUDA_VISIBLE_DEVICES", str(drop), 2) in where
    assert ("XLA_FLAGS", str(root / "etc" / "train.env"), 2) in where
    assert ("LD_LIBRARY_PATH", str(home / ".config/environment.d/50-cuda.conf"), 1) in where


def test_a_system_unit_runs_as_its_user_and_a_missing_env_file_is_a_note(
    project_venv: Path, tmp_path: Path
) -> None:
    root, home, environ = _machine(tmp_path)
    python = project_venv / "bin" / "python"
    system = root / "etc" / "systemd" / "system"
    _write(
        system / "serve.service",
        f"[Service]\nUser={environ['USER']}\nExecStart=-{python} serve.py\n"
        "Environment=LD_LIBRARY_PATH=/usr/local/cuda-11.8/lib64\n"
        "Environment=\n"  # resets the list
        "Environment=CUDA_HOME=/usr/local/cuda\n"
        "EnvironmentFile=/etc/serve.env\n",
    )
    _write(system / "root-job.service", f"[Service]\nExecStart=@{python} trainer -m t\n")
    (system / "broken.service").mkdir()  # a folder where a unit should be: skipped
    by_name = {u.name: u for u in systemd_units(root, python, project_venv, environ)}
    assert set(by_name) == {"serve.service", "root-job.service"}
    serve = by_name["serve.service"]
    assert serve.env["HOME"] == str(home) and "LD_LIBRARY_PATH" not in serve.env
    assert serve.env["CUDA_HOME"] == "/usr/local/cuda"
    assert len(serve.problems) == 1 and "systemd would not start the unit" in serve.problems[0]
    assert dict(by_name["root-job.service"].env) == {"PATH": SYSTEMD_PATH}  # root: no HOME


@pytest.mark.skipif(os.getuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_units_and_crontabs_cost_only_themselves(
    project_venv: Path, tmp_path: Path
) -> None:
    root, home, environ = _machine(tmp_path)
    python = project_venv / "bin" / "python"
    locked = _write(home / ".config/systemd/user/a.service", f"[Service]\nExecStart={python}\n")
    locked.chmod(0)
    folder = root / "etc" / "cron.d"
    _write(folder / "x", f"* * * * * root {python}\n")
    folder.chmod(0)
    try:
        assert systemd_units(root, python, project_venv, environ) == []
        assert cron_jobs(root, python, project_venv, environ) == []
    finally:
        folder.chmod(0o755)
        locked.chmod(0o644)


# --------------------------------------------------------------------------- as entry points


def test_discover_checks_cron_and_systemd_in_their_own_environment(
    project_venv: Path, tmp_path: Path
) -> None:
    root, home, environ = _machine(tmp_path)
    python = project_venv / "bin" / "python"
    _write(
        root / "var/spool/cron/crontabs" / environ["USER"],
        f"CUDA_VISIBLE_DEVICES=-1\n0 * * * * {python} t.py\n",
    )
    unit = _write(
        home / ".config/systemd/user/t.service",
        f"[Service]\nEnvironment=XLA_FLAGS=--bad\nExecStart={python} t.py\n",
    )
    environ = {**environ, "TFFIX_SYSROOT": str(root), "LD_LIBRARY_PATH": "/caller/only"}
    points = entrycheck.discover(project_venv, python, environ, project=None)
    kinds = [p.kind for p in points]
    assert kinds[:2] == ["activated", "plain"] and kinds.count("cron") == 1
    assert kinds.count("systemd") == 1
    cron = next(p for p in points if p.kind == "cron")
    env = entrycheck.environment_for(cron, environ, project_venv, environ)
    assert env["CUDA_VISIBLE_DEVICES"] == "-1"
    assert "LD_LIBRARY_PATH" not in env  # the caller's shell does not reach cron
    state = entrycheck.state(cron, env, environ, None, python)
    assert state.adds["LD_LIBRARY_PATH"] is None and state.values["CUDA_VISIBLE_DEVICES"] == "-1"
    prov = entrycheck.trace(
        ["CUDA_VISIBLE_DEVICES", "XLA_FLAGS"],
        environ=environ,
        prefix=project_venv,
        site_dirs=[],
        kernelspecs=[],
        project=None,
        extra=services.origins_for(points),
    )
    assert [(o.line, o.kind) for o in prov.origins["CUDA_VISIBLE_DEVICES"]] == [(1, "cron")]
    assert [(o.file, o.line) for o in prov.origins["XLA_FLAGS"]] == [(str(unit), 2)]


def test_jobs_with_the_same_environment_share_one_check(tmp_path: Path) -> None:
    """A real program stands in for the interpreter and counts how often it is started."""
    count = tmp_path / "count"
    fake = _write(tmp_path / "bin" / "python", f'#!/bin/sh\necho "$JOB" >> {count}\n')
    fake.chmod(0o755)
    same = {"PATH": CRON_PATH, "JOB": "a"}

    def job(env: dict[str, str], note: str | None = None) -> entrycheck.EntryPoint:
        return entrycheck.EntryPoint(
            "cron", "j", argv=(str(fake),), env=env, complete=True, note=note
        )

    points = [job(same), job(dict(same)), job({**same, "JOB": "b"}), job(same, note="n")]
    states = entrycheck.check_all(points, {}, tmp_path, fake, {}, timeout=20)
    assert sorted(count.read_text().split()) == ["a", "b"]
    assert [s.usable for s in states] == [False, False, False, None]
    assert states[3].error == "n"
