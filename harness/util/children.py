"""Child processes that end with the process that started them, even when it is SIGKILLed, and the
pidfile a restart reads to end what an older crash left running.

``bound_to_parent`` is a ``preexec_fn`` (Linux: ``prctl(PR_SET_PDEATHSIG)``). The kernel sends the
signal when the *thread* that forked the child ends, not the process: start such children from the
main thread or from a thread that outlives them.

``PidFile`` names one child and the process that started it. At the next start, ``end_stale``
ends the child named there only when it still runs the expected command (``/proc/PID/cmdline``,
so a recycled pid is never touched) and the process that started it is no longer its parent (a
live owner means another instance is running: an error, nothing is killed); for a child started
in a session of its own, what is left of that session goes with it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from harness.util.errors import HarnessError

PR_SET_PDEATHSIG = 1
STALE_STOP_S = 10.0  # how long a stale child may take to end on SIGTERM before SIGKILL


def bound_to_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child receive ``sig`` when the forking thread ends; None where
    the platform has no such thing (the pidfile is then what ends a stale child)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died between the fork and the prctl: nobody will signal
            os.kill(os.getpid(), sig)

    return preexec


def command_line(pid: int) -> list[str] | None:
    """A running process's arguments; None when it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return None
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except (OSError, IndexError):
        return None


def has_ended(pid: int) -> bool:
    """Gone, or a zombie whose every thread has exited (a thread group's leader shows ``Z`` while its
    other threads still exit and still hold its files, listening sockets included)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return fields.get("State", "").split()[:1] == ["Z"] and fields.get("Threads", "1").strip() == "1"


def _stat_field(pid: int, index: int) -> int | None:
    """A number of ``/proc/PID/stat`` after the command's name: 1 the parent, 3 the session."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[index])
    except (OSError, IndexError, ValueError):
        return None


def parent_of(pid: int) -> int | None:
    return _stat_field(pid, 1)


def session_members(session: int) -> list[int]:
    """The live processes of a session (a session id is never reused as a pid while it has any)."""
    members = (int(proc.name) for proc in Path("/proc").iterdir() if proc.name.isdigit())
    return [pid for pid in members if _stat_field(pid, 3) == session and command_line(pid) is not None]


class PidFile:
    """``<child pid> <owner pid>``, one line, written when the child starts, removed when it stops."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = Path(path)
        self.what = what

    def write(self, pid: int) -> None:
        self.path.write_text(f"{pid} {os.getpid()}\n", encoding="utf-8")

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def read(self) -> tuple[int, int] | None:
        try:
            child, owner = (int(part) for part in self.path.read_text(encoding="utf-8").split())
        except (OSError, ValueError):
            return None
        return child, owner

    def end_stale(self, expected: Sequence[str], *, session: bool = False) -> int | None:
        """End the child an earlier start left running, when its command line begins with
        ``expected`` and its owner is gone (with ``session``: and every process of the session it
        leads); its pid, or None when there was none."""
        named = self.read()
        if named is None:
            self.clear()
            return None
        child, owner = named
        running = command_line(child)
        if running is None or running[: len(expected)] != list(expected):
            self.clear()  # gone, or the pid now belongs to something else: nothing of ours runs
            return None
        if parent_of(child) == owner:
            raise HarnessError(
                f"{self.what} (pid {child}) of another running instance (pid {owner}) uses {self.path.parent}; stop that one first"
            )
        for sig, wait_s in ((signal.SIGTERM, STALE_STOP_S), (signal.SIGKILL, STALE_STOP_S)):
            with suppress(ProcessLookupError):
                os.kill(child, sig)
            deadline = time.monotonic() + wait_s
            while not has_ended(child) and time.monotonic() < deadline:
                time.sleep(0.1)
            if has_ended(child):
                break
        else:
            raise HarnessError(f"{self.what} left by an earlier run (pid {child}) does not end; end it (kill -9 {child}) and start again")
        deadline = time.monotonic() + STALE_STOP_S
        while session and session_members(child) and time.monotonic() < deadline:
            for member in session_members(child):
                with suppress(ProcessLookupError):
                    os.kill(member, signal.SIGKILL)
            time.sleep(0.1)
        self.clear()
        return child
