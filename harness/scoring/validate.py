"""Check a participant's predictions file against the test ids, with messages a participant can act on.

The file is read without following links and without blocking, and never parsed beyond
``spec.max_bytes``; its rows are checked as a stream, and only the rows of test ids are kept, so
what a file holds beyond them costs no memory. Every check raises ``PredictionsError`` naming the problem, its count and
up to ``EXAMPLES`` examples (line numbers and ids).
"""

from __future__ import annotations

import csv
import errno
import io
import math
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.limits.hints import found_files_hint, with_hint
from harness.scoring.spec import PredictionsSpec
from harness.util.sizes import format_size

EXAMPLES = 5
SUM_TOLERANCE = 1e-3
# Distinct unknown ids remembered (beyond the expected count) to tell their repeats as duplicates.
UNKNOWN_IDS_TRACKED = 10_000


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
    data = _read(Path(path), spec)
    _check_utf8(data, spec)
    by_id = _scan_rows(_csv_rows(data, spec), expected, spec)
    positions = by_id.positions
    ordered = [by_id.rows[i] for i in expected]
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


def _check_utf8(data: bytes, spec: PredictionsSpec) -> None:
    if not data.strip():
        raise PredictionsError(f"{spec.file} is empty; expected the header {','.join(spec.columns)} and one row per test id")
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PredictionsError(
            f"{spec.file} is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}); write it as UTF-8 text"
        ) from None


Row = tuple[int, list[str]]  # (line number, fields)


def _csv_rows(data: bytes, spec: PredictionsSpec) -> Iterator[Row]:
    """The file's non-blank CSV rows with their line numbers, parsed as a stream: no row outlives its
    turn unless the caller keeps it."""
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline=""))
    try:
        for fields in reader:
            if fields:  # blank lines are ignored
                yield reader.line_num, fields
    except csv.Error as exc:
        raise PredictionsError(f"{spec.file} is not valid CSV at line {reader.line_num}: {exc}") from None


@dataclass
class _Found:
    """How many of something, and the first ``EXAMPLES`` of them."""

    count: int = 0
    examples: list = field(default_factory=list)

    def add(self, example: object) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)

    def shown(self) -> str:
        return ", ".join(map(str, self.examples)) + _more(self.count)


@dataclass
class _Rows:
    """The rows kept of a predictions file: one per expected id, and where each column is."""

    positions: dict[str, int]
    rows: dict[str, tuple[int, str, list[str]]]


def _scan_rows(rows: Iterator[Row], expected: list[str], spec: PredictionsSpec) -> _Rows:
    """Check the header, every row's width and every id in one pass, keeping only the rows of
    expected ids: what a file holds beyond them (millions of rows under the size cap) is counted and
    given as examples, never kept. Unknown ids are told apart for duplicates up to a bound, past
    which a repeated unknown id counts as unknown again."""
    first = next(rows, None)
    if first is None:
        raise PredictionsError(f"{spec.file} is empty; expected the header {','.join(spec.columns)}")
    header = [h.strip() for h in first[1]]
    positions = _check_header(header, spec)
    width, column = len(header), positions[spec.id_column]
    wanted = set(expected)
    unknown_bound = len(expected) + UNKNOWN_IDS_TRACKED
    kept: dict[str, tuple[int, str, list[str]]] = {}
    unknown_lines: dict[str, int] = {}
    total, wrong_width, empty, duplicate, unknown = 0, _Found(), _Found(), _Found(), _Found()
    for line, fields in rows:
        total += 1
        if len(fields) != width:
            wrong_width.add(f"line {line} has {len(fields)}")
            continue
        if wrong_width.count:
            continue  # the widths are the error now; ids are not looked at
        id_ = fields[column].strip()
        if not id_:
            empty.add(line)
        elif empty.count:
            continue
        elif id_ in wanted:
            if id_ in kept:
                duplicate.add(f"{id_} (lines {kept[id_][0]} and {line})")
            else:
                kept[id_] = (line, id_, fields)
        elif id_ in unknown_lines:
            duplicate.add(f"{id_} (lines {unknown_lines[id_]} and {line})")
        else:
            if len(unknown_lines) < unknown_bound:
                unknown_lines[id_] = line
            unknown.add(f"{id_} (line {line})")
    if wrong_width.count:
        raise PredictionsError(
            f"{spec.file}: {_count(wrong_width.count, 'row')} the wrong number of fields (expected {width}, as in the header): "
            + wrong_width.shown()
        )
    if empty.count:
        raise PredictionsError(
            f"{spec.file}: {_count(empty.count, 'row')} an empty {spec.id_column}: line{'s' * (empty.count > 1)} {empty.shown()}"
        )
    missing = _Found()
    for id_ in expected:
        if id_ not in kept:
            missing.add(id_)
    if not (missing.count or unknown.count or duplicate.count):
        return _Rows(positions, kept)
    parts = []
    for found, what in ((missing, "missing"), (duplicate, "duplicate"), (unknown, "unknown")):
        if found.count:
            parts.append(f"{found.count} {what} {spec.id_column}{'s' * (found.count > 1)}: {found.shown()}")
    head = f"{spec.file} has {total} row{'s' * (total != 1)}, expected {len(expected)} (one per test id)"
    if total == len(expected):
        head = f"{spec.file} has the right number of rows ({total}) but not the test ids"
    raise PredictionsError(f"{head}; {'; '.join(parts)}")


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


def _count(items: Sequence[object] | int, noun: str, plural: str | None = None) -> str:
    """ "1 row has" / "3 rows have", "1 label is" / "2 labels are" (of a sequence, or of a number)."""
    n = items if isinstance(items, int) else len(items)
    word = noun if n == 1 else (plural or f"{noun}s")
    verb = ("has" if n == 1 else "have") if noun == "row" else ("is" if n == 1 else "are")
    return f"{n} {word} {verb}"


def _more(items: Sequence[object] | int) -> str:
    n = items if isinstance(items, int) else len(items)
    return f" (and {n - EXAMPLES} more)" if n > EXAMPLES else ""


def _cell_examples(cells: list[Cell], spec: PredictionsSpec) -> str:
    shown = ", ".join(f"line {line} ({spec.id_column} {id_}): {value!r}" for line, id_, value in cells[:EXAMPLES])
    return shown + _more(cells)
