"""The registry's storage on disk, read while it runs or not (distribution's filesystem layout,
``docker/registry/v2/``): which manifests each repository holds, the blobs each references, their
sizes, and the registry's offline ``garbage-collect``, which deletes the blobs that no manifest
references any more (``RegistryServer.collect_garbage``). ``harness gc`` deletes the manifests of
submissions the retention policy does not keep through the registry's API; their blobs go at the
next garbage-collect.

``--delete-untagged`` is not used: a submission pins a digest, and a team that pushes the same tag
again leaves the submitted manifest untagged, yet a pending or kept submission still needs it."""

from __future__ import annotations

import json
import re
from pathlib import Path

V2 = ("docker", "registry", "v2")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def _v2(storage: Path) -> Path:
    return storage.joinpath(*V2)


def _revision_link(storage: Path, repository: str, digest: str) -> Path:
    """The file whose presence says ``repository`` holds the manifest ``digest``."""
    hexdigest = digest.removeprefix("sha256:")
    return _v2(storage) / "repositories" / repository / "_manifests" / "revisions" / "sha256" / hexdigest / "link"


def has_manifest(storage: Path, repository: str, digest: str) -> bool:
    """Whether ``repository`` holds the manifest ``digest`` (its revision link is there)."""
    return _revision_link(storage, repository, digest).is_file()


def pushed_at(storage: Path, repository: str, digest: str) -> float | None:
    """When the manifest ``digest`` was put into ``repository`` (its revision link's time); None when it is not there."""
    try:
        return _revision_link(storage, repository, digest).stat().st_mtime
    except OSError:
        return None


def tagged(storage: Path, repository: str) -> set[str]:
    """The digests the tags of ``repository`` name now."""
    tags = _v2(storage) / "repositories" / repository / "_manifests" / "tags"
    found = set()
    for link in tags.glob("*/current/link") if tags.is_dir() else []:
        try:
            digest = link.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if DIGEST.fullmatch(digest):
            found.add(digest)
    return found


def manifests(storage: Path) -> dict[tuple[str, str], set[str]]:
    """Every ``(repository, manifest digest)`` the registry holds -> the digests of the blobs it
    references (config and layers; an index's manifests are followed one level)."""
    root = _v2(storage) / "repositories"
    found: dict[tuple[str, str], set[str]] = {}
    if not root.is_dir():
        return found
    for revisions in root.glob("**/_manifests/revisions/sha256"):
        repository = revisions.parent.parent.parent.relative_to(root).as_posix()
        for revision in revisions.iterdir():
            if (revision / "link").is_file():
                digest = f"sha256:{revision.name}"
                found[(repository, digest)] = _references(storage, digest)
    return found


def blob_bytes(storage: Path, digest: str) -> int:
    data = _blob(storage, digest)
    return data.stat().st_size if data.is_file() else 0


def unique_bytes(storage: Path, leaving: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """For each manifest in ``leaving``: the bytes of its blobs that no manifest staying references
    (what the garbage-collect frees once they are deleted), each blob counted for one manifest only."""
    held = {key: blobs | {key[1]} for key, blobs in manifests(storage).items()}  # a manifest is a blob too
    staying = set().union(*(blobs for key, blobs in held.items() if key not in leaving))
    counted: set[str] = set()
    sizes = {}
    for key in sorted(leaving):
        own = held.get(key, set()) - staying - counted
        counted |= own
        sizes[key] = sum(blob_bytes(storage, digest) for digest in own)
    return sizes


def stored_bytes(storage: Path) -> int:
    """Bytes of every blob the registry stores."""
    blobs = _v2(storage) / "blobs"
    return sum(p.stat().st_size for p in blobs.rglob("data") if p.is_file()) if blobs.is_dir() else 0


def _blob(storage: Path, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return _v2(storage) / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"


def _references(storage: Path, digest: str, depth: int = 0) -> set[str]:
    path = _blob(storage, digest)
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            return set()
        body = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return set()
    if not isinstance(body, dict):
        return set()
    found: set[str] = set()
    entries = [body.get("config"), *(body.get("layers") or [])] if isinstance(body.get("layers"), list) else [body.get("config")]
    for entry in entries:
        if isinstance(entry, dict) and DIGEST.fullmatch(str(entry.get("digest"))):
            found.add(entry["digest"])
    for entry in body.get("manifests") or [] if depth == 0 and isinstance(body.get("manifests"), list) else []:
        if isinstance(entry, dict) and DIGEST.fullmatch(str(entry.get("digest"))):
            found |= {entry["digest"], *_references(storage, entry["digest"], depth + 1)}
    return found
