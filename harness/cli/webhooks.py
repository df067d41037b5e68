"""``harness webhooks list|retry``: the notifications the service sent, or is still trying to send,
to the competition's webhooks (``competition.webhooks``), and sending failed ones again."""

from __future__ import annotations

import argparse

from harness.cli.common import add_command, add_ids_command, add_json, print_json, progress
from harness.client.text import shown

STATES = ("pending", "delivered", "failed")


def register(commands) -> None:
    webhooks = commands.add_parser("webhooks", help="the notifications to the competition's webhooks").add_subparsers(
        dest="webhooks_command", required=True, metavar="ACTION"
    )
    listing = add_command(webhooks, "list", _list, "list the deliveries (state, attempts, last error)")
    listing.add_argument("--state", choices=STATES, help="only deliveries in this state")
    add_json(listing, "the deliveries")
    retry = add_ids_command(webhooks, "retry", _retry, "send failed deliveries again (all failed ones, or those named)", "[DELIVERY]", "*")
    add_json(retry, "the ids sent again")


def _outbox(args: argparse.Namespace):
    from harness.competition.config import load_settings
    from harness.competition.core import Competition
    from harness.records.outbox import Outbox

    return Outbox.of(Competition.load(load_settings(args.competition, args.overrides)))


def _list(args: argparse.Namespace) -> int:
    deliveries = [d.view() for d in _outbox(args).all(args.state)]
    if args.json:
        print_json({"deliveries": deliveries})
        return 0
    if not deliveries:
        progress(f"{args.competition}: no webhook deliveries" + (f" {args.state}" if args.state else ""))
    for d in deliveries:
        error = f"  last error: {shown(d['last_error'])}" if d["last_error"] else ""  # the receiver's words: shown, never acted on
        print(f"{d['id']}  {d['state']:<9}  {d['event']} {d['submission']} {d['verdict']}  {d['url']}  attempts {d['attempts']}{error}")
    return 0


def _retry(args: argparse.Namespace) -> int:
    sent = _outbox(args).retry(args.ids)
    if args.json:
        print_json({"retried": sent})
    else:
        progress(f"{len(sent)} delivery(ies) due again; the running service sends them" if sent else "no failed deliveries to send again")
    return 0
