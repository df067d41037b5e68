"""What a container has written to its writable host directories, measured without following links.

Each directory is opened by name, relative to its parent's descriptor, with ``O_NOFOLLOW``: a
directory swapped for a symbolic link mid-walk is skipped, never entered, and a path longer than
``PATH_MAX`` is measured like any other. Hard-linked files count once on disk, and once per name
in what reading the tree would cost (its apparent size). Output the harness cannot
measure (nested deeper than ``MAX_DEPTH``, or made unreadable) is itself a violation.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass

from harness.util.sizes import format_size

MAX_DEPTH = 64
# The share of a CPU that measuring may take: polls space out as the tree grows. CPU time, not wall
# time: a measure blocked behind the container's own file creation must not delay the next one.
MEASURE_BUDGET = 0.1
# A host filesystem with less free than this (for an unprivileged writer) is full: a phase that
# failed under its own disk limit then is the host's fault, not the submission's.
HOST_FULL_BYTES = 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_GONE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)  # removed or replaced while being measured


@dataclass(frozen=True)
class OutputUsage:
    bytes: int
    files: int
    # Why part of the output could not be measured, phrased as what the container did.
    problem: str | None = None
    # What reading every name in full would read: each hard link counted, a sparse file at its
    # length. The harness reads the model after the phase (hash, archive, depot), so this is bounded too.
    apparent_bytes: int = 0

    def exceeds(self, max_bytes: int, max_files: int) -> str | None:
        """A message when a limit is passed (or the output is unmeasurable), else None."""
        if self.problem:
            return self.problem
        if self.bytes > max_bytes:
            return f"wrote {format_size(self.bytes)}, over the disk limit of {format_size(max_bytes)}"
        if self.apparent_bytes > max_bytes:
            return (
                f"wrote files that read as {format_size(self.apparent_bytes)} in full (each name counted: hard links and "
                f"sparse files at their length), {format_size(self.apparent_bytes - max_bytes)} over the disk limit of "
                f"{format_size(max_bytes)}; write each file once, as plain data"
            )
        if self.files > max_files:
            return f"created more than its limit of {max_files} files and directories"
        return None


def host_disk_full(paths: tuple[str, ...] | list[str]) -> str | None:
    """How the host filesystem of a writable directory is full, as the container's (unprivileged)
    user sees it: under ``HOST_FULL_BYTES`` free, or no inode left; None when each has room."""
    for path in paths:
        try:
            fs = os.statvfs(path)
        except OSError:
            continue
        free = fs.f_bavail * fs.f_frsize
        if free < HOST_FULL_BYTES:
            return f"{format_size(free)} free"
        if fs.f_files and fs.f_favail == 0:  # a filesystem without an inode count reports 0 files
            return "no inode free"
    return None


def measure(paths: tuple[str, ...] | list[str], stop_after_files: int | None = None) -> OutputUsage:
    """Disk blocks in use and entries under ``paths``; stops counting past ``stop_after_files``."""
    walk = _Walk(stop_after_files)
    for path in paths:
        fd = walk.open(path, None)
        if fd is not None:
            walk.directory(fd, 0)
    return OutputUsage(walk.bytes, walk.files, walk.problem, walk.apparent_bytes)


class OutputWatch:
    """Polls the writable directories while a container runs, keeping the peak it saw."""

    def __init__(self, paths: tuple[str, ...], max_bytes: int, max_files: int) -> None:
        self.paths = paths
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.peak_bytes = 0
        self._next = 0.0

    def poll(self, now: float) -> str | None:
        """A message when a limit is passed; measures only when the time budget allows."""
        if not self.paths or now < self._next:
            return None
        cpu = time.thread_time()
        usage = measure(self.paths, stop_after_files=self.max_files)
        self.peak_bytes = max(self.peak_bytes, usage.bytes)
        self._next = now + (time.thread_time() - cpu) / MEASURE_BUDGET
        return usage.exceeds(self.max_bytes, self.max_files)

    def final(self) -> OutputUsage:
        """The full count once the container is gone; bytes are the most ever seen."""
        usage = measure(self.paths)
        return OutputUsage(max(usage.bytes, self.peak_bytes), usage.files, usage.problem, usage.apparent_bytes)


class _Walk:
    def __init__(self, stop_after_files: int | None) -> None:
        self.stop_after_files = stop_after_files
        self.bytes = 0
        self.apparent_bytes = 0
        self.files = 0
        self.problem: str | None = None
        self._linked: set[tuple[int, int]] = set()

    @property
    def done(self) -> bool:
        return self.problem is not None or (self.stop_after_files is not None and self.files > self.stop_after_files)

    def open(self, name: str, parent: int | None) -> int | None:
        try:
            try:
                return os.open(name, _DIR_FLAGS | os.O_NOATIME, dir_fd=parent)
            except PermissionError:  # O_NOATIME is for the owner (or root) only
                return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno not in _GONE:
                self.problem = f"made a directory the harness cannot read ({os.path.basename(name)}: {exc.strerror})"
            return None

    def directory(self, fd: int, depth: int) -> None:
        try:
            subdirs = self._scan(fd)
            if subdirs and depth >= MAX_DEPTH:
                self.problem = f"nested directories more than {MAX_DEPTH} levels deep"
            for name in subdirs:
                if self.done:
                    return
                child = self.open(name, fd)
                if child is not None:
                    self.directory(child, depth + 1)
        finally:
            os.close(fd)

    def _scan(self, fd: int) -> list[str]:
        subdirs = []
        with os.scandir(fd) as entries:
            for entry in entries:
                self.files += 1
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # removed meanwhile
                if stat.S_ISDIR(info.st_mode):
                    subdirs.append(entry.name)
                else:
                    self.apparent_bytes += info.st_size
                    if info.st_nlink > 1:
                        if (info.st_dev, info.st_ino) in self._linked:
                            continue
                        self._linked.add((info.st_dev, info.st_ino))
                self.bytes += info.st_blocks * 512
                if self.done:
                    break
        return subdirs
