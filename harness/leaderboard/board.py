"""Leaderboards built from evaluation records: one row per team, ranked by the competition's rule.

- Each submission counts with its latest record; a team's rows are its submissions' records.
- Public board: a team's candidates are its scored submissions. Private board: its final
  selection, or, when it selected none, the fallback: its ``fallback`` best-public submissions
  (rule ``best``) or latest ones (rule ``last``); ``fallback=None`` keeps every scored one.
- Among its candidates a team ranks with the best score on the board's part (rule ``best``) or
  with the latest submitted one (rule ``last``). Ties, between teams and within one, go to the
  submission that used less of the ``tie_breaker`` resource (``resources.RESOURCES``; none by
  default), then to the earlier one. Teams with no candidate follow unranked, with their latest verdict.
- The secondary metrics (``others``) are shown, never ranked on: each entry carries their scores
  of the submission that ranks it, on the board's part.
- Each row carries what its submission used (``resources``); the results room adds each score's
  bootstrap interval and how often it beats the next row (``harness.results.uncertainty``).
- The renderers show the columns a list of ``columns.Column`` gives, after the fixed ones
  (``columns.table_columns``: one per secondary metric, the interval, beats next, each resource).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.leaderboard.columns import COLUMNS, RESOURCE_COLUMNS, Column, score_text, shown
from harness.leaderboard.resources import resources, used
from harness.limits import Verdict
from harness.scoring import Metric


@dataclass(frozen=True)
class Entry:
    rank: int | None
    team: str
    submission: str  # the one that ranks; the team's latest when none does
    verdict: str
    score: float | None
    submitted_at: str
    submissions: int
    verdicts: dict[str, int]
    message: str = ""
    others: dict[str, float | None] = field(default_factory=dict)  # secondary metric: its score (unranked: none)
    low: float | None = None  # the score's bootstrap interval at the board's confidence
    high: float | None = None
    beats_next: float | None = None  # share of paired resamples in which it beat the next ranked row
    tied_with_next: bool | None = None  # beats_next under the confidence: not separated from the next row
    resources: dict[str, float | None] = field(default_factory=dict)  # what the ranked submission used


@dataclass(frozen=True)
class Attempt:
    """One submission in a team's history."""

    team: str
    submission: str
    submitted_at: str
    verdict: str
    public: float | None
    private: float | None
    selected: bool
    message: str
    public_others: dict[str, float | None] = field(default_factory=dict)  # secondary metric: its public score
    private_others: dict[str, float | None] = field(default_factory=dict)  # blank as ``private`` is
    resources: dict[str, float | None] = field(default_factory=dict)

    def score(self, part: str) -> float | None:
        return self.public if part == "public" else self.private

    def others(self, part: str) -> dict[str, float | None]:
        return self.public_others if part == "public" else self.private_others


def latest_per_submission(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        sid = record["submission"]["id"]
        if sid not in latest or record["created_at"] > latest[sid]["created_at"]:
            latest[sid] = record
    return list(latest.values())


def history(
    records: Iterable[dict[str, Any]],
    metric: Metric,
    selections: Mapping[str, Sequence[str]] | None = None,
    *,
    reveal_private: bool = True,
    others: Sequence[Metric] = (),
) -> list[Attempt]:
    """Every submission with a record, oldest first; private scores blanked unless revealed."""
    chosen = {sid for ids in (selections or {}).values() for sid in ids}
    names = [m.name for m in others]
    attempts = [_attempt(record, metric, chosen, reveal_private, names) for record in latest_per_submission(records)]
    return sorted(attempts, key=lambda a: (a.submitted_at, a.submission))


def build(
    records: Iterable[dict[str, Any]],
    metric: Metric,
    *,
    private: bool = False,
    rule: str = "best",
    selections: Mapping[str, Sequence[str]] | None = None,
    fallback: int | None = None,
    others: Sequence[Metric] = (),
    tie_breaker: str | None = None,
) -> list[Entry]:
    part = "private" if private else "public"
    ranked: list[tuple[tuple, Attempt, list[Attempt]]] = []
    unranked: list[tuple[Attempt, list[Attempt]]] = []
    for team, attempts in _teams(records, metric, selections, others).items():
        scored = _candidates(attempts, part, (selections or {}).get(team), rule, fallback, metric)
        if not scored:
            unranked.append((attempts[-1], attempts))
            continue
        pick = max(scored, key=_time) if rule == "last" else min(scored, key=lambda a: _order(a, part, metric, tie_breaker))
        ranked.append((_order(pick, part, metric, tie_breaker), pick, attempts))
    ranked.sort(key=lambda item: item[0])
    entries = [_entry(i + 1, pick, attempts, part) for i, (_, pick, attempts) in enumerate(ranked)]
    unranked.sort(key=lambda item: _time(item[0]))
    return entries + [_entry(None, latest, attempts, part) for latest, attempts in unranked]


def final_candidates(
    records: Iterable[dict[str, Any]],
    metric: Metric,
    *,
    rule: str = "best",
    selections: Mapping[str, Sequence[str]] | None = None,
    fallback: int | None = None,
) -> dict[str, list[str]]:
    """{team: the submissions its private board chooses among}, in the order the rule takes them
    (teams with none are absent)."""
    chosen = {}
    for team, attempts in _teams(records, metric, selections).items():
        if candidates := _candidates(attempts, "private", (selections or {}).get(team), rule, fallback, metric, ranked_on="public"):
            chosen[team] = [a.submission for a in candidates]
    return chosen


def _teams(
    records: Iterable[dict[str, Any]], metric: Metric, selections: Mapping[str, Sequence[str]] | None, others: Sequence[Metric] = ()
) -> dict[str, list[Attempt]]:
    teams: dict[str, list[Attempt]] = {}
    for attempt in history(records, metric, selections, others=others):
        teams.setdefault(attempt.team, []).append(attempt)
    return teams


def _candidates(
    attempts: list[Attempt],
    part: str,
    selected: Sequence[str] | None,
    rule: str,
    fallback: int | None,
    metric: Metric,
    *,
    ranked_on: str | None = None,
) -> list[Attempt]:
    """A team's scored submissions with a score on ``part`` (``ranked_on``: on that part instead);
    on the private part, its selection or its fallback."""
    scored = [a for a in attempts if a.verdict == Verdict.SCORED and a.score(ranked_on or part) is not None]
    return _final_set(scored, selected, rule, fallback, metric) if part == "private" else scored


def _final_set(scored: list[Attempt], selected: Sequence[str] | None, rule: str, fallback: int | None, metric: Metric) -> list[Attempt]:
    if selected:
        return [a for a in scored if a.submission in selected]
    ordered = sorted(scored, key=_time, reverse=True) if rule == "last" else sorted(scored, key=lambda a: _order(a, "public", metric))
    return ordered[:fallback] if fallback is not None else ordered


def _order(attempt: Attempt, part: str, metric: Metric, tie_breaker: str | None = None) -> tuple[float, float, str, str]:
    score = attempt.score(part)
    assert score is not None
    return (-score if metric.higher_is_better else score, used(attempt.resources, tie_breaker), *_time(attempt))


def _time(attempt: Attempt) -> tuple[str, str]:
    return (attempt.submitted_at, attempt.submission)


def _attempt(record: dict[str, Any], metric: Metric, chosen: set[str], reveal_private: bool, others: list[str]) -> Attempt:
    submission, scores = record["submission"], record.get("scores") or {}
    public, private = scores.get("public", {}), scores.get("private", {}) if reveal_private else {}
    return Attempt(
        team=submission["team"],
        submission=submission["id"],
        submitted_at=submission.get("submitted_at") or record["created_at"],
        verdict=record["verdict"],
        public=scores.get("public", {}).get(metric.name),
        private=scores.get("private", {}).get(metric.name) if reveal_private else None,
        selected=submission["id"] in chosen,
        message=(record.get("message") or "").split("\n", 1)[0][:120],
        public_others={name: public.get(name) for name in others},
        private_others={name: private.get(name) for name in others},
        resources=resources(record),
    )


def _entry(rank: int | None, attempt: Attempt, attempts: list[Attempt], part: str) -> Entry:
    return Entry(
        rank=rank,
        team=attempt.team,
        submission=attempt.submission,
        verdict=attempt.verdict,
        score=attempt.score(part) if rank is not None else None,
        submitted_at=attempt.submitted_at,
        submissions=len(attempts),
        verdicts=dict(sorted(Counter(a.verdict for a in attempts).items())),
        message=attempt.message if rank is None else "",
        others=attempt.others(part) if rank is not None else dict.fromkeys(attempt.others(part)),
        resources=attempt.resources if rank is not None else {},
    )


def render(
    rows: Sequence[Entry] | Sequence[Attempt],
    fmt: str,
    metric: Metric,
    title: str,
    columns: Sequence[Column] = COLUMNS,
    legend: str = "",
) -> str:
    """Entries or a history as ``table``, ``csv`` or ``json`` (free text kept as is in json; in csv,
    text a spreadsheet would take for a formula starts with ``'``). A board's ``columns`` follow its
    fixed ones in the table (an optional one only where a row has a value) and, those with a value,
    in CSV (a history's CSV: the resources'); JSON has each row's fields (``others``, ``resources``
    among them). A board's table ends with ``legend``."""
    if fmt == "json":
        return json.dumps([asdict(r) for r in rows], indent=2)
    history = bool(rows) and isinstance(rows[0], Attempt)
    columns = () if history else columns
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        names = [n for n in (Attempt if history else Entry).__dataclass_fields__ if n not in ("others", "resources")]
        values = [c for c in (RESOURCE_COLUMNS if history else columns) if c.value is not None]
        writer.writerow(names + [c.csv for c in values])
        writer.writerows([_csv_cell(getattr(r, n)) for n in names] + [c.value(r) for c in values] for r in rows)  # type: ignore[misc]
        return buffer.getvalue()
    table = _table(rows, metric, title, columns)
    return f"{table}\n{legend}" if legend and rows and not history else table


# A spreadsheet runs a cell that starts with one of these as a formula (fullwidth forms included).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _csv_cell(value: Any) -> Any:
    """A CSV cell: numbers as they are (a negative score stays a number), any text that a
    spreadsheet would run as a formula prefixed with ``'`` so that it is shown as text."""
    if isinstance(value, dict):
        value = ";".join(f"{k}={'' if v is None else v}" for k, v in value.items())
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _table(rows: Sequence[Entry] | Sequence[Attempt], metric: Metric, title: str, columns: Sequence[Column]) -> str:
    if rows and isinstance(rows[0], Attempt):
        header = ("submitted", "team", "submission", "verdict", f"public {metric.name}", f"private {metric.name}", "selected", "note")
        cells = [
            (
                a.submitted_at,
                a.team,
                a.submission,
                a.verdict,
                score_text(a.public),
                score_text(a.private),
                "yes" if a.selected else "",
                a.message,
            )
            for a in rows
            if isinstance(a, Attempt)
        ]
    else:
        entries = [e for e in rows if isinstance(e, Entry)]
        columns = shown(columns, entries)
        header = ("rank", "team", metric.name, *(c.header for c in columns), "verdict", "submission", "entries", "verdicts", "note")
        cells = [
            (
                str(e.rank or "-"),
                e.team,
                score_text(e.score),
                *(c.text(e) for c in columns),
                e.verdict,
                e.submission,
                str(e.submissions),
                " ".join(f"{k}:{v}" for k, v in e.verdicts.items()),
                e.message,
            )
            for e in entries
        ]
    cells = [tuple(_printable(c) for c in row) for row in cells]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    direction = "higher is better" if metric.higher_is_better else "lower is better"
    out = [f"{title} ({metric.name}, {direction})", line(header), line(tuple("-" * w for w in widths))]
    return "\n".join(out + ([line(r) for r in cells] or ["(no evaluations yet)"]))


def _printable(text: str) -> str:
    """Team names and messages are free text: no control characters reach the terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
