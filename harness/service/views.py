"""The JSON views of the service, as plain functions of the context and the calling team, so the
API and the pages show the same thing. A team sees only its own submissions and logs (another
team's id is answered exactly like an unknown one) and only public scores until finalize."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from harness.client.wire import PhaseSummary, SubmissionList, SubmissionView, wire_state
from harness.leaderboard import Entry
from harness.records.record import checked_record
from harness.records.signing import verification_keys
from harness.registry import RegistryUnavailable
from harness.results import Results
from harness.service.context import ServiceContext
from harness.service.errors import ServiceError, not_found
from harness.submissions.ledger import PENDING, RUNNING, Submission
from harness.submissions.logs import CursorError, parse_cursor, submission_logs
from harness.submissions.quota import next_allowed
from harness.submissions.teams import Team
from harness.util.clock import timestamp
from harness.util.errors import HarnessError

PHASES = ("train", "infer")
BOARD_TTL_S = 2.0  # the leaderboard is rebuilt from the records at most this often
RECORD_CACHE = 4096  # checked records kept (a few KiB each): the board reads every listed one


def team_submissions(ctx: ServiceContext, team: Team) -> SubmissionList:
    """The team's own, newest first."""
    return SubmissionList(submissions=[_submission(ctx, s) for s in ctx.ledger.of_team(team.name)])


def team_submission(ctx: ServiceContext, team: Team, submission_id: str) -> SubmissionView:
    return _submission(ctx, _own(ctx, team, submission_id))


def phase_logs(ctx: ServiceContext, team: Team, submission_id: str, phase: str, since: str | None = None) -> dict[str, Any]:
    """A phase's stdout and stderr from the evaluation a round runs now (growing) or the submission's
    latest recorded one: each stream's last ``service.logs_max_bytes``, or with ``since`` (the
    ``next`` of an earlier answer) what came after it (``harness.submissions.logs.submission_logs``)."""
    if phase not in PHASES:
        raise ServiceError(422, f"no phase {phase!r}; ask for train or infer")
    try:
        cursor = None if since is None else parse_cursor(since)
    except CursorError as exc:
        raise ServiceError(422, str(exc)) from None
    submission = _own(ctx, team, submission_id)
    found = submission_logs(ctx.competition.paths, submission, phase, ctx.settings.logs_max_bytes, cursor)
    current = found is not None and submission.state == RUNNING and found[0] == submission.evaluation
    # a recorded evaluation's logs stand only with its record (one that fails its checks: none)
    recorded = None if found is None or current else ((_record(ctx, submission) or {}).get("phases") or {}).get(phase)
    if found is None or not (current or recorded):
        raise not_found(f"the {phase} phase of {submission_id} has not run (yet); no logs to show")
    answer = {"id": submission_id, "phase": phase, **found[1].answer()}
    if recorded is not None:
        answer.update(truncated=answer["truncated"] or bool(recorded.get("log_truncated")), verdict=recorded.get("verdict"))
    return answer


def public_leaderboard(ctx: ServiceContext, team: Team | None = None) -> dict[str, Any]:
    """The board as the public sees it (private scores once the competition is finalized);
    ``submission_id`` only on ``team``'s own row."""
    board = _board(ctx)
    rows = [
        {**row, "submission_id": submission} if team is not None and row["team"] == team.name else row for row, submission in board["rows"]
    ]
    return {**{k: v for k, v in board.items() if k != "rows"}, "rows": rows}


def quota(ctx: ServiceContext, team: Team, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    try:
        phase, per_day = ctx.competition.intake()  # the open phase's quota, counted within it
    except HarnessError:  # no phase takes submissions now
        phase, per_day = None, ctx.competition.settings.competition.rules.per_day
    charged = ctx.ledger.charged(team.name, now, competition_phase=phase)
    registry = _registry_usage(ctx, team)
    if per_day is None:
        return {"per_day": None, "used": len(charged), "left": None, "next_allowed_at": None, **registry}
    allowed = next_allowed(charged, per_day, now)
    return {
        "per_day": per_day,
        "used": len(charged),
        "left": max(0, per_day - len(charged)),
        "next_allowed_at": timestamp(allowed) if allowed else None,
        **registry,
    }


def _registry_usage(ctx: ServiceContext, team: Team) -> dict[str, Any]:
    """What the team's images take in the registry, and its budget (null: none); null usage when the registry does not answer."""
    budget = ctx.competition.settings.competition.rules.team_registry_bytes
    try:
        used = ctx.registry_usage.stored_bytes(team.namespace)
    except RegistryUnavailable:
        used = None
    return {"registry_bytes": used, "registry_budget_bytes": budget}


def selection(ctx: ServiceContext, team: Team) -> dict[str, Any]:
    return {"selected": ctx.ledger.selections().get(team.name, []), "limit": ctx.competition.settings.competition.rules.final_selections}


def scored_submissions(ctx: ServiceContext) -> set[str]:
    """Ids of the submissions whose latest listed record is scored (what a team may select)."""
    return _results(ctx).scored()


def _own(ctx: ServiceContext, team: Team, submission_id: str) -> Submission:
    """The team's submission; another team's, or none, is the same 404."""
    try:
        submission = ctx.ledger.get(submission_id)
    except Exception:  # noqa: BLE001 - unknown id: said below exactly as for another team's
        submission = None
    if submission is None or submission.team != team.name:
        raise not_found(f"your team has no submission {submission_id!r} in {ctx.name}")
    return submission


def _submission(ctx: ServiceContext, s: Submission) -> SubmissionView:
    record = _record(ctx, s)
    image, _, registry_digest = s.image.partition("@")
    view = SubmissionView(
        id=s.id,
        team=s.team,
        image=s.image,
        image_digest=s.image_digest,
        registry_digest=registry_digest or None,
        message=s.message,
        submitted_at=s.submitted_at,
        state=wire_state(s.state, s.quota_exempt),
        phase=s.phase if s.state == RUNNING else None,
        queue_position=ctx.ledger.queue_position(s) if s.state == PENDING else None,
    )
    if record is not None:
        view.verdict = record["verdict"]
        view.failed_phase = record.get("failed_phase")
        view.verdict_message = record.get("message")
        view.public_scores = dict((record.get("scores") or {}).get("public") or {})
        view.evaluated_at = record["created_at"]
        view.phases = {
            name: PhaseSummary(**{key: phase.get(key) for key in PhaseSummary.model_fields})
            for name, phase in (record.get("phases") or {}).items()
        }
    return view


def _record(ctx: ServiceContext, s: Submission) -> dict[str, Any] | None:
    """The submission's latest listed record (checked, signature included)."""
    return _checked(ctx, s.evaluations[-1]) if s.evaluations else None


def _checked(ctx: ServiceContext, evaluation_id: str) -> dict[str, Any] | None:
    """An evaluation's record once it proved valid (and signed, with a key), cached by file and mtime:
    pollers and the board's rebuilds read each record file once, not once per request."""
    path = ctx.competition.paths.records / f"{evaluation_id}.json"
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    cache = ctx.caches.setdefault("records", {})
    hit = cache.get(path.name)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    try:
        record = checked_record(path, _keys(ctx))
    except Exception:  # noqa: BLE001 - a record that fails its checks stands for nothing
        return None
    with ctx.lock:
        cache[path.name] = (stamp, record)
        while len(cache) > RECORD_CACHE:
            cache.pop(next(iter(cache)))
    return record


def _keys(ctx: ServiceContext) -> list:
    if "keys" not in ctx.caches:
        ctx.caches["keys"] = verification_keys()
    return ctx.caches["keys"]


def _results(ctx: ServiceContext) -> Results:
    """The competition's standing results, each record read through the cache."""
    return Results(ctx.competition, ctx.ledger, read=lambda evaluation_id: _checked(ctx, evaluation_id))


def _board(ctx: ServiceContext) -> dict[str, Any]:
    """The board without anyone's submission ids, rebuilt at most every ``BOARD_TTL_S`` by one
    request at a time: while one rebuilds it, the others answer with the board it replaces (under
    many pollers, every request that found it stale rebuilt it at once, and the tail waited)."""
    cached = ctx.caches.get("board")
    if cached is not None and time.monotonic() - cached[0] < BOARD_TTL_S:
        return cached[1]
    rebuilding = ctx.caches.setdefault("board-lock", threading.Lock())
    if not rebuilding.acquire(blocking=cached is None):
        return cached[1]
    try:
        return _rebuild_board(ctx)
    finally:
        rebuilding.release()


def _rebuild_board(ctx: ServiceContext) -> dict[str, Any]:
    cached = ctx.caches.get("board")
    if cached is not None and time.monotonic() - cached[0] < BOARD_TTL_S:  # rebuilt while this request waited
        return cached[1]
    results = _results(ctx)
    part = results.part()  # public until finalize, private after
    entries = results.board(results.records(), part)
    board = {
        "competition": ctx.name,
        "metric": results.metric.name,
        "higher_is_better": results.metric.higher_is_better,
        "final": part.final,
        **({"phase": part.phase.name, "superseded": part.phase.superseded} if part.phase else {}),  # with phases: which board
        "others": [{"name": m.name, "higher_is_better": m.higher_is_better} for m in results.others],
        "confidence": results.rules.confidence,
        "resamples": results.rules.resamples,
        "rows": [(_row(e), e.submission) for e in entries],
    }
    ctx.caches["board"] = (time.monotonic(), board)
    return board


def _row(e: Entry) -> dict[str, Any]:
    """A board row as the public sees it: the score, its secondary scores, its interval, its pair with
    the next row, what it used."""
    return {
        "rank": e.rank,
        "team": e.team,
        "score": e.score,
        "low": e.low,
        "high": e.high,
        "beats_next": e.beats_next,
        "tied_with_next": e.tied_with_next,
        "resources": e.resources,
        "submitted_at": e.submitted_at,
        "others": e.others,
    }
