"""Bounded log capture: keep the head and the tail of a stream, count every byte; and the live view
of a running phase's logs, which a follower reads while the container still writes.

While a phase runs, ``LiveLogs`` rewrites each stream's kept bytes (``<phase>.<stream>.log``, the very
file the phase leaves at its end: never more than the log limit) and then a small sidecar
(``<phase>.live.json``: bytes seen per stream, running or ended, the phase's verdict once judged)
at most every ``LIVE_EVERY_S``, atomically, from the backend's own watch loop (no extra process or
thread). The sidecar is written after the logs, and a reader takes a log only when it matches the
sidecar's byte count (``read_phase_logs`` reads again otherwise), so what it slices is consistent.

A follower holds a cursor (``"<stdout bytes>:<stderr bytes>"``, the stream offsets it has shown) and
asks for what came after it: the kept bytes past that offset, with ``[... harness: N bytes not kept
...]`` where the bounded window dropped some, so every line is shown once, in order. The run
directory is the driver's: a phase run by a Ray worker on the same machine writes there; one on
another machine is not visible live (its logs come back with its result).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STREAMS = ("stdout", "stderr")
LIVE_EVERY_S = 0.5  # the most often a running phase's logs are rewritten
READ_TRIES = 5  # a reader that caught the writer between a log and its sidecar reads again
_MARKER = re.compile(rb"\n\[\.\.\. harness: (\d+) bytes omitted, (\d+) bytes in all \.\.\.\]\n")
_LINE_ENDS = (b"\n", b"\r")


class BoundedLog:
    """Keeps at most ``cap`` bytes of a stream: its first half and its last half.

    Memory stays at ``cap`` however much the container writes. ``write`` (the reader thread) and
    ``kept`` (the watch loop's snapshots) may run at once: a lock keeps each snapshot whole.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.total = 0
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_len = 0
        self._lock = threading.Lock()

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def write(self, chunk: bytes) -> None:
        with self._lock:
            self.total += len(chunk)
            room = self.cap // 2 - len(self._head)
            if room > 0:
                self._head += chunk[:room]
                chunk = chunk[room:]
            if not chunk:
                return
            keep = self.cap - self.cap // 2
            chunk = chunk[-keep:] if keep else b""
            self._tail.append(chunk)
            self._tail_len += len(chunk)
            while self._tail and self._tail_len - len(self._tail[0]) >= keep:
                self._tail_len -= len(self._tail.popleft())

    def kept(self) -> tuple[bytes, int]:
        """The bytes kept (head, then a marker naming what was dropped, then the tail, as the
        container wrote them) and the stream's byte count they stand for."""
        with self._lock:
            total, head, tail = self.total, bytes(self._head), b"".join(self._tail)
        if total <= self.cap:
            return head + tail, total
        tail = tail[-(self.cap - self.cap // 2) :]
        omitted = total - len(head) - len(tail)
        return head + f"\n[... harness: {omitted} bytes omitted, {total} bytes in all ...]\n".encode() + tail, total

    def text(self) -> str:
        return self.kept()[0].decode("utf-8", "replace")

    def tail_lines(self, n: int = 20) -> str:
        return "\n".join(self.text().rstrip("\n").splitlines()[-n:])

    def save(self, path: Path) -> int:
        """Write the kept bytes whole (atomically); the stream's byte count they stand for."""
        data, total = self.kept()
        _write_atomic(path, data)
        return total


class LiveLogs:
    """One phase's logs in its log directory: rewritten while it runs, final when ``close`` is called."""

    def __init__(self, log_dir: Path, phase: str, logs: dict[str, BoundedLog], every_s: float = LIVE_EVERY_S) -> None:
        self.log_dir, self.phase, self.logs, self.every_s = log_dir, phase, logs, every_s
        self.closed = False
        self._written: tuple[int, ...] | None = None
        self._due = 0.0

    def poll(self, now: float | None = None) -> None:
        """Write a snapshot when one is due and a stream has grown (the first one at once)."""
        now = time.monotonic() if now is None else now
        totals = tuple(log.total for log in self.logs.values())
        if self.closed or now < self._due or totals == self._written:
            return
        self._due = now + self.every_s
        try:
            self._write(running=True)
        except OSError:
            pass  # the live view is a courtesy: a full disk shows at the final save, which is the phase's

    def close(self, outcome: dict[str, Any] | None = None) -> None:
        """The final logs, then the sidecar saying the phase ended (with ``outcome``: its verdict, exit
        code). Without an outcome (cut short) only a phase that had begun writes: one whose container
        never started leaves no logs, as before."""
        if not self.closed and (outcome is not None or self._written is not None):
            self.closed = True
            self._write(running=False, outcome=outcome or {})

    def _write(self, *, running: bool, outcome: dict[str, Any] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        seen = {name: log.save(log_path(self.log_dir, self.phase, name)) for name, log in self.logs.items()}
        self._written = tuple(seen.values())
        sidecar = {
            "phase": self.phase,
            "running": running,
            "log_bytes": next(iter(self.logs.values())).cap,
            "seen_bytes": seen,
            **(outcome or {}),
        }
        _write_atomic(sidecar_path(self.log_dir, self.phase), json.dumps(sidecar).encode())


def log_path(log_dir: Path, phase: str, stream: str) -> Path:
    return log_dir / f"{phase}.{stream}.log"


def sidecar_path(log_dir: Path, phase: str) -> Path:
    return log_dir / f"{phase}.live.json"


class CursorError(ValueError):
    """A cursor that is not ``<stdout bytes>:<stderr bytes>``."""


def parse_cursor(text: str) -> tuple[int, int]:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 18 for p in parts):
        raise CursorError(f"since={text[:40]!r} is not a cursor; pass back the `next` of an earlier answer (e.g. 0:0 for the start)")
    return int(parts[0]), int(parts[1])


@dataclass
class StreamView:
    text: str
    seen_bytes: int
    next: int  # the stream offset after ``text``
    truncated: bool


@dataclass
class PhaseLogs:
    """What a reader gets of one phase's logs (``read_phase_logs``)."""

    running: bool
    streams: dict[str, StreamView] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)  # the phase's verdict and exit code, once it ended

    @property
    def truncated(self) -> bool:
        return any(s.truncated for s in self.streams.values())

    @property
    def cursor(self) -> str:
        return ":".join(str(self.streams[s].next) for s in STREAMS)

    def answer(self) -> dict[str, Any]:
        """The service's logs answer (less ``id`` and ``phase``): docs/service-api.md."""
        return {
            **{stream: view.text for stream, view in self.streams.items()},
            "truncated": self.truncated,
            "running": self.running,
            "seen_bytes": {stream: view.seen_bytes for stream, view in self.streams.items()},
            "next": self.cursor,
            "verdict": None if self.running else self.outcome.get("verdict"),
        }


def read_phase_logs(log_dir: Path, phase: str, limit: int, since: tuple[int, int] | None = None) -> PhaseLogs | None:
    """A phase's logs, or None when it left none (yet).

    Without ``since``: each stream's last ``limit`` bytes of what is kept. With it (a cursor): what
    each stream wrote after that offset and is kept, at most ``limit`` bytes from there, where the
    window dropped bytes a ``[... harness: N bytes not kept ...]`` line; while the phase runs only up
    to its last line end, so a line (and a character) is never split across answers. Logs written
    before live logs existed (no sidecar) are read whole as ended, with no byte count but their size.
    """
    for _ in range(READ_TRIES):
        sidecar = _read_json(sidecar_path(log_dir, phase))
        files = {s: _read_bytes(log_path(log_dir, phase, s)) for s in STREAMS}
        if sidecar is None:
            if all(data is None for data in files.values()):
                return None
            return _view(False, {}, {s: _Kept(data or b"", len(data or b"")) for s, data in files.items()}, limit, since)
        seen, cap = sidecar.get("seen_bytes") or {}, int(sidecar.get("log_bytes", 0))
        kept = {s: k for s in STREAMS if (k := _layout(files[s], int(seen.get(s, -1)), cap)) is not None}
        if len(kept) == len(STREAMS):
            outcome = {k: v for k, v in sidecar.items() if k not in ("phase", "running", "log_bytes", "seen_bytes")}
            return _view(bool(sidecar.get("running")), outcome, kept, limit, since)
        time.sleep(0.02)
    return None


@dataclass
class _Kept:
    """A stream's kept bytes: ``head`` is stream bytes [0, len(head)), ``tail`` the last bytes up to ``total``."""

    head: bytes
    total: int
    tail: bytes = b""

    @property
    def omitted(self) -> int:
        return self.total - len(self.head) - len(self.tail)


def _layout(data: bytes | None, seen: int, cap: int) -> _Kept | None:
    """The file's bytes split as the log kept them, or None when they are not those of ``seen`` bytes."""
    if data is None:
        return _Kept(b"", 0) if seen == 0 else None
    if seen <= cap:
        return _Kept(data, seen) if len(data) == seen else None
    head = cap // 2
    marker = _MARKER.match(data, head)
    if marker is None or int(marker.group(2)) != seen:
        return None
    kept = _Kept(data[:head], seen, data[marker.end() :])
    return kept if kept.omitted == int(marker.group(1)) else None


def _view(running: bool, outcome: dict[str, Any], kept: dict[str, _Kept], limit: int, since: tuple[int, int] | None) -> PhaseLogs:
    logs = PhaseLogs(running, outcome=outcome)
    for index, stream in enumerate(STREAMS):
        k = kept[stream]
        if since is None:
            whole = _joined(k)
            text, end = whole[-limit:], k.total
            truncated = k.omitted > 0 or len(whole) > limit
        else:
            text, end = _after(k, since[index], limit, running)
            truncated = k.omitted > 0
        logs.streams[stream] = StreamView(text.decode("utf-8", "replace"), k.total, end, truncated)
    return logs


def _joined(k: _Kept) -> bytes:
    """All the kept bytes, a "not kept" line where the window has a gap."""
    return k.head + (_not_kept(k.omitted) if k.omitted else b"") + k.tail


def _not_kept(gap: int) -> bytes:
    """The line standing for ``gap`` bytes the window dropped (on a line of its own, as the saved log's marker)."""
    return f"\n[... harness: {gap} bytes not kept ...]\n".encode()


def _after(k: _Kept, start: int, limit: int, running: bool) -> tuple[bytes, int]:
    """At most ``limit`` bytes of what came after ``start``, and the stream offset they reach. Cut
    at the last line end while the phase runs or the limit cut it (a line arrives whole, a
    character unsplit), unless a single line fills the whole limit."""
    start = min(start, k.total)
    tail_from = k.total - len(k.tail)
    pieces: list[tuple[bytes, int | None]] = []  # (bytes, the stream offset they begin at; None: the "not kept" line)
    if start < len(k.head):
        pieces.append((k.head[start:], start))
    if (gap := tail_from - max(start, len(k.head))) > 0:
        pieces.append((_not_kept(gap), None))
    pieces.append((k.tail[max(0, start - tail_from) :], max(start, tail_from)))
    out, spans, limited = b"", [], False
    for data, begin in pieces:
        room = limit - len(out)
        if len(data) > room and (begin is None or room == 0) and out:
            limited = True
            break
        spans.append((len(out), begin))
        out += data if begin is None else data[:room]
        if len(data) > room:
            limited = True
            break
    if running or limited:
        cut = max(out.rfind(end) for end in _LINE_ENDS) + 1
        out = out[:cut] if cut or not limited else out
    return out, _offset(spans, len(out), start, tail_from)


def _offset(spans: list[tuple[int, int | None]], position: int, start: int, tail_from: int) -> int:
    """The stream offset at ``position`` of the answer's bytes (the "not kept" line is never cut)."""
    for at, begin in reversed(spans):
        if at < position:
            return tail_from if begin is None else begin + position - at
    return start


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
