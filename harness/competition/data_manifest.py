"""The competition data's manifest: every file's SHA-256, so that an audit can name what changed.

``<competition>/data-manifest.json`` holds each file's digest with the (size, mtime_ns, ctime_ns,
inode) it was computed for: a file whose stat fields did not move is not read again, so a large
dataset is hashed once, and a file that changed is. Each state of the data is also kept as a
snapshot, ``<competition>/manifests/<data_sha256>.json``, which a record names by its hash.
"""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from pathlib import Path

from harness.util.files import write_json_atomic
from harness.util.hashing import Entry, listing_sha256, scan_tree

CACHE_NAME = "data-manifest.json"
SNAPSHOT_DIR = "manifests"
SCHEMA = "harness.data-manifest/1"


@dataclass(frozen=True)
class FileChange:
    path: str
    change: str  # "changed", "added" or "removed"
    recorded: str | None
    current: str | None

    def __str__(self) -> str:
        return f"{self.path} {self.change}"


@dataclass(frozen=True)
class DataManifest:
    files: dict[str, str]  # path relative to the competition directory -> digest

    @property
    def sha256(self) -> str:
        return listing_sha256(self.files)

    def changes_since(self, recorded: DataManifest) -> list[FileChange]:
        """What differs from ``recorded``, file by file, in path order."""
        changes = []
        for path in sorted(set(self.files) | set(recorded.files)):
            old, new = recorded.files.get(path), self.files.get(path)
            if old != new:
                change = "added" if old is None else "removed" if new is None else "changed"
                changes.append(FileChange(path, change, old, new))
        return changes

    def under(self, *prefixes: str) -> DataManifest:
        return DataManifest({p: d for p, d in self.files.items() if p.startswith(prefixes)})


def refresh(root: Path, directories: list[Path]) -> DataManifest:
    """The manifest of ``directories`` (inside ``root``) as they are now; updates the cache and
    keeps a snapshot of this state."""
    cache_path = root / CACHE_NAME
    known = _load_cache(cache_path)
    entries: dict[str, Entry] = {}
    for directory in directories:
        prefix = directory.relative_to(root).as_posix() + "/"
        entries.update(scan_tree(directory, prefix, known))
    if entries != known:
        write_json_atomic(cache_path, {"schema": SCHEMA, "files": {p: list(astuple(e)) for p, e in entries.items()}})
    manifest = DataManifest({p: e.digest for p, e in entries.items()})
    snapshot = snapshot_path(root, manifest.sha256)
    if not snapshot.is_file():
        write_json_atomic(snapshot, {"schema": SCHEMA, "sha256": manifest.sha256, "files": manifest.files})
    return manifest


def changes_since(root: Path, current: DataManifest, recorded_sha256: str, *prefixes: str) -> list[FileChange] | None:
    """What changed under ``prefixes`` (everywhere when none) since the data hashed to
    ``recorded_sha256``; None when that state's snapshot is not kept here."""
    if current.sha256 == recorded_sha256:
        return []
    snapshot = load_snapshot(root, recorded_sha256)
    if snapshot is None:
        return None
    if prefixes:
        current, snapshot = current.under(*prefixes), snapshot.under(*prefixes)
    return current.changes_since(snapshot)


def snapshot_path(root: Path, sha256: str) -> Path:
    return root / SNAPSHOT_DIR / f"{sha256}.json"


def load_snapshot(root: Path, sha256: str) -> DataManifest | None:
    """The data as it was when a record with this ``data_sha256`` was made, or None if not kept."""
    try:
        data = json.loads(snapshot_path(root, sha256).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    manifest = DataManifest(dict(data.get("files") or {}))
    return manifest if manifest.sha256 == sha256 else None


def _load_cache(path: Path) -> dict[str, Entry]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {p: Entry(*fields) for p, fields in data["files"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
