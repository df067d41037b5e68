"""Which rounds of a competition ran, and which one runs now.

The live driver holds a lock (``rounds/driver.lock``) for as long as it runs; each round has a
journal file (``rounds/<round id>.json``) with its state. A journal that says ``running`` while
nobody holds the lock belongs to a driver that died (SIGKILL, a lost machine): the next round
resumes it under the same id when its configuration is the same, and abandons it otherwise.

A journal that is not what the harness wrote (truncated, ``[]``, a missing key, an unknown state)
stops the round before it starts, with one line naming the file and how to put it aside: guessing
would either run a dead round's work twice or never resume it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from harness.util.clock import stamped_id, utc_now
from harness.util.errors import HarnessError
from harness.util.files import read_json_object, write_json_atomic

RUNNING, FINISHED, CANCELLED, ABANDONED = "running", "finished", "cancelled", "abandoned"
STATES = (RUNNING, FINISHED, CANCELLED, ABANDONED)
REQUIRED = ("round_id", "config_sha256", "state", "started_at")


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
        lock = take_driver_lock(directory)
        try:
            journals = _journals(directory)
        except BaseException:
            lock.close()  # a damaged journal: no round runs, and the lock is free for the next one
            raise
        dead = sorted((j for j in journals if j["state"] == RUNNING), key=lambda j: j["started_at"])
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
        before = read_journal(path).get("resumes", 0) if path.is_file() else -1
        resumes = (before if isinstance(before, int) else 0) + 1
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
        previous = read_journal(path) if path.is_file() else {}
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


def read_journal(path: Path) -> dict:
    """A round's journal, or a HarnessError naming the file, what is wrong with it and the fix."""
    fix = (
        f"the harness writes it whole, so something else changed it; move it aside (mv {path} {path}.damaged) "
        "and run the round again: the submissions it left running are pending again, and what it recorded is kept"
    )
    journal = read_json_object(path, "a round journal", REQUIRED, fix)
    for key in ("round_id", "config_sha256", "started_at"):
        if not isinstance(journal[key], str):
            raise HarnessError(f"{path} is not a round journal: its {key} is {journal[key]!r}, not a string; {fix}")
    if journal["state"] not in STATES:
        raise HarnessError(f"{path} is not a round journal: its state is {journal['state']!r}, not one of {', '.join(STATES)}; {fix}")
    if journal["round_id"] != path.stem:
        raise HarnessError(f"{path} is not a round journal: it names round {journal['round_id']!r}, not {path.stem!r}; {fix}")
    return journal


def take_driver_lock(directory: Path) -> TextIO:
    """The competition's driver lock (``rounds/driver.lock``), held until the file is closed; one
    holder at a time (a round, or ``harness gc``), refused at once while another holds it."""
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
    return lock


def _journals(directory: Path) -> list[dict]:
    return [read_journal(path) for path in sorted(directory.glob("round-*.json"))]
