"""Memory and CPU of a running container as time series (MLflow plots them step by step)."""

from __future__ import annotations

import time
from collections.abc import Callable

SAMPLE_S = 0.5

# (Unix time of the reading, memory in use now in bytes, CPU seconds used so far)
Reading = tuple[float, int, float]


class Telemetry:
    """Polled from the runner's watch loop; reads ``read`` at most every ``interval`` seconds.

    ``memory_bytes`` is the memory in use at each reading; ``cpu_cores`` the CPU time used since
    the previous reading divided by the time between them (1.0: one core busy all along).
    """

    def __init__(self, read: Callable[[], Reading | None], *, interval: float = SAMPLE_S, clock: Callable[[], float] = time.time) -> None:
        self.read = read
        self.interval = interval
        self.clock = clock
        self.memory: list[tuple[float, float]] = []
        self.cpu: list[tuple[float, float]] = []
        self._last: Reading | None = None
        self._next = 0.0

    def poll(self) -> None:
        now = self.clock()
        if now < self._next:
            return
        self._next = now + self.interval
        reading = self.read()
        if reading is None or (self._last is not None and reading[0] <= self._last[0]):
            return  # nothing visible, or the same reading again
        at, memory, cpu_s = reading
        self.memory.append((at, float(memory)))
        if self._last is not None:
            self.cpu.append((at, max(0.0, (cpu_s - self._last[2]) / (at - self._last[0]))))
        self._last = reading

    def series(self) -> dict[str, list[tuple[float, float]]]:
        named = {"memory_bytes": self.memory, "cpu_cores": self.cpu}
        return {name: points for name, points in named.items() if points}
