"""The built-in data builders for an organizer's own files, selected in the competition file with no code
(reading the tables: sources.py; choosing the test rows: split.py).

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

import csv
import hashlib
import json
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.competition.builders.keyed import building, is_prepared, keyed_order, public_ids, read_marker, the_secret, unique_ids
from harness.competition.builders.sources import (
    SHOWN_COLUMNS,
    SourceError,
    Table,
    examples,
    finite,
    names,
    natural,
    read_table,
    shown,
)
from harness.competition.builders.split import Item, split

FILES_DIR = "files"  # data/<part>/files/<id><suffix>: the items' files
MAX_INTEGER_CLASSES = 20  # a target of whole numbers with at most this many values is read as classes


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
    rule = split(options, items, features, secret)
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
            raise SourceError(f"{table.name} has no column {column!r} (competition.{key}); its columns: {names(header)}")
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
            part for part in (missing and f"lacks {names(missing)}", extra and f"has {names(extra)} that {train.name} has not") if part
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
        raise SourceError(f"{len(empty)} row(s) have no {column} (the id column): {examples(empty)}")
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
            f"{len(empty)} row(s) have no {target} (the target): {examples(empty)}; every row, test rows too, needs its label"
        )
    values = {item.values[target] for item in items}
    if len(values) < 2:
        raise SourceError(f"the target {target!r} has one value on every row ({next(iter(values))!r}): there is nothing to predict")
    if options.kind == "value":
        bad = [(item.where, item.values[target]) for item in items if not finite(item.values[target])]
        if bad:
            raise SourceError(
                f"competition.predictions.kind is value but {len(bad)} {target} value(s) are not numbers: "
                f"{examples(f'{w} {v!r}' for w, v in bad)}"
            )
    elif options.classes:
        bad = [(item.where, item.values[target]) for item in items if item.values[target] not in options.classes]
        if bad:
            raise SourceError(
                f"{len(bad)} {target} value(s) are not among competition.predictions.classes ({', '.join(options.classes)}): "
                f"{examples(f'{w} {v!r}' for w, v in bad)}"
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
    return finite(a) and finite(b) and float(a) == float(b)


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
    classes = sorted({item.values[o.target] for item in plan.items}, key=natural) if not o.classes else list(o.classes)
    if o.kind == "value":
        task = f"Predict `{o.target}`, a number, for every row of the test table."
        cell = "a number"
    else:
        task = f"Predict `{o.target}`, one of {len(classes)} classes ({shown(classes)}), for every row of the test table."
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
    distinct = sorted({v for v in values if v}, key=natural)
    if len(distinct) < 2:
        raise SourceError(f"the target has {len(distinct)} distinct value(s): there is nothing to predict")
    if all(finite(v) for v in distinct):
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
