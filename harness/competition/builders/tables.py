"""The built-in data builders for an organizer's own files, selected in the competition file with no code.

``prepare: tables`` reads a labelled table (CSV or Parquet; ``source.table``), one row per item,
and optionally a labelled test table with the same columns (``source.test_table``).
``prepare: files`` reads a folder of per-item files (``source.folder``: images, audio, text,
anything) and a table that maps each file (``source.file_column``) to its label. The target is
``predictions.target_column``; the split follows ``split.group_column`` or ``split.time_column``.

What they write, under the competition's directory (the layout of ``harness.competition.paths``)::

    data/train/{train.csv, DESCRIPTION.md, files/<id><suffix>}   train.csv: id, the features, the target last
    data/test/{test.csv, DESCRIPTION.md, files/<id><suffix>}     test.csv: id and the features, never the target
    hidden/labels.csv     id,<target>,split (public or private), in the test table's order
    hidden/sources.csv    where each id comes from: part, table, row (and the organizer's id and file)
    hidden/secret         the competition's key (keyed.py)
    .prepared             the marker, with the recipe (a hash of the options) the data was built from

Every id is opaque (an HMAC of the row's own id or place, keyed by the secret), the rows are in a
keyed order, the files are copied under the ids' names, the public/private assignment is keyed,
and the organizer's own id column and ``source.drop_columns`` are never published; the table's
other columns are the features (the group and time columns among them). Without a test table, the
test rows are carved out: whole groups of the group column, the latest rows by the time column, or
rows keyed at random; rows that repeat each other (the same features, or the same file) stay
together. Data that would leak is refused, one line each (``SourceError``): a column that repeats
the target, rows or files repeated across the split, a group on both sides, test rows not after the
training rows, an id in both tables. Given the same secret and the same files, the same bytes.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import json
import math
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.competition.builders.keyed import building, is_prepared, keyed, keyed_order, public_ids, read_marker, the_secret, unique_ids
from harness.util.errors import HarnessError

FILES_DIR = "files"  # data/<part>/files/<id><suffix>: the items' files
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")
MAX_INTEGER_CLASSES = 20  # a target of whole numbers with at most this many values is read as classes
EXAMPLES = 3
SHOWN_COLUMNS = 20


class SourceError(HarnessError):
    """The organizer's files cannot make a competition as they are; the message says what to change."""


# --- reading ------------------------------------------------------------------------------------


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


# --- options ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """The checked options of one build: the competition file's ``source`` with the keys of the
    competition it shares (the target, the split columns, the published names)."""

    builder: str  # tables or files
    name: str
    title: str
    target: str  # predictions.target_column: the source column, published under its own name
    id_out: str  # predictions.id_column: the published (opaque) id column
    kind: str
    classes: tuple[str, ...]
    group: str | None
    time: str | None
    public_fraction: float
    train_name: str  # data.train_table
    test_name: str  # data.test_table
    table: str | None
    test_table: str | None
    folder: str | None
    file_column: str | None
    id_column: str | None
    drop: tuple[str, ...]
    test_fraction: float

    @classmethod
    def of(cls, competition: Mapping[str, Any], builder: str, public_fraction: float | None = None) -> Options:
        from omegaconf import OmegaConf

        from harness.competition.schema import SourceConfig

        source = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(SourceConfig), competition.get("source") or {}))
        predictions = competition.get("predictions") or {}
        split = competition.get("split") or {}
        data = competition.get("data") or {}
        options = cls(
            builder=builder,
            name=str(competition.get("name")),
            title=str(competition.get("title") or competition.get("name")),
            target=str(predictions.get("target_column", "label")),
            id_out=str(predictions.get("id_column", "id")),
            kind=str(predictions.get("kind", "label")),
            classes=tuple(str(c) for c in predictions.get("classes") or ()),
            group=split.get("group_column"),
            time=split.get("time_column"),
            public_fraction=float(public_fraction if public_fraction is not None else split.get("public_fraction", 0.5)),
            train_name=str(data.get("train_table", "train.csv")),
            test_name=str(data.get("test_table", "test.csv")),
            table=source["table"],  # type: ignore[index]
            test_table=source["test_table"],  # type: ignore[index]
            folder=source["folder"],  # type: ignore[index]
            file_column=source["file_column"],  # type: ignore[index]
            id_column=source["id_column"],  # type: ignore[index]
            drop=tuple(source["drop_columns"]),  # type: ignore[index]
            test_fraction=float(source["test_fraction"]),  # type: ignore[index]
        )
        options.check()
        return options

    def check(self) -> None:
        where = "competition.source"
        if self.builder == "files":
            if not self.folder:
                raise SourceError(f"{where}.folder: the files builder needs the folder of per-item files")
            if not self.file_column:
                raise SourceError(f"{where}.file_column: the files builder needs the column that names each row's file")
        elif self.folder or self.file_column:
            raise SourceError(f"{where}.folder and file_column are for `prepare: files`; this competition's builder is {self.builder}")
        if not self.table:
            raise SourceError(f"{where}.table: give the labelled table (CSV or Parquet)")
        if self.group and self.time and not self.test_table:
            raise SourceError("competition.split: carve the test rows by group_column or by time_column, not both")
        if self.kind == "probabilities" and not self.classes:
            raise SourceError("competition.predictions.classes: kind probabilities needs its classes")

    @property
    def recipe(self) -> str:
        """What the data is a function of, besides the secret and the files' content: a hash of the options."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    @property
    def carve(self) -> str:
        """How the test rows are chosen: given (a test table), group, time or random."""
        return "given" if self.test_table else "group" if self.group else "time" if self.time else "random"


# --- planning -----------------------------------------------------------------------------------


@dataclass
class Item:
    """One row of the organizer's tables, on its way to being published."""

    part: str | None  # "train" or "test" when a test table gives the split; None: to be carved
    key: str  # what its opaque id is a keyed hash of: the organizer's id, or its table and row
    where: str  # how messages name it: "houses.csv line 4"
    table: str
    row: int
    values: dict[str, str]
    file: Path | None = None
    suffix: str = ""
    digest: str | None = None
    id: str = ""


@dataclass
class Plan:
    """What a build writes: each item with its id and part, the published columns, the public ids."""

    options: Options
    items: list[Item]
    features: list[str]  # published between the id and the target, in the source's order
    public: set[str]
    rule: str  # how the test rows were chosen: given, group, time or random
    rank: dict[str, int]  # each id's place in the keyed order the tables are written in

    def part(self, name: str) -> list[Item]:
        """The items of ``name`` (train or test) in the keyed order."""
        return sorted((item for item in self.items if item.part == name), key=lambda item: self.rank[item.id])


def plan(options: Options, tables: Sequence[Table], secret: bytes, folder: Path | None = None) -> Plan:
    """Check the organizer's tables (the labelled one, then the test table if given) and decide
    every id, part and board; ``SourceError`` for anything that would make a broken or leaky competition."""
    first = tables[0]
    _columns(options, first)
    if len(tables) > 1:
        _same_columns(first, tables[1])
        _columns(options, tables[1])
    skip = {options.id_column, options.target, options.file_column, *options.drop} - {None}
    features = [c for c in first.header if c not in skip]
    if options.id_out in features:
        raise SourceError(
            f"{first.name}: its column {options.id_out!r} would clash with the opaque ids the harness writes under that name: "
            f"declare it the id column (source.id_column: {options.id_out}) or leave it out (source.drop_columns)"
        )
    if options.target == options.id_out:
        raise SourceError(f"competition.predictions.target_column: the target may not be named like the id column {options.id_out!r}")
    items = _items(options, tables)
    _check_ids(options, items)
    _check_target(options, items)
    _check_copies(options, items, features)
    if folder is not None:
        _files(options, items, folder)
    ids = unique_ids(secret, (item.key for item in items))
    for item in items:
        item.id = ids[item.key]
    rule = _split(options, items, features, secret)
    train = sum(item.part == "train" for item in items)
    if train < 2:
        raise SourceError(f"the split leaves {train} training row(s); a competition needs at least 2")
    test_ids = [item.id for item in items if item.part == "test"]
    if not test_ids:
        raise SourceError("the split leaves no test rows")
    rank = {i: n for n, i in enumerate(keyed_order(secret, (item.id for item in items)))}
    return Plan(options, items, features, public_ids(secret, test_ids, options.public_fraction), rule, rank)


def _columns(options: Options, table: Table) -> None:
    header = table.header
    named = [
        ("predictions.target_column", options.target),
        ("source.id_column", options.id_column),
        ("split.group_column", options.group),
        ("split.time_column", options.time),
        ("source.file_column", options.file_column),
        *((f"source.drop_columns ({c})", c) for c in options.drop),
    ]
    for key, column in named:
        if column is not None and column not in header:
            raise SourceError(f"{table.name} has no column {column!r} (competition.{key}); its columns: {_names(header)}")
    roles = [(k, c) for k, c in named[:5] if c is not None]
    for n, (key, column) in enumerate(roles):
        for other, same in roles[n + 1 :]:
            if column == same:
                raise SourceError(f"column {column!r} is both competition.{key} and competition.{other}: give each its own column")
    for key, column in roles:
        if column in options.drop:
            raise SourceError(f"column {column!r} is competition.{key} and in source.drop_columns: it cannot be both")


def _same_columns(train: Table, test: Table) -> None:
    missing = [c for c in train.header if c not in test.header]
    extra = [c for c in test.header if c not in train.header]
    if missing or extra:
        says = "; ".join(
            part for part in (missing and f"lacks {_names(missing)}", extra and f"has {_names(extra)} that {train.name} has not") if part
        )
        raise SourceError(f"the test table {test.name} {says}: both tables need the same columns (the test one with its labels)")


def _items(options: Options, tables: Sequence[Table]) -> list[Item]:
    items = []
    given = len(tables) > 1
    for n, table in enumerate(tables):
        part = ("train", "test")[n] if given else None
        for i, cells in enumerate(table.rows):
            values = dict(zip(table.header, cells, strict=True))
            key = f"{options.id_column}:{values[options.id_column]}" if options.id_column else f"{part or 'row'}:{i + 1}"
            items.append(Item(part, key, table.where(i), table.name, i + 1, values))
    return items


def _check_ids(options: Options, items: list[Item]) -> None:
    if not options.id_column:
        return
    column = options.id_column
    empty = [item.where for item in items if not item.values[column]]
    if empty:
        raise SourceError(f"{len(empty)} row(s) have no {column} (the id column): {_examples(empty)}")
    seen: dict[str, Item] = {}
    for item in items:
        other = seen.setdefault(item.values[column], item)
        if other is not item:
            value = item.values[column]
            if other.part != item.part:
                raise SourceError(
                    f"{column} {value!r} is in both tables ({other.where}, {item.where}): an id belongs to train or test, not both"
                )
            raise SourceError(f"{column} {value!r} is on two rows ({other.where}, {item.where}): the id column must be unique")


def _check_target(options: Options, items: list[Item]) -> None:
    target = options.target
    empty = [item.where for item in items if not item.values[target]]
    if empty:
        raise SourceError(
            f"{len(empty)} row(s) have no {target} (the target): {_examples(empty)}; every row, test rows too, needs its label"
        )
    values = {item.values[target] for item in items}
    if len(values) < 2:
        raise SourceError(f"the target {target!r} has one value on every row ({next(iter(values))!r}): there is nothing to predict")
    if options.kind == "value":
        bad = [(item.where, item.values[target]) for item in items if not _finite(item.values[target])]
        if bad:
            raise SourceError(
                f"competition.predictions.kind is value but {len(bad)} {target} value(s) are not numbers: "
                f"{_examples(f'{w} {v!r}' for w, v in bad)}"
            )
    elif options.classes:
        bad = [(item.where, item.values[target]) for item in items if item.values[target] not in options.classes]
        if bad:
            raise SourceError(
                f"{len(bad)} {target} value(s) are not among competition.predictions.classes ({', '.join(options.classes)}): "
                f"{_examples(f'{w} {v!r}' for w, v in bad)}"
            )


def _check_copies(options: Options, items: list[Item], features: list[str]) -> None:
    """A published column that repeats the target on every row hands the test answers out."""
    target = options.target
    for column in features:
        if all(_same(item.values[column], item.values[target]) for item in items):
            raise SourceError(
                f"column {column!r} repeats the target {target!r} on every row: it would give the test answers away; "
                f"leave it out (source.drop_columns: [{column}])"
            )


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    return _finite(a) and _finite(b) and float(a) == float(b)


def _files(options: Options, items: list[Item], folder: Path) -> None:
    column = options.file_column
    assert column is not None
    base = folder.resolve()
    used: dict[Path, Item] = {}
    for item in items:
        name = item.values[column]
        if not name:
            raise SourceError(f"{item.where}: no file in {column}")
        relative = Path(name)
        path = (base / relative).resolve()
        if relative.is_absolute() or not path.is_relative_to(base):
            raise SourceError(f"{item.where}: {column} {name!r} is outside the folder {folder}; name files relative to it")
        if not path.is_file():
            raise SourceError(f"{item.where}: {column} {name!r} is not a file in {folder}")
        other = used.setdefault(path, item)
        if other is not item:
            raise SourceError(f"{other.where} and {item.where} name the same file {name!r}: each row needs its own file")
        item.file = path
        suffix = relative.suffix.lower()
        item.suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else ""
        item.digest = _sha256(path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- the split ----------------------------------------------------------------------------------


class _Components:
    """Union-find over the items: the ones that must fall on one side together."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, indices: list[int]) -> None:
        for i in indices[1:]:
            a, b = self.find(indices[0]), self.find(i)
            if a != b:
                self.parent[max(a, b)] = min(a, b)

    def groups(self) -> list[list[int]]:
        found: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            found.setdefault(self.find(i), []).append(i)
        return list(found.values())


def _copies(items: list[Item], features: list[str]) -> list[list[int]]:
    """Items that repeat each other as `harness data check` sees them: the same file, or (without
    files) the same values in every published column but the id and the target."""
    by: dict[object, list[int]] = {}
    for i, item in enumerate(items):
        if item.digest is not None:
            by.setdefault(("file", item.digest), []).append(i)
        elif features:
            by.setdefault(("row", tuple(item.values[c] for c in features)), []).append(i)
    return [indices for indices in by.values() if len(indices) > 1]


def _split(options: Options, items: list[Item], features: list[str], secret: bytes) -> str:
    copies = _copies(items, features)
    carve = options.carve
    if carve == "given":
        _check_given(options, items, copies)
        return "given"
    n = len(items)
    want = max(1, min(n - 1, round(n * options.test_fraction)))
    if carve == "time":
        _carve_by_time(options, items, want)
        _no_straddling(items, copies, f"the cut by {options.time}")
        return "time"
    components = _Components(n)
    for indices in copies:
        components.join(indices)
    if carve == "group":
        groups: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(item.values[options.group], []).append(i)  # type: ignore[index]
        if len(groups) < 2:
            raise SourceError(f"the group column {options.group!r} has one value: test needs whole groups of their own")
        for indices in groups.values():
            components.join(indices)
    units = components.groups()
    if len(units) < 2:
        why = f"groups of {options.group!r}" if carve == "group" else "rows"
        raise SourceError(f"the rows cannot be split: their {why} all repeat each other, so they must stay on one side")
    units.sort(key=lambda unit: keyed(secret, "carve", min(items[i].id for i in unit)))
    taken: list[list[int]] = []
    count = 0
    for unit in units:
        if abs(count + len(unit) - want) < abs(count - want) and count + len(unit) < n:
            taken.append(unit)
            count += len(unit)
    if not taken:
        taken = [min(units, key=len)]
    test = {i for unit in taken for i in unit}
    for i, item in enumerate(items):
        item.part = "test" if i in test else "train"
    return carve


def _carve_by_time(options: Options, items: list[Item], want: int) -> None:
    column = options.time
    assert column is not None
    moments = [_moment(item, column) for item in items]
    distinct = sorted(set(moments))
    if len(distinct) < 2:
        raise SourceError(f"the time column {column!r} has one value: test needs rows after the training rows")
    ordered = sorted(moments)
    best = min(distinct[1:], key=lambda t: (abs(len(ordered) - bisect.bisect_left(ordered, t) - want), -t))
    for item, moment in zip(items, moments, strict=True):
        item.part = "test" if moment >= best else "train"


def _moment(item: Item, column: str) -> float:
    value = item.values[column]
    moment = parse_moment(value)
    if moment is None:
        raise SourceError(f"{item.where}: {column} {value!r} is neither a number nor an ISO date (2024-03, 2024-03-01, 2024-03-01T12:00)")
    return moment


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


def _check_given(options: Options, items: list[Item], copies: list[list[int]]) -> None:
    _no_straddling(items, copies, "the two tables")
    if options.group:
        train_groups = {item.values[options.group] for item in items if item.part == "train"}
        shared = [item for item in items if item.part == "test" and item.values[options.group] in train_groups]
        if shared:
            values = sorted({item.values[options.group] for item in shared})
            raise SourceError(
                f"{len(values)} {options.group} value(s) are in both tables ({_examples(values)}; e.g. {shared[0].where}): "
                f"split.group_column says a group is in train or in test, not both"
            )
    if options.time:
        last = max(_moment(item, options.time) for item in items if item.part == "train")
        early = [item for item in items if item.part == "test" and _moment(item, options.time) <= last]
        if early:
            raise SourceError(
                f"{len(early)} test row(s) are not after the last training row by {options.time} ({_examples(i.where for i in early)}): "
                f"split.time_column says every test row comes after the training rows"
            )


def _no_straddling(items: list[Item], copies: list[list[int]], what: str) -> None:
    pairs = []
    for indices in copies:
        parts = {items[i].part for i in indices}
        if len(parts) > 1:
            train = next(items[i] for i in indices if items[i].part == "train")
            test = next(items[i] for i in indices if items[i].part == "test")
            pairs.append(f"{test.where} = {train.where}")
    if pairs:
        raise SourceError(
            f"{len(pairs)} test row(s) repeat a training row across {what} ({_examples(pairs)}): "
            "the test answers would be in the training data; remove the copies"
        )


# --- writing ------------------------------------------------------------------------------------


def write(plan: Plan, tmp: Path) -> None:
    """The plan's data and hidden files under ``tmp`` (``keyed.building``'s directory)."""
    options = plan.options
    description = describe(plan)
    for part, name in (("train", options.train_name), ("test", options.test_name)):
        directory = tmp / "data" / part
        directory.mkdir(parents=True)
        items = plan.part(part)
        header = [options.id_out, *plan.features, *([options.target] if part == "train" else [])]
        rows = [[item.id, *(item.values[c] for c in header[1:])] for item in items]
        _write_csv(directory / name, header, rows)
        (directory / "DESCRIPTION.md").write_text(description, encoding="utf-8")
        if options.builder == "files":
            (directory / FILES_DIR).mkdir()
            for item in items:
                shutil.copyfile(item.file, directory / FILES_DIR / f"{item.id}{item.suffix}")  # type: ignore[arg-type]
    test = plan.part("test")
    labels = [[item.id, item.values[options.target], "public" if item.id in plan.public else "private"] for item in test]
    _write_csv(tmp / "hidden" / "labels.csv", [options.id_out, options.target, "split"], labels)
    extra = [c for c in (options.id_column, options.file_column) if c]
    sources = [[item.id, item.part, item.table, str(item.row), *(item.values[c] for c in extra)] for item in plan.items]
    sources.sort(key=lambda row: (row[1] != "train", row[2], int(row[3])))
    _write_csv(tmp / "hidden" / "sources.csv", [options.id_out, "part", "table", "row", *extra], sources)


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def describe(plan: Plan) -> str:
    """DESCRIPTION.md, in both data directories: the task, the columns, the split, what to hand in."""
    o = plan.options
    classes = sorted({item.values[o.target] for item in plan.items}, key=_natural) if not o.classes else list(o.classes)
    if o.kind == "value":
        task = f"Predict `{o.target}`, a number, for every row of the test table."
        cell = "a number"
    else:
        task = f"Predict `{o.target}`, one of {len(classes)} classes ({_shown(classes)}), for every row of the test table."
        cell = "one of the classes"
    columns = ", ".join(f"`{c}`" for c in plan.features[:SHOWN_COLUMNS])
    if len(plan.features) > SHOWN_COLUMNS:
        columns += f" and {len(plan.features) - SHOWN_COLUMNS} more"
    columns = f"`{o.id_out}`, {columns}, " if plan.features else f"`{o.id_out}`, "
    train, test = len(plan.part("train")), len(plan.part("test"))
    files = ""
    if o.builder == "files":
        suffixes = sorted({item.suffix for item in plan.items if item.suffix})
        kinds = f" ({', '.join(suffixes)})" if suffixes else ""
        files = (
            f"- `/data/train/{FILES_DIR}/<id><suffix>`: each training row's file{kinds}, named by its id.\n"
            f"- `/data/test/{FILES_DIR}/<id><suffix>`: each test row's file, the same way.\n"
        )
    rule = {
        "given": "The organizer chose the test rows.",
        "group": f"The test rows are whole groups of `{o.group}`: no `{o.group}` value of the test table is in the training table.",
        "time": f"Every test row comes after every training row by `{o.time}`.",
        "random": "The test rows were drawn at random (keyed by the organizer's secret).",
    }[plan.rule]
    if o.kind == "probabilities":
        hand_in = (
            f"write `/output/predictions.csv` with the header `{o.id_out},{','.join(classes)}` and one row for every id of "
            f"`{o.test_name}`, each exactly once: a probability per class, summing to 1."
        )
    else:
        hand_in = (
            f"write `/output/predictions.csv` with the header `{o.id_out},{o.target}` and one row for every id of `{o.test_name}`, "
            f"each exactly once, `{o.target}` being {cell}."
        )
    return f"""\
# {o.title}

{task}

## Data
- `/data/train/{o.train_name}`: columns {columns}`{o.target}` (the target, last); {train} rows.
- `/data/test/{o.test_name}`: the same columns without `{o.target}`; {test} rows. The test targets are never given to your container.
{files}
Ids are opaque strings (12 hex characters) in no particular order. {rule}

## What to hand in
In the `infer` phase {hand_in}

About {round(o.public_fraction * 100)}% of the test ids make up the public leaderboard, the others the private one; which
ids are which is not disclosed.
"""


# --- the builders -------------------------------------------------------------------------------


def build(root: Path, options: Options, tables: Sequence[Table], folder: Path | None = None, secret: bytes | None = None) -> Plan:
    """Plan and write the competition under ``root``; the plan it wrote."""
    root = Path(root)
    secret = the_secret(root, secret)
    result = plan(options, tables, secret, folder)
    with building(root, secret, {"competition": options.name, "builder": options.builder, "recipe": options.recipe}) as tmp:
        write(result, tmp)
    return result


def up_to_date(root: Path, options: Options) -> bool:
    """True when the data is built from these options; a SourceError when it was built from others."""
    if not is_prepared(root):
        return False
    recipe = read_marker(root).get("recipe")
    if recipe is not None and recipe != options.recipe:
        raise SourceError(
            f"the data of {options.name} under {root} was built from other settings (competition.source, the target, the split or "
            f"the published names changed since): build it again with `harness data prepare {options.name} --rebuild`"
        )
    return True


def _source_tables(options: Options) -> tuple[list[Table], Path | None]:
    tables = [read_table(options.table, "source.table")]  # type: ignore[arg-type]
    if options.test_table:
        tables.append(read_table(options.test_table, "source.test_table"))
    folder = None
    if options.builder == "files":
        folder = Path(options.folder).expanduser()  # type: ignore[arg-type]
        if not folder.is_dir():
            raise SourceError(f"source.folder {folder}: no such folder")
    return tables, folder


def _prepare(builder: str) -> Callable[..., None]:
    def prepare(
        root: Path, public_fraction: float = 0.5, competition: Mapping[str, Any] | None = None, secret: bytes | None = None
    ) -> None:
        if competition is None:
            raise SourceError(f"the {builder} builder reads its options from the competition file (competition.source)")
        options = Options.of(competition, builder, public_fraction)
        if up_to_date(root, options):
            return
        tables, folder = _source_tables(options)
        build(root, options, tables, folder, secret)

    prepare.__name__ = prepare.__qualname__ = f"prepare_{builder}"
    prepare.__doc__ = f"The `{builder}` data builder (``prepare: {builder}``): see the module's description."
    return prepare


prepare_tables = _prepare("tables")
prepare_files = _prepare("files")


# --- the task a target asks for -------------------------------------------------------------------


def infer_task(values: Sequence[str]) -> tuple[str, tuple[str, ...], str]:
    """(kind, classes, why) for a target's values: numbers are a ``value`` to predict, unless they
    are a few whole numbers (at most 20 distinct), which are classes, as text is."""
    distinct = sorted({v for v in values if v}, key=_natural)
    if len(distinct) < 2:
        raise SourceError(f"the target has {len(distinct)} distinct value(s): there is nothing to predict")
    if all(_finite(v) for v in distinct):
        whole = all(float(v).is_integer() for v in distinct)
        if not (whole and len(distinct) <= MAX_INTEGER_CLASSES):
            return "value", (), f"{len(values)} numbers, {len(distinct)} distinct: a number to predict"
        return "label", tuple(distinct), f"{len(distinct)} whole numbers, {MAX_INTEGER_CLASSES} at most: classes"
    if len(distinct) == len(values) and len(values) >= 10:
        raise SourceError(
            f"the target's {len(values)} values are all different and not numbers: it looks like a name or an id, not classes "
            "(give --kind label if they are classes)"
        )
    return "label", tuple(distinct), f"{len(distinct)} distinct strings: classes"


def _finite(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _natural(value: str) -> tuple[int, float, str]:
    return (0, float(value), value) if _finite(value) else (1, 0.0, value)


def _names(columns: Sequence[str]) -> str:
    shown = ", ".join(columns[:SHOWN_COLUMNS])
    return shown + (f" and {len(columns) - SHOWN_COLUMNS} more" if len(columns) > SHOWN_COLUMNS else "")


def _shown(values: Sequence[str], most: int = 10) -> str:
    return ", ".join(values[:most]) + (f" and {len(values) - most} more" if len(values) > most else "")


def _examples(values: Any) -> str:
    values = list(values)
    return ", ".join(values[:EXAMPLES]) + (f" and {len(values) - EXAMPLES} more" if len(values) > EXAMPLES else "")
