"""The winners' re-run report (``harness rerun-winners``): each of the private board's top K run
again with other seeds, its score spread, and whether any rank would change; kept beside the final
board as ``final/rerun.{json,txt,html}``, and what ``harness finalize`` asks of it.

A rank *would change* when, for two neighbours on the board, the lower one's best score over its
record and re-runs beats the upper one's worst (strictly: a tie keeps the board's tie-break).
Running the submissions is the rounds' job (``harness.rounds.rerun``); this module only judges
what came back, renders it and says whether finalize may go on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from harness.competition.core import Competition
from harness.proofs.audit import spread_figures
from harness.results import Results
from harness.util.clock import utc_now
from harness.util.files import write_json_atomic
from harness.util.templates import html_environment

SCHEMA = "harness.rerun/1"
FILES = ("json", "txt", "html")


@dataclass
class Rerun:
    """One ranked submission and what its runs scored (the record's first, then each re-run's)."""

    rank: int
    team: str
    submission: str
    evaluation_id: str  # the record run again
    runs: list[dict[str, Any]] = field(default_factory=list)  # {seed, evaluation_id, verdict, score, node}
    spread: dict[str, float] = field(default_factory=dict)  # min, max, mean, stdev, n, spread (max - min)

    def judge(self) -> None:
        values = [run["score"] for run in self.runs if run["score"] is not None]
        if values:
            self.spread = {**spread_figures(values), "spread": max(values) - min(values)}


@dataclass
class RerunReport:
    rerun_id: str
    competition: str
    metric: str
    higher_is_better: bool
    top_k: int
    times: int
    created_at: str = field(default_factory=utc_now)
    entries: list[Rerun] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)  # each pair of neighbours: could their ranks swap?
    rank_would_change: bool = False

    def judge(self) -> None:
        """Each entry's spread, then each pair of neighbours."""
        for entry in self.entries:
            entry.judge()
        self.pairs = []
        for upper, lower in zip(self.entries, self.entries[1:], strict=False):
            if not (upper.spread and lower.spread):
                swap = True  # a re-run without a score: nothing shows the order holds
            elif self.higher_is_better:
                swap = lower.spread["max"] > upper.spread["min"]
            else:
                swap = lower.spread["min"] < upper.spread["max"]
            self.pairs.append({"upper": upper.submission, "lower": lower.submission, "ranks": [upper.rank, lower.rank], "could_swap": swap})
        self.rank_would_change = any(pair["could_swap"] for pair in self.pairs)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}


def final_dir(competition: Competition) -> Path:
    """Where the final board's companions are kept (the re-run report)."""
    return competition.paths.root / "final"


def save(report: RerunReport, competition: Competition) -> list[Path]:
    """Write ``final/rerun.{json,txt,html}`` (replacing an earlier re-run's); the paths written."""
    directory = final_dir(competition)
    directory.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    write_json_atomic(directory / "rerun.json", data)
    (directory / "rerun.txt").write_text(render_text(data), encoding="utf-8")
    (directory / "rerun.html").write_text(render_html(data), encoding="utf-8")
    return [directory / f"rerun.{ext}" for ext in FILES]


def top_of_board(competition: Competition, top_k: int) -> list[tuple[int, str, str]]:
    """(rank, team, submission) of the private board's ranked rows, best first, at most ``top_k``."""
    results = Results(competition)
    entries = results.board(results.records(), results.part(private=True, organizer=True))
    return [(e.rank, e.team, e.submission) for e in entries if e.rank is not None][:top_k]


def missing_rerun(competition: Competition) -> str | None:
    """Why ``finalize`` must wait for ``harness rerun-winners`` (``leaderboard.rerun`` asks for one and
    the kept report does not cover the board's top K now, that often), or None."""
    rules = competition.settings.competition.rules
    if rules.rerun_top_k == 0:
        return None
    top = [submission for _, _, submission in top_of_board(competition, rules.rerun_top_k)]
    if not top:
        return None  # no ranked submission: nothing to re-run
    command = f"`harness rerun-winners {competition.name}`"
    wanted = f"leaderboard.rerun asks for the top {rules.rerun_top_k} re-run {rules.rerun_times} time(s) each before finalize"
    path = final_dir(competition) / "rerun.json"
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{wanted}, and none was run: run {command} first"
    except (OSError, ValueError) as exc:
        return f"{wanted}, and {path} cannot be read ({exc}): run {command} again"
    covered = {e["submission"]: len(e["runs"]) - 1 for e in kept.get("entries", [])}
    short = [sid for sid in top if covered.get(sid, 0) < rules.rerun_times]
    if short:
        return f"{wanted}; the re-run of {kept.get('created_at')} does not cover {', '.join(short)} (the board changed since): run {command} again"
    return None


# -- rendering ------------------------------------------------------------------------------------


def render_text(report: dict[str, Any]) -> str:
    lines = [
        f"winners' re-run {report['rerun_id']} of {report['competition']}: top {report['top_k']}, {report['times']} re-run(s) each",
        f"metric {report['metric']} ({'higher' if report['higher_is_better'] else 'lower'} is better), made {report['created_at']}",
        "",
    ]
    lines += ["  ".join(row) for row in _rows(report)]
    lines += ["", "neighbours:"] + [f"  {_pair(pair)}" for pair in report["pairs"]]
    verdict = "a rank would change" if report["rank_would_change"] else "no rank would change"
    return "\n".join([*lines, "", verdict]) + "\n"


def render_html(report: dict[str, Any]) -> str:
    """The report as a page (the autoescaping template ``templates/rerun_report.html``)."""
    return (
        _environment()
        .get_template("rerun_report.html")
        .render(report=report, header=HEADER, rows=_rows(report), pairs=[_pair(p) for p in report["pairs"]])
    )


HEADER = ["rank", "team", "submission", "scores (record, then re-runs)", "spread", "stdev"]


@cache
def _environment():
    return html_environment("harness.proofs", keep_trailing_newline=True)


def _rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for entry in report["entries"]:
        scores = ", ".join("-" if run["score"] is None else f"{run['score']:.5f}" for run in entry["runs"])
        spread = entry["spread"]
        rows.append(
            [
                str(entry["rank"]),
                entry["team"],
                entry["submission"],
                scores,
                f"{spread['spread']:.5f}" if spread else "-",
                f"{spread['stdev']:.5f}" if spread else "-",
            ]
        )
    return rows


def _pair(pair: dict[str, Any]) -> str:
    upper, lower = pair["ranks"]
    return f"#{upper} {pair['upper']} over #{lower} {pair['lower']}: {'could swap' if pair['could_swap'] else 'holds'}"
