"""``harness rerun-winners``: the private board's top K run again with other seeds before finalize."""

from __future__ import annotations

import argparse
import json
import sys

from harness.cli.common import add_command, add_json, load_competition, open_sinks


def register(commands) -> None:
    rerun = add_command(
        commands,
        "rerun-winners",
        _rerun,
        "re-run the private board's top K submissions N times each with other seeds (spread over the cluster's nodes); "
        "report each one's score spread and whether any rank would change (finalize waits for it when leaderboard.rerun asks)",
    )
    rerun.add_argument("--top", type=int, metavar="K", help="how many of the board's best (default leaderboard.rerun.top_k, else 3)")
    rerun.add_argument("--times", type=int, metavar="N", help="re-runs of each (default leaderboard.rerun.times)")
    add_json(rerun, "the report")


def _rerun(args: argparse.Namespace) -> int:
    from harness.proofs.rerun_report import final_dir, render_text
    from harness.rounds.rerun import rerun_winners

    competition = load_competition(args.competition, args.overrides)
    rules = competition.settings.competition.rules
    top_k = args.top if args.top is not None else rules.rerun_top_k or 3
    times = args.times if args.times is not None else rules.rerun_times
    data = rerun_winners(competition, top_k, times, sinks=open_sinks(competition)).to_dict()
    print(json.dumps(data, indent=2) if args.json else render_text(data), end="\n" if args.json else "")
    print(f"report: {final_dir(competition)}/rerun.{{json,txt,html}}", file=sys.stderr)
    return 0
