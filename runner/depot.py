"""The depot: on the driver's node, images and data become content-addressed archives, served in chunks.

Where no registry exists, a node that lacks an image (or the competition data) asks the depot for
it: the depot writes the archive once (the driver node's backend saves the pinned image id, a
``docker save`` on Docker; a tar of the data),
names it by its content and serves it to any node in chunks through Ray. The node verifies what
it received (``runner.staging``). The other way, a node sends the depot a trained model's archive
(``send``), checked by its hash on arrival; the driver takes a copy (``deliver``), and the depot
serves it like any archive to a node that must run that model's infer after its node is gone.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tarfile
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import ray

from harness.runner.backend import create_backend

CHUNK_BYTES = 8 * 1024**2
WINDOW = 4  # chunks in flight while fetching


@dataclass(frozen=True)
class Archive:
    name: str  # a file name in the depot's directory
    sha256: str
    size: int


@dataclass(frozen=True)
class DataStage:
    """Directories to stage on every node, and the tree hash they must have there."""

    sha256: str  # ``harness.util.hashing.tree_sha256`` of the roots, as the driver computed it
    roots: tuple[tuple[str, str], ...]  # (the driver's path, the name on a node), e.g. (".../data/train", "train")


@ray.remote(num_cpus=0, max_concurrency=4)
class Depot:
    def __init__(self, directory: str, backend: str = "docker") -> None:
        self.directory = Path(directory)
        self.backend = backend  # the ``runner.backend`` whose engine on this node holds the pinned images
        self.directory.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def image(self, digest: str) -> Archive:
        """The archive of the image whose id is ``digest`` (saved by this node's backend, written once)."""
        return self._once(f"image-{digest.removeprefix('sha256:')}.tar", lambda fh: create_backend(self.backend).save_image(digest, fh))

    def data(self, stage: DataStage) -> Archive:
        def pack(fh: BinaryIO) -> None:
            with tarfile.open(fileobj=fh, mode="w") as tar:
                for source, name in stage.roots:
                    tar.add(source, arcname=name)

        return self._once(f"data-{stage.sha256}.tar", pack)

    def write(self, upload: str, offset: int, data: bytes) -> None:
        """A chunk of what a node sends (``send``), at ``offset`` of the upload ``upload``."""
        fd = os.open(self._upload(upload), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)

    def seal(self, upload: str, name: str, sha256: str) -> Archive:
        """The upload, once it proved to hash to ``sha256``, kept as the archive ``name``."""
        path = self._upload(upload)
        with open(path, "rb") as fh:
            found = hashlib.file_digest(fh, "sha256").hexdigest()
        if found != sha256:
            path.unlink()
            raise ValueError(f"{name} arrived damaged (sha256 {found[:12]}, expected {sha256[:12]})")
        os.replace(path, self._path(name))
        self._path(f"{name}.sha256").write_text(sha256)
        return self.archive(name)

    def archive(self, name: str) -> Archive:
        """The archive ``name`` the depot holds (``FileNotFoundError`` when it holds none)."""
        return Archive(name, self._path(f"{name}.sha256").read_text().strip(), self._path(name).stat().st_size)

    def deliver(self, name: str, target: str) -> None:
        """A copy of the archive ``name`` at ``target`` on this node (the driver's, where the depot runs)."""
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(self._path(name), target)
        except OSError:  # another filesystem
            shutil.copyfile(self._path(name), target)

    def read(self, name: str, offset: int, size: int) -> bytes:
        with open(self._path(name), "rb") as fh:
            fh.seek(offset)
            return fh.read(size)

    def _path(self, name: str) -> Path:
        if Path(name).name != name or name.startswith("."):
            raise ValueError(f"not an archive name: {name!r}")
        return self.directory / name

    def _upload(self, upload: str) -> Path:
        if not upload.isalnum():
            raise ValueError(f"not an upload id: {upload!r}")
        return self.directory / f".upload-{upload}"

    def _once(self, name: str, write: Callable[[BinaryIO], None]) -> Archive:
        """The archive ``name``, written by ``write`` the first time it is asked for; its hash in a sidecar."""
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            path, sidecar = self._path(name), self._path(f"{name}.sha256")
            if not (path.is_file() and sidecar.is_file()):
                fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.")
                try:
                    with os.fdopen(fd, "w+b") as fh:
                        write(fh)
                        fh.seek(0)
                        digest = hashlib.file_digest(fh, "sha256").hexdigest()
                    os.replace(tmp, path)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                sidecar.write_text(digest)
            return self.archive(name)


def send(depot: ray.actor.ActorHandle, source: Path, name: str) -> Archive:
    """Copy the file ``source`` to the depot, as the archive ``name``, checked by its hash there."""
    upload = secrets.token_hex(8)
    digest = hashlib.sha256()
    in_flight: deque[ray.ObjectRef] = deque()
    with open(source, "rb") as fh:
        offset = 0
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
            if len(in_flight) >= WINDOW:
                ray.get(in_flight.popleft())
            in_flight.append(depot.write.remote(upload, offset, chunk))
            offset += len(chunk)
    ray.get(list(in_flight))
    return ray.get(depot.seal.remote(upload, name, digest.hexdigest()))


def fetch(depot: ray.actor.ActorHandle, archive: Archive, target: Path) -> None:
    """Copy an archive from the depot to ``target``, verifying its hash; raises ``ValueError`` on a mismatch."""
    offsets = deque(range(0, archive.size, CHUNK_BYTES))
    in_flight: deque[ray.ObjectRef] = deque()
    digest = hashlib.sha256()
    with open(target, "wb") as fh:
        while offsets or in_flight:
            while offsets and len(in_flight) < WINDOW:
                in_flight.append(depot.read.remote(archive.name, offsets.popleft(), CHUNK_BYTES))
            chunk = ray.get(in_flight.popleft())
            digest.update(chunk)
            fh.write(chunk)
    if digest.hexdigest() != archive.sha256:
        target.unlink(missing_ok=True)
        raise ValueError(f"{archive.name} arrived damaged (sha256 {digest.hexdigest()[:12]}, expected {archive.sha256[:12]})")
