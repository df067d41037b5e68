"""The board's columns beyond rank, team and score: each one a ``Column`` the renderers iterate.

One definition serves every board: the CLI table, CSV and the HTML page (``table_columns``: a
column per resource), the service's page, its live rows (``pages.js`` writes the columns the page's
header names) and ``harness leaderboard --remote`` (``service_columns``: the resources on one line).
A column reads a row by field name, so a row is an ``Entry`` or a board row as the service's API
sends it (a mapping); what is not a number where one belongs is shown blank. The columns are, in
order: one per secondary metric (``metrics.others``: shown, never ranked on), the score's interval,
how often it beats the next row, then what the submission used. JSON carries the rows' own fields.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import Any

from harness.competition.schema import RESOURCES

Row = Any  # an Entry, or a mapping with its fields (a row of the service's board)


def field(row: Row, name: str) -> Any:
    """The row's ``name``: an attribute of an Entry, a key of a mapping (None where absent)."""
    return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)


def real(value: object) -> float | None:
    """A number, or None for anything else (a row from a service may hold anything)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _mapping(row: Row, name: str) -> Mapping[str, Any]:
    value = field(row, name)
    return value if isinstance(value, Mapping) else {}


def _no_mark(row: Row) -> str:
    return ""


@dataclass(frozen=True)
class Column:
    name: str  # what the pages' cells are marked with (data-field)
    header: str
    text: Callable[[Row], str]
    value: Callable[[Row], float | None] | None = None  # its CSV cell; None: not in CSV (the row's own fields are)
    csv: str = ""  # its CSV header
    mark: Callable[[Row], str] = _no_mark  # a CSS class for the cell (the pages)
    style: str = "num"  # the cell's CSS class
    note: str = ""  # what a reader should know (the pages' tooltip)
    optional: bool = False  # left out where no row has a value (GPU use on a CPU-only board)


def shown(columns: Sequence[Column], rows: Sequence[Row]) -> list[Column]:
    """The columns a board prints: every one but an optional one that is empty on every row."""
    return [c for c in columns if not c.optional or any(c.text(r) for r in rows)]


def fixed(value: float, places: int) -> str:
    """``value`` with ``places`` decimals, an exact half rounded away from zero: what JavaScript's
    ``toFixed`` writes (``pages.js`` writes these columns too), where Python would round it to even."""
    if not math.isfinite(value):
        return str(value)
    return str(Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def score_text(value: float | None) -> str:
    return "" if value is None else f"{value:.5f}"


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


# how each of the schema's RESOURCES (which names them, in order) is shown: the table's header, the
# one-line label, its text, a unit after it on one line, whether optional
_SHOWN: dict[str, tuple[str, str, Callable[[float | None], str], str, bool]] = {
    "train_wall_s": ("train s", "train", seconds_text, " s", False),
    "infer_wall_s": ("infer s", "infer", seconds_text, " s", False),
    "cpu_s": ("CPU s", "CPU", seconds_text, " s", False),
    "peak_memory_bytes": ("peak memory", "memory", bytes_text, "", False),
    "gpu_s": ("GPU s", "GPU", seconds_text, " s", True),
    "peak_gpu_memory_bytes": ("peak GPU memory", "GPU memory", bytes_text, "", True),
}
_RESOURCES = tuple((name, *_SHOWN[name]) for name in RESOURCES)


def used_text(values: Mapping[str, Any]) -> str:
    """A row's resources on one line: ``train 12.3 s · infer 0.8 s · CPU 13.1 s · memory 512.0 MiB``;
    what was not measured is left out (``pages.js`` writes the same)."""
    parts = ((label, text(real(values.get(name))), unit) for name, _, label, text, unit, _ in _RESOURCES)
    return " · ".join(f"{label} {shown}{unit}" for label, shown, unit in parts if shown)


def _other(name: str, row: Row) -> float | None:
    return real(_mapping(row, "others").get(name))


def _other_text(name: str, row: Row) -> str:
    return score_text(_other(name, row))


def metric_columns(others: Iterable[tuple[str, bool | None]]) -> list[Column]:
    """A column per secondary metric (its name, whether higher is better): the score of the
    submission that ranks the row, on the board's part."""
    return [
        Column(
            f"others.{name}",
            name,
            partial(_other_text, name),
            partial(_other, name),
            csv=name,
            note=("" if better is None else f"{'higher' if better else 'lower'} is better; ") + "shown, not ranked on",
        )
        for name, better in others
    ]


def _resource(name: str, row: Row) -> float | None:
    return real(_mapping(row, "resources").get(name))


def _resource_column(name: str, header: str, text: Callable[[float | None], str], optional: bool) -> Column:
    value = partial(_resource, name)
    return Column(name, header, lambda row: text(value(row)), value, csv=name, optional=optional)


EVIDENCE: tuple[Column, ...] = (
    Column("interval", "interval", lambda row: interval_text(real(field(row, "low")), real(field(row, "high")))),
    Column(
        "beats_next",
        "beats next",
        lambda row: beats_next_text(real(field(row, "beats_next")), field(row, "tied_with_next") is True),
        mark=lambda row: "tied" if field(row, "tied_with_next") is True else "",
    ),
)
RESOURCE_COLUMNS: tuple[Column, ...] = tuple(_resource_column(n, h, t, o) for n, h, _, t, _, o in _RESOURCES)
USED = Column("used", "used", lambda row: used_text(_mapping(row, "resources")), style="note")

COLUMNS: tuple[Column, ...] = (*EVIDENCE, *RESOURCE_COLUMNS)  # a board's without secondary metrics


def table_columns(others: Iterable[tuple[str, bool | None]] = ()) -> list[Column]:
    """The CLI table's, CSV's and the HTML page's: a column per secondary metric, then per resource."""
    return [*metric_columns(others), *COLUMNS]


def service_columns(others: Iterable[tuple[str, bool | None]] = ()) -> list[Column]:
    """The service page's and the remote board's: a column per secondary metric, the resources on one line."""
    return [*metric_columns(others), *EVIDENCE, USED]


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


def served_columns(board: Mapping[str, Any]) -> list[Column]:
    """``service_columns`` of a board as the service's API sends it: its ``others`` a list of
    ``{"name", "higher_is_better"}`` (anything else there is left out)."""
    others = board.get("others")
    return service_columns(
        (str(o.get("name")), o["higher_is_better"] if isinstance(o.get("higher_is_better"), bool) else None)
        for o in (others if isinstance(others, list) else [])
        if isinstance(o, Mapping)
    )
