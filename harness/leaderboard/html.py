"""The leaderboard as one static HTML page: standings, verdict counts, scores over time (inline SVG).

Self-contained: inline CSS, no script, no external resource; a Content-Security-Policy forbids
them besides. Every participant-supplied string (team names, messages) goes through ``_e``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from harness.leaderboard.board import SCORED, Attempt, Entry
from harness.scoring import Metric

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
VERDICT_CLASS = {"SCORED": "ok", "INFRA_ERROR": "infra", "TIMEOUT": "warn", "MEMORY_LIMIT": "warn", "OUTPUT_LIMIT": "warn"}
W, H, LEFT, RIGHT, TOP, BOTTOM = 960, 340, 64, 20, 16, 40

CSS = """
:root { --ink:#1f2933; --muted:#667085; --line:#e4e7ec; --bg:#f6f7f9; --card:#fff; --accent:#3b5bdb; }
* { box-sizing:border-box; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif; color:var(--ink); background:var(--bg); }
header { background:linear-gradient(120deg,#1e3a8a,#3b5bdb); color:#fff; padding:28px 40px 24px; }
h1 { margin:0 0 6px; font-size:26px; font-weight:650; letter-spacing:-.01em; }
.sub { margin:0; opacity:.9; }
.badge { display:inline-block; padding:2px 10px; border-radius:999px; background:rgba(255,255,255,.18); font-weight:600; margin-right:8px; }
main { max-width:1040px; margin:-12px auto 40px; padding:0 20px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:20px 24px; margin-top:20px; box-shadow:0 1px 2px rgba(16,24,40,.05); }
h2 { margin:0 0 12px; font-size:17px; }
table { width:100%; border-collapse:collapse; }
th { text-align:left; font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); border-bottom:1px solid var(--line); padding:8px 10px; }
td { padding:10px; border-bottom:1px solid var(--line); vertical-align:middle; }
tr:last-child td { border-bottom:0; }
td.num { font-variant-numeric:tabular-nums; font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; }
td.team { font-weight:600; overflow-wrap:anywhere; max-width:320px; }
.rank { display:inline-flex; width:30px; height:30px; border-radius:50%; align-items:center; justify-content:center; font-weight:700; background:#eef2ff; color:#3730a3; }
.rank.r1 { background:#fde68a; color:#78350f; } .rank.r2 { background:#e5e7eb; color:#374151; } .rank.r3 { background:#f5d0a9; color:#7c2d12; }
.rank.none { background:transparent; color:var(--muted); }
.swatch { display:inline-block; width:10px; height:10px; border-radius:50%; margin-right:8px; }
.chip { display:inline-block; padding:1px 8px; border-radius:999px; font-size:12px; margin:1px 4px 1px 0; background:#fee4e2; color:#912018; white-space:nowrap; }
.chip.ok { background:#d1fadf; color:#05603a; } .chip.warn { background:#fef0c7; color:#93370d; } .chip.infra { background:#eaecf0; color:#344054; }
td.note { color:var(--muted); font-size:13px; overflow-wrap:anywhere; }
.muted { color:var(--muted); }
svg { width:100%; height:auto; display:block; }
svg text { font:12px system-ui,sans-serif; fill:#667085; }
.legend { display:flex; flex-wrap:wrap; gap:6px 18px; margin-top:8px; font-size:13px; }
footer { text-align:center; color:var(--muted); font-size:12px; margin-bottom:30px; }
"""


@dataclass(frozen=True)
class Page:
    title: str  # the competition's title
    board: str  # e.g. "Public leaderboard"
    metric: Metric
    part: str  # public | private: which score the plot shows
    rule: str
    generated_at: str


def render_page(page: Page, entries: list[Entry], attempts: list[Attempt]) -> str:
    colors = {e.team: PALETTE[i] for i, e in enumerate(e for e in entries if e.rank is not None) if i < len(PALETTE)}
    direction = "higher is better" if page.metric.higher_is_better else "lower is better"
    teams = len(entries)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(page.title)}: {_e(page.board)}</title><style>{CSS}</style></head>
<body><header><h1>{_e(page.title)}</h1>
<p class="sub"><span class="badge">{_e(page.board)}</span>{_e(page.metric.name)}, {direction} &middot; {teams} team{"s" * (teams != 1)} &middot;
{len(attempts)} evaluated submission{"s" * (len(attempts) != 1)} &middot; generated {_e(_short_time(page.generated_at))} UTC</p></header>
<main><section class="card"><h2>Standings</h2>{_standings(entries, page, colors)}</section>
<section class="card"><h2>{_e(page.part.capitalize())} score over time</h2>{_plot(attempts, page, colors)}</section></main>
<footer>Built by harness from the evaluation records. Team names and messages are shown exactly as submitted.</footer>
</body></html>
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _standings(entries: list[Entry], page: Page, colors: dict[str, str]) -> str:
    if not entries:
        return '<p class="muted">No evaluations yet.</p>'
    head = f"<tr><th>Rank</th><th>Team</th><th>{_e(page.metric.name)}</th><th>Submission</th><th>Submitted</th><th>Entries</th><th>Verdicts</th></tr>"
    rows = []
    for e in entries:
        rank = f'<span class="rank r{e.rank}">{e.rank}</span>' if e.rank else '<span class="rank none">&ndash;</span>'
        swatch = f'<span class="swatch" style="background:{colors[e.team]}"></span>' if e.team in colors else ""
        score = f'<td class="num">{e.score:.5f}</td>' if e.score is not None else f'<td class="note">{_e(e.verdict)}: {_e(e.message)}</td>'
        chips = "".join(f'<span class="chip {VERDICT_CLASS.get(v, "")}">{_e(v)} {n}</span>' for v, n in e.verdicts.items())
        rows.append(
            f'<tr><td>{rank}</td><td class="team">{swatch}{_e(e.team)}</td>{score}<td class="num">{_e(e.submission)}</td>'
            f'<td class="num">{_e(_short_time(e.submitted_at))}</td><td class="num">{e.submissions}</td><td>{chips}</td></tr>'
        )
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _plot(attempts: list[Attempt], page: Page, colors: dict[str, str]) -> str:
    points = [(a, _time(a.submitted_at), a.score(page.part)) for a in attempts if a.team in colors and a.verdict == SCORED]
    points = [(a, t, s) for a, t, s in points if s is not None and math.isfinite(s)]
    if not points:
        return '<p class="muted">No scored submissions yet.</p>'
    t0, t1 = min(t for _, t, _ in points), max(t for _, t, _ in points)
    if t1 - t0 < timedelta(hours=1):
        t0, t1 = t0 - timedelta(minutes=30), t1 + timedelta(minutes=30)
    ticks = _nice_ticks(min(s for *_, s in points), max(s for *_, s in points))
    y0, y1 = ticks[0], ticks[-1]
    x = lambda t: LEFT + (t - t0) / (t1 - t0) * (W - LEFT - RIGHT)  # noqa: E731
    y = lambda s: TOP + (y1 - s) / (y1 - y0) * (H - TOP - BOTTOM)  # noqa: E731
    parts = [
        f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e4e7ec"/>'
        f'<text x="{LEFT - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.4g}</text>'
        for v in ticks
    ]
    for i, anchor in enumerate(("start", "middle", "middle", "middle", "end")):
        t = t0 + (t1 - t0) * i / 4
        parts.append(f'<text x="{x(t):.1f}" y="{H - 14}" text-anchor="{anchor}">{t:%m-%d %H:%M}</text>')
    for team, color in colors.items():
        mine = [(t, s, a) for a, t, s in points if a.team == team]
        if not mine:
            continue
        standing, path = None, []
        for t, s, _ in mine:
            better = standing is None or page.rule == "last" or (s > standing if page.metric.higher_is_better else s < standing)
            standing = s if better else standing
            path.append(f"{x(t):.1f},{y(standing):.1f}")
        end = f"{W - RIGHT},{y(standing):.1f}" if standing is not None else ""
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2.5" points="{_steps(path)} {end}"/>')
        parts += [
            f'<circle cx="{x(t):.1f}" cy="{y(s):.1f}" r="4" fill="#fff" stroke="{color}" stroke-width="2">'
            f"<title>{_e(team)} {_e(a.submission)}: {s:.5f}</title></circle>"
            for t, s, a in mine
        ]
    legend = "".join(f'<span><span class="swatch" style="background:{c}"></span>{_e(team)}</span>' for team, c in colors.items())
    label = "the team's best so far" if page.rule == "best" else "the team's latest"
    return (
        f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="scores over time">{"".join(parts)}</svg>'
        f'<div class="legend">{legend}</div><p class="muted">Dots: each scored submission; line: {label}.</p>'
    )


def _steps(points: list[str]) -> str:
    """A step line: hold each value until the next point."""
    out = [points[0]]
    for prev, cur in zip(points, points[1:]):
        out += [f"{cur.split(',')[0]},{prev.split(',')[1]}", cur]
    return " ".join(out)


def _nice_ticks(low: float, high: float) -> list[float]:
    if high - low < 1e-9:
        low, high = low - 0.05 * (abs(low) or 1), high + 0.05 * (abs(high) or 1)
    raw = (high - low) / 5
    step = min((m * 10 ** math.floor(math.log10(raw)) for m in (1, 2, 5, 10)), key=lambda s: abs(s - raw))
    start = math.floor(low / step) * step
    count = math.ceil((high - start) / step - 1e-9)
    return [round(start + i * step, 10) for i in range(count + 1)]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _short_time(text: str) -> str:
    try:
        return f"{_time(text):%Y-%m-%d %H:%M}"
    except ValueError:
        return text
