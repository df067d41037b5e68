"""How the test rows are chosen, and the leaks across the split refused: a labelled test table checked
(no rows, files, ids, groups or times across it), or test rows carved out by group, by time or keyed at
random, rows that repeat each other (the same features, or the same file) kept on one side."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.competition.builders.keyed import keyed
from harness.competition.builders.sources import SourceError, examples, parse_moment

if TYPE_CHECKING:
    from harness.competition.builders.tables import Options


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


def split(options: Options, items: list[Item], features: list[str], secret: bytes) -> str:
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


def _check_given(options: Options, items: list[Item], copies: list[list[int]]) -> None:
    _no_straddling(items, copies, "the two tables")
    if options.group:
        train_groups = {item.values[options.group] for item in items if item.part == "train"}
        shared = [item for item in items if item.part == "test" and item.values[options.group] in train_groups]
        if shared:
            values = sorted({item.values[options.group] for item in shared})
            raise SourceError(
                f"{len(values)} {options.group} value(s) are in both tables ({examples(values)}; e.g. {shared[0].where}): "
                f"split.group_column says a group is in train or in test, not both"
            )
    if options.time:
        last = max(_moment(item, options.time) for item in items if item.part == "train")
        early = [item for item in items if item.part == "test" and _moment(item, options.time) <= last]
        if early:
            raise SourceError(
                f"{len(early)} test row(s) are not after the last training row by {options.time} ({examples(i.where for i in early)}): "
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
            f"{len(pairs)} test row(s) repeat a training row across {what} ({examples(pairs)}): "
            "the test answers would be in the training data; remove the copies"
        )
