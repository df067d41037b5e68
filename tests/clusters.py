"""Test helpers for rounds on a multi-node ``ray.cluster_utils.Cluster`` in one machine: the cluster
(a node may get its own Docker engine through its environment), a private ``dockerd`` with its own
data root (so its node lacks the images the default engine has), and reading a round's results."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import ray
from ray.cluster_utils import Cluster

# Find a dead node in about a second, not Ray's default of half a minute.
FAST_HEALTH_CHECKS = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 3}
ENGINE_START_S = 60.0


@contextlib.contextmanager
def ray_cluster(head_cpus: int, worker_environments: list[dict[str, str]]) -> Iterator[tuple[Cluster, list]]:
    """A head node (where the driver connects) and one one-CPU worker per environment; a worker's
    processes see its variables (``DOCKER_HOST``: that worker's engine). The driver joins it."""
    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": head_cpus, "_system_config": FAST_HEALTH_CHECKS})
    workers = []
    try:
        for environment in worker_environments:
            saved = {name: os.environ.get(name) for name in environment}
            os.environ.update(environment)  # a node's processes inherit the environment it starts with
            try:
                workers.append(cluster.add_node(num_cpus=1))
            finally:
                for name, value in saved.items():
                    if value is None:
                        del os.environ[name]
                    else:
                        os.environ[name] = value
        ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.ERROR)
        cluster.wait_for_nodes()
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()


@contextlib.contextmanager
def private_engine() -> Iterator[tuple[str, docker.DockerClient]]:
    """A second ``dockerd`` beside the default one (its own data root, exec root, pid file and socket,
    no bridge network): its ``DOCKER_HOST`` and a client. Stopped, and its files removed, on exit."""
    root = Path(tempfile.mkdtemp(prefix="hx-engine-", dir="/tmp"))  # short: a unix socket path has a length limit
    host = f"unix://{root}/docker.sock"
    with open(root / "dockerd.log", "wb") as log:
        process = subprocess.Popen(
            ["dockerd", "--bridge=none", "--iptables=false", f"--data-root={root}/data", f"--exec-root={root}/exec"]
            + [f"--pidfile={root}/dockerd.pid", f"-H={host}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + ENGINE_START_S
        while True:
            try:
                client = docker.DockerClient(base_url=host)  # asks the engine its API version
                break
            except (docker.errors.DockerException, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"the private dockerd did not start; {root / 'dockerd.log'} says:\n{(root / 'dockerd.log').read_text()[-2000:]}"
                    )
                time.sleep(0.2)
        yield host, client
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


def records(home: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((home / "competitions/digits/records").glob("*.json"))]


def node_of(phase: dict) -> str:
    return phase["node"].split("/", 1)[1]


def submit(competition, team: str, image: str) -> str:
    from harness.cli.evaluate import submit_image

    return submit_image(competition, team, image).id


def round_competition(competition, node_cache: Path, *overrides: str):
    """The ``competition`` fixture's competition for a cluster round: node caches under ``node_cache``, quick retries."""
    return competition(f"runner.node_cache={node_cache}", "runner.retry_backoff_s=0.2", *overrides)
