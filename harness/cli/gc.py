"""``harness gc``: list what the retention policy lets the head, the registry and the cluster's
nodes free (a dry run), or free it (``--apply``)."""

from __future__ import annotations

import argparse
import sys

from harness.cli.common import add_command, add_json, engine, load_competition, print_json


def register(commands) -> None:
    gc = add_command(
        commands,
        "gc",
        _gc,
        "list the run models, depot archives, pulled images, registry manifests and node caches that no kept submission needs "
        "(a dry run); --apply frees them",
    )
    gc.add_argument("--apply", action="store_true", help="free what is listed (never a record, the ledger, logs or predictions)")
    gc.add_argument(
        "--registry",
        action="store_true",
        help="with --apply and the service stopped: delete the manifests, then run the registry's garbage-collect to free their blobs",
    )
    gc.add_argument("--no-nodes", action="store_true", help="leave the other nodes of the Ray cluster (runner.address) alone")
    add_json(gc, "each item (kind, what, bytes, why), each node's items and the total")


def _gc(args: argparse.Namespace) -> int:
    from harness.rounds.reclaim import as_json, collect, nodes_as_json
    from harness.util.sizes import format_size

    competition = load_competition(args.competition, args.overrides)
    done = collect(competition, engine(competition), apply=args.apply, nodes=not args.no_nodes, registry=args.registry)
    failed = done.failed + [f"node {n.node[:12]}: {why}" for n in done.nodes for why in n.not_freed]
    if args.json:
        print_json(
            {
                "competition": competition.name,
                "applied": args.apply,
                **as_json(done.items),
                "nodes": nodes_as_json(done.nodes),
                "total_bytes": done.bytes,
                "not_freed": failed,
            }
        )
    else:
        for item in done.items:
            print(f"{item.kind:<17} {format_size(item.bytes):>10}  {item.what}  ({item.why})")
        for node in done.nodes:
            for item in node.items:
                print(f"{item.kind:<17} {format_size(item.bytes):>10}  {node.node[:12]}:{item.what}  ({item.why})")
    for node in done.nodes:
        said = f"{len(node.items)} item(s), {format_size(node.bytes)}" + (f"; {node.error}" if node.error else "")
        print(f"node {node.node[:12]} ({node.address}): {said}", file=sys.stderr)
    done_word = "freed" if args.apply else "would free (run again with --apply to free it)"
    for why in failed:
        print(f"not freed: {why}", file=sys.stderr)
    print(f"{done.count} item(s), {format_size(done.bytes)}: {done_word}", file=sys.stderr)
    return 1 if failed else 0
