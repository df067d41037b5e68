"""Who runs next: per-group queues, so that one team's many submissions cannot starve the others."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    """The next item goes to the group with the fewest items running; ties go to the group whose
    first waiting item comes first: a follow-up of work already started (pushed with ``first=True``)
    before any other, else the one queued earliest. Within a group, follow-ups leave first."""

    def __init__(self) -> None:
        self._groups: dict[str, deque[tuple[tuple[bool, int], T]]] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._groups.values())

    def __iter__(self) -> Iterator[T]:
        return (item for queue in self._groups.values() for _, item in queue)

    def push(self, group: str, item: T, *, first: bool = False) -> None:
        queue = self._groups.setdefault(group, deque())
        entry = ((not first, next(self._order)), item)
        queue.appendleft(entry) if first else queue.append(entry)

    def next_group(self, running: Mapping[str, int]) -> str | None:
        """The group whose turn it is, given how many items each group has running."""
        if not self._groups:
            return None
        return min(self._groups, key=lambda g: (running.get(g, 0), self._groups[g][0][0]))

    def head(self, group: str) -> T:
        return self._groups[group][0][1]

    def pop(self, group: str) -> T:
        queue = self._groups[group]
        _, item = queue.popleft()
        if not queue:
            del self._groups[group]
        return item

    def clear(self) -> None:
        self._groups.clear()
