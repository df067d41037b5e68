"""SQLite as the harness uses it: a transaction as a ``with`` block (committed when the block ends,
rolled back when it raises), and connections kept per thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def transaction(con: sqlite3.Connection, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    """``immediate`` takes the write lock at once (``BEGIN IMMEDIATE``): a read-then-write (a quota
    check and its insert) cannot interleave with another writer's."""
    con.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


class Connections:
    """One connection per thread, kept for the next use: opening one (and running its ``setup``)
    costs more than the reads a service makes per request. A use inside another use on the same
    thread gets a connection of its own, closed after it; a connection that raised a database
    error is closed and replaced."""

    def __init__(self, path: Path, setup: Callable[[sqlite3.Connection], None], *, timeout_s: float = 30) -> None:
        self.path = path
        self._setup = setup
        self._timeout_s = timeout_s
        self._local = threading.local()

    @contextmanager
    def open(self) -> Iterator[sqlite3.Connection]:
        local = self._local
        if getattr(local, "busy", False):
            con = self._new()
            try:
                yield con
            finally:
                con.close()
            return
        con = getattr(local, "con", None) or self._new()
        local.con, local.busy = con, True
        try:
            yield con
        except sqlite3.DatabaseError:
            local.con = None
            con.close()
            raise
        finally:
            local.busy = False

    def _new(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None)
        try:
            self._setup(con)
        except BaseException:
            con.close()
            raise
        return con
