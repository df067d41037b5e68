"""What a team's images take in the registry: every blob (layers and configs) of every tagged
image under its namespace, each counted once, as stored (compressed). The token issuer reads it
to refuse push past the team's budget."""

from __future__ import annotations

import threading
import time

from harness.registry.lookup import NotInRegistry, RegistryClient
from harness.util.errors import HarnessError


def stored_bytes(registry: RegistryClient, namespace: str) -> int:
    """Bytes of the distinct blobs of the images tagged under ``namespace/`` (an image pushed by
    digest alone is not counted: Docker's pushes always tag)."""
    blobs: dict[str, int] = {}
    for repository in registry.repositories(namespace + "/"):
        for tag in registry.tags(repository):
            try:
                manifest = registry.manifest(repository, registry.tag_digest(repository, tag))
            except (NotInRegistry, HarnessError):
                continue  # untagged meanwhile, or not an image: takes nothing we can count
            blobs[manifest.config_digest] = manifest.size_bytes - sum(layer.size_bytes for layer in manifest.layers)
            blobs.update((layer.digest, layer.size_bytes) for layer in manifest.layers)
    return sum(blobs.values())


class UsageCache:
    """``stored_bytes`` per namespace, read again after ``ttl_s`` (a push asks for a token per
    layer: the catalog is not walked for each)."""

    def __init__(self, registry: RegistryClient, ttl_s: float = 10.0) -> None:
        self.registry, self.ttl_s = registry, ttl_s
        self._known: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def stored_bytes(self, namespace: str) -> int:
        now = time.monotonic()
        with self._lock:
            known = self._known.get(namespace)
        if known is not None and now - known[0] < self.ttl_s:
            return known[1]
        used = stored_bytes(self.registry, namespace)
        with self._lock:
            self._known[namespace] = (now, used)
        return used
