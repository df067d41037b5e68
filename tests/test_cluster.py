"""Rounds on a multi-node Ray cluster in one machine (``ray.cluster_utils.Cluster``): three one-CPU
nodes (the head, where the driver runs, and two workers), all on this machine's Docker engine and
filesystem.

What that can prove: phases spread over nodes, a node lost mid-round is survived, an image absent
from a node's engine is brought as an archive and verified by its id, the data is staged per node
and verified by its manifest hash. What it cannot: that bytes cross a network, or engines differ.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
from clusters import node_of, ray_cluster, records, round_competition, submit

from harness.rounds.driver import drive_round
from harness.runner.depot import CHUNK_BYTES, Archive, DataStage, Depot, fetch, send
from harness.runner.ray_pool import NODE_LABEL
from harness.runner.staging import VERIFIED, stage_data

pytestmark = [pytest.mark.docker, pytest.mark.slow]

WORKERS = 2


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster(1, [{}] * WORKERS) as (cluster, workers):
        yield cluster, workers


def evaluation_runs(home: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("digits")
    return client.search_runs([experiment.experiment_id], "tags.`harness.kind` = 'evaluation'")


def test_round_uses_every_node_and_brings_a_missing_image(cluster, home, competition, behave_image, docker_client, tmp_path):
    ray_cluster, workers = cluster
    comp = round_competition(competition, tmp_path / "nodes")
    # three: the pool hands Ray as many trains at once as the cluster has CPUs, and each node has one
    ids = [submit(comp, f"team{i}", behave_image("nap0.5")) for i in range(3)]
    # An image no engine has any more: only the depot's archive can bring it back (pre-made here,
    # from the image as it was when submitted; the depot would have made the same on demand).
    docker_client.images.build(
        fileobj=io.BytesIO(f"FROM {behave_image('constant')}\nLABEL test={tmp_path.name}\n".encode()),
        tag="harness-test/absent:latest",
        rm=True,
    )
    absent_id = submit(comp, "absent", "harness-test/absent:latest")
    digest = docker_client.images.get("harness-test/absent:latest").id
    archive = home / "depot" / f"image-{digest.removeprefix('sha256:')}.tar"
    archive.parent.mkdir(parents=True)
    with open(archive, "wb") as fh:
        for chunk in docker_client.images.get(digest).save(named=False):
            fh.write(chunk)
    Path(f"{archive}.sha256").write_text(hashlib.sha256(archive.read_bytes()).hexdigest())
    docker_client.images.remove(digest, force=True)
    try:
        summary = drive_round(comp, out=sys.stderr)
        assert docker_client.images.get(digest).id == digest  # loaded on a node, verified by its id
    finally:
        docker_client.images.remove(digest, force=True)

    assert summary.verdicts == {"SCORED": 4}
    found = {r["submission"]["id"]: r for r in records(home)}
    assert set(found) == {*ids, absent_id}
    used = {node_of(p) for r in found.values() for p in r["phases"].values()}
    assert used == {n.node_id[:12] for n in [ray_cluster.head_node, *workers]}  # all three nodes ran phases
    assert all(node_of(r["phases"]["infer"]) == node_of(r["phases"]["train"]) for r in found.values())  # where its model is
    staged = {p.parts[-3] for p in (tmp_path / "nodes").glob(f"*/data-*/{VERIFIED}")}
    assert staged == {w.node_id[:16] for w in workers}  # each worker staged the data once, verified; the head needs none


def test_staged_data_and_archives_are_verified(cluster, tmp_path):
    source = tmp_path / "source" / "data" / "train"
    source.mkdir(parents=True)
    (source / "train.csv").write_text("id,label\n1,0\n")
    from harness.util.hashing import listing_sha256, scan_tree

    sha256 = listing_sha256({rel: e.digest for rel, e in scan_tree(source, "data/train/").items()})
    depot = Depot.remote(str(tmp_path / "depot"))
    node = tmp_path / "node"
    node.mkdir()
    staged = stage_data(DataStage(sha256, ((str(source), "data/train"),)), depot, node)
    assert (staged / "data/train/train.csv").read_text() == "id,label\n1,0\n" and (staged / VERIFIED).is_file()

    with pytest.raises(ValueError, match="its manifest says"):
        stage_data(DataStage("0" * 64, ((str(source), "data/train"),)), depot, node)
    archive = ray.get(depot.data.remote(DataStage(sha256, ((str(source), "data/train"),))))
    with pytest.raises(ValueError, match="arrived damaged"):
        fetch(depot, Archive(archive.name, "f" * 64, archive.size), node / "copy.tar")

    # The other way: a node sends a file in chunks, the depot checks it, the driver takes a copy, and
    # the depot serves it to another node.
    sent = node / "model.tar"
    sent.write_bytes(os.urandom(2 * CHUNK_BYTES + 5))
    arrived = send(depot, sent, "model-sent.tar")
    assert (arrived.sha256, arrived.size) == (hashlib.sha256(sent.read_bytes()).hexdigest(), sent.stat().st_size)
    ray.get(depot.deliver.remote(arrived.name, str(tmp_path / "run" / "model.tar")))
    assert (tmp_path / "run" / "model.tar").read_bytes() == sent.read_bytes()
    fetch(depot, ray.get(depot.archive.remote(arrived.name)), node / "again.tar")
    assert (node / "again.tar").read_bytes() == sent.read_bytes()
    ray.get(depot.write.remote("feed", 0, b"x"))
    with pytest.raises(ray.exceptions.RayTaskError, match="arrived damaged"):
        ray.get(depot.seal.remote("feed", "model-forged.tar", "0" * 64))
    assert not list((tmp_path / "depot").glob("*forged*")) and not list((tmp_path / "depot").glob(".upload-*"))


def test_node_lost_mid_round_still_scores_each_submission_once(cluster, home, competition, behave_image, docker_client, tmp_path):
    ray_cluster, workers = cluster
    comp = round_competition(competition, tmp_path / "nodes")
    ids = [submit(comp, f"team{i}", behave_image("nap2")) for i in range(3)]
    victim = workers[0]
    result: dict = {}
    driver = threading.Thread(target=lambda: result.update(summary=drive_round(comp, out=sys.stderr)))
    driver.start()
    deadline = time.monotonic() + 120
    while not docker_client.containers.list(filters={"label": f"{NODE_LABEL}={victim.node_id}", "status": "running"}):
        assert time.monotonic() < deadline and driver.is_alive(), "no phase ever ran on the victim node"
        time.sleep(0.1)
    ray_cluster.remove_node(victim, allow_graceful=False)
    driver.join(timeout=300)  # the module's last test: no node is added back for a next one

    summary = result["summary"]
    assert summary.retried >= 1 and summary.verdicts == {"SCORED": 3}
    found = records(home)
    assert sorted(r["submission"]["id"] for r in found) == sorted(ids)  # one record each, no more
    assert max(r["attempt"] for r in found) == 2
    assert all(node_of(p) != victim.node_id[:12] for r in found for p in r["phases"].values())
    runs = evaluation_runs(home)
    assert sorted(run.data.tags["harness.submission"] for run in runs) == sorted(ids)  # one MLflow run each
    assert not docker_client.containers.list(all=True, filters={"label": f"harness.round={summary.round_id}"})
