"""Reading an organizer's tables (CSV, TSV, Parquet) as text cells, and the small readings the builders
share: a time column's value as a number, numbers, natural order, examples for messages."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.util.errors import HarnessError

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")
EXAMPLES = 3
SHOWN_COLUMNS = 20


class SourceError(HarnessError):
    """The organizer's files cannot make a competition as they are; the message says what to change."""


@dataclass
class Table:
    """A table as read: its header and rows of text cells (stripped), and how messages name a row."""

    name: str
    header: list[str]
    rows: list[list[str]]
    lines: list[int] = field(default_factory=list)  # each row's line in a CSV file (empty: a Parquet row number)

    def where(self, i: int) -> str:
        return f"{self.name} line {self.lines[i]}" if self.lines else f"{self.name} row {i + 1}"


def read_table(path: str | Path, role: str = "table") -> Table:
    """A CSV (TSV) or Parquet file as text cells; one clear line for anything that is not a table."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(f"{role} {path}: no such file")
    if not path.is_file():
        raise SourceError(f"{role} {path}: not a file")
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        table = _read_parquet(path)
    elif suffix in TABLE_SUFFIXES:
        table = _read_csv(path, TABLE_SUFFIXES[suffix])
    else:
        raise SourceError(f"{role} {path}: not a table (give a .csv, .tsv or .parquet file)")
    if not table.header:
        raise SourceError(f"{path}: no header row")
    blank = [n for n, name in enumerate(table.header, 1) if not name]
    if blank:
        raise SourceError(f"{path}: column {blank[0]} of the header has no name")
    repeated = sorted({name for name in table.header if table.header.count(name) > 1})
    if repeated:
        raise SourceError(f"{path}: the header names column {repeated[0]!r} more than once")
    if not table.rows:
        raise SourceError(f"{path}: no rows (the table is empty)")
    return table


def _read_csv(path: Path, delimiter: str) -> Table:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror})") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] = []
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # a blank line
            if not header:
                header = [c.strip() for c in cells]
                continue
            if len(cells) != len(header):
                raise SourceError(f"{path.name} line {reader.line_num}: {len(cells)} cells where the header has {len(header)}")
            rows.append([c.strip() for c in cells])
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise SourceError(f"{path.name} line {reader.line_num}: {exc}") from None
    return Table(path.name, header, rows, lines)


def _read_parquet(path: Path) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SourceError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow), or give the table as CSV") from None
    try:
        data = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a file that is not Parquet
        raise SourceError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    header = [str(name).strip() for name in data.column_names]
    rows = [[_cell(value) for value in row.values()] for row in data.to_pylist()]
    return Table(path.name, header, rows)


def _cell(value: Any) -> str:
    """A Parquet value as the text a CSV would hold."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        raise SourceError("a Parquet column holds bytes: give text, numbers or dates")
    return str(value).strip()


def parse_moment(value: str) -> float | None:
    """A time column's value as a number: a finite number as it is, an ISO date or time (or a month,
    ``2024-03``) as POSIX seconds; None for anything else."""
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) else None
    if re.fullmatch(r"\d{4}-\d{2}", value):
        value += "-01"
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def finite(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def natural(value: str) -> tuple[int, float, str]:
    return (0, float(value), value) if finite(value) else (1, 0.0, value)


def names(columns: Sequence[str]) -> str:
    shown = ", ".join(columns[:SHOWN_COLUMNS])
    return shown + (f" and {len(columns) - SHOWN_COLUMNS} more" if len(columns) > SHOWN_COLUMNS else "")


def shown(values: Sequence[str], most: int = 10) -> str:
    return ", ".join(values[:most]) + (f" and {len(values) - most} more" if len(values) > most else "")


def examples(values: Any) -> str:
    values = list(values)
    return ", ".join(values[:EXAMPLES]) + (f" and {len(values) - EXAMPLES} more" if len(values) > EXAMPLES else "")
