"""A container's outputs are untrusted data: links and special files are refused or skipped, never followed.

The container cases run real submissions; the measuring cases build hostile trees on the host,
where the shapes the kernel forbids a container (a path past PATH_MAX, a swap mid-walk) are easy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_accounting_nonroot import NONROOT_UID, interpreter
from test_check import check

from harness.limits.output_watch import MAX_DEPTH, measure
from harness.records.model_store import ModelStore

MIB = 1024**2


@pytest.mark.docker
@pytest.mark.parametrize(
    ("behaviour", "fault"),
    [
        ("fifo", "/output/predictions.csv is a named pipe (FIFO), not a regular file"),
        # mknod needs CAP_MKNOD, which no container has: the file is never made
        ("device", "/output/predictions.csv was not written"),
        ("directory", "/output/predictions.csv is a directory, not a regular file"),
        # 200 MiB long but sparse: refused from its size alone, before a byte is parsed
        (
            "oversized",
            "/output/predictions.csv is 200.0 MiB, over the limit of 10.0 MiB; it was not read",
        ),
    ],
)
def test_hostile_predictions_are_refused(competition, docker_client, behave_image, behaviour, fault):
    record = check(competition, docker_client, behave_image(behaviour))
    assert record.verdict == "INVALID_PREDICTIONS" and record.failed_phase == "score"
    assert fault in record.message
    assert record.phases.infer.verdict == "OK"


def planted_link(home: Path, record, path: str) -> Path:
    """The link a behaviour planted in its run's ``path``, once its premise is checked: the target
    the container computed (from its mountinfo) is the real hidden labels file on this host, so a
    harness that followed it would read the labels."""
    link = home / "competitions/digits/runs" / record.evaluation_id / path
    labels = home / "competitions/digits/hidden/labels.csv"
    assert link.is_symlink(), f"{link} is not the link the behaviour plants"
    target = os.readlink(link)
    assert os.path.isabs(target) and os.path.exists(target) and os.path.samefile(target, labels), (
        f"the planted link points to {target}, not to {labels}"
    )
    assert Path(target).read_bytes() == labels.read_bytes() and labels.read_bytes().startswith(b"id,label,split\n")
    return link


@pytest.mark.docker
def test_predictions_linked_to_the_hidden_labels_are_refused_never_followed(competition, docker_client, behave_image, home):
    """The infer phase makes /output/predictions.csv a link to the hidden labels' host path (read
    from the data mount's source in mountinfo): followed, it would hand the harness the labels."""
    record = check(competition, docker_client, behave_image("symlink"))
    link = planted_link(home, record, "output/predictions.csv")
    assert record.phases.infer.verdict == "OK"
    assert record.verdict == "INVALID_PREDICTIONS" and record.failed_phase == "score", record.message
    assert record.message == (
        f"/output/predictions.csv is a symbolic link (to {os.readlink(link)!r}), not a regular file; write the predictions into a plain file"
    )
    assert not record.scores


@pytest.mark.docker
def test_device_node_cannot_be_made(competition, docker_client, behave_image, home):
    record = check(competition, docker_client, behave_image("device"))
    log = home / "competitions/digits/runs" / record.evaluation_id / "logs/infer.stdout.log"
    assert log.read_text() == "mknod: EPERM\n"


@pytest.mark.docker
def test_links_and_pipes_in_model_are_never_followed(competition, docker_client, behave_image, home):
    """/model holds a link to the hidden labels, one to /, a loop, a FIFO and hard links."""
    record = check(competition, docker_client, behave_image("modeltrap"))
    assert record.verdict == "SCORED", record.message
    planted_link(home, record, "model/labels.csv")  # the premise: that link reaches the real labels
    train = record.phases.train
    # model.json, big.bin and its 3 hard links, 3 symbolic links and a FIFO
    assert train.output_files == 9
    # the 1 MiB file counts once, whatever links to it; the links' targets count nothing
    assert MIB <= train.output_bytes <= MIB + 64 * 1024
    assert record.manifest["model_sha256"]  # hashing the model went through the links and the FIFO untouched
    # Archived and restored as it is: the links as links (never followed), the FIFO as a FIFO.
    model, restored = home / "competitions/digits/runs" / record.evaluation_id / "model", home / "restored"
    store = ModelStore((home / "store").as_uri())
    store.archive(model, record.manifest["model_sha256"])
    store.restore(record.manifest["model_sha256"], restored)  # checks the tree hash
    assert os.readlink(restored / "labels.csv") == os.readlink(model / "labels.csv") and (restored / "pipe").is_fifo()


def _tree(root: Path, spec: dict[str, object]) -> None:
    for name, content in spec.items():
        path = root / name
        if isinstance(content, dict):
            path.mkdir()
            _tree(path, content)
        else:
            path.write_bytes(content)


def test_measure_counts_blocks_and_entries(tmp_path):
    _tree(tmp_path, {"a": {"b": {"c.bin": b"\1" * MIB}}, "d.bin": b"\1" * 4096})
    usage = measure([str(tmp_path)])
    assert (usage.files, usage.problem) == (4, None)
    assert MIB + 4096 <= usage.bytes <= MIB + 4096 + 3 * 4096  # directories take a block each


def test_measure_never_follows_links_nor_opens_pipes(tmp_path):
    (tmp_path / "root").symlink_to("/")
    (tmp_path / "loop").symlink_to("loop")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "big").write_bytes(b"\1" * MIB)
    for i in range(3):
        os.link(tmp_path / "big", tmp_path / f"big-{i}")
    usage = measure([str(tmp_path)])
    assert (usage.files, usage.problem) == (7, None)
    assert usage.bytes == MIB


def test_measure_reaches_past_path_max(tmp_path):
    deep = tmp_path
    for level in range(30):  # 30 * 201 bytes: past PATH_MAX (4096), which no path-based walk can open
        deep = deep / str(level).rjust(200, "d")
        _mkdir_relative(deep)
    _write_relative(deep / "deep.bin", b"\1" * MIB)
    usage = measure([str(tmp_path)])
    assert usage.problem is None and usage.files == 31 and usage.bytes >= MIB


def test_measure_refuses_nesting_past_the_depth_cap(tmp_path):
    deep = tmp_path
    for _level in range(MAX_DEPTH + 1):
        deep = deep / "d"
    deep.mkdir(parents=True)
    assert measure([str(tmp_path)]).problem == f"nested directories more than {MAX_DEPTH} levels deep"
    assert measure([str(tmp_path / "d")]).problem is None  # exactly MAX_DEPTH levels: allowed


def test_unreadable_output_is_a_problem_only_when_the_walk_cannot_enter():
    """A container that locks a directory of its output (mode 000) has made output the harness
    cannot measure: that is OUTPUT_LIMIT, never a smaller figure. Root reads every directory, so
    as root (CI) the measure runs in a child dropped to the uid a non-root harness runs as, which
    is then also the container's uid and owner of the tree (the whole phase, without root, is in
    test_accounting_nonroot)."""
    top = Path(tempfile.mkdtemp(prefix="harness-unreadable-"))
    try:
        (top / "open").mkdir()
        (top / "open" / "a.bin").write_bytes(b"\1" * 4096)
        (top / "locked").mkdir()
        (top / "locked" / "hidden.bin").write_bytes(b"\1" * MIB)
        (top / "locked").chmod(0)
        kwargs = {}
        if os.geteuid() == 0:
            for path in (top, top / "open", top / "open" / "a.bin", top / "locked", top / "locked" / "hidden.bin"):
                os.chown(path, NONROOT_UID, NONROOT_UID)
            kwargs = {"user": NONROOT_UID, "group": NONROOT_UID, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1"}
        script = "import json, sys; from harness.limits.output_watch import measure; print(json.dumps([measure([p]).problem for p in sys.argv[1:]]))"
        done = subprocess.run(
            [*interpreter(kwargs, env), "-c", script, str(top), str(top / "open")],
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            check=False,
            **kwargs,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == ["made a directory the harness cannot read (locked: Permission denied)", None]
    finally:
        (top / "locked").chmod(0o700)
        shutil.rmtree(top)


def _at(path: Path):
    """(descriptor of the parent, name) for a path too long to open whole."""
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    for part in path.parent.parts[1:]:
        child = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    return fd, path.name


def _mkdir_relative(path: Path) -> None:
    fd, name = _at(path)
    try:
        os.mkdir(name, dir_fd=fd)
    finally:
        os.close(fd)


def _write_relative(path: Path, data: bytes) -> None:
    fd, name = _at(path)
    try:
        out = os.open(name, os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
        os.write(out, data)
        os.close(out)
    finally:
        os.close(fd)


@pytest.mark.docker
@pytest.mark.parametrize(
    ("behaviour", "reads_as"),
    [("hardlinks", "800.0 MiB"), ("sparse", "600.0 MiB")],
    ids=["hard-links", "sparse-file"],
)
def test_a_model_small_on_disk_but_huge_to_read_is_over_the_disk_limit(competition, docker_client, behave_image, behaviour, reads_as):
    """8 MiB of blocks behind 100 names, or ten 60 MiB files of holes (each under the kernel's file-size cap): the disk limit bounds what
    reading the model name by name would read (the harness hashes, archives and sends it after the
    phase), so the phase ends OUTPUT_LIMIT saying by how much, and nothing of it is read or archived."""
    record = check(competition, docker_client, behave_image(behaviour), "limits.train.disk=64m")
    assert (record.verdict, record.failed_phase) == ("OUTPUT_LIMIT", "train"), record.message
    # the watch may stop it before it is done: what it read then, and by how much that is over
    said = re.search(
        r"wrote files that read as ([\d.]+) MiB in full \(each name counted: hard links and sparse files at their length\), "
        r"([\d.]+) MiB over the disk limit of 64\.0 MiB",
        record.message,
    )
    assert said, record.message
    read, over = float(said[1]), float(said[2])
    assert 64 < read <= float(reads_as.split()[0]) and over == round(read - 64, 1)
    assert record.phases.infer is None and record.manifest["model_sha256"] is None
