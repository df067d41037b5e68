"""What a dead driver leaves behind, put right before the next round starts.

A round's unit of work is keyed by (submission, configuration, round): its record carries all
three (``submission.id``, ``manifest.config_sha256``, ``round_id``), and a round has one
configuration (its journal pins it). A record on disk means that key is done, whatever happened
after it was written: the driver may have died before the ledger heard of it. Such submissions
are marked evaluated here and never run again; everything else the dead round started is simply
pending. MLflow uploads are keyed by evaluation (``harness sync``), so none is doubled.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from harness.limits import Verdict
from harness.records.record import load_records
from harness.submissions.ledger import EVALUATED, Ledger


def recover(ledger: Ledger, records: Path, rounds: Collection[str]) -> list[str]:
    """Mark evaluated each submission whose final record (any verdict but INFRA_ERROR) one of
    ``rounds`` wrote while the ledger still calls it unfinished; returns their ids."""
    recovered = []
    for record in load_records(records):
        if record.get("round_id") not in rounds or record.get("verdict") == Verdict.INFRA_ERROR.value:
            continue
        submission = ledger.get(record["submission"]["id"])
        if submission.state == EVALUATED:
            continue
        submission.state = EVALUATED
        if record["evaluation_id"] not in submission.evaluations:
            submission.evaluations.append(record["evaluation_id"])
        ledger.save(submission)
        recovered.append(submission.id)
    return recovered
