"""Host PIDs of a run: a container's cgroup, or a plain process and its descendants."""

from __future__ import annotations

from pathlib import Path


def cgroup_pids(directory: Path) -> set[int]:
    """Every process in a cgroup and its sub-cgroups (``cgroup.procs``, v1 or v2)."""
    pids: set[int] = set()
    for procs in directory.rglob("cgroup.procs"):
        try:
            pids.update(int(line) for line in procs.read_text().split())
        except (OSError, ValueError):
            continue  # a sub-cgroup removed mid-walk
    return pids


def process_tree_pids(root: int, proc: Path = Path("/proc")) -> set[int]:
    """``root`` and all its descendants, from /proc (no psutil needed)."""
    children: dict[int, list[int]] = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()  # after "pid (comm)", comm may hold spaces
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue  # exited mid-walk
    found: set[int] = set()
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found
