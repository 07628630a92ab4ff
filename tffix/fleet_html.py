"""The fleet view as one self-contained HTML page: inline CSS, no script, no network.

Pure: the ``tffix.fleet/1`` aggregate (``tffix.fleet.aggregate``) -> ``str``. Every value from
the documents is escaped (they are untrusted); the page has the same tables as the text report:
a count per state, hosts per cause, the exact outside actions, what was repaired, and a row per
host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from tffix.fleet import STATES

_LABELS = {
    "healthy": "Healthy",
    "repaired": "Repaired",
    "fixable": "Fixable in the venv",
    "outside": "Needs outside action",
    "rollback-incomplete": "Rollback incomplete",
    "unknown": "Unknown",
}
_COLOURS = {
    "healthy": ("#1a7f37", "#dafbe1"),
    "repaired": ("#0969da", "#ddf4ff"),
    "fixable": ("#9a6700", "#fff8c5"),
    "outside": ("#cf222e", "#ffebe9"),
    "rollback-incomplete": ("#8250df", "#fbefff"),
    "unknown": ("#57606a", "#eaeef2"),
}

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f8fa; color: #1f2328;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  "Noto Sans", "Liberation Sans", sans-serif; }
header { background: #24292f; color: #fff; padding: 22px 32px 18px; }
header h1 { margin: 0; font-size: 22px; font-weight: 600; letter-spacing: .2px; }
header p { margin: 4px 0 0; color: #c9d1d9; font-size: 13px; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 40px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr));
  gap: 12px; margin-bottom: 14px; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 10px; padding: 14px 16px;
  border-top: 4px solid var(--fg); }
.card .n { font-size: 30px; font-weight: 650; color: var(--fg); line-height: 1.1; }
.card .l { font-size: 13px; color: #57606a; }
.bar { display: flex; height: 10px; border-radius: 5px; overflow: hidden; background: #eaeef2;
  margin: 4px 0 26px; }
.bar span { display: block; height: 100%; background: var(--fg); }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 10px; margin: 0 0 20px;
  overflow: hidden; }
section h2 { margin: 0; padding: 12px 18px; font-size: 16px; font-weight: 600;
  border-bottom: 1px solid #d0d7de; background: #f6f8fa; }
section h2 small { color: #57606a; font-weight: 400; margin-left: 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 8px 18px; border-bottom: 1px solid #eaeef2;
  vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .5px; color: #57606a;
  font-weight: 600; }
tr:last-child td { border-bottom: 0; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; width: 1%; white-space: nowrap; }
code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono",
  monospace; }
td code, .action code { background: #eff1f3; padding: 1px 6px; border-radius: 6px;
  white-space: nowrap; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 999px; font-size: 12px;
  font-weight: 600; color: var(--fg); background: var(--bg); white-space: nowrap; }
.host { font-weight: 600; }
td.hostcell { min-width: 10em; max-width: 24em; }
td.hostcell .kind { display: block; font-size: 12px; color: #57606a; font-weight: 400; }
.scroll { overflow-x: auto; }
.muted { color: #57606a; }
.title { color: #57606a; font-size: 13px; }
.action { padding: 12px 18px; border-bottom: 1px solid #eaeef2; }
.action:last-child { border-bottom: 0; }
.action p { margin: 0 0 6px; }
pre { margin: 6px 0 0; background: #1f2328; color: #e6edf3; padding: 10px 14px;
  border-radius: 8px; overflow-x: auto; white-space: pre-wrap; }
.empty { padding: 12px 18px; color: #57606a; }
footer { color: #57606a; font-size: 12px; text-align: center; margin-top: 8px; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _badge(state: str) -> str:
    fg, bg = _COLOURS.get(state, _COLOURS["unknown"])
    label = _LABELS.get(state, state)
    return f'<span class="badge" style="--fg:{fg};--bg:{bg}">{_e(label)}</span>'


def _fix_badge(fix: str) -> str:
    return _badge("outside") if fix == "outside" else _badge("fixable")


def _section(title: str, count: int | None, body: str) -> str:
    small = f"<small>{count}</small>" if count is not None else ""
    return f"<section><h2>{_e(title)}{small}</h2>{body}</section>"


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: set[int],
    *,
    host_column: bool = False,
) -> str:
    def cell(i: int, text: str) -> str:
        if i in numeric:
            return f'<td class="num">{text}</td>'
        if i == 0 and host_column:
            return f'<td class="hostcell">{text}</td>'
        return f"<td>{text}</td>"

    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(cell(i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _codes(items: Sequence[str]) -> str:
    return " ".join(f"<code>{_e(i)}</code>" for i in items) or '<span class="muted">—</span>'


def render_html(doc: Mapping[str, Any], *, generated: str = "") -> str:
    """The page for the aggregate *doc*; *generated* (e.g. a time) goes in the header."""
    counts: Mapping[str, int] = doc["counts"]
    total = int(doc["hosts"])
    cards = "".join(
        f'<div class="card" style="--fg:{_COLOURS[str(s)][0]}">'
        f'<div class="n">{counts[str(s)]}</div><div class="l">{_e(_LABELS[str(s)])}</div></div>'
        for s in STATES
        if counts[str(s)] or str(s) in ("healthy", "repaired", "fixable", "outside")
    )
    bar = "".join(
        f'<span style="--fg:{_COLOURS[str(s)][0]};width:{100 * counts[str(s)] / total:.2f}%" '
        f'title="{_e(_LABELS[str(s)])}: {counts[str(s)]}"></span>'
        for s in STATES
        if total and counts[str(s)]
    )
    parts = [f'<div class="cards">{cards}</div><div class="bar">{bar}</div>']

    causes = doc["causes"]
    if causes:
        cause_rows = [
            (
                f"<code>{_e(c['id'])}</code><div class='title'>{_e(c['title'])}</div>",
                _fix_badge(c["fix"]),
                str(len(c["hosts"])),
                ", ".join(f'<span class="host">{_e(h)}</span>' for h in c["hosts"]),
            )
            for c in causes
        ]
        body = _table(("Cause", "Who fixes it", "Hosts", "Which"), cause_rows, {2})
    else:
        body = '<div class="empty">No host has a problem left.</div>'
    parts.append(_section("Hosts per cause", len(causes), body))

    outside = doc["outside"]
    if outside:
        blocks = []
        for o in outside:
            acts = (
                "".join(
                    f"<p>{_e(a['summary'])}</p>"
                    + (f"<pre>{_e(chr(10).join(a['commands']))}</pre>" if a["commands"] else "")
                    for a in o["actions"]
                )
                or '<p class="muted">No command in the document; see its findings.</p>'
            )
            blocks.append(
                f'<div class="action"><p><span class="host">{_e(o["host"])}</span> '
                f"{_codes(o['causes'])}</p>{acts}</div>"
            )
        parts.append(_section("Needs an outside action", len(outside), "".join(blocks)))

    repaired = doc["repaired"]
    if repaired:
        repaired_rows = [
            (
                f'<span class="host">{_e(r["host"])}</span>',
                _codes(r["resolved"]),
                _badge(r["state"]),
            )
            for r in repaired
        ]
        parts.append(
            _section(
                "Repaired by tffix",
                len(repaired),
                _table(("Host", "Resolved", "Now"), repaired_rows, set()),
            )
        )

    gpu = {True: "yes", False: "no", None: "?"}
    show_resolved = any(h["resolved"] for h in doc["per_host"])
    host_rows: list[Sequence[str]] = []
    for h in doc["per_host"]:
        row = [
            f'<span class="host">{_e(h["host"])}</span><span class="kind">{_e(h["kind"])}</span>',
            _badge(h["state"]),
            "?" if h["exit_code"] is None else _e(h["exit_code"]),
            gpu[h["gpu_visible"]],
            "<br>".join(
                f"<code>{_e(c['id'])}</code> <span class='title'>{_e(c['title'])}</span>"
                for c in h["causes"]
            )
            or '<span class="muted">—</span>',
        ]
        if show_resolved:
            row.append(_codes(h["resolved"]))
        host_rows.append(row)
    header = ["Host", "State", "Exit", "GPU listed", "Causes left"]
    if show_resolved:
        header.append("Resolved")
    parts.append(_section("Per host", total, _table(header, host_rows, {2}, host_column=True)))
    subtitle = f"{total} host{'s' if total != 1 else ''}"
    if generated:
        subtitle += f" · {_e(generated)}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>tffix fleet report · {subtitle}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>TensorFlow GPU fleet report</h1><p>{subtitle}</p></header>"
        f"<main>{''.join(parts)}<footer>tffix report · {_e(doc['schema'])}</footer></main>"
        "</body></html>\n"
    )
