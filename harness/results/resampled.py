"""Each evaluation's resampled scores on a board, kept beside its run (``runs/<evaluation>/resampled-
<digest>.f8``: little-endian float64, one per resample), so that a command or a restarted service
rebuilds a board's evidence without reading any predictions again. A cache: a file that is
missing, unreadable or of the wrong size is computed anew; the digest is of everything the scores
depend on (board, metric, resamples, the labels' and the predictions' hashes, the recorded score)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from harness.competition.core import Competition


def path(competition: Competition, evaluation: str, key: tuple) -> Path:
    """Where ``evaluation``'s scores under ``key`` (everything they depend on) are kept."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:24]
    return competition.paths.run(evaluation).root / f"resampled-{digest}.f8"


def load(file: Path, resamples: int) -> np.ndarray | None:
    try:
        data = file.read_bytes()
    except OSError:
        return None
    return np.frombuffer(data, dtype="<f8").copy() if len(data) == 8 * resamples else None


def save(file: Path, scores: np.ndarray) -> None:
    """Written whole or not at all; a folder that cannot be written leaves the cache in memory only."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(np.asarray(scores, dtype="<f8").tobytes())
        os.replace(tmp, file)
    except OSError:
        return
