"""Content hashes of trees and files, safe on untrusted output.

Nothing here follows a symbolic link or opens anything but a regular file: a link is hashed as
its target's text, a FIFO, socket or device by its type. Directories are walked by descriptor,
relative to their parent, so a path longer than ``PATH_MAX`` is hashed like any other.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_KINDS = {stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "char-device", stat.S_IFBLK: "block-device"}


@dataclass(frozen=True)
class Entry:
    """One entry of a tree: its digest (a file's SHA-256, ``symlink:<target>``, or its kind) and
    the stat fields that say whether a cached digest still holds."""

    digest: str
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    inode: int = 0

    def same_file(self, st: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode) == (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def scan_tree(root: Path, prefix: str = "", known: Mapping[str, Entry] | None = None) -> dict[str, Entry]:
    """Every non-directory entry under ``root`` by ``prefix`` + relative path; a regular file whose
    (size, mtime_ns, ctime_ns, inode) matches its ``known`` entry is not read again."""
    known = known or {}
    entries: dict[str, Entry] = {}
    try:
        fd = os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        return entries
    for rel, st, parent in _walk(fd, prefix):
        cached = known.get(rel)
        if stat.S_ISREG(st.st_mode) and cached is not None and cached.same_file(st):
            entries[rel] = cached
        else:
            entries[rel] = _entry(rel.rsplit("/", 1)[-1], st, parent)
    return entries


def listing_sha256(digests: Mapping[str, str]) -> str:
    """The hash of a tree: every (relative path, digest), in sorted order."""
    digest = hashlib.sha256()
    for rel in sorted(digests):
        digest.update(os.fsencode(rel) + b"\0" + digests[rel].encode() + b"\n")
    return digest.hexdigest()


def tree_sha256(root: Path) -> str:
    return listing_sha256({rel: entry.digest for rel, entry in scan_tree(root).items()})


def regular_file_sha256(path: Path, max_bytes: int | None = None) -> str | None:
    """The SHA-256 of ``path`` when it is a regular file (not a link) of at most ``max_bytes``, else None."""
    try:
        fd = os.open(path, _FILE_FLAGS)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (max_bytes is not None and st.st_size > max_bytes):
        os.close(fd)  # before fdopen, which refuses a directory with an exception
        return None
    with os.fdopen(fd, "rb") as fh:
        return _sha256(fh)


def _walk(fd: int, prefix: str) -> Iterator[tuple[str, os.stat_result, int]]:
    """(relative path, lstat, parent descriptor) of every non-directory entry; closes ``fd``."""
    try:
        with os.scandir(fd) as scan:
            items = sorted(scan, key=lambda e: e.name)
        for item in items:
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue  # removed meanwhile
            rel = prefix + item.name
            if not stat.S_ISDIR(st.st_mode):
                yield rel, st, fd
                continue
            try:
                child = os.open(item.name, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue  # swapped for a link, or removed
            yield from _walk(child, rel + "/")
    finally:
        os.close(fd)


def _entry(name: str, st: os.stat_result, parent: int) -> Entry:
    if stat.S_ISLNK(st.st_mode):
        return Entry("symlink:" + os.readlink(name, dir_fd=parent))
    if not stat.S_ISREG(st.st_mode):
        return Entry(_KINDS.get(stat.S_IFMT(st.st_mode), "special"))
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
    except OSError as exc:
        return Entry(f"unreadable:{exc.strerror}")
    with os.fdopen(fd, "rb") as fh:
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode):  # swapped after the lstat
            return Entry(_KINDS.get(stat.S_IFMT(now.st_mode), "special"))
        return Entry(_sha256(fh), now.st_size, now.st_mtime_ns, now.st_ctime_ns, now.st_ino)


def _sha256(fh) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: fh.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()
