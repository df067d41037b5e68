"""Files written whole: a crash leaves the old version or the new one, never half of one; trees measured
and removed so that a stop midway leaves no half tree under its name."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.util.errors import HarnessError


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write so that a crash leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, *, what: str = "the output") -> None:
    """Write a file the user named (``--output FILE``) whole: a reader (a web server) never sees half
    of it. Its folder must exist; every failure is a HarnessError naming the path and the fix."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise HarnessError(f"{what} {path} is a folder; name a file in it (e.g. {path / 'board.html'})")
    if not folder.is_dir():
        raise HarnessError(f"cannot write {what} {path}: the folder {folder} does not exist; create it (mkdir -p {folder}) or name another")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise HarnessError(f"cannot write {what} {path}: {exc.strerror or exc} in {folder}; name a folder you can write to") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # a page to publish: readable like any file the user writes (mkstemp makes it 0600)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise HarnessError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json_object(path: Path, what: str, required: tuple[str, ...], fix: str) -> dict[str, Any]:
    """A JSON file the harness wrote, which must hold an object with ``required`` keys; anything
    else (truncated, ``[]``, a missing key) is a HarnessError naming the file, what is wrong, and ``fix``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"{path} cannot be read ({exc.strerror or exc}); {fix}") from None
    except UnicodeDecodeError:
        raise HarnessError(f"{path} is not {what}: it is not UTF-8 text; {fix}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = (
            "it is empty" if not text.strip() else f"it is not valid JSON (truncated?): {exc.msg} (line {exc.lineno}, column {exc.colno})"
        )
        raise HarnessError(f"{path} is not {what}: {problem}; {fix}") from None
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(type(data), "null")
        raise HarnessError(f"{path} is not {what}: it holds {kind}, not an object; {fix}")
    missing = [key for key in required if key not in data]
    if missing:
        raise HarnessError(f"{path} is not {what}: it has no {', '.join(missing)}; {fix}")
    return data


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (each file once, however many links name it; links not followed)."""
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size if path.is_file() and not path.is_symlink() else 0
    seen, total = set(), 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            stat = os.lstat(os.path.join(root, name))
            if (stat.st_dev, stat.st_ino) not in seen and not os.path.islink(os.path.join(root, name)):
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


def remove_aside(path: Path, aside: str) -> None:
    """Delete a file, or a directory once renamed to ``<aside><name>-<random>`` beside itself (so a
    stop midway never leaves half a directory under its name; a name starting with ``aside`` is
    deleted as it is)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return
    if not path.exists():
        return
    moved = path if path.name.startswith(aside) else path.with_name(f"{aside}{path.name}-{secrets.token_hex(4)}")
    if moved != path:
        os.rename(path, moved)
    shutil.rmtree(moved)
