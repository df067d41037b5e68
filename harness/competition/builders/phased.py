"""Each phase's test set, carved out of a built competition's test set (the pool; see
``harness.competition.phases``).

A test id belongs to the phase whose slice ``[test_start, test_start + test_fraction)`` holds
``phase_point`` of it: a keyed hash of the id under its own label, so the phases' sets are disjoint
and no one can tell which phase an id is in without the secret. A phase's set is
``data/phases/<phase>/test`` (the pool's table rows and files of its ids, in the pool's order) and
``hidden/phases/<phase>/labels.csv`` (the pool's labels of its ids; a final phase's are all
private). It is carved once, the first time it is asked for, and renamed into place labels last.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.competition.builders.keyed import keyed, read_secret, split_of


def phase_point(secret: bytes, item_id: str) -> float:
    """Where a test id falls in [0, 1): the phase whose slice holds it owns it."""
    return int.from_bytes(keyed(secret, "phase", item_id)[:8], "big") / 2**64


def carve_phases(root: Path, phases: list[dict[str, Any]], public_fraction: float, table: str = "test.csv") -> None:
    """Carve each of ``phases`` (``{name, test_start, test_fraction, final}``) not carved yet. The
    pool's ``table`` lists the ids (first column ``id``), and a test file named after an id
    (``images/<id>.png``) follows its row."""
    for phase in phases:
        _carve(Path(root), phase, public_fraction, table)


def _carve(root: Path, phase: dict[str, Any], public_fraction: float, table: str) -> None:
    name = phase["name"]
    data, hidden = root / "data" / "phases" / name, root / "hidden" / "phases" / name
    if (hidden / "labels.csv").is_file():
        return
    secret = read_secret(root)
    assert secret is not None  # the pool was written with it
    pool = root / "data" / "test"
    low, high = phase["test_start"], phase["test_start"] + phase["test_fraction"]
    header, *rows = (pool / table).read_text().splitlines()
    kept = [row for row in rows if low <= phase_point(secret, row.split(",", 1)[0]) < high]
    chosen = {row.split(",", 1)[0] for row in kept}
    label_header, *labels = (root / "hidden" / "labels.csv").read_text().splitlines()
    tmp = Path(tempfile.mkdtemp(prefix=f".phase-{name}-", dir=root))
    try:
        test = tmp / "data" / "test"
        for source in pool.rglob("*"):
            target = test / source.relative_to(pool)
            if source.is_dir() or source.name == table:
                continue
            if source.parent == pool or source.stem in chosen:  # DESCRIPTION.md and the like; the files of its ids
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
        (test / table).write_text("\n".join([header, *kept]) + "\n")
        (tmp / "hidden").mkdir(mode=0o700)
        lines = []
        for line in labels:
            item_id, rest = line.split(",", 1)
            if item_id in chosen:
                split = "private" if phase.get("final") else split_of(secret, item_id, public_fraction)
                lines.append(f"{item_id},{rest.rsplit(',', 1)[0]},{split}")
        (tmp / "hidden" / "labels.csv").write_text("\n".join([label_header, *lines]) + "\n")
        for dirpath, _dirnames, filenames in os.walk(tmp / "data"):  # containers run as another uid
            os.chmod(dirpath, 0o755)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), 0o644)
        for part, target in ((tmp / "data", data), (tmp / "hidden", hidden)):
            target.parent.mkdir(mode=0o755 if part.name == "data" else 0o700, parents=True, exist_ok=True)
            if target.exists():  # a crash between the renames
                shutil.rmtree(target)
            os.rename(part, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
