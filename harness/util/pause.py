"""Pause points: named places where a crash test needs a process held still, so that the kill it
sends lands exactly there (the service inside a submit: after the image is pinned, before its
ledger row; after the row, before the answer).

Off unless ``HARNESS_PAUSE_DIR`` names a directory; only tests set it. Then ``pause_point(name)``
looks for the file ``<dir>/<name>`` (the point armed): absent, it returns at once; present, it
writes ``<dir>/<name>.reached`` and waits until the armed file is removed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_DIR_ENV = "HARNESS_PAUSE_DIR"
POLL_S = 0.05


def pause_point(name: str) -> None:
    """Wait here while ``name`` is armed (see the module's note); at once otherwise."""
    directory = os.environ.get(PAUSE_DIR_ENV)
    if not directory:
        return
    armed = Path(directory) / name
    if not armed.exists():
        return
    (Path(directory) / f"{name}.reached").write_text(f"{os.getpid()}\n")
    while armed.exists():
        time.sleep(POLL_S)
