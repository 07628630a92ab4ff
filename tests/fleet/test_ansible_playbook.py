"""The Ansible collection end to end: the real ``ansible-playbook`` against four local hosts.

Each host (``ansible_connection=local``) is a different simulated machine with its own venv
(tests/harness): one healthy, two that tffix repairs in the venv (an activate-script edit, a
pip install of the CUDA wheels), one whose driver is too old (outside only). The collection is
built with ``ansible-galaxy collection build`` and installed into the test's folder; the
playbook is the one it ships (``tffix.fleet.gpu_fleet``).

- ``--check --diff`` reports the two repairs as changes, fails the outside host with its cause,
  and leaves every venv as it was (``pip freeze --all`` and the activate scripts byte for byte);
- a real run repairs the two hosts (``changed``; the fake TensorFlow then lists the GPU), fails
  the outside host with its cause and the exact commands, and writes one document per host;
- a second run changes nothing;
- ``tffix report`` over the first run's documents: the counts match, and the HTML page the
  playbook wrote renders in headless Chromium without a console message (skipped where no
  Chromium is installed; the screenshot stays in the test's folder).

ansible-core comes from the package index through the ``test`` extra.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fleet import browser
from tests.harness import sim
from tests.harness.sim import SimEnv, pip_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOSTS = {
    "gpu01": "healthy-tf218-andcuda",
    "gpu02": "cuda-visible-devices-activate-script",
    "gpu03": "cuda-libs-missing-tf218",
    "gpu04": "driver-too-old-470",
}
REPAIRABLE = {"gpu02", "gpu03"}
OUTSIDE = {"gpu04": "driver-too-old"}
_RECAP = re.compile(
    r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE
)


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed next to {sys.executable} (pip install -e '.[test]')")
    return path


def _state(env: SimEnv) -> tuple[str, dict[str, bytes]]:
    freeze = env.pip("freeze", "--all").stdout
    scripts = {p.name: p.read_bytes() for p in sorted((env.venv / "bin").glob("*ctivate*"))}
    return freeze, scripts


def _recap(stdout: str) -> dict[str, dict[str, int]]:
    tail = stdout[stdout.rindex("PLAY RECAP") :]
    return {
        m[1]: {"ok": int(m[2]), "changed": int(m[3]), "failed": int(m[5])}
        for m in _RECAP.finditer(tail)
    }


class Fleet:
    """The inventory, the installed collection, and a way to run the shipped playbook."""

    def __init__(self, folder: Path, envs: dict[str, SimEnv]) -> None:
        self.folder = folder
        self.envs = envs
        self.collections = folder / "collections"
        galaxy = _tool("ansible-galaxy")
        built = subprocess.run(
            [str(galaxy), "collection", "build", str(ROOT / "tffix" / "ansible"),
             "--output-path", str(folder / "dist")],
            capture_output=True, text=True, check=False, env=self.env(), cwd=folder,
        )  # fmt: skip
        assert built.returncode == 0, built.stdout + built.stderr
        tarball = next((folder / "dist").glob("tffix-fleet-*.tar.gz"))
        installed = subprocess.run(
            [str(galaxy), "collection", "install", str(tarball), "-p", str(self.collections)],
            capture_output=True, text=True, check=False, env=self.env(), cwd=folder,
        )  # fmt: skip
        assert installed.returncode == 0, installed.stdout + installed.stderr
        hosts = {}
        for host, env in envs.items():
            hosts[host] = {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "tffix_venv": str(env.venv),
                "tffix_executable": str(_tool("tffix")),
                "tffix_environment": {
                    **env.env,
                    **pip_env(env.index),
                    "TFFIX_SYSROOT": str(env.root),
                },
            }
        self.inventory = folder / "inventory.yml"
        # JSON is YAML: the inventory needs no YAML writer.
        self.inventory.write_text(json.dumps({"gpu": {"hosts": hosts}}, indent=2))

    def env(self) -> dict[str, str]:
        """ansible-playbook's own environment: nothing of the developer's shell leaks in."""
        home = self.folder / "home"
        home.mkdir(exist_ok=True)
        return {
            "HOME": str(home),
            "PATH": f"{BIN}{os.pathsep}/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_LOCAL_TEMP": str(self.folder / "ansible-local"),
            "ANSIBLE_REMOTE_TEMP": str(self.folder / "ansible-remote"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        }

    def playbook(self, report_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(_tool("ansible-playbook")),
                "-i", str(self.inventory),
                "tffix.fleet.gpu_fleet",
                "-e", f"tffix_report_dir={report_dir}",
                "-e", f"tffix_report_executable={_tool('tffix')}",
                *flags,
            ],
            capture_output=True, text=True, check=False, env=self.env(), cwd=self.folder,
            timeout=900,
        )  # fmt: skip

    def states(self) -> dict[str, tuple[str, dict[str, bytes]]]:
        return {host: _state(env) for host, env in self.envs.items()}


@pytest.fixture
def fleet(sim_index: Path, tmp_path: Path) -> Fleet:
    _tool("ansible-playbook")
    with ThreadPoolExecutor(max_workers=len(HOSTS)) as pool:
        futures = {
            host: pool.submit(sim.make_env, name, tmp_path / host, sim_index)
            for host, name in HOSTS.items()
        }
        envs = {host: f.result() for host, f in futures.items()}
    (tmp_path / "ansible").mkdir()
    return Fleet(tmp_path / "ansible", envs)


def _report(report_dir: Path) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "tffix", "report", str(report_dir), "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1, 3), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_check_run_again_and_report(fleet: Fleet, tmp_path: Path) -> None:
    before = fleet.states()

    # --check --diff: the would-be changes, and nothing changed
    checked = fleet.playbook(tmp_path / "check", "--check", "--diff")
    out = checked.stdout
    assert checked.returncode == 2, out + checked.stderr  # a failed host (gpu04)
    recap = _recap(out)
    assert {h: r["changed"] > 0 for h, r in recap.items() if h in HOSTS} == {
        h: h in REPAIRABLE for h in HOSTS
    }, out
    assert {h for h, r in recap.items() if r["failed"]} == set(OUTSIDE), out
    assert "fatal: [gpu04]" in out and "driver-too-old" in out
    assert "+ step 1" in out  # the planned steps, as the check-mode diff
    assert fleet.states() == before  # pip freeze and activate scripts, byte for byte
    code, doc = _report(tmp_path / "check")
    assert code == 3
    assert doc["counts"]["fixable"] == 2 and doc["counts"]["healthy"] == 1  # type: ignore[index]
    assert doc["counts"]["outside"] == 1  # type: ignore[index]

    # a real run: repairs gpu02 and gpu03, fails gpu04 with its reason
    first = fleet.playbook(tmp_path / "run1", "--diff")
    out = first.stdout
    assert first.returncode == 2, out + first.stderr
    recap = _recap(out)
    assert {h for h, r in recap.items() if r["changed"]} == REPAIRABLE, out
    assert {h for h, r in recap.items() if r["failed"]} == set(OUTSIDE), out
    fatal = out[out.index("fatal: [gpu04]") :].split("\n", 1)[0]
    assert "driver-too-old" in fatal and "sudo" in fatal, fatal  # the cause and the commands
    assert "+nvidia-cudnn-cu12==" in out  # the package diff of gpu03
    assert f"--- before: {fleet.envs['gpu02'].venv}/bin/activate" in out  # its env edit
    for host in REPAIRABLE:
        assert fleet.envs[host].tf_report().gpus == ["/physical_device:GPU:0"], host
    assert fleet.states()["gpu01"] == before["gpu01"]
    assert fleet.states()["gpu04"] == before["gpu04"]
    documents = sorted(p.name for p in (tmp_path / "run1").glob("*.json"))
    assert documents == [f"{h}.json" for h in HOSTS]

    # a second run: nothing to change
    second = fleet.playbook(tmp_path / "run2")
    recap = _recap(second.stdout)
    assert all(r["changed"] == 0 for h, r in recap.items()), second.stdout
    assert {h for h, r in recap.items() if r["failed"]} == set(OUTSIDE), second.stdout

    # the fleet report over the first run's documents
    code, doc = _report(tmp_path / "run1")
    assert code == 3  # the worst host needs an outside action
    assert doc["hosts"] == len(HOSTS)
    assert doc["counts"] == {  # type: ignore[comparison-overlap]
        "healthy": 1,
        "repaired": 2,
        "fixable": 0,
        "outside": 1,
        "rollback-incomplete": 0,
        "unknown": 0,
    }
    assert doc["healthy"] == ["gpu01"]
    assert {r["host"] for r in doc["repaired"]} == REPAIRABLE  # type: ignore[union-attr]
    assert [(o["host"], o["causes"]) for o in doc["outside"]] == [("gpu04", ["driver-too-old"])]  # type: ignore[union-attr]
    assert any(o["actions"] for o in doc["outside"])  # type: ignore[union-attr]
    causes = {c["id"]: c["hosts"] for c in doc["causes"]}  # type: ignore[union-attr]
    assert causes == {"driver-too-old": ["gpu04"]}

    page = tmp_path / "run1" / "index.html"
    assert page.exists(), first.stdout  # written by the playbook's report play
    text = page.read_text()
    assert browser.fetches(text) == []  # one self-contained file: nothing to fetch
    rendered = browser.render(page, tmp_path / "artefacts")
    if rendered is None:
        pytest.skip("no Chromium here (apt-get install chromium); the page was not rendered")
    assert rendered.console == []
    assert "gpu04" in rendered.dom and "driver-too-old" in rendered.dom
    assert rendered.screenshot.stat().st_size > 10_000
    shutil.copy(rendered.screenshot, tmp_path / "fleet-report.png")
