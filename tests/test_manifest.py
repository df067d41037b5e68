"""Manifests: safe tree hashes, the cached per-file data manifest, and every manifest field of a
record made by a real container run."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import types

import numpy
import pytest
from evaluations import evaluate
from homes import own_copies

import harness.util.hashing as manifest
from harness import __version__
from harness.competition.data_manifest import CACHE_NAME, changes_since, load_snapshot
from harness.competition.paths import TELEMETRY_FILE
from harness.records.record import validate_record
from harness.runner.host import gpu_info
from harness.util.environment import environment_fingerprint
from harness.util.hashing import regular_file_sha256, tree_sha256


def test_tree_hash_never_follows_links_or_opens_special_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("organizer only")
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"\1" * 1000)
    (model / "sub" / "link").symlink_to(secret)
    (model / "root").symlink_to("/")
    (model / "loop").symlink_to("loop")
    os.mkfifo(model / "pipe")  # opening it for reading would block forever
    os.link(model / "weights.bin", model / "hard.bin")
    deep = os.open(model, os.O_RDONLY)
    for level in range(30):  # a path far past PATH_MAX, reachable only relative to a descriptor
        name = str(level).rjust(200, "d")
        os.mkdir(name, dir_fd=deep)
        deep, parent = os.open(name, os.O_RDONLY, dir_fd=deep), deep
        os.close(parent)
    with open(os.open("deep.bin", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=deep), "wb") as fh:
        fh.write(b"deep")
    os.close(deep)

    entries = manifest.scan_tree(model)
    assert entries["sub/link"].digest == f"symlink:{secret}"
    assert entries["pipe"].digest == "fifo" and entries["loop"].digest == "symlink:loop"
    assert entries["hard.bin"].digest == entries["weights.bin"].digest == hashlib.sha256(b"\1" * 1000).hexdigest()
    assert any(rel.endswith("/deep.bin") and e.digest == hashlib.sha256(b"deep").hexdigest() for rel, e in entries.items())
    before = tree_sha256(model)
    secret.write_text("changed, but only behind a link")
    assert tree_sha256(model) == before
    (model / "weights.bin").write_bytes(b"\2" * 1000)
    assert tree_sha256(model) != before
    assert regular_file_sha256(model / "pipe") is None and regular_file_sha256(model / "sub" / "link") is None
    assert regular_file_sha256(model / "weights.bin", max_bytes=10) is None


def test_data_manifest_reads_only_changed_files_and_names_them(competition, monkeypatch):
    own_copies(competition().paths.root / "data")  # its images' ctimes are its own: another test's link moves a shared one's
    target = next(iter(sorted((competition().paths.train / "images").iterdir())))  # changed in place below
    reads = []
    real = manifest._sha256
    monkeypatch.setattr(manifest, "_sha256", lambda fh: reads.append(fh.name) or real(fh))
    first = competition().data_manifest
    assert reads and len(first.files) > 1800  # a new work directory has no cache of the hashes: all read once
    assert {"data/train/train.csv", "data/test/test.csv", "hidden/labels.csv"} <= set(first.files)

    reads.clear()
    assert competition().data_manifest == first and reads == []  # nothing changed: nothing read

    rel = f"data/train/images/{target.name}"
    stat = target.stat()
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime: the ctime still moves
    reads.clear()
    current = competition().data_manifest
    assert len(reads) == 1
    root = competition().paths.root
    changes = changes_since(root, current, first.sha256)
    assert [(c.path, c.change) for c in changes] == [(rel, "changed")]
    assert load_snapshot(root, first.sha256) == first  # the earlier state is kept for audits
    assert json.loads((root / CACHE_NAME).read_text())["files"][rel][0] == current.files[rel]


def test_gpu_host_fields_through_nvml(monkeypatch):
    """Faked: this machine has no GPU; the fake stands for nvidia-ml-py's module."""
    fake = types.SimpleNamespace(
        NVMLError=RuntimeError,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: b"NVIDIA H200",
        nvmlDeviceGetUUID=lambda h: "GPU-1234",
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=141 * 1024**3),
        nvmlSystemGetDriverVersion=lambda: "570.86",
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert gpu_info() == {"gpu_driver": "570.86", "gpus": [{"name": "NVIDIA H200", "uuid": "GPU-1234", "memory_bytes": 141 * 1024**3}]}


@pytest.mark.docker
def test_every_manifest_field_of_a_real_evaluation(competition, docker_client, behave_image):
    digits = competition()
    record = evaluate(digits, docker_client, behave_image("constant"))
    assert record.verdict == "SCORED", record.message
    saved = json.loads((digits.paths.records / f"{record.evaluation_id}.json").read_text())
    validate_record(saved)
    m = saved["manifest"]
    settings = digits.settings
    assert m["data_sha256"] == digits.data_sha256 and load_snapshot(digits.paths.root, m["data_sha256"]) is not None
    assert m["config_sha256"] == hashlib.sha256(settings.resolved_yaml.encode()).hexdigest()
    assert m["config"] == settings.as_dict() and m["config"]["limits"]["train"]["wall_clock_s"] == settings.limits.train.wall_clock_s
    assert m["image_digest"] == saved["submission"]["image_digest"] == docker_client.images.get(behave_image("constant")).id
    assert m["harness_version"] == __version__ and m["seed"] == settings.seed == 42
    assert m["environment"] == environment_fingerprint() and m["environment"]["packages"]["harness"] == __version__
    assert m["environment"]["packages"]["numpy"] == numpy.__version__ and m["environment"]["python"] == platform.python_version()
    host = m["host"]
    assert host["cpu_cores"] == os.cpu_count() and host["memory_bytes"] > 0 and host["cpu_model"]
    assert host["kernel"] == os.uname().release and host["docker_version"] == docker_client.version()["Version"]
    run_dir = digits.paths.runs / record.evaluation_id
    assert m["model_sha256"] == tree_sha256(run_dir / "model")
    assert m["predictions_sha256"] == hashlib.sha256((run_dir / "output" / "predictions.csv").read_bytes()).hexdigest()
    telemetry = json.loads((run_dir / TELEMETRY_FILE).read_text())
    assert telemetry["train"]["memory_bytes"][0][1] > 0
    assert "series" not in saved["phases"]["train"]


@pytest.mark.docker
def test_a_failed_train_has_no_model_hash(competition, docker_client, behave_image):
    record = evaluate(competition(), docker_client, behave_image("crash"))
    assert record.verdict == "RUNTIME_ERROR"
    assert record.manifest["model_sha256"] is None and record.manifest["predictions_sha256"] is None
