"""What a dead driver leaves behind, put right before the next round starts.

A round's unit of work is keyed by (submission, configuration, round): its record carries all
three (``submission.id``, ``manifest.config_sha256``, ``round_id``), and a round has one
configuration (its journal pins it). A record on disk means that key is done, whatever happened
after it was written: the driver may have died before the ledger heard of it. Such submissions
are marked evaluated here and never run again; everything else the dead round started is simply
pending. MLflow uploads are keyed by evaluation (``harness sync``), so none is doubled.

Only a record that can be trusted marks a submission: a valid record, signed with the organizer's
key when one is configured, for a submission the ledger has, with that submission's team and
image digest. Any other file in ``records/`` is skipped with a warning naming it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection
from pathlib import Path

from harness.limits import Verdict
from harness.records.record import load_records
from harness.submissions.ledger import EVALUATED, Ledger
from harness.util.errors import HarnessError


def recover(ledger: Ledger, records: Path, rounds: Collection[str], warn: Callable[[str], None] | None = None) -> list[str]:
    """Mark evaluated each submission whose final record (any verdict but INFRA_ERROR) one of
    ``rounds`` wrote while the ledger still calls it unfinished; returns their ids."""
    warn = warn or (lambda text: print(f"warning: {text}", file=sys.stderr))
    recovered = []
    for record in load_records(records, warn=warn):
        if record["round_id"] not in rounds or record["verdict"] == Verdict.INFRA_ERROR.value:
            continue
        name, sid = f"{records.name}/{record['evaluation_id']}.json", record["submission"]["id"]
        try:
            submission = ledger.get(sid)
        except HarnessError:
            warn(f"{name} skipped: the ledger has no submission {sid!r}")
            continue
        if (record["submission"]["team"], record["submission"]["image_digest"]) != (submission.team, submission.image_digest):
            warn(f"{name} skipped: its team or image digest is not the ledger's for submission {sid}")
            continue
        if submission.state == EVALUATED:
            continue
        ledger.finish(submission, record["evaluation_id"])
        recovered.append(submission.id)
    return recovered
