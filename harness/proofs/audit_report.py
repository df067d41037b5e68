"""An audit report (``report.json``'s content) as plain text and as a self-contained HTML page (a Jinja2 template)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from harness.util.templates import html_environment

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
    """The report as a page, from the autoescaping Jinja2 template ``templates/audit_report.html``."""
    spread = [[key, *(_short(figures.get(k)) for k in ("min", "max", "mean", "stdev", "n"))] for key, figures in report["spread"].items()]
    differences = [
        ["FAIL" if d["fatal"] else "note", d["kind"], d["what"], _short(d["recorded"]), _short(d["observed"])]
        for d in report["differences"]
    ]
    return (
        _environment()
        .get_template("audit_report.html")
        .render(
            report=report,
            colour=_COLOURS.get(report["status"], "#555"),
            facts=_facts(report),
            runs=_run_rows(report),
            spread=spread,
            differences=differences,
        )
    )


@cache
def _environment():
    return html_environment("harness.proofs", keep_trailing_newline=True)  # only the HTML report needs it


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


def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
