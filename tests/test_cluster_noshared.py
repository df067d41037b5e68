"""Rounds across nodes that share no filesystem with the driver: a head node (where the driver runs,
with no CPU of its own, so every phase runs elsewhere) and a worker node with its own Docker engine
and its own view of the disk (``clusters.isolated_node``: the driver's work directories are an empty
tmpfs there). What this proves that tests/test_cluster.py cannot: nothing a phase needs, nor anything
it leaves, goes through the driver's disk."""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path

import docker
import pytest
import ray
from clusters import isolated_node, ray_cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    hidden = tmp_path_factory.getbasetemp()  # every test's HARNESS_HOME is under it
    with ray_cluster(0, []) as (cluster, _), isolated_node(cluster, hidden) as node:
        yield cluster, node


@ray.remote(num_cpus=0)
def _sees(path: str) -> bool:
    return Path(path).exists()


def on(node_id: str) -> dict:
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False)}


def test_the_isolated_node_cannot_see_the_drivers_disk(cluster, home, docker_client):
    ray_cluster, node = cluster
    train = home / "competitions/digits/data/train"
    assert train.is_dir()
    head = ray_cluster.head_node.node_id
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
