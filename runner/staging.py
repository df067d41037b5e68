"""On a node, before a phase runs: the pinned image on this node's engine and the data staged here,
each verified (the image by its id, the data by its manifest hash). An absent image is pulled from
the registry by manifest digest when the phase names one and the workers' credential came along,
else (or when that fails) loaded from the depot's archive; the data always comes from the depot.

A node other than the driver's shares no disk with it: the phase's working directories (its model,
output and logs, under the driver's ``runs`` directory) are made on the node instead, under
``<cache>/<node>/runs/``, and the result brings back what the driver keeps (``bring_back``): the
predictions file (at most one byte over its size limit, so an oversized one is still refused as
such) and the bounded logs; the telemetry series and the model's tree hash travel in the result
itself. A full train's model is also archived (``harness.util.archives``) and sent to the depot,
and the driver keeps a copy as the run directory's ``model.tar``, from where it reaches the artifact
store with the record; so the model outlives the node. Infer is scheduled on the node that keeps
the model (``RayPhasePool``); when that node is gone, another node unpacks the depot's archive of
the model (``restore_model``) and runs it."""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import ray
import ray.exceptions
from ray.actor import ActorHandle

from harness.limits import PhaseVerdict
from harness.runner.backend import Backend, EngineError
from harness.runner.depot import DataStage, fetch, send
from harness.runner.phase import PhaseResult, PhaseSpec
from harness.util.archives import ArchiveError, archive_path, extract_tree_archive, write_tree_archive
from harness.util.errors import first_line
from harness.util.hashing import listing_sha256, scan_tree, tree_sha256

VERIFIED = ".verified"
log = logging.getLogger(__name__)


class StagingError(Exception):
    """The image or the data could not be brought to this node intact: the organizer's failure."""


@dataclass(frozen=True)
class RegistryCredential:
    """The organizer's workers' pull credential (``pull`` on every repository). It reaches the nodes
    inside the Ray task's arguments, never through a shared disk, and the secret stays out of reprs."""

    username: str
    password: str = field(repr=False)

    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}


@dataclass(frozen=True)
class Staging:
    depot: ActorHandle
    home_node: str  # the driver's Ray node: its phases use the driver's own files
    cache_dir: str  # node-local; one subdirectory per Ray node
    data: DataStage | None = None
    registry: RegistryCredential | None = None  # None: images come from the depot only
    runs_root: str | None = None  # the driver's ``runs`` directory; None: every node shares the driver's disk
    predictions: tuple[str, int] = ("", 0)  # the predictions file's name and size limit

    def prepare(self, spec: PhaseSpec, node_id: str, backend: Backend) -> PhaseSpec:
        """``spec`` as it runs on this node: its image present here, its data mounts on the staged
        copy, its working directories on this node's disk."""
        node_dir = self.node_dir(node_id)
        node_dir.mkdir(parents=True, exist_ok=True)
        try:
            backend.ensure_image(spec.image, self.depot, node_dir, pull_from=spec.pull_from, credential=self.registry)
            moved = {} if node_id == self.home_node else self._run_dirs(spec, node_dir)
            if spec.model_from is not None:
                model = next(m.source for m in spec.mounts if m.target == "/model")
                restore_model(spec.model_from, Path(moved.get(model, model)), self.depot, node_dir)
            if node_id == self.home_node:
                return spec
            if self.data is not None:
                staged = stage_data(self.data, self.depot, node_dir)
                moved.update({source: str(staged / name) for source, name in self.data.roots})
            for path in (*(moved.get(w, w) for w in spec.writable), moved.get(spec.log_dir, spec.log_dir)):
                Path(path).mkdir(parents=True, exist_ok=True)
        except (ray.exceptions.RayError, docker.errors.DockerException, EngineError, OSError, ValueError, tarfile.TarError) as exc:
            raise StagingError(f"could not bring its image or data here ({first_line(exc)})") from exc
        return dataclasses.replace(
            spec,
            mounts=tuple(dataclasses.replace(m, source=moved.get(m.source, m.source)) for m in spec.mounts),
            writable=tuple(moved.get(w, w) for w in spec.writable),
            log_dir=moved.get(spec.log_dir, spec.log_dir),
        )

    def node_dir(self, node_id: str) -> Path:
        return Path(self.cache_dir) / node_id[:16]

    def _run_dirs(self, spec: PhaseSpec, node_dir: Path) -> dict[str, str]:
        """The driver's paths under its ``runs`` directory that ``spec`` uses -> this node's own."""
        if self.runs_root is None:
            return {}
        root = Path(self.runs_root)
        paths = [m.source for m in spec.mounts] + [spec.log_dir]
        return {p: str(node_dir / "runs" / Path(p).relative_to(root)) for p in paths if Path(p).is_relative_to(root)}

    def bring_back(self, spec: PhaseSpec, ran: PhaseSpec, result: PhaseResult, node_id: str) -> None:
        """On the node, after ``ran`` (``spec`` as ``prepare`` moved it): put in ``result`` what the
        driver keeps of a phase that ran on this node's disk, under the driver's paths: the logs, the
        predictions file (infer), the model's tree hash (train)."""
        if ran.log_dir == spec.log_dir:  # it ran on the driver's disk
            if spec.phase == "train":
                result.model_node = node_id  # its infer must run here too: no other node sees that disk
            return
        files = {}
        for entry in Path(ran.log_dir).iterdir():
            if entry.is_file() and not entry.is_symlink():
                files[str(Path(spec.log_dir) / entry.name)] = entry.read_bytes()
        targets = {m.target: (m.source, moved.source) for m, moved in zip(spec.mounts, ran.mounts, strict=True)}
        name, limit = self.predictions
        if "/output" in targets and (data := _read_regular(Path(targets["/output"][1]) / name, limit + 1)) is not None:
            files[str(Path(targets["/output"][0]) / name)] = data
        if spec.phase == "train" and "/model" in targets:
            model = Path(targets["/model"][1])
            result.model_sha256, result.model_node = tree_sha256(model), node_id
            if spec.keep_model and result.verdict is PhaseVerdict.OK:
                result.model_archive = self._send_model(model, result.model_sha256, node_id)
        result.returned = files

    def _send_model(self, model: Path, sha256: str, node_id: str) -> str:
        """The model's archive, sent to the depot; its name there."""
        fd, name = tempfile.mkstemp(dir=self.node_dir(node_id), prefix=".model-")  # two trains may make the same model at once
        archive = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                write_tree_archive(model, fh)
            return send(self.depot, archive, f"model-{sha256}.tar").name
        except (ray.exceptions.RayError, OSError, ValueError, ArchiveError, tarfile.TarError) as exc:
            raise StagingError(f"could not send its model back to the driver ({first_line(exc)})") from exc
        finally:
            archive.unlink(missing_ok=True)

    def receive(self, spec: PhaseSpec, result: PhaseResult) -> None:
        """On the driver: write the files a phase on another node brought back where they belong,
        and a copy of the model's archive it sent to the depot beside the model's directory."""
        for path, data in result.returned.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(data)
        result.returned = {}
        if result.model_archive:
            model = next(m.source for m in spec.mounts if m.target == "/model")
            ray.get(self.depot.deliver.remote(result.model_archive, str(archive_path(Path(model)))))


def _read_regular(path: Path, most: int) -> bytes | None:
    """Up to ``most`` bytes of ``path`` when it is a regular file (never through a link), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read(most) if stat.S_ISREG(os.fstat(fd).st_mode) else None


def restore_model(name: str, target: Path, depot: ActorHandle, node_dir: Path) -> None:
    """Unpack the depot's model archive ``name`` into ``target`` unless this node has the model there
    (its train ran here); the archive is checked by its hash on the way."""
    if target.is_dir() and any(target.iterdir()):
        return
    with _node_lock(node_dir, "model"):
        archive = ray.get(depot.archive.remote(name))
        path = node_dir / f".{name}"
        try:
            fetch(depot, archive, path)
            shutil.rmtree(target, ignore_errors=True)
            with open(path, "rb") as fh:
                extract_tree_archive(fh, target)
        except ArchiveError as exc:
            raise ValueError(f"the model archive {name} cannot be unpacked: {exc}") from None
        finally:
            path.unlink(missing_ok=True)


def has_image(client: docker.DockerClient, digest: str) -> bool:
    try:
        return client.images.get(digest).id == digest
    except docker.errors.ImageNotFound:
        return False


def ensure_image(
    client: docker.DockerClient,
    digest: str,
    depot: ActorHandle,
    node_dir: Path,
    *,
    pull_from: str | None = None,
    credential: RegistryCredential | None = None,
) -> None:
    """Bring the image whose id is ``digest`` to this node's engine unless it has it: pulled from
    ``pull_from`` with ``credential`` when both are given, else (or when the pull fails) loaded from
    the depot's archive; either way checked by its id."""
    if has_image(client, digest):
        return
    with _node_lock(node_dir, "image"):
        if has_image(client, digest):
            return
        if pull_from is not None and credential is not None and pull_image(client, pull_from, digest, credential):
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


def pull_image(client: docker.DockerClient, reference: str, digest: str, credential: RegistryCredential) -> bool:
    """Pull ``reference`` (``host:port/repository@sha256:...``) with ``credential``; whether the engine
    then holds the pinned image ``digest``. A registry that does not answer, refuses, has lost the
    manifest or serves another image is the organizer's problem, not the submission's: it is logged
    and answered False, so the depot brings the image instead."""
    repository, _, manifest = reference.partition("@")
    try:
        events = client.api.pull(repository, tag=manifest, auth_config=credential.auth_config(), stream=True, decode=True)
        problem = next((str(event["error"]) for event in events if "error" in event), None)
        if problem is None and not has_image(client, digest):
            problem = f"it holds image {client.images.get(reference).id[:19]}, not the pinned {digest[:19]}"
            client.images.remove(reference)
    except (docker.errors.DockerException, OSError) as exc:
        problem = first_line(exc)
    if problem is not None:
        log.warning("could not pull %s from the registry (%s); the depot brings the image instead", reference, problem)
    return problem is None


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
