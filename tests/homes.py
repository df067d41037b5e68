"""Test work directories made from the prepared one (tests/conftest.py's ``prepared_data``) cheaply.

A copy of the digits work directory is 1,805 files, 0.55 CPU-s to copy and more than 200 tests
ask for one. Its 1,797 images are hard-linked instead (0.04 s for the lot): read by every test,
never changed by the harness (a data rebuild writes new files and renames them into place). A
test that changes one in place takes its own copy first (``own_copy``); ``changed_images`` catches
one that did not, which would change every test's images."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def _shared(relative: Path) -> bool:
    """An input image of a competition's data: ``competitions/<name>/data/<split>/images/<file>``."""
    parts = relative.parts
    return len(parts) == 6 and parts[0] == "competitions" and parts[2] == "data" and parts[4] == "images"


def make_home(prepared: Path, target: Path) -> None:
    """``prepared`` at ``target``: its data's images linked, everything else copied."""

    def link_or_copy(source: str, destination: str) -> None:
        if _shared(Path(source).relative_to(prepared)):
            os.link(source, destination)
        else:
            shutil.copy2(source, destination)

    shutil.copytree(prepared, target, symlinks=True, copy_function=link_or_copy)


def image_stats(prepared: Path) -> dict[str, tuple[int, int, int, int, int]]:
    """What a change in place would move, for each linked image: size, mtime, mode, owner, group."""
    stats = {}
    for path in (prepared / "competitions").glob("*/data/*/images/*"):
        st = path.stat()
        stats[str(path.relative_to(prepared))] = (st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid, st.st_gid)
    return stats


def changed_images(prepared: Path, before: dict[str, tuple[int, int, int, int, int]]) -> list[str]:
    now = image_stats(prepared)
    return sorted(name for name in before.keys() | now.keys() if before.get(name) != now.get(name))


def own_copy(path: Path) -> Path:
    """Give this test's work directory its own copy of ``path`` (a linked image) before changing it in place."""
    data = path.read_bytes()
    stat = path.stat()
    path.unlink()
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return path


def own_copies(directory: Path) -> None:
    """``own_copy`` of every linked file under ``directory``: for a test of what the data manifest's cache
    reads, which compares each file's ctime, and a shared image's ctime moves whenever another test links it."""
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.stat().st_nlink > 1:
            own_copy(path)
