"""A tree as a deterministic tar, and back, safe on untrusted trees and on untrusted archives.

The same tree always gives the same bytes: entries in sorted order, no times, owners or other
modes than the owner's execute bit. Regular files (read through ``O_NOFOLLOW``), symbolic links
(their target's text, never followed) and FIFOs are kept; directories are implied by their entries.
So a tree and the tree its archive unpacks to have the same tree hash
(``harness.util.hashing.tree_sha256``), which is how a restored tree is checked. Sockets and device
files carry no data and no archive can hold them: they are left out, and a tree that held one
unpacks to another hash, which the check then reports.

Unpacking trusts nothing in the archive: a member must be a plain relative path, must not pass
through a link the archive made, and can only be a file, a link or a FIFO.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from harness.util.hashing import scan_tree

_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class ArchiveError(Exception):
    """An archive that cannot be made from a tree, or unpacked safely; the message says which entry."""


def archive_path(tree: Path) -> Path:
    """Where a tree's archive is kept beside it: ``model`` -> ``model.tar``."""
    return tree.with_name(f"{tree.name}.tar")


def write_tree_archive(root: Path, fh: BinaryIO) -> None:
    """Write the archive of the tree at ``root`` (absent: an empty tree) to ``fh``."""
    with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(scan_tree(root)):
            _add(tar, root, rel)


def _add(tar: tarfile.TarFile, root: Path, rel: str) -> None:
    path = root / rel
    info = tarfile.TarInfo(rel)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
        tar.addfile(info)
    elif stat.S_ISFIFO(st.st_mode):
        info.type, info.mode = tarfile.FIFOTYPE, 0o644
        tar.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        fd = os.open(path, _FILE_FLAGS)
        with os.fdopen(fd, "rb") as src:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode):
                raise ArchiveError(f"{rel} changed while it was archived")
            info.size, info.mode = now.st_size, 0o755 if now.st_mode & stat.S_IXUSR else 0o644
            tar.addfile(info, src)


def extract_tree_archive(fh: BinaryIO, target: Path) -> None:
    """Unpack an archive of ``write_tree_archive``'s making into ``target`` (made, or empty)."""
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise ArchiveError(f"{target} is not empty")
    target.chmod(0o755)
    links: set[PurePosixPath] = set()
    try:
        with tarfile.open(fileobj=fh, mode="r:") as tar:
            for member in tar:
                name = _member_name(member.name, links)
                path = target / name
                _make_parents(target, name)
                if member.issym():
                    os.symlink(member.linkname, path)
                    links.add(name)
                elif member.isfifo():
                    os.mkfifo(path)
                    os.chmod(path, 0o644)
                elif member.isreg():
                    source = tar.extractfile(member)
                    assert source is not None  # a regular member always has its data
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW)
                    os.fchmod(fd, 0o755 if member.mode & 0o100 else 0o644)  # whatever the umask: a container's user reads it
                    with os.fdopen(fd, "wb") as out:
                        while block := source.read(1 << 20):
                            out.write(block)
                else:
                    raise ArchiveError(f"{member.name!r} is neither a file, a link nor a FIFO")
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{type(exc).__name__}: {exc}") from None


def _make_parents(target: Path, name: PurePosixPath) -> None:
    """The directories above ``name`` under ``target``, readable by everyone whatever the umask."""
    directory = target
    for part in name.parts[:-1]:
        directory = directory / part
        if not directory.is_dir():
            directory.mkdir()
            directory.chmod(0o755)


def _member_name(name: str, links: set[PurePosixPath]) -> PurePosixPath:
    """``name`` as a safe relative path: never absolute, never ``..``, never through a link unpacked before."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        raise ArchiveError(f"{name!r} is not a plain relative path")
    if any(parent in links for parent in path.parents):
        raise ArchiveError(f"{name!r} passes through a link the archive made")
    return path
