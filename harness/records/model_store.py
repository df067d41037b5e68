"""Every evaluation's trained model, archived by its tree hash in the artifact store.

The store is an MLflow artifact repository (``tracking.models``): by default a directory beside the
embedded tracking store (``$HARNESS_HOME/mlartifacts/harness-models``), or the tracking server's own
artifact store (``mlflow-artifacts:/harness-models``) when tracking goes to a server; any URI MLflow
reads works (``s3://bucket/models``, with MinIO through ``MLFLOW_S3_ENDPOINT_URL``; ``gs://``). A
model is the deterministic archive of its tree (``harness.util.archives``) at
``<hash[:2]>/<hash>.tar``, so the same model is stored once, and a restored model is checked by
unpacking it and hashing the tree again. Nothing here trusts what the store returns.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from harness.competition.core import Competition
from harness.records.artifacts import stored_model
from harness.records.record import EvaluationRecord
from harness.records.tracking import quiet_mlflow
from harness.util.archives import ArchiveError, extract_tree_archive, write_tree_archive
from harness.util.errors import HarnessError, first_line
from harness.util.hashing import tree_sha256
from harness.util.redact import redact_text

FOLDER = "harness-models"


class ModelStoreError(HarnessError):
    """A model could not be archived or restored; the message says which and why."""


class ModelMissing(ModelStoreError):
    """The store does not hold the model."""


class ModelDamaged(ModelStoreError):
    """What the store (or this machine) holds under the model's hash is not that model, or not safe to unpack."""


class ModelStore:
    def __init__(self, uri: str, tracking_uri: str | None = None) -> None:
        self.uri = uri
        self.tracking_uri = tracking_uri

    @classmethod
    def for_competition(cls, competition: Competition) -> ModelStore:
        tracking = competition.settings.tracking
        uri, server = tracking.models, tracking.uri
        if uri is None:
            on_server = server is not None and server.startswith(("http://", "https://"))
            uri = f"mlflow-artifacts:/{FOLDER}" if on_server else (competition.home / "mlartifacts" / FOLDER).as_uri()
        return cls(uri, server)

    def __repr__(self) -> str:
        return f"ModelStore({redact_text(self.uri)!r})"

    def has(self, sha256: str) -> bool:
        folder, name = _place(sha256)
        try:
            return any(entry.path == f"{folder}/{name}" for entry in self._repository().list_artifacts(folder))
        except Exception as exc:  # noqa: BLE001 - whatever the store's client raises
            raise self._failed("look for", sha256, exc) from None

    def keep(self, competition: Competition, record: EvaluationRecord) -> None:
        """Archive the model ``record`` names, from this machine, unless it has none or the store has it."""
        sha256 = record.manifest.get("model_sha256")
        if not sha256 or self.has(sha256):
            return
        source = stored_model(competition, record)
        if source is None:
            raise ModelStoreError(f"the model {sha256[:12]} of {record.evaluation_id} is neither in {self} nor on this machine")
        self.archive(source, sha256)

    def archive(self, source: Path, sha256: str) -> None:
        """Store the model whose tree hash is ``sha256``, from its directory (hashed first) or from
        its archive (``harness.util.archives.archive_path``)."""
        folder, name = _place(sha256)
        with tempfile.TemporaryDirectory(prefix="harness-model-") as work:
            archive = Path(work) / name
            if source.is_dir():
                _pack(source, sha256, archive)
            else:
                shutil.copyfile(source, archive)
            try:
                self._repository().log_artifact(str(archive), folder)
            except Exception as exc:  # noqa: BLE001 - whatever the store's client raises
                raise self._failed("archive", sha256, exc) from None

    def restore(self, sha256: str, target: Path) -> None:
        """Unpack the stored model into ``target`` (made, or empty) and check its tree hash; on any
        failure ``target`` is left empty. ``ModelMissing`` when the store does not hold it."""
        if not self.has(sha256):
            raise ModelMissing(f"the artifact store {redact_text(self.uri)} holds no model {sha256[:12]}")
        folder, name = _place(sha256)
        with tempfile.TemporaryDirectory(prefix="harness-model-") as work:
            try:
                local = self._repository().download_artifacts(f"{folder}/{name}", work)
            except Exception as exc:  # noqa: BLE001 - whatever the store's client raises
                raise self._failed("fetch", sha256, exc) from None
            _unpack(Path(local), sha256, target, f"the stored model {sha256[:12]} in {redact_text(self.uri)}")

    def _repository(self):
        quiet_mlflow()
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository  # slow import: only when used

        return get_artifact_repository(self.uri, tracking_uri=self.tracking_uri)

    def _failed(self, doing: str, sha256: str, exc: Exception) -> ModelStoreError:
        return ModelStoreError(f"could not {doing} the model {sha256[:12]} in {redact_text(self.uri)}: {redact_text(first_line(exc))}")


def _place(sha256: str) -> tuple[str, str]:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ModelStoreError(f"not a model's tree hash: {sha256!r}")
    return sha256[:2], f"{sha256}.tar"


def restore_kept(source: Path, sha256: str, target: Path) -> None:
    """A model this machine keeps (its directory, or the archive a node sent back) into ``target``,
    checked like a stored one."""
    with tempfile.TemporaryDirectory(prefix="harness-model-") as work:
        archive = source
        if source.is_dir():
            archive = Path(work) / "model.tar"
            _pack(source, sha256, archive)
        _unpack(archive, sha256, target, f"the model {sha256[:12]} kept in {source}")


def _pack(tree: Path, sha256: str, archive: Path) -> None:
    """The archive of the model directory ``tree``, once it proved to be the model ``sha256``."""
    if (found := tree_sha256(tree)) != sha256:
        raise ModelStoreError(f"the model directory {tree} hashes to {found[:12]}, not to the model {sha256[:12]} its record names")
    try:
        with open(archive, "wb") as fh:
            write_tree_archive(tree, fh)
    except ArchiveError as exc:
        raise ModelStoreError(f"the model {sha256[:12]} cannot be archived: {exc}") from None


def _unpack(archive: Path, sha256: str, target: Path, what: str) -> None:
    """Unpack ``archive`` into ``target`` and check it is the model ``sha256``; ``target`` is left
    empty when it is not."""
    try:
        with open(archive, "rb") as fh:
            extract_tree_archive(fh, target)
        found = tree_sha256(target)
        problem = None if found == sha256 else f"it unpacks to a tree that hashes to {found[:12]}"
    except ArchiveError as exc:
        problem = f"its archive is unsafe or damaged ({exc})"
    if problem is not None:
        _empty(target)
        raise ModelDamaged(f"{what} cannot be used: {problem}")


def _empty(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
