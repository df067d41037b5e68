"""The board's columns beyond rank, team and score: each one a definition the renderers iterate
(the text table and the HTML page print ``text`` under ``header``; JSON and CSV carry the entry's
fields themselves). A new column is one more ``Column`` in ``COLUMNS``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.leaderboard.board import Entry


@dataclass(frozen=True)
class Column:
    name: str  # what the page's cells are marked with (data-field)
    header: str
    text: Callable[[Entry], str]
    mark: Callable[[Entry], str] = lambda entry: ""  # a CSS class for the cell (the page)
    optional: bool = False  # left out where no row has a value (GPU use on a CPU-only board)


def shown(columns: tuple[Column, ...], entries: list[Entry]) -> list[Column]:
    """The columns a board prints: every one but an optional one that is empty on every row."""
    return [c for c in columns if not c.optional or any(c.text(e) for e in entries)]


def fixed(value: float, places: int) -> str:
    """``value`` with ``places`` decimals, an exact half rounded away from zero: what JavaScript's
    ``toFixed`` writes (``pages.js`` writes these columns too), where Python would round it to even."""
    if not math.isfinite(value):
        return str(value)
    return str(Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def interval_text(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f"[{fixed(low, 5)}, {fixed(high, 5)}]"


def beats_next_text(share: float | None, tied: bool | None) -> str:
    """``97%`` or ``58% tied``: how often this row beat the next one in the paired resamples."""
    if share is None:
        return ""
    return f"{math.floor(share * 100 + 0.5)}%" + (" tied" if tied else "")  # rounded as pages.js's Math.round


def seconds_text(value: float | None) -> str:
    return "" if value is None else fixed(value, 1)


def bytes_text(value: float | None) -> str:
    if value is None:
        return ""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{fixed(value / size, 1)} {unit}"
    return f"{fixed(value, 0)} B"


def _resource(name: str, header: str, text: Callable[[float | None], str], optional: bool = False) -> Column:
    return Column(name, header, lambda e: text(e.resources.get(name)), optional=optional)


COLUMNS: tuple[Column, ...] = (
    Column("interval", "interval", lambda e: interval_text(e.low, e.high)),
    Column(
        "beats_next", "beats next", lambda e: beats_next_text(e.beats_next, e.tied_with_next), lambda e: "tied" if e.tied_with_next else ""
    ),
    _resource("train_wall_s", "train s", seconds_text),
    _resource("infer_wall_s", "infer s", seconds_text),
    _resource("cpu_s", "CPU s", seconds_text),
    _resource("peak_memory_bytes", "peak memory", bytes_text),
    _resource("gpu_s", "GPU s", seconds_text, optional=True),
    _resource("peak_gpu_memory_bytes", "peak GPU memory", bytes_text, optional=True),
)


def legend(confidence: float, resamples: int) -> str:
    """How to read the interval and the tie mark, under a board."""
    if resamples == 0:
        return ""
    level = f"{confidence:.1%}".replace(".0%", "%")
    return (
        f"interval: the score's {level} bootstrap interval over this board's test ids ({resamples} resamples); "
        f"beats next: the share of those resamples (the same ids for both) in which the row scored better than the one below it; "
        f"tied: under {level}, the two are not separated (tied within noise)."
    )


def used_text(values: dict[str, float | None]) -> str:
    """A row's resources on one line (the service's page): ``train 12.3 s · infer 0.8 s · CPU 13.1 s · 512.0 MiB``;
    what was not measured is left out (``pages.js`` writes the same)."""
    parts = [
        (label, text(values.get(name)))
        for label, name, text in (
            ("train", "train_wall_s", seconds_text),
            ("infer", "infer_wall_s", seconds_text),
            ("CPU", "cpu_s", seconds_text),
            ("memory", "peak_memory_bytes", bytes_text),
            ("GPU", "gpu_s", seconds_text),
            ("GPU memory", "peak_gpu_memory_bytes", bytes_text),
        )
    ]
    return " · ".join(f"{label} {shown}" + (" s" if label in ("train", "infer", "CPU", "GPU") else "") for label, shown in parts if shown)
