"""``harness gc`` reaches the other nodes of a Ray cluster: a real round on a worker node with its
own engine and its own view of the disk (``clusters.isolated_node``) leaves that node its run
directories, its staged data and the submissions' images (loaded from the depot); gc lists on that
node, per node, exactly what the retention policy lets go, its dry run changes nothing, ``--apply``
frees it there and nothing kept. A node whose engine does not answer, and a node whose Ray workers
never start, are reported and stop nothing."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import docker.errors
import pytest
import ray
from clusters import add_node, isolated_node, ray_cluster, records, round_competition, submit
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from test_gc import KEEP, own_images  # noqa: F401 - the fixture: distinct images of one behaviour
from test_round import harness

import harness.runner.node_gc as node_gc
from harness.rounds.driver import drive_round
from harness.runner.docker_backend import DockerBackend
from harness.submissions.ledger import Ledger
from harness.util.files import tree_bytes

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NODE_CACHE = Path(tempfile.gettempdir()) / f"hx-gc-nodes-{os.getpid()}"  # a node's own disk, outside the hidden directory
# a Ray worker that never starts: it waits, before Ray's code runs, until its raylet is gone
HANG = (
    "import os, sys, time\n"
    "if any('default_worker' in arg for arg in sys.argv):\n"
    "    parent = os.getppid()\n"
    "    while os.getppid() == parent:\n"
    "        time.sleep(0.5)\n"
    "    os._exit(1)\n"
)
ANSWER_S = 8.0  # the stuck node costs this twice (dry run, --apply); a live node, its worker started already, in a second


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    hidden = tmp_path_factory.getbasetemp()
    with ray_cluster(0, []) as (cluster, _), isolated_node(cluster, hidden) as node:
        yield cluster, node
    shutil.rmtree(NODE_CACHE, ignore_errors=True)


@ray.remote(num_cpus=0)
def _started() -> None:
    """Nothing: a worker of this driver started on the node it runs on."""


def gc(home: Path, *args: str) -> dict:
    done = harness(home, "gc", "digits", "--json", f"runner.node_cache={NODE_CACHE}", "competition.smoke.enabled=false", *KEEP, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def by_node(answer: dict) -> dict[str, dict]:
    return {node["node"]: node for node in answer["nodes"]}


def test_gc_frees_each_nodes_caches_of_unkept_submissions(cluster, home, competition, own_images, docker_client, tmp_path, monkeypatch):  # noqa: F811
    ray_cluster, node = cluster
    comp = round_competition(competition, NODE_CACHE, *KEEP)
    subs = {
        name: submit(comp, team, own_images(behaviour))
        for name, team, behaviour in [("a1", "alpha", "constant"), ("a2", "alpha", "constant"), ("b1", "beta", "crash")]
    }
    summary = drive_round(comp, DockerBackend(docker_client), out=sys.stderr)
    assert summary.verdicts == {"SCORED": 2, "RUNTIME_ERROR": 1}
    evaluation = {r["submission"]["id"]: r["evaluation_id"] for r in records(home)}
    image = {s.id: s.image_digest for s in Ledger.of(comp).all()}
    node_dir = NODE_CACHE / node.node_id[:16]
    runs = {name: node_dir / "runs" / evaluation[subs[name]] for name in subs}
    assert all(run.is_dir() for run in runs.values())
    for name in subs:  # each image came to the node's engine from the depot, with no name
        assert node.client.images.get(image[subs[name]]).attrs["RepoTags"] == []
    node.client.images.get(image[subs["a2"]]).tag("organizer/keep", "v1")  # a name the organizer gave there keeps it
    (stale := node_dir / "data-0123456789abcdef").mkdir()
    (stale / "train.csv").write_bytes(os.urandom(3000))
    (leftover := node_dir / ".stage-deadbeef").mkdir()
    (leftover / "part").write_bytes(os.urandom(500))
    (halfway := node_dir / "runs" / ".gc-eval-0badc0de" / "model").mkdir(parents=True)  # what a gc stopped midway left
    (halfway / "weights").write_bytes(os.urandom(700))
    halfway = halfway.parent
    current = [d for d in node_dir.glob("data-*") if d != stale]
    assert len(current) == 1

    # two more nodes: one whose engine does not answer, one whose Ray workers never start
    (hang := tmp_path / "hang").mkdir()
    (hang / "sitecustomize.py").write_text(HANG)
    # one CPU: a node keeps that many idle workers, so the one started here answers gc's tasks at once
    dead = add_node(ray_cluster, {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}, num_cpus=1)
    ray.get(_started.options(scheduling_strategy=NodeAffinitySchedulingStrategy(dead.node_id, soft=False)).remote())
    stuck = add_node(ray_cluster, {"PYTHONPATH": str(hang)}, num_cpus=0)
    monkeypatch.setattr(node_gc, "ANSWER_TIMEOUT_S", ANSWER_S)  # not two minutes for the node that never answers
    try:
        before = sorted(str(p) for p in NODE_CACHE.rglob("*"))
        node_images = sorted(i.id for i in node.client.images.list(all=True))
        dry = gc(home)
        expected = {
            ("node-run", str(runs["a2"]), tree_bytes(runs["a2"])),
            ("node-run", str(runs["b1"]), tree_bytes(runs["b1"])),
            ("node-data", str(stale), 3000),
            ("node-leftover", str(leftover), 500),
            ("node-leftover", str(halfway), 700),
            ("node-image", image[subs["b1"]], int(node.client.images.get(image[subs["b1"]]).attrs["Size"])),
        }
        nodes = by_node(dry)
        assert set(nodes) == {node.node_id, dead.node_id, stuck.node_id}
        assert {(i["kind"], i["what"], i["bytes"]) for i in nodes[node.node_id]["items"]} == expected
        assert nodes[node.node_id]["bytes"] == sum(b for _, _, b in expected) and nodes[node.node_id]["error"] is None
        assert all(i["why"] for i in nodes[node.node_id]["items"])
        assert nodes[dead.node_id]["items"] == [] and "its engine does not answer" in nodes[dead.node_id]["error"]
        assert nodes[stuck.node_id]["items"] == [] and f"did not answer within {ANSWER_S:.0f} s" in nodes[stuck.node_id]["error"]
        assert dry["total_bytes"] == dry["bytes"] + nodes[node.node_id]["bytes"]
        assert sorted(str(p) for p in NODE_CACHE.rglob("*")) == before  # a dry run changes nothing
        assert sorted(i.id for i in node.client.images.list(all=True)) == node_images

        applied = gc(home, "--apply")
        assert {(i["kind"], i["what"], i["bytes"]) for i in by_node(applied)[node.node_id]["items"]} == expected
        assert by_node(applied)[stuck.node_id]["error"]
    finally:
        ray_cluster.remove_node(stuck)
        ray_cluster.remove_node(dead)

    for path in (runs["a2"], runs["b1"], stale, leftover, halfway):
        assert not path.exists()
    assert runs["a1"].is_dir() and (runs["a1"] / "model").is_dir()  # kept: a1 is alpha's best
    assert current[0].is_dir()  # today's data stays staged
    with pytest.raises(docker.errors.ImageNotFound):
        node.client.images.get(image[subs["b1"]])
    for name in ("a1", "a2"):  # a1 kept; a2 not, but the organizer named it on that engine
        node.client.images.get(image[subs[name]])
    docker_client.images.get(image[subs["b1"]])  # the head's engine is the head's gc's: untouched here
    assert by_node(gc(home))[node.node_id]["items"] == []  # a second gc finds nothing there
    assert node.client.images.get(image[subs["a2"]]).tags == ["organizer/keep:v1"]
    node.client.images.remove("organizer/keep:v1")
