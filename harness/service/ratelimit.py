"""Failed authentications per client address: after ``max_failures`` in ``window_s`` seconds the
address is refused (429, ``Retry-After``) until the oldest failure leaves the window.

Memory is bounded: at most ``max_failures`` times per address and ``max_addresses`` addresses (the
least recently failing is forgotten first)."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque

MAX_ADDRESSES = 10_000


class FailureLimiter:
    def __init__(self, max_failures: int, window_s: float, max_addresses: int = MAX_ADDRESSES) -> None:
        self.max_failures, self.window_s, self.max_addresses = max_failures, window_s, max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        """Seconds the address must wait (rounded up), or None when it may try."""
        now = time.monotonic()
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                return None
            while times and now - times[0] >= self.window_s:
                times.popleft()
            if not times:
                del self._failures[address]
                return None
            if len(times) < self.max_failures:
                return None
            return max(1, math.ceil(self.window_s - (now - times[0])))

    def failed(self, address: str) -> None:
        with self._lock:
            times = self._failures.pop(address, None) or deque(maxlen=self.max_failures)
            times.append(time.monotonic())
            self._failures[address] = times
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
