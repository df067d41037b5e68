"""Leaderboards built from evaluation records: best scored submission per team, ranked."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from harness.scoring import Metric


@dataclass(frozen=True)
class Entry:
    rank: int | None
    team: str
    submission: str
    verdict: str
    score: float | None
    submitted_at: str
    submissions: int
    message: str = ""


def latest_per_submission(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        sid = record["submission"]["id"]
        if sid not in latest or record["created_at"] > latest[sid]["created_at"]:
            latest[sid] = record
    return list(latest.values())


def build(records: Iterable[dict[str, Any]], metric: Metric, *, private: bool = False) -> list[Entry]:
    """Ranked teams first (best score, ties to the earlier submission), then unscored submissions."""
    part = "private" if private else "public"
    latest = latest_per_submission(records)
    per_team: dict[str, int] = {}
    for record in latest:
        per_team[record["submission"]["team"]] = per_team.get(record["submission"]["team"], 0) + 1
    best: dict[str, tuple[float, str, dict[str, Any]]] = {}
    for record in latest:
        value = record["scores"].get(part, {}).get(metric.name) if record["verdict"] == "SCORED" else None
        if value is None:
            continue
        team = record["submission"]["team"]
        key = (-value if metric.higher_is_better else value, _submitted_at(record))
        if team not in best or key < best[team][:2]:
            best[team] = (*key, record)
    ranked = sorted(best.values(), key=lambda item: item[:2])
    entries = [_entry(i + 1, record, metric, part, per_team) for i, (_, _, record) in enumerate(ranked)]
    unscored = sorted((r for r in latest if r["verdict"] != "SCORED"), key=_submitted_at)
    entries += [_entry(None, record, metric, part, per_team) for record in unscored]
    return entries


def _submitted_at(record: dict[str, Any]) -> str:
    return record["submission"].get("submitted_at") or record["created_at"]


def _entry(rank: int | None, record: dict[str, Any], metric: Metric, part: str, per_team: dict[str, int]) -> Entry:
    team = record["submission"]["team"]
    return Entry(
        rank=rank,
        team=team,
        submission=record["submission"]["id"],
        verdict=record["verdict"],
        score=record["scores"].get(part, {}).get(metric.name),
        submitted_at=_submitted_at(record),
        submissions=per_team[team],
        message=(record.get("message") or "").splitlines()[0][:120] if record.get("message") else "",
    )


def render(entries: list[Entry], fmt: str, metric: Metric, title: str) -> str:
    if fmt == "json":
        return json.dumps([asdict(e) for e in entries], indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(Entry.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(e) for e in entries)
        return buffer.getvalue()
    return _table(entries, metric, title)


def _table(entries: list[Entry], metric: Metric, title: str) -> str:
    header = ("rank", "team", metric.name, "verdict", "submission", "entries", "note")
    rows = [
        (str(e.rank or "-"), _printable(e.team), "" if e.score is None else f"{e.score:.5f}", e.verdict, e.submission, str(e.submissions), _printable(e.message))
        for e in entries
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    direction = "higher is better" if metric.higher_is_better else "lower is better"
    out = [f"{title} ({metric.name}, {direction})", line(header), line(tuple("-" * w for w in widths))]
    out += [line(r) for r in rows] or ["(no evaluations yet)"]
    return "\n".join(out)


def _printable(text: str) -> str:
    """Team names and messages are free text: no control characters reach the terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
