"""Each evaluation's resampled scores on a board, kept beside its run (``runs/<evaluation>/resampled-
<part>-<metric>-<resamples>-<predictions hash>.f8``: little-endian float64, one per resample), so
that a command or a restarted service rebuilds a board's evidence without reading any predictions
again. A cache: a file that is missing, unreadable or of the wrong size is computed anew; the name
holds everything the scores depend on (the seed is the competition's and the part's)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from harness.competition.core import Competition


def path(competition: Competition, evaluation: str, part: str, metric: str, resamples: int, sha: str) -> Path:
    return competition.paths.run(evaluation).root / f"resampled-{part}-{metric}-{resamples}-{sha[:16]}.f8"


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
