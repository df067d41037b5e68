"""Models archived by their tree hash in the artifact store (``harness.records.model_store``): the
deterministic archive of a tree and its safe unpacking (``harness.util.archives``), a store that
keeps each model once and never hands back one that does not hash as recorded, and the commands
that restore a model from it (``reinfer``, ``audit``) once the machine that trained it kept nothing."""

from __future__ import annotations

import io
import os
import shutil
import socket
import tarfile
from pathlib import Path

import pytest
from evaluations import evaluate

from harness.proofs.audit import audit
from harness.proofs.reinfer import reinfer
from harness.records.model_store import ModelDamaged, ModelMissing, ModelStore, ModelStoreError
from harness.records.record import load_records
from harness.records.sinks import RecordSinks
from harness.records.tracking import Tracker
from harness.util.archives import ArchiveError, extract_tree_archive, write_tree_archive
from harness.util.errors import HarnessError
from harness.util.hashing import tree_sha256


def model_tree(root: Path) -> Path:
    """A model with what a submission may leave: nested files, an executable, an empty file, links
    (to outside, to /, dangling) and a FIFO."""
    (root / "weights" / "layer").mkdir(parents=True)
    (root / "weights" / "layer" / "w.bin").write_bytes(os.urandom(70_000))
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o700)
    (root / "empty").touch()
    os.symlink("/etc/shadow", root / "secret")
    os.symlink("/", root / "root")
    os.symlink("../../hidden/labels.csv", root / "weights" / "labels.csv")
    os.mkfifo(root / "pipe")
    return root


def archive_bytes(root: Path) -> bytes:
    buffer = io.BytesIO()
    write_tree_archive(root, buffer)
    return buffer.getvalue()


def test_a_tree_archives_to_the_same_bytes_and_unpacks_to_the_same_hash(tmp_path):
    one, two = model_tree(tmp_path / "one"), model_tree(tmp_path / "two")
    (two / "weights" / "layer" / "w.bin").write_bytes((one / "weights" / "layer" / "w.bin").read_bytes())
    os.utime(two / "empty", (1, 1))
    (two / "weights").chmod(0o700)
    assert archive_bytes(one) == archive_bytes(two)  # no times, owners or modes but the execute bit

    restored = tmp_path / "restored"
    extract_tree_archive(io.BytesIO(archive_bytes(one)), restored)
    assert tree_sha256(restored) == tree_sha256(one)
    assert os.readlink(restored / "secret") == "/etc/shadow" and (restored / "pipe").is_fifo()
    assert os.access(restored / "run.sh", os.X_OK) and not os.access(restored / "empty", os.X_OK)
    assert (restored / "weights" / "layer").stat().st_mode & 0o777 == 0o755  # readable by a container's user


def test_a_socket_is_left_out_and_the_unpacked_tree_says_so_by_its_hash(tmp_path):
    root = model_tree(tmp_path / "model")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(root / "sock"))
    restored = tmp_path / "restored"
    extract_tree_archive(io.BytesIO(archive_bytes(root)), restored)
    assert not (restored / "sock").exists() and tree_sha256(restored) != tree_sha256(root)


def hostile_archive(*members: tarfile.TarInfo, data: bytes = b"x") -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member in members:
            if member.isreg():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    buffer.seek(0)
    return buffer


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("members", "said"),
    [
        ((member("/etc/evil"),), "not a plain relative path"),
        ((member("../evil"),), "not a plain relative path"),
        ((member("a/../../evil"),), "not a plain relative path"),
        ((member("out", tarfile.SYMTYPE, ".."), member("out/evil")), "passes through a link"),
        ((member("up", tarfile.SYMTYPE, "/tmp"), member("up/x/evil")), "passes through a link"),
        ((member("a"), member("hard", tarfile.LNKTYPE, "a")), "neither a file, a link nor a FIFO"),
        ((member("dev", tarfile.CHRTYPE),), "neither a file, a link nor a FIFO"),
        ((member("twice"), member("twice")), "FileExistsError"),
    ],
)
def test_an_unsafe_archive_is_refused_and_writes_nothing_outside(tmp_path, members, said):
    target = tmp_path / "deep" / "target"
    with pytest.raises(ArchiveError, match=said):
        extract_tree_archive(hostile_archive(*members), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"] and not (tmp_path / "deep" / "evil").exists()


def test_unpacking_needs_an_empty_directory(tmp_path):
    (tmp_path / "old").touch()
    with pytest.raises(ArchiveError, match="is not empty"):
        extract_tree_archive(hostile_archive(member("a")), tmp_path)


def test_the_store_keeps_a_model_once_and_hands_back_only_what_hashes_right(tmp_path):
    store = ModelStore((tmp_path / "store").as_uri())
    model = model_tree(tmp_path / "model")
    sha256 = tree_sha256(model)
    assert not store.has(sha256)
    store.archive(model, sha256)
    stored = tmp_path / "store" / sha256[:2] / f"{sha256}.tar"
    assert store.has(sha256) and stored.read_bytes() == archive_bytes(model)
    store.restore(sha256, tmp_path / "back")
    assert tree_sha256(tmp_path / "back") == sha256

    with pytest.raises(ModelStoreError, match="hashes to .*, not to the model 000000000000"):
        store.archive(model, "0" * 64)  # a directory is hashed before it is stored under a hash
    with pytest.raises(ModelMissing, match=f"holds no model {'1' * 12}"):
        store.restore("1" * 64, tmp_path / "none")
    with pytest.raises(ModelStoreError, match="not a model's tree hash"):
        store.has("../../etc")

    (model / "empty").write_text("tampered")
    stored.write_bytes(archive_bytes(model))  # someone replaced the stored archive
    with pytest.raises(ModelDamaged, match="unpacks to a tree that hashes to"):
        store.restore(sha256, tmp_path / "tampered")
    assert not any((tmp_path / "tampered").iterdir())  # nothing of it is left to use


def test_the_default_store_is_beside_the_tracking_store(competition, home, monkeypatch):
    assert ModelStore.for_competition(competition()).uri == (home / "mlartifacts" / "harness-models").as_uri()
    served = ModelStore.for_competition(competition("tracking.uri=http://127.0.0.1:5000"))
    assert (served.uri, served.tracking_uri) == ("mlflow-artifacts:/harness-models", "http://127.0.0.1:5000")
    assert ModelStore.for_competition(competition("tracking.models=s3://bucket/models")).uri == "s3://bucket/models"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    hidden = ModelStore("mlflow-artifacts:/harness-models", "http://user:secret@127.0.0.1:9")  # nothing listens there
    with pytest.raises(ModelStoreError, match="could not look for the model 222222222222 in mlflow-artifacts:/harness-models") as failed:
        hidden.has("2" * 64)
    assert "secret" not in str(failed.value)


@pytest.mark.docker
def test_reinfer_and_audit_restore_the_model_from_the_store_alone(competition, docker_client, behave_image):
    digits = competition()
    earlier = evaluate(digits, docker_client, behave_image("constant"), tracker=Tracker.for_competition(digits))
    sha256 = earlier.manifest["model_sha256"]
    assert ModelStore.for_competition(digits).has(sha256)  # archived when the record was published
    shutil.rmtree(digits.paths.run(earlier.evaluation_id).root)  # the machine that trained it kept nothing

    (again,) = reinfer(digits, [earlier.submission.id], None, RecordSinks())
    assert again.verdict == "SCORED" and again.manifest["model_sha256"] == sha256
    assert again.manifest["predictions_sha256"] == earlier.manifest["predictions_sha256"]
    assert again.origin == {"kind": "reinfer", "evaluation_id": earlier.evaluation_id}
    report = audit(digits, earlier.evaluation_id)
    assert report.status == "PASS", report.differences
    assert not [d for d in report.differences if d.kind == "model"]

    stored = next((digits.home / "mlartifacts" / "harness-models").rglob(f"{sha256}.tar"))
    forged = digits.home / "forged"
    forged.mkdir()
    (forged / "model.json").write_text("{}")
    stored.write_bytes(archive_bytes(forged))
    with pytest.raises(HarnessError, match=f"cannot re-infer from {again.evaluation_id}: the stored model .* unpacks to a tree"):
        reinfer(digits, [earlier.submission.id], None, RecordSinks())
    report = audit(digits, earlier.evaluation_id)
    (damaged,) = [d for d in report.differences if d.kind == "model"]
    assert report.status == "FAIL" and damaged.fatal and "unpacks to a tree that hashes to" in damaged.observed
    assert len(load_records(digits.paths.records)) == 2  # the refused re-infer recorded nothing, left no run


@pytest.mark.docker
def test_reinfer_of_a_model_not_archived_yet_uses_the_one_this_machine_keeps(competition, docker_client, behave_image):
    digits = competition()
    earlier = evaluate(digits, docker_client, behave_image("constant"))  # no sink: never published, so never archived
    assert not ModelStore.for_competition(digits).has(earlier.manifest["model_sha256"])
    (again,) = reinfer(digits, [earlier.submission.id], None, RecordSinks())
    assert again.verdict == "SCORED" and again.manifest["model_sha256"] == earlier.manifest["model_sha256"]

    shutil.rmtree(digits.paths.runs)  # neither run keeps the model now
    with pytest.raises(HarnessError, match="holds no model .*, and this machine does not keep it either"):
        reinfer(digits, [earlier.submission.id], None, RecordSinks())
    assert not digits.paths.runs.exists()  # the refused batch left no run directory
