"""Rounds across nodes that share no filesystem with the driver: a head node (where the driver runs,
with no CPU of its own, so every phase runs elsewhere) and a worker node with its own Docker engine
and its own view of the disk (``clusters.isolated_node``: the driver's work directories are an empty
tmpfs there). What this proves that tests/test_cluster.py cannot: nothing a phase needs, nor anything
it leaves, goes through the driver's disk; and once the node that trained a model is gone, the
model comes back from the artifact store."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import docker
import pytest
import ray
from clusters import IsolatedNode, isolated_node, node_of, ray_cluster, records, round_competition, submit
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from harness.competition.smoke import smoke_stage
from harness.evaluation.evaluation import Evaluation
from harness.proofs.audit import audit
from harness.proofs.reinfer import reinfer
from harness.records.model_store import ModelStore
from harness.records.sinks import RecordSinks
from harness.rounds.distribution import cluster_staging
from harness.rounds.driver import drive_round
from harness.runner.docker_backend import DockerBackend
from harness.runner.ray_pool import NODE_LABEL, RayPhasePool
from harness.submissions.intake import pin_image
from harness.util.clock import utc_now
from harness.util.hashing import tree_sha256

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NODE_CACHE = Path(tempfile.gettempdir()) / f"hx-nodes-{os.getpid()}"  # outside the hidden directory, like a node's own disk


class IsolatedNodes:
    """The module's isolated nodes: a test takes a live one (started only when none is) or starts
    another; a node a test did not kill serves the next test, and all end with the module."""

    def __init__(self, cluster: Cluster, hidden: Path, stack: contextlib.ExitStack) -> None:
        self.cluster, self._hidden, self._stack = cluster, hidden, stack
        self._started: list[IsolatedNode] = []

    def live(self) -> IsolatedNode:
        return next((node for node in self._started if not node.killed), None) or self.start()

    def start(self) -> IsolatedNode:
        self._started.append(self._stack.enter_context(isolated_node(self.cluster, self._hidden)))
        return self._started[-1]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    hidden = tmp_path_factory.getbasetemp()  # every test's HARNESS_HOME is under it
    with ray_cluster(0, []) as (cluster, _), contextlib.ExitStack() as stack:
        yield IsolatedNodes(cluster, hidden, stack)
    shutil.rmtree(NODE_CACHE, ignore_errors=True)


@ray.remote(num_cpus=0)
def _sees(path: str) -> bool:
    return Path(path).exists()


def on(node_id: str) -> dict:
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False)}


def test_the_isolated_node_cannot_see_the_drivers_disk(nodes, home, docker_client):
    node = nodes.live()
    train = home / "competitions/digits/data/train"
    assert train.is_dir()
    head = nodes.cluster.head_node.node_id
    assert ray.get(_sees.options(**on(head)).remote(str(train)))  # the driver's node sees it
    assert not ray.get(_sees.options(**on(node.node_id)).remote(str(train)))  # the isolated node does not
    assert ray.get(_sees.options(**on(node.node_id)).remote(tempfile.gettempdir()))
    # Its engine resolves bind mounts in its own namespace too: the driver's directory is not there.
    assert node.client.info()["DockerRootDir"] != docker_client.info()["DockerRootDir"]
    image = scratch_image(node.client)
    bind = [docker.types.Mount("/data", str(train), type="bind", read_only=True)]
    with pytest.raises(docker.errors.APIError, match="does not exist"):
        node.client.containers.create(image, ["/x"], mounts=bind)
    docker_client.containers.create(scratch_image(docker_client), ["/x"], mounts=bind).remove()  # the driver's engine finds it


def scratch_image(client: docker.DockerClient) -> str:
    """A one-file image built on ``client``'s engine (no base image needed)."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY x /x\n"), ("x", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, tag="harness-test/scratch:latest", rm=True)
    return image.id


def test_a_round_on_a_node_without_the_drivers_disk_scores_as_on_one_machine(nodes, home, competition, behave_image, docker_client):
    node = nodes.live()  # the only live one: every test leaves one at most
    comp = round_competition(competition, NODE_CACHE)
    submission_id = submit(comp, "team", behave_image("constant"))  # one; the round of two on isolated nodes is the last test
    summary = drive_round(comp, out=sys.stderr)

    assert summary.verdicts == {"SCORED": 1}
    found = records(home)
    assert [r["submission"]["id"] for r in found] == [submission_id]
    assert {node_of(p) for r in found for p in r["phases"].values()} == {node.node_id[:12]}  # every phase ran there
    for record in found:
        run = home / "competitions/digits/runs" / record["evaluation_id"]
        assert not any((run / "model").iterdir())  # trained on the node's disk, and sent back as an archive:
        assert ModelStore.for_competition(comp).has(record["manifest"]["model_sha256"])  # in the artifact store now
        assert (run / "logs" / "infer.stdout.log").is_file() and (run / "telemetry.json").is_file()
        kept = NODE_CACHE / node.node_id[:16] / "runs" / record["evaluation_id"] / "model"
        assert tree_sha256(kept) == record["manifest"]["model_sha256"]
        # The same submission on this one machine: the same model, predictions and scores, bit for bit.
        report = audit(comp, record["evaluation_id"])
        assert report.status == "PASS", report.differences
        assert report.runs[0]["predictions_sha256"] == record["manifest"]["predictions_sha256"] is not None
        assert report.runs[0]["scores"] == record["scores"]


def test_an_infer_whose_trainer_node_is_gone_runs_elsewhere_on_the_model_from_the_depot(
    nodes, home, competition, behave_image, docker_client
):
    comp = round_competition(competition, NODE_CACHE)
    image = behave_image("constant")
    submission = {"id": "sub-moved", "team": "team", "image": image, "image_digest": pin_image(DockerBackend(docker_client), image).digest}
    evaluation = Evaluation(comp, {**submission, "submitted_at": utc_now()}, round_id="round-moved")
    one, another = nodes.live(), nodes.start()  # the one that did not train serves the next test
    pool = RayPhasePool(staging=cluster_staging(comp, str(NODE_CACHE), smoke_stage(comp)))
    train = run_one(pool, evaluation)
    assert train.verdict.value == "OK" and train.model_archive
    gone = {n.node_id: n for n in (one, another)}[train.model_node]
    gone.kill()  # after train, before infer: the only copy of the model on a node is gone with it
    deadline = time.monotonic() + 60
    while gone.node_id in {n["NodeID"] for n in ray.nodes() if n["Alive"]}:
        assert time.monotonic() < deadline, "Ray never noticed the node was gone"
        time.sleep(0.2)
    infer = run_one(pool, evaluation)

    assert infer.verdict.value == "OK", infer.message
    assert node_of({"node": infer.node}) != gone.node_id[:12]  # not run again from train: infer ran elsewhere
    record = evaluation.conclude()
    assert record.verdict == "SCORED" and record.manifest["model_sha256"] == train.model_sha256


def test_node_lost_mid_train_still_scores_each_submission_once(nodes, tmp_path_factory, home, competition, behave_image, docker_client):
    victim = nodes.live()
    comp = round_competition(competition, NODE_CACHE)
    ids = [submit(comp, f"team{i}", behave_image("nap2")) for i in range(2)]
    with isolated_node(nodes.cluster, tmp_path_factory.getbasetemp()) as other:
        result: dict = {}
        driver = threading.Thread(target=lambda: result.update(summary=drive_round(comp, out=sys.stderr)))
        driver.start()
        deadline = time.monotonic() + 180
        running = {"label": ["harness.phase=train", f"{NODE_LABEL}={victim.node_id}"], "status": "running"}
        while not victim.client.containers.list(filters=running):
            assert time.monotonic() < deadline and driver.is_alive(), "no train ever ran on the victim node"
            time.sleep(0.1)
        victim.kill()
        driver.join(timeout=300)
        assert not driver.is_alive()

    summary = result["summary"]
    assert summary.retried >= 1 and summary.verdicts == {"SCORED": 2}
    found = records(home)
    assert sorted(r["submission"]["id"] for r in found) == sorted(ids)  # one record each, no more
    assert max(r["attempt"] for r in found) == 2
    assert {node_of(p) for r in found for p in r["phases"].values()} == {other.node_id[:12]}

    # The node that trained them is gone, with its engine and its disk: each record is still audited
    # and re-inferred here, from the record and the model in the artifact store alone.
    shutil.rmtree(NODE_CACHE / other.node_id[:16])
    assert other.node_id not in {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    for record in found:
        report = audit(comp, record["evaluation_id"])
        assert report.status == "PASS" and not [d for d in report.differences if d.fatal or d.kind == "model"], report.differences
    again = reinfer(comp, ids, None, RecordSinks())
    by_submission = {r["submission"]["id"]: r for r in found}
    for new in again:
        before = by_submission[new.submission.id]
        assert new.verdict == "SCORED" and new.origin == {"kind": "reinfer", "evaluation_id": before["evaluation_id"]}
        assert new.manifest["model_sha256"] == before["manifest"]["model_sha256"]
        assert new.manifest["predictions_sha256"] == before["manifest"]["predictions_sha256"]


def run_one(pool: RayPhasePool, evaluation: Evaluation):
    """Run the evaluation's next phase on the pool and hand it its result."""
    pool.submit(evaluation.id, evaluation.next_phase())
    deadline = time.monotonic() + 300
    while not (done := pool.wait(timeout=1.0)):
        assert time.monotonic() < deadline, "the phase never finished"
    ((_, result),) = done
    evaluation.accept(result)
    return result
