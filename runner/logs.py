"""Bounded log capture: keep the head and the tail of a stream, count every byte."""

from __future__ import annotations

from collections import deque
from pathlib import Path


class BoundedLog:
    """Keeps at most ``cap`` bytes of a stream: its first half and its last half.

    Memory stays at ``cap`` however much the container writes.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.total = 0
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_len = 0

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def write(self, chunk: bytes) -> None:
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

    def text(self) -> str:
        tail = b"".join(self._tail)
        kept_tail = tail[-(self.cap - self.cap // 2) :] if self.truncated else tail
        if not self.truncated:
            return (bytes(self._head) + tail).decode("utf-8", "replace")
        omitted = self.total - len(self._head) - len(kept_tail)
        marker = f"\n[... harness: {omitted} bytes omitted, {self.total} bytes in all ...]\n"
        return bytes(self._head).decode("utf-8", "replace") + marker + kept_tail.decode("utf-8", "replace")

    def tail_lines(self, n: int = 20) -> str:
        return "\n".join(self.text().rstrip("\n").splitlines()[-n:])

    def save(self, path: Path) -> None:
        path.write_text(self.text(), encoding="utf-8")
