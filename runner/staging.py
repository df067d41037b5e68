"""On a node, before a phase runs: the pinned image on this node's engine and the data staged here,
each verified (the image by its id, the data by its manifest hash), fetched from the depot if absent."""

from __future__ import annotations

import dataclasses
import fcntl
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import ray
import ray.exceptions
from ray.actor import ActorHandle

from harness.runner.depot import DataStage, fetch
from harness.runner.phase import PhaseSpec
from harness.util.hashing import listing_sha256, scan_tree

VERIFIED = ".verified"


class StagingError(Exception):
    """The image or the data could not be brought to this node intact: the organizer's failure."""


@dataclass(frozen=True)
class Staging:
    depot: ActorHandle
    home_node: str  # the driver's Ray node: its phases use the driver's own files
    cache_dir: str  # node-local; one subdirectory per Ray node
    data: DataStage | None = None

    def prepare(self, spec: PhaseSpec, node_id: str, client: docker.DockerClient) -> PhaseSpec:
        """``spec`` as it runs on this node: its image present here, its data mounts on the staged copy."""
        node_dir = Path(self.cache_dir) / node_id[:16]
        node_dir.mkdir(parents=True, exist_ok=True)
        try:
            ensure_image(client, spec.image, self.depot, node_dir)
            if self.data is None or node_id == self.home_node:
                return spec
            staged = stage_data(self.data, self.depot, node_dir)
        except (ray.exceptions.RayError, docker.errors.DockerException, OSError, ValueError, tarfile.TarError) as exc:
            raise StagingError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        moved = {source: str(staged / name) for source, name in self.data.roots}
        mounts = tuple(dataclasses.replace(m, source=moved.get(m.source, m.source)) for m in spec.mounts)
        return dataclasses.replace(spec, mounts=mounts)


def has_image(client: docker.DockerClient, digest: str) -> bool:
    try:
        return client.images.get(digest).id == digest
    except docker.errors.ImageNotFound:
        return False


def ensure_image(client: docker.DockerClient, digest: str, depot: ActorHandle, node_dir: Path) -> None:
    """Load the image from the depot's archive unless this node's engine has it; then check its id."""
    if has_image(client, digest):
        return
    with _node_lock(node_dir, "image"):
        if has_image(client, digest):
            return
        archive = ray.get(depot.image.remote(digest))
        path = node_dir / archive.name
        try:
            fetch(depot, archive, path)
            with open(path, "rb") as fh:
                client.images.load(fh)
        finally:
            path.unlink(missing_ok=True)
        if not has_image(client, digest):
            raise ValueError(f"the archive {archive.name} loaded, but no image with id {digest[:19]} appeared")


def stage_data(stage: DataStage, depot: ActorHandle, node_dir: Path) -> Path:
    """The directory holding this node's verified copy of the data (fetched and checked once)."""
    target = node_dir / f"data-{stage.sha256[:16]}"
    if (target / VERIFIED).is_file():
        return target
    with _node_lock(node_dir, "data"):
        if (target / VERIFIED).is_file():
            return target
        archive = ray.get(depot.data.remote(stage))
        work = Path(tempfile.mkdtemp(dir=node_dir, prefix=".stage-"))
        try:
            fetch(depot, archive, work / archive.name)
            with tarfile.open(work / archive.name) as tar:
                tar.extractall(work / "tree", filter="data")
            found = listing_sha256(
                {rel: e.digest for _, name in stage.roots for rel, e in scan_tree(work / "tree" / name, f"{name}/").items()}
            )
            if found != stage.sha256:
                raise ValueError(f"the staged data hashes to {found[:12]}, its manifest says {stage.sha256[:12]}")
            (work / "tree" / VERIFIED).touch()
            shutil.rmtree(target, ignore_errors=True)
            (work / "tree").rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


@contextmanager
def _node_lock(node_dir: Path, name: str) -> Iterator[None]:
    """One worker of a node at a time brings a thing here; the others wait and then find it."""
    with open(node_dir / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
