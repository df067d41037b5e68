"""A round's live progress (done / running / waiting, counts by verdict, ETA) and its final summary table."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO

REPORT_EVERY_S = 10.0


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    def __init__(self, total: int, out: TextIO, *, every_s: float = REPORT_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.out = out
        self.every_s = every_s
        self.clock = clock
        self.verdicts: Counter[str] = Counter()
        self.started = clock()
        self._reported = self.started

    @property
    def done(self) -> int:
        return sum(self.verdicts.values())

    def finished(self, verdict: str) -> None:
        self.verdicts[verdict] += 1

    def eta_s(self) -> float | None:
        if not self.done:
            return None
        return (self.clock() - self.started) / self.done * (self.total - self.done)

    def status(self, running: int) -> str:
        """One line: ``12/50 done, 2 running, 36 waiting | 10 SCORED, 2 TIMEOUT | ETA 1m20s``."""
        waiting = max(0, self.total - self.done - running)
        counts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(self.verdicts.items())) or "no verdicts yet"
        eta = self.eta_s()
        return (
            f"{self.done}/{self.total} done, {running} running, {waiting} waiting | {counts} | "
            f"ETA {'unknown' if eta is None else duration(eta)}"
        )

    def maybe_report(self, running: int) -> None:
        """Print the status line when ``every_s`` has passed since the last one."""
        now = self.clock()
        if now - self._reported >= self.every_s:
            self._reported = now
            print(f"progress: {self.status(running)}", file=self.out, flush=True)


def summary_table(round_id: str, wall_s: float, verdicts: Counter[str], *, retried: int, cancelled: int, left_pending: int) -> str:
    """The table printed when a round ends: counts by verdict, then what was retried or left over."""
    total = sum(verdicts.values())
    width = max([len("verdict"), *map(len, verdicts)])
    rows = [
        f"{round_id}: {total} evaluated in {duration(wall_s)}" + (f" ({wall_s / total:.2f} s per submission)" if total else ""),
        f"  {'verdict':<{width}}  count",
        f"  {'-' * width}  -----",
    ]
    rows += [f"  {verdict:<{width}}  {n:>5}" for verdict, n in sorted(verdicts.items(), key=lambda item: (-item[1], item[0]))]
    rows.append(f"  {'total':<{width}}  {total:>5}")
    rows.append(f"  infrastructure retries: {retried}; cancelled: {cancelled}; left pending: {left_pending}")
    return "\n".join(rows)
