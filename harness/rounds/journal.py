"""Which rounds of a competition ran, and which one runs now.

The live driver holds a lock (``rounds/driver.lock``) for as long as it runs; each round has a
journal file (``rounds/<round id>.json``) with its state. A journal that says ``running`` while
nobody holds the lock belongs to a driver that died (SIGKILL, a lost machine): the next round
resumes it under the same id when its configuration is the same, and abandons it otherwise.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from harness.util.clock import stamped_id, utc_now
from harness.util.errors import HarnessError
from harness.util.files import write_json_atomic

RUNNING, FINISHED, CANCELLED, ABANDONED = "running", "finished", "cancelled", "abandoned"


@dataclass
class RoundJournal:
    directory: Path
    round_id: str
    config_sha256: str
    resumed: bool
    dead: list[str]  # rounds whose driver died, the resumed one included
    started_at: str
    _lock: TextIO

    @classmethod
    def begin(cls, directory: Path, config_sha256: str) -> RoundJournal:
        """Take the competition's driver lock and open the round: the dead one to resume, or a new one."""
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / "driver.lock", "a+", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise HarnessError(f"a round of this competition is running already ({holder}); wait for it, or stop it with Ctrl-C") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        lock.flush()
        dead = sorted((j for j in _journals(directory) if j["state"] == RUNNING), key=lambda j: j["started_at"])
        resume = next((j for j in reversed(dead) if j["config_sha256"] == config_sha256), None)
        for journal in dead:
            if journal is not resume:
                write_json_atomic(directory / f"{journal['round_id']}.json", {**journal, "state": ABANDONED, "updated_at": utc_now()})
        round_id = resume["round_id"] if resume else stamped_id("round")
        started_at = resume["started_at"] if resume else utc_now()
        return cls(directory, round_id, config_sha256, resume is not None, [j["round_id"] for j in dead], started_at, lock)

    def start(self) -> None:
        """Write the journal: from now on, this round is resumed should its driver die."""
        path = self.directory / f"{self.round_id}.json"
        resumes = json.loads(path.read_text(encoding="utf-8")).get("resumes", 0) + 1 if path.is_file() else 0
        self._write(RUNNING, resumes=resumes)

    def finish(self, state: str) -> None:
        self._write(state)

    def close(self) -> None:
        self._lock.close()  # releases the lock

    def __enter__(self) -> RoundJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, state: str, **extra: object) -> None:
        path = self.directory / f"{self.round_id}.json"
        previous = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        write_json_atomic(
            path,
            {
                **previous,
                "round_id": self.round_id,
                "config_sha256": self.config_sha256,
                "state": state,
                "started_at": self.started_at,
                "updated_at": utc_now(),
                "driver": f"pid {os.getpid()} on {socket.gethostname()}",
                **extra,
            },
        )


def _journals(directory: Path) -> list[dict]:
    found = []
    for path in directory.glob("round-*.json"):
        try:
            found.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    return found
