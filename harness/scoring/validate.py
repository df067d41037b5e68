"""Check a participant's predictions file against the test ids, with messages a participant can act on.

The file is read without following links and without blocking, and never parsed beyond
``spec.max_bytes``. Every check raises ``PredictionsError`` naming the problem, its count and
up to ``EXAMPLES`` examples (line numbers and ids).
"""

from __future__ import annotations

import csv
import errno
import io
import math
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.limits.hints import found_files_hint, with_hint
from harness.scoring.spec import PredictionsSpec
from harness.util.sizes import format_size

EXAMPLES = 5
SUM_TOLERANCE = 1e-3


class PredictionsError(Exception):
    """The predictions file is unusable; ``message`` says why, for the participant."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, eq=False)
class Predictions:
    """Validated predictions, one per test id, in the order of ``ids``."""

    ids: tuple[str, ...]
    kind: str
    classes: tuple[str, ...] = ()
    labels: list[str] | None = None
    values: np.ndarray | None = None
    probabilities: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: Sequence[int]) -> Predictions:
        idx = list(indices)
        return Predictions(
            ids=tuple(self.ids[i] for i in idx),
            kind=self.kind,
            classes=self.classes,
            labels=None if self.labels is None else [self.labels[i] for i in idx],
            values=None if self.values is None else self.values[idx],
            probabilities=None if self.probabilities is None else self.probabilities[idx],
        )


def validate_predictions(path: Path, expected_ids: Sequence[str], spec: PredictionsSpec) -> Predictions:
    """Read ``path`` (the host copy of ``/output/<spec.file>``) and return its predictions in ``expected_ids`` order."""
    expected = [str(i).strip() for i in expected_ids]
    if len(set(expected)) != len(expected):
        raise ValueError("expected_ids repeat an id; the test set is malformed")
    text = _decode(_read(Path(path), spec), spec)
    header, rows = _parse(text, spec)
    positions = _check_header(header, spec)
    _check_field_counts(rows, len(header), spec)
    by_id = _check_ids(rows, positions[spec.id_column], expected, spec)
    ordered = [by_id[i] for i in expected]
    if spec.kind == "probabilities":
        return Predictions(tuple(expected), spec.kind, spec.classes, probabilities=_probabilities(ordered, positions, spec))
    cells = [(line, id_, row[positions[spec.target_column]].strip()) for line, id_, row in ordered]
    _check_not_empty(cells, spec.target_column, spec)
    if spec.kind == "value":
        noun = (f"{spec.target_column} value", f"{spec.target_column} values")
        return Predictions(tuple(expected), spec.kind, values=_numbers(cells, noun, spec))
    if spec.classes:
        allowed = set(spec.classes)
        bad = [(line, id_, v) for line, id_, v in cells if v not in allowed]
        if bad:
            raise PredictionsError(
                f"{spec.file}: {_count(bad, 'label')} not among the classes ({', '.join(spec.classes)}): {_cell_examples(bad, spec)}"
            )
    return Predictions(tuple(expected), spec.kind, spec.classes, labels=[v for _, _, v in cells])


# -- reading -------------------------------------------------------------------------------------


def _read(path: Path, spec: PredictionsSpec) -> bytes:
    where = spec.container_path
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        message = f"{where} was not written: the infer phase must write its predictions there"
        raise PredictionsError(with_hint(message, found_files_hint(where, _entries(path.parent)))) from None
    if not stat.S_ISREG(info.st_mode):
        raise PredictionsError(_not_regular(path, info.st_mode, where))
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:  # replaced between lstat and open
        if exc.errno == errno.ELOOP:
            raise PredictionsError(f"{where} is a symbolic link, not a regular file; write the predictions into the file itself") from None
        raise PredictionsError(f"{where} could not be opened: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PredictionsError(_not_regular(path, info.st_mode, where))
        if info.st_size > spec.max_bytes:
            raise PredictionsError(_too_large(where, info.st_size, spec.max_bytes))
        chunks, total = [], 0
        while total <= spec.max_bytes:
            chunk = os.read(fd, min(1 << 20, spec.max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > spec.max_bytes:
            raise PredictionsError(_too_large(where, total, spec.max_bytes, at_least=True))
        return b"".join(chunks)
    finally:
        os.close(fd)


def _not_regular(path: Path, mode: int, where: str) -> str:
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        what = f"a symbolic link (to {target[:200]!r})"
    elif stat.S_ISDIR(mode):
        what = "a directory"
    elif stat.S_ISFIFO(mode):
        what = "a named pipe (FIFO)"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "a device"
    elif stat.S_ISSOCK(mode):
        what = "a socket"
    else:
        what = "not a plain file"
    return f"{where} is {what}, not a regular file; write the predictions into a plain file"


def _entries(directory: Path) -> list[tuple[str, bool]]:
    """What ``directory`` holds: each name and whether it is a directory, links never followed. As
    many as the phase's file limit let it write; none when it cannot be read."""
    try:
        with os.scandir(directory) as entries:
            return [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    except OSError:
        return []


def _too_large(where: str, size: int, cap: int, at_least: bool = False) -> str:
    amount = f"more than {format_size(cap)}" if at_least else format_size(size)
    return f"{where} is {amount}, over the limit of {format_size(cap)}; it was not read"


def _decode(data: bytes, spec: PredictionsSpec) -> str:
    if not data.strip():
        raise PredictionsError(f"{spec.file} is empty; expected the header {','.join(spec.columns)} and one row per test id")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PredictionsError(
            f"{spec.file} is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}); write it as UTF-8 text"
        ) from None


Row = tuple[int, list[str]]  # (line number, fields)


def _parse(text: str, spec: PredictionsSpec) -> tuple[list[str], list[Row]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[Row] = []
    try:
        for fields in reader:
            if fields:  # blank lines are ignored
                rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise PredictionsError(f"{spec.file} is not valid CSV at line {reader.line_num}: {exc}") from None
    if not rows:
        raise PredictionsError(f"{spec.file} is empty; expected the header {','.join(spec.columns)}")
    return [h.strip() for h in rows[0][1]], rows[1:]


def _check_header(header: list[str], spec: PredictionsSpec) -> dict[str, int]:
    expected = spec.columns
    if header != list(expected):
        problems = []
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        repeated = sorted({c for c in header if header.count(c) > 1})
        if missing:
            problems.append(f"missing column{'s' * (len(missing) > 1)} {', '.join(missing)}")
        if extra:
            problems.append(f"unexpected column{'s' * (len(extra) > 1)} {', '.join(extra)}")
        if repeated:
            problems.append(f"repeated column{'s' * (len(repeated) > 1)} {', '.join(repeated)}")
        if problems:
            raise PredictionsError(
                f"{spec.file} has the header {','.join(header)!r}, expected {','.join(expected)!r} "
                f"(columns in any order): {'; '.join(problems)}"
            )
    return {name: header.index(name) for name in expected}


def _check_field_counts(rows: list[Row], width: int, spec: PredictionsSpec) -> None:
    bad = [(line, fields) for line, fields in rows if len(fields) != width]
    if bad:
        examples = ", ".join(f"line {line} has {len(fields)}" for line, fields in bad[:EXAMPLES])
        raise PredictionsError(
            f"{spec.file}: {_count(bad, 'row')} the wrong number of fields (expected {width}, as in the header): {examples}" + _more(bad)
        )


def _check_ids(rows: list[Row], column: int, expected: list[str], spec: PredictionsSpec) -> dict[str, tuple[int, str, list[str]]]:
    empty = [line for line, fields in rows if not fields[column].strip()]
    if empty:
        raise PredictionsError(
            f"{spec.file}: {_count(empty, 'row')} an empty {spec.id_column}: "
            f"line{'s' * (len(empty) > 1)} {', '.join(map(str, empty[:EXAMPLES]))}{_more(empty)}"
        )
    by_id: dict[str, tuple[int, str, list[str]]] = {}
    duplicates: list[str] = []
    for line, fields in rows:
        id_ = fields[column].strip()
        if id_ in by_id:
            duplicates.append(f"{id_} (lines {by_id[id_][0]} and {line})")
        else:
            by_id[id_] = (line, id_, fields)
    wanted = set(expected)
    missing = [i for i in expected if i not in by_id]
    unknown = [f"{i} (line {by_id[i][0]})" for i in by_id if i not in wanted]
    if not (missing or unknown or duplicates):
        return by_id
    parts = []
    for items, what in ((missing, "missing"), (duplicates, "duplicate"), (unknown, "unknown")):
        if items:
            noun = f"{what} {spec.id_column}{'s' * (len(items) > 1)}"
            parts.append(f"{len(items)} {noun}: {', '.join(items[:EXAMPLES])}{_more(items)}")
    head = f"{spec.file} has {len(rows)} row{'s' * (len(rows) != 1)}, expected {len(expected)} (one per test id)"
    if len(rows) == len(expected):
        head = f"{spec.file} has the right number of rows ({len(rows)}) but not the test ids"
    raise PredictionsError(f"{head}; {'; '.join(parts)}")


# -- values --------------------------------------------------------------------------------------

Cell = tuple[int, str, str]  # (line, id, stripped value)


def _check_not_empty(cells: list[Cell], column: str, spec: PredictionsSpec) -> None:
    bad = [c for c in cells if not c[2]]
    if bad:
        raise PredictionsError(
            f"{spec.file}: {_count(bad, 'row')} an empty {column}: "
            + ", ".join(f"line {line} ({spec.id_column} {id_})" for line, id_, _ in bad[:EXAMPLES])
            + _more(bad)
        )


def _numbers(cells: list[Cell], noun: tuple[str, str], spec: PredictionsSpec) -> np.ndarray:
    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    parsed = [number(v) for _, _, v in cells]
    bad = [c for c, x in zip(cells, parsed) if x is None]
    if bad:
        raise PredictionsError(f"{spec.file}: {_count(bad, *noun)} not a number: {_cell_examples(bad, spec)}")
    bad = [c for c, x in zip(cells, parsed) if not math.isfinite(x)]  # type: ignore[arg-type]
    if bad:
        raise PredictionsError(f"{spec.file}: {_count(bad, *noun)} NaN or infinite: {_cell_examples(bad, spec)}")
    return np.asarray(parsed, dtype=float)


def _probabilities(ordered: list[tuple[int, str, list[str]]], positions: dict[str, int], spec: PredictionsSpec) -> np.ndarray:
    columns = []
    for name in spec.classes:
        cells = [(line, id_, row[positions[name]].strip()) for line, id_, row in ordered]
        _check_not_empty(cells, f"probability for class {name}", spec)
        columns.append(_numbers(cells, (f"probability for class {name}", f"probabilities for class {name}"), spec))
    matrix = np.column_stack(columns)
    outside = np.argwhere((matrix < 0) | (matrix > 1))
    if len(outside):
        examples = []
        for r, c in outside[:EXAMPLES]:
            line, id_, row = ordered[r]
            name = spec.classes[c]
            examples.append(f"line {line} ({spec.id_column} {id_}): {name}={row[positions[name]].strip()!r}")
        raise PredictionsError(
            f"{spec.file}: {_count(outside, 'probability', 'probabilities')} outside [0, 1]: {', '.join(examples)}{_more(outside)}"
        )
    sums = matrix.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > SUM_TOLERANCE)
    if len(off):
        examples = [f"{spec.id_column} {ordered[r][1]} (line {ordered[r][0]}) sums to {sums[r]:.6g}" for r in off[:EXAMPLES]]
        raise PredictionsError(
            f"{spec.file}: {_count(off, 'row')} probabilities that do not sum to 1 (tolerance {SUM_TOLERANCE:g}): "
            f"{', '.join(examples)}{_more(off)}"
        )
    return matrix


# -- wording -------------------------------------------------------------------------------------


def _count(items: Sequence[object], noun: str, plural: str | None = None) -> str:
    """ "1 row has" / "3 rows have", "1 label is" / "2 labels are"."""
    n = len(items)
    word = noun if n == 1 else (plural or f"{noun}s")
    verb = ("has" if n == 1 else "have") if noun == "row" else ("is" if n == 1 else "are")
    return f"{n} {word} {verb}"


def _more(items: Sequence[object]) -> str:
    return f" (and {len(items) - EXAMPLES} more)" if len(items) > EXAMPLES else ""


def _cell_examples(cells: list[Cell], spec: PredictionsSpec) -> str:
    shown = ", ".join(f"line {line} ({spec.id_column} {id_}): {value!r}" for line, id_, value in cells[:EXAMPLES])
    return shown + _more(cells)
