"""The organizer's data checks: leaks between train and test, and splits that do not match the config.

- duplicate inputs: a test input file (any file below a subdirectory of ``data/test``) with the
  same SHA-256 as a train input file, and test rows whose feature values equal a train row's (and,
  where rows have files of their own, ``<subdirectory>/<id>.<suffix>``, whose files do too);
- shared ids: an id in both tables;
- label-free test: the test table carries the target column, or test ids and hidden labels differ;
- group split / time split (when ``split.group_column`` / ``split.time_column`` is declared): group
  values in both train and test, or test rows not after the last train row, i.e. a random split;
- sequential ids (a warning): the ids are a run of numbers (``0..n``, ``img_0001..``) or the
  rows of both tables are in id order, so an id may tell a row's place in a public source;
- public split rule (a warning): the hidden public/private assignment can be recomputed from
  public information: a plain (unkeyed) hash of the id, the id's parity or last digits, or the
  first or last test rows or ids.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.competition.builders.sources import parse_moment
from harness.competition.core import Competition
from harness.util.errors import HarnessError

OK, WARNING, ERROR = "ok", "warning", "error"
EXAMPLES = 5


@dataclass(frozen=True)
class Finding:
    check: str
    level: str
    message: str


@dataclass(frozen=True)
class Table:
    name: str
    id_column: str
    header: list[str]
    rows: list[dict[str, str]]

    def column(self, name: str) -> list[str]:
        return [row[name] for row in self.rows]


def check_data(competition: Competition) -> list[Finding]:
    settings = competition.settings.competition
    rules, id_column, target = settings.rules, settings.predictions.id_column, settings.predictions.target_column
    train = _read(competition.paths.train / rules.train_table, id_column)
    test = _read(competition.paths.test / rules.test_table, id_column)
    train_files, test_files = _files(competition.paths.train), _files(competition.paths.test)
    findings = [
        _duplicate_files(train_files, test_files),
        _duplicate_rows(train, test, {id_column, target}, _per_id(train, train_files), _per_id(test, test_files)),
        _shared_ids(train, test),
        _label_free(test, target, competition.test_ids),
        _sequential_ids(train, test),
        _public_split(test, competition.labels[2], competition.name),
    ]
    if rules.group_column:
        findings.append(_group_split(train, test, rules.group_column))
    if rules.time_column:
        findings.append(_time_split(train, test, rules.time_column))
    return findings


def _read(path: Path, id_column: str) -> Table:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
            header = [h.strip() for h in reader.fieldnames or []]
    except OSError as exc:
        raise HarnessError(f"cannot read {path}: {exc.strerror}") from None
    if id_column not in header:
        raise HarnessError(f"{path.name} has no id column {id_column!r} (header: {','.join(header)})")
    return Table(path.name, id_column, header, rows)


def _files(root: Path) -> dict[str, str]:
    """The files below the subdirectories of ``root`` (the inputs besides the table): relative path -> SHA-256."""
    paths = sorted(p for d in root.iterdir() if d.is_dir() for p in d.rglob("*") if p.is_file())
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}


def _per_id(table: Table, files: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """Each row's own files (a file whose name without its suffix is the row's id), as their SHA-256s."""
    ids = set(table.column(table.id_column))
    found: dict[str, list[str]] = {}
    for path, digest in files.items():
        stem = Path(path).stem
        if stem in ids:
            found.setdefault(stem, []).append(digest)
    return {i: tuple(sorted(digests)) for i, digests in found.items()}


def _duplicate_files(train_files: dict[str, str], test_files: dict[str, str]) -> Finding:
    train: dict[str, str] = {}
    for path, digest in train_files.items():
        train.setdefault(digest, path)
    test: dict[str, str] = {}
    for path, digest in test_files.items():
        test.setdefault(digest, path)
    pairs = [(path, train[digest]) for digest, path in test.items() if digest in train]
    if not pairs:
        return Finding(
            "duplicate inputs", OK, f"no test input file has the content of a train input file ({len(train)} train files hashed)"
        )
    examples = ", ".join(f"test/{t} = train/{a}" for t, a in sorted(pairs)[:EXAMPLES])
    return Finding("duplicate inputs", ERROR, f"{len(pairs)} test input file(s) have the same content as a train input file: {examples}")


def _duplicate_rows(
    train: Table, test: Table, skip: set[str], train_files: dict[str, tuple[str, ...]], test_files: dict[str, tuple[str, ...]]
) -> Finding:
    """A test row whose inputs equal a train row's: the feature values, and the row's own files where it has some
    (two images with the same metadata are two inputs, not one)."""
    features = [c for c in test.header if c in train.header and c not in skip]
    if not features:
        return Finding("duplicate rows", OK, "the tables share no feature column (inputs are compared as files)")

    def inputs(table: Table, row: dict[str, str], files: dict[str, tuple[str, ...]]) -> tuple:
        return (tuple(row[c] for c in features), files.get(row[table.id_column], ()))

    seen = {inputs(train, row, train_files): row for row in train.rows}
    dups = [(row[test.id_column], seen[key][train.id_column]) for row in test.rows if (key := inputs(test, row, test_files)) in seen]
    if not dups:
        with_files = " and each row's own files" if train_files or test_files else ""
        return Finding("duplicate rows", OK, f"no test row repeats a train row (columns {', '.join(features)}{with_files})")
    examples = ", ".join(f"test {t} = train {a}" for t, a in dups[:EXAMPLES])
    return Finding("duplicate rows", ERROR, f"{len(dups)} test row(s) repeat a train row on {', '.join(features)}: {examples}")


def _shared_ids(train: Table, test: Table) -> Finding:
    id_column = test.id_column
    shared = sorted(set(train.column(id_column)) & set(test.column(id_column)), key=_natural)
    if not shared:
        return Finding("shared ids", OK, f"no {id_column} is in both tables")
    return Finding("shared ids", ERROR, f"{len(shared)} {id_column}(s) are in both train and test: {_list(shared)}")


def _label_free(test: Table, target: str, labelled: list[str]) -> Finding:
    if target in test.header:
        return Finding("label-free test", ERROR, f"{test.name} has the target column {target!r}: the test inputs carry their labels")
    ids = test.column(test.id_column)
    unlabelled, orphans = sorted(set(ids) - set(labelled), key=_natural), sorted(set(labelled) - set(ids), key=_natural)
    if unlabelled or orphans:
        return Finding(
            "label-free test",
            ERROR,
            f"{len(unlabelled)} test input(s) have no hidden label ({_list(unlabelled)}) and "
            f"{len(orphans)} hidden label(s) no test input ({_list(orphans)})",
        )
    return Finding("label-free test", OK, f"{test.name} has no target column; its {len(ids)} ids match the hidden labels one to one")


def _group_split(train: Table, test: Table, column: str) -> Finding:
    _require(column, "split.group_column", train, test)
    test_groups = set(test.column(column))
    shared = sorted(set(train.column(column)) & test_groups, key=_natural)
    if not shared:
        return Finding("group split", OK, f"no {column} value is in both train and test ({len(test_groups)} test groups)")
    return Finding(
        "group split",
        WARNING,
        f"{len(shared)} of {len(test_groups)} test {column} value(s) are in train too: the split looks "
        f"random, not grouped by {column} as the config declares ({_list(shared)})",
    )


def _time_split(train: Table, test: Table, column: str) -> Finding:
    _require(column, "split.time_column", train, test)
    last_train = max(_moments(train, column))
    early = sum(1 for moment in _moments(test, column) if moment[0] <= last_train[0])
    if not early:
        return Finding("time split", OK, f"every test row comes after the last train row by {column}")
    return Finding(
        "time split",
        WARNING,
        f"{early} of {len(test.rows)} test rows are not after the last train row ({column} <= "
        f"{last_train[1]}): the split looks random, not by {column} as the config declares",
    )


NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$")
FIX_IDS = "give opaque ids (a keyed hash of the row with an organizer secret) and shuffle the rows"


def _sequential_ids(train: Table, test: Table) -> Finding:
    tables = [t.column(t.id_column) for t in (train, test)]
    ids = [i for table in tables for i in table]
    parts = [NUMBERED.match(i) for i in ids]
    if ids and all(parts) and len({(m.group(1), m.group(3)) for m in parts if m}) == 1:
        numbers = {i: int(m.group(2)) for i, m in zip(ids, parts, strict=True) if m}
        values = sorted(set(numbers.values()))
        if len(values) == len(ids) and values[-1] - values[0] + 1 == len(values):
            return Finding(
                "sequential ids",
                WARNING,
                f"the {len(ids)} ids are the numbers {values[0]} to {values[-1]}, one each: an id may give away its row "
                f"in a public copy of the data (and the labels with it); {FIX_IDS}",
            )
        if all(len(t) > 1 and all(numbers[a] < numbers[b] for a, b in zip(t, t[1:])) for t in tables):
            return Finding(
                "sequential ids",
                WARNING,
                f"the ids are numbers and the rows of {train.name} and {test.name} are in id order: the ids look like "
                f"row numbers of a source that may be public; {FIX_IDS}",
            )
    if all(len(t) > 1 and t == sorted(t) for t in tables):
        return Finding(
            "sequential ids",
            WARNING,
            f"the rows of {train.name} and {test.name} are sorted by id: the order may tell how the ids were made; shuffle the rows",
        )
    return Finding("sequential ids", OK, f"the {len(ids)} ids are not a run of numbers and the rows are not in id order")


CHANCE = 10**6  # report a rule only if a random split matches it with odds below 1 in CHANCE / the rules tried


def _public_split(test: Table, split: dict[str, str], name: str) -> Finding:
    rows = [i for i in test.column(test.id_column) if i in split]
    public = sum(split[i] == "public" for i in rows)
    if math.comb(len(rows), public) < CHANCE:
        return Finding("public split rule", OK, f"{public} public of {len(rows)} test ids: too few to tell a rule from chance")
    for rule, key in _split_rules(rows, name):
        keys = {i: key(i) for i in rows}
        pub = [keys[i] for i in rows if split[i] == "public"]
        priv = [keys[i] for i in rows if split[i] != "public"]
        if max(pub) < min(priv) or max(priv) < min(pub):
            return Finding(
                "public split rule",
                WARNING,
                f"the public/private split of the test ids follows {rule}: anyone can tell which ids count on the public "
                "leaderboard; decide it by a keyed hash of the id with an organizer secret (HMAC) kept with the hidden labels",
            )
    return Finding("public split rule", OK, "the public/private split follows no plain hash, parity or order of the ids")


def _split_rules(ids: list[str], name: str) -> Iterable[tuple[str, Callable[[str], object]]]:
    position = {i: n for n, i in enumerate(ids)}
    rank = {i: n for n, i in enumerate(sorted(ids, key=_natural))}
    yield "the row order of the test table (its first or last rows)", position.__getitem__
    yield "the order of the ids (the first or last ids)", rank.__getitem__
    if all(i.isdigit() for i in ids):
        for m in (2, 10, 100):
            yield f"the id modulo {m}", lambda i, m=m: int(i) % m
    for algorithm in ("sha256", "sha1", "md5"):
        for form in ("{id}", f"{name}:{{id}}", f"{name}-{{id}}", f"{name}{{id}}"):

            def digest(i: str, a: str = algorithm, f: str = form) -> bytes:
                return hashlib.new(a, f.format(id=i).encode()).digest()

            shown = f"{algorithm}({form!r})"
            yield f"an unkeyed hash, {shown}", lambda i, d=digest: int.from_bytes(d(i)[:8], "big")
            yield f"an unkeyed hash, {shown} modulo 2", lambda i, d=digest: d(i)[-1] % 2
            yield f"an unkeyed hash, {shown} modulo 100", lambda i, d=digest: int.from_bytes(d(i), "big") % 100


def _require(column: str, key: str, *tables: Table) -> None:
    for table in tables:
        if column not in table.header:
            raise HarnessError(f"competition.{key}: {column!r} is not a column of {table.name} (header: {','.join(table.header)})")


def _moments(table: Table, column: str) -> list[tuple[float, str]]:
    """(value, text): numbers, or ISO dates and times (and months) as POSIX seconds."""
    out = []
    for row in table.rows:
        value = row[column]
        moment = parse_moment(value)
        if moment is None:
            raise HarnessError(f"{table.name}: {column} {value!r} is neither a number nor an ISO date")
        out.append((moment, value))
    return out


def _natural(value: str) -> tuple[int, int | str]:
    return (0, int(value)) if value.isdigit() else (1, value)


def _list(values: Iterable[str]) -> str:
    values = list(values)
    return ", ".join(values[:EXAMPLES]) + (f" and {len(values) - EXAMPLES} more" if len(values) > EXAMPLES else "")
