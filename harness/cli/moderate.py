"""``harness withdraw`` (at a team's request) and ``harness disqualify`` (the organizer's decision):
end a submission with a reason, so that a stuck one never keeps a competition from its end."""

from __future__ import annotations

import argparse
import sys

from harness.cli.common import add_ids_command, add_json, load_competition, print_json
from harness.util.errors import HarnessError


def register(commands) -> None:
    for name, what, help in (
        (
            "withdraw",
            "withdrawn",
            "withdraw a submission that has no verdict yet (pending, or stuck after its retries) at its team's request; "
            "it is never evaluated, and finalize no longer waits for it",
        ),
        (
            "disqualify",
            "disqualified",
            "disqualify a submission (the organizer's decision): never evaluated again, dropped from the leaderboards "
            "and the final selections; its records keep their outcome in their history",
        ),
    ):
        command = add_ids_command(commands, name, _handler(what), help, "SUBMISSION_ID")
        command.add_argument("--reason", required=True, help="why (kept in the ledger and in the submission's records)")
        add_json(command, "the submission's new state and the records noted")


def _handler(state: str):
    def handle(args: argparse.Namespace) -> int:
        from harness.rounds.moderation import moderate

        if len(args.ids) != 1:
            raise HarnessError(f"give one submission id, got {len(args.ids)}: {' '.join(args.ids)}")
        competition = load_competition(args.competition, args.overrides)
        done = moderate(competition, args.ids[0], state, args.reason)
        submission = done.submission
        for evaluation_id, why in done.not_noted.items():
            print(f"{evaluation_id}: its record was left as it is: {why}", file=sys.stderr)
        noted = f"; noted in its record(s) {', '.join(done.noted)}" if done.noted else "; it has no record yet"
        print(f"{submission.id} of team {submission.team!r} is {state} ({submission.moderation_reason}){noted}", file=sys.stderr)
        if args.json:
            print_json(
                {
                    "competition": competition.name,
                    "submission": submission.id,
                    "team": submission.team,
                    "state": submission.state,
                    "reason": submission.moderation_reason,
                    "at": submission.moderated_at,
                    "records_noted": done.noted,
                    "records_not_noted": done.not_noted,
                }
            )
        return 0

    return handle
