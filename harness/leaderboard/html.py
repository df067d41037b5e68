"""The leaderboard as one static HTML page: standings, verdict counts, scores over time (inline SVG).

Rendered from the Jinja2 template ``templates/leaderboard.html`` with autoescaping on: every
participant-supplied string (team names, messages, ids) is escaped by the template engine, never
by hand. Self-contained: inline CSS, no script, no external resource; a Content-Security-Policy
forbids them besides. This module only computes what the page shows (colours, the plot's geometry).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

import jinja2

from harness.leaderboard.board import Attempt, Entry
from harness.leaderboard.columns import COLUMNS, Column, shown
from harness.limits import Verdict
from harness.scoring import Metric
from harness.util.templates import html_environment

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
VERDICT_CLASS = {
    Verdict.SCORED: "ok",
    Verdict.INFRA_ERROR: "infra",
    Verdict.TIMEOUT: "warn",
    Verdict.MEMORY_LIMIT: "warn",
    Verdict.OUTPUT_LIMIT: "warn",
}
W, H, LEFT, RIGHT, TOP, BOTTOM = 960, 340, 64, 20, 16, 40


@dataclass(frozen=True)
class Page:
    title: str  # the competition's title
    board: str  # e.g. "Public leaderboard"
    metric: Metric
    part: str  # public | private: which score the plot shows
    rule: str
    generated_at: str
    columns: Sequence[Column] = COLUMNS  # after the score: one per secondary metric, the interval, beats next, each resource
    legend: str = ""  # how to read the intervals and the tie mark


@dataclass
class Series:
    """One team's line on the plot: its standing as a step line, a dot per scored submission."""

    team: str
    color: str
    points: str  # the polyline's points
    dots: list[tuple[str, str, str, float]] = field(default_factory=list)  # (cx, cy, submission, score)


@dataclass
class Plot:
    width: int
    height: int
    left: int
    right: int  # x of the plot's right edge
    bottom_label_y: int
    ticks: list[tuple[str, str, str]]  # (y of the grid line, y of its label, label)
    times: list[tuple[str, str, str]]  # (x, text-anchor, label)
    series: list[Series]


@cache
def environment() -> jinja2.Environment:
    env = html_environment("harness.leaderboard")
    env.filters["short_time"] = _short_time
    return env


def render_page(page: Page, entries: list[Entry], attempts: list[Attempt]) -> str:
    colors = {e.team: PALETTE[i] for i, e in enumerate(e for e in entries if e.rank is not None) if i < len(PALETTE)}
    return (
        environment()
        .get_template("leaderboard.html")
        .render(
            page=page,
            entries=entries,
            columns=shown(page.columns, entries),
            attempts=attempts,
            colors=colors,
            verdict_class=VERDICT_CLASS,
            plot=_plot(attempts, page, colors),
        )
    )


def _plot(attempts: list[Attempt], page: Page, colors: dict[str, str]) -> Plot | None:
    """The geometry of the scores-over-time plot; None when nothing is scored."""
    points = [(a, _time(a.submitted_at), a.score(page.part)) for a in attempts if a.team in colors and a.verdict == Verdict.SCORED]
    points = [(a, t, s) for a, t, s in points if s is not None and math.isfinite(s)]
    if not points:
        return None
    t0, t1 = min(t for _, t, _ in points), max(t for _, t, _ in points)
    if t1 - t0 < timedelta(hours=1):
        t0, t1 = t0 - timedelta(minutes=30), t1 + timedelta(minutes=30)
    ticks = _nice_ticks(min(s for *_, s in points), max(s for *_, s in points))
    y0, y1 = ticks[0], ticks[-1]
    x = lambda t: LEFT + (t - t0) / (t1 - t0) * (W - LEFT - RIGHT)  # noqa: E731
    y = lambda s: TOP + (y1 - s) / (y1 - y0) * (H - TOP - BOTTOM)  # noqa: E731
    times = []
    for i, anchor in enumerate(("start", "middle", "middle", "middle", "end")):
        t = t0 + (t1 - t0) * i / 4
        times.append((f"{x(t):.1f}", anchor, f"{t:%m-%d %H:%M}"))
    series = []
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
        dots = [(f"{x(t):.1f}", f"{y(s):.1f}", a.submission, s) for t, s, a in mine]
        series.append(Series(team, color, f"{_steps(path)} {end}", dots))
    return Plot(
        width=W,
        height=H,
        left=LEFT,
        right=W - RIGHT,
        bottom_label_y=H - 14,
        ticks=[(f"{y(v):.1f}", f"{y(v) + 4:.1f}", f"{v:.4g}") for v in ticks],
        times=times,
        series=series,
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
