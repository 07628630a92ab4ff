#!/usr/bin/python
# Copyright: tffix maintainers
# Apache License 2.0 (see LICENSE in the tffix repository)
"""Ansible module: run the host's tffix against a virtualenv (check mode = ``--dry-run``)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tffix
short_description: Find out why TensorFlow does not use the GPU on a host, and repair it
description:
  - Runs the C(tffix) installed on the managed host against a virtualenv.
  - In check mode it runs C(tffix --dry-run --json) and reports the steps a real run would
    apply as a change, without changing anything.
  - A normal run is C(tffix --yes --json) (with C(--unsafe) when O(unsafe=true)); C(tffix)
    re-verifies the GPU after each step in a fresh process and rolls back a step that makes
    things worse.
  - The task fails by tffix's exit codes; a host that needs an action outside the venv
    (a driver upgrade, a container flag, another machine) fails with the cause and the exact
    commands.
  - The diagnosis or outcome document and its findings are returned, and set as the
    C(tffix) host fact, so that C(tffix report) can be run over a whole inventory.
version_added: "0.1.0"
options:
  venv:
    description: The virtualenv (or conda environment) whose TensorFlow should see the GPU.
    type: path
    required: true
  executable:
    description:
      - The C(tffix) program on the host.
      - Default is C(tffix) on the module's C(PATH).
    type: path
  unsafe:
    description:
      - Also apply unsafe steps (another TensorFlow release, overriding another framework's
        pins), like C(tffix --unsafe).
    type: bool
    default: false
  chdir:
    description:
      - Run tffix in this folder and let it scan the project there for code that hides the GPU
        (C(CUDA_VISIBLE_DEVICES) set in code, C(tf.device) on CPU).
      - Without it the scan is skipped (C(--no-scan)).
    type: path
notes:
  - Check mode is supported; diff mode shows the venv's package list and its C(bin/activate)
    before and after a real run, and the planned steps in check mode.
  - The task keyword C(environment) passes variables to tffix (a package index, a proxy);
    C(timeout) bounds a run.
  - tffix never runs C(sudo); driver upgrades are reported, not done.
requirements:
  - tffix on the managed host
author:
  - tffix maintainers
"""

EXAMPLES = r"""
- name: Report what tffix would change (check mode never changes a host)
  tffix.fleet.tffix:
    venv: /opt/envs/tf
  check_mode: true
  register: plan

- name: Repair the venv; fail hosts that need a driver or other outside action
  tffix.fleet.tffix:
    venv: /opt/envs/tf
    unsafe: false
  environment:
    PIP_INDEX_URL: https://pypi.example.internal/simple
  register: repaired

- name: Keep each host's document for `tffix report`
  ansible.builtin.copy:
    content: "{{ repaired.outcome | to_nice_json }}"
    dest: "reports/{{ inventory_hostname }}.json"
  delegate_to: localhost
"""

RETURN = r"""
exit_code:
  description: tffix's exit code (0 GPU works, 1 venv-fixable problems remain, 2 usage error,
    3 an outside action is needed, 4 rollback incomplete, 5 internal error).
  returned: always
  type: int
findings:
  description: The findings (id, title, severity, fix, and in a real run their status).
  returned: when tffix printed a document
  type: list
  elements: dict
diagnosis:
  description: The tffix.diagnosis/1 document (check mode).
  returned: in check mode, when tffix printed it
  type: dict
outcome:
  description: The tffix.outcome/1 document (a real run).
  returned: in a real run, when tffix printed it
  type: dict
would_apply:
  description: Summaries of the steps a real run would apply (check mode).
  returned: in check mode
  type: list
  elements: str
actions:
  description: Steps left for a person, outside the venv, with their exact commands.
  returned: when tffix printed a document
  type: list
  elements: dict
stderr:
  description: tffix's progress messages.
  returned: always
  type: str
ansible_facts:
  description: C(tffix) with venv, exit_code, findings and the document.
  returned: when tffix printed a document
  type: dict
"""

# Ansible's layout puts the documentation strings first, then the imports.
import json  # noqa: E402
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

# tffix's documented exit codes (README, "Exit codes"); 5 is an internal error.
EXIT_OK = 0
EXIT_FIXABLE = 1
EXIT_USAGE = 2
EXIT_OUTSIDE = 3
EXIT_ROLLBACK = 4

_PACKAGES = (
    "import importlib.metadata as m\n"
    "names = sorted({'%s==%s' % (d.metadata['Name'], d.version) for d in m.distributions()})\n"
    "print('\\n'.join(names))\n"
)


def _document(stdout):
    """The JSON document tffix printed (the last top-level object), or None."""
    decoder = json.JSONDecoder()
    found = None
    index = stdout.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(stdout, index)
        except ValueError:
            index = stdout.find("{", index + 1)
            continue
        if isinstance(value, dict) and "schema" in value:
            found = value
        index = stdout.find("{", end)
    return found


def _venv_state(module, venv):
    """The venv's package list and activate script, for diff mode."""
    python = os.path.join(venv, "bin", "python")
    packages = ""
    if os.path.exists(python):
        rc, out, _ = module.run_command([python, "-I", "-c", _PACKAGES])
        packages = out if rc == 0 else ""
    activate = os.path.join(venv, "bin", "activate")
    try:
        with open(activate, encoding="utf-8", errors="replace") as fh:
            script = fh.read()
    except OSError:
        script = ""
    return packages, script


def _offered(plan, unsafe):
    allowed = ("safe", "unsafe") if unsafe else ("safe",)
    return [s for s in plan if s.get("safety") in allowed and s.get("kind") != "manual"]


def _manual_actions(doc):
    if doc.get("schema") == "tffix.outcome/1":
        steps = [s for s in doc.get("steps", []) if s.get("status") == "manual"]
    else:
        steps = [s for s in doc.get("plan", []) if s.get("safety") == "manual"]
    return [
        {"summary": s.get("summary", ""), "commands": list(s.get("commands", []))} for s in steps
    ]


def _outside_reason(doc, actions):
    findings = doc.get("findings", [])
    outside = [
        f
        for f in findings
        if f.get("fix") == "outside"
        and f.get("severity") == "error"
        and f.get("status", "still present") != "resolved"
    ]
    causes = "; ".join(f"{f.get('id')}: {f.get('title')}" for f in outside)
    todo = "; ".join(
        a["summary"] + (" (" + " && ".join(a["commands"]) + ")" if a["commands"] else "")
        for a in actions
    )
    text = "needs an action outside the venv"
    if causes:
        text += " - " + causes
    if todo:
        text += " - do: " + todo
    return text


def _remaining(doc):
    findings = doc.get("findings", [])
    return [
        f.get("id")
        for f in findings
        if f.get("severity") == "error" and f.get("status", "still present") != "resolved"
    ]


def _planned_diff(offered):
    """Check mode's diff: the steps a run would apply, with what each changes."""
    lines = []
    for s in offered:
        lines.append(f"+ step {s.get('step')} [{s.get('safety')}]: {s.get('summary')}")
        if s.get("requirements"):
            lines.append("    pip install " + " ".join(s["requirements"]))
        if s.get("packages"):
            lines.append("    pip uninstall " + " ".join(s["packages"]))
        if s.get("variable"):
            value = s.get("value", s.get("entry", ""))
            lines.append(f"    {s.get('kind')} {s['variable']} {value or ''}")
    return {"prepared": "\n".join(lines) + "\n"}


def _state_diff(venv, before, after):
    """A real run's diff: the package list and bin/activate, before and after."""
    activate = os.path.join(venv, "bin", "activate")
    return [
        {
            "before_header": f"{venv} (packages)",
            "after_header": f"{venv} (packages)",
            "before": before[0],
            "after": after[0],
        },
        {
            "before_header": activate,
            "after_header": activate,
            "before": before[1],
            "after": after[1],
        },
    ]


def _finish_check(module, doc, rc, unsafe, result):
    """Check mode (tffix --dry-run): changed = a run would apply steps; fail as a run would."""
    offered = _offered(doc.get("plan", []), unsafe)
    result["would_apply"] = [s.get("summary", "") for s in offered]
    result["changed"] = bool(offered)
    if module._diff and offered:
        result["diff"] = _planned_diff(offered)
    if rc == EXIT_OK or (rc == EXIT_FIXABLE and offered):
        module.exit_json(msg=f"would apply {len(offered)} step(s)", **result)
    if rc == EXIT_OUTSIDE:
        module.fail_json(msg=_outside_reason(doc, result["actions"]), **result)
    if rc == EXIT_FIXABLE:
        module.fail_json(
            msg=f"venv-fixable problems ({', '.join(_remaining(doc))}) but no step tffix "
            "may apply" + ("" if unsafe else "; unsafe: true offers more"),
            **result,
        )
    module.fail_json(msg=f"tffix exited {rc}", **result)


def _finish_run(module, doc, rc, unsafe, result):
    """A real run (tffix --yes): changed = steps applied and kept; failed by the exit code."""
    result["changed"] = bool(doc.get("changed"))
    if rc == EXIT_OK:
        applied = [s for s in doc.get("steps", []) if s.get("status") == "applied"]
        msg = f"applied {len(applied)} step(s); GPU verified" if applied else "nothing to do"
        module.exit_json(msg=msg, **result)
    if rc == EXIT_OUTSIDE:
        module.fail_json(msg=_outside_reason(doc, result["actions"]), **result)
    if rc == EXIT_ROLLBACK:
        left = ", ".join(doc.get("left_changed", [])) or "see the outcome"
        module.fail_json(msg="a step failed and could not be fully rolled back: " + left, **result)
    if rc == EXIT_FIXABLE:
        module.fail_json(
            msg=f"problems remain that tffix can fix in the venv ({', '.join(_remaining(doc))})"
            + ("" if unsafe else "; unsafe: true may fix them"),
            **result,
        )
    module.fail_json(msg=f"tffix exited {rc}", **result)


def main():
    module = AnsibleModule(
        argument_spec={
            "venv": {"type": "path", "required": True},
            "executable": {"type": "path"},
            "unsafe": {"type": "bool", "default": False},
            "chdir": {"type": "path"},
        },
        supports_check_mode=True,
    )
    venv = module.params["venv"]
    unsafe = module.params["unsafe"]
    chdir = module.params["chdir"]
    if not os.path.isdir(venv):
        module.fail_json(msg=f"venv {venv} is not a folder", exit_code=EXIT_USAGE, stderr="")
    executable = module.params["executable"] or module.get_bin_path("tffix", required=True)

    argv = [executable, "--json", "--venv", venv]
    argv.append("--dry-run" if module.check_mode else "--yes")
    if unsafe:
        argv.append("--unsafe")
    if not chdir:
        argv.append("--no-scan")

    before = _venv_state(module, venv) if module._diff and not module.check_mode else None
    rc, stdout, stderr = module.run_command(argv, cwd=chdir or None)
    doc = _document(stdout)
    result = {"changed": False, "exit_code": rc, "stderr": stderr, "cmd": argv}
    if doc is None:
        last = (stderr.strip().splitlines() or stdout.strip().splitlines() or ["no output"])[-1]
        module.fail_json(msg=f"tffix exited {rc}: {last}", **result)

    result["findings"] = doc.get("findings", [])
    result["actions"] = _manual_actions(doc)
    key = "outcome" if doc.get("schema") == "tffix.outcome/1" else "diagnosis"
    result[key] = doc
    result["ansible_facts"] = {
        "tffix": {"venv": venv, "exit_code": rc, "findings": result["findings"], key: doc}
    }
    if module.check_mode:
        _finish_check(module, doc, rc, unsafe, result)
    if before is not None:
        result["diff"] = _state_diff(venv, before, _venv_state(module, venv))
    _finish_run(module, doc, rc, unsafe, result)


if __name__ == "__main__":
    main()
