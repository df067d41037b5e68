"""An audit report (``report.json``'s content) as plain text and as a self-contained HTML page."""

from __future__ import annotations

import html
import json
from typing import Any

_COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "REFUSED": "#9a6700"}


def render_text(report: dict[str, Any]) -> str:
    lines = [f"audit {report['audit_id']}: {report['status']}", *_facts(report)]
    if report["reason"]:
        lines.append(f"reason: {report['reason']}")
    if report["runs"]:
        lines += ["", "runs:"] + [f"  {' '.join(row)}" for row in _run_rows(report)]
    if report["spread"]:
        lines += ["", "score spread over the record and its repeats:"]
        lines += [f"  {key}: " + ", ".join(f"{k} {_short(v)}" for k, v in figures.items()) for key, figures in report["spread"].items()]
    differences = report["differences"]
    lines += ["", f"differences: {len(differences)} ({sum(d['fatal'] for d in differences)} failing)"]
    lines += [
        f"  {'FAIL' if d['fatal'] else 'note'}  {d['kind']:<9} {d['what']}: {_short(d['recorded'])} -> {_short(d['observed'])}"
        for d in differences
    ]
    return "\n".join(lines) + "\n"


def render_html(report: dict[str, Any]) -> str:
    e = html.escape
    status = report["status"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Audit {e(report['audit_id'])}: {e(status)}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;font-family:monospace}"
        ".status{color:#fff;padding:2px 10px;border-radius:4px}</style></head><body>",
        f"<h1>Audit {e(report['audit_id'])} <span class='status' style='background:{_COLOURS.get(status, '#555')}'>{e(status)}</span></h1>",
        "<ul>" + "".join(f"<li>{e(fact)}</li>" for fact in _facts(report)) + "</ul>",
    ]
    if report["reason"]:
        parts.append(f"<p><b>Reason:</b> {e(report['reason'])}</p>")
    if report["runs"]:
        parts.append(_table(["run", "evaluation", "verdict", "predictions", "model", "scores"], _run_rows(report)))
    if report["spread"]:
        rows = [[key, *(_short(figures.get(k)) for k in ("min", "max", "mean", "stdev", "n"))] for key, figures in report["spread"].items()]
        parts.append("<h2>Score spread</h2>" + _table(["score", "min", "max", "mean", "stdev", "n"], rows))
    rows = [
        ["FAIL" if d["fatal"] else "note", d["kind"], d["what"], _short(d["recorded"]), _short(d["observed"])]
        for d in report["differences"]
    ]
    parts.append(
        f"<h2>Differences ({len(rows)})</h2>" + (_table(["", "kind", "what", "recorded", "observed"], rows) if rows else "<p>none</p>")
    )
    return "".join(parts) + "</body></html>\n"


def _facts(report: dict[str, Any]) -> list[str]:
    submission = report["submission"]
    deterministic = {True: "yes", False: "no", None: "not checked (one repeat)"}[report["deterministic"]]
    return [
        f"competition {report['competition']}, submission {submission.get('id')} (team {submission.get('team', '?')}, image {submission.get('image', '?')})",
        f"record {report['evaluation_id']}, audited {report['created_at']}",
        f"repeats: {report['repeats']}, deterministic: {deterministic}",
    ]


def _run_rows(report: dict[str, Any]) -> list[list[str]]:
    return [
        [
            f"repeat {n}",
            run["evaluation_id"],
            run["verdict"],
            _short(run["predictions_sha256"]),
            _short(run["model_sha256"]),
            ", ".join(f"{part}.{k}={v:.5f}" for part, named in run["scores"].items() for k, v in named.items()),
        ]
        for n, run in enumerate(report["runs"], 1)
    ]


def _table(header: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
