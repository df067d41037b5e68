"""``harness audit``: re-run a submission from its record alone and report every difference."""

from __future__ import annotations

import argparse
import json
import sys

from harness.cli.common import add_ids_command, add_json, load_competition, open_sinks
from harness.util.errors import HarnessError


def register(commands) -> None:
    audit = add_ids_command(
        commands, "audit", _audit, "re-run a submission from its record alone; report pass/fail and every difference", "SUBMISSION_ID"
    )
    audit.add_argument("--repeats", type=int, default=1, help="runs of the submission (2 or more also check that it is deterministic)")
    add_json(audit, "the report")


def _audit(args: argparse.Namespace) -> int:
    from harness.proofs.audit import PASS, REFUSED, audit, audit_dir
    from harness.proofs.audit_report import render_text

    if len(args.ids) != 1:
        raise HarnessError(f"give one submission (or evaluation) id to audit, got {len(args.ids)}")
    competition = load_competition(args.competition, args.overrides)
    report = audit(competition, args.ids[0], None, open_sinks(competition), repeats=args.repeats, overrides=args.overrides)
    data = report.to_dict()
    print(json.dumps(data, indent=2) if args.json else render_text(data), end="\n" if args.json else "")
    print(f"report: {audit_dir(competition, report.audit_id)}/report.{{json,txt,html}}", file=sys.stderr)
    if report.status == REFUSED:
        raise HarnessError(f"audit refused: {report.reason}")
    return 0 if report.status == PASS else 1
