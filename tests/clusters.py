"""Test helpers for rounds on a multi-node ``ray.cluster_utils.Cluster`` in one machine: the cluster
(a node may get its own Docker engine through its environment), a private ``dockerd`` with its own
data root (so its node lacks the images the default engine has), and reading a round's results."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import psutil
import pytest
import ray
from ray.cluster_utils import Cluster

# Find a dead node in about a second, not Ray's default of half a minute.
FAST_HEALTH_CHECKS = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 3}
# `ray start --block` given SIGTERM first drains its node for up to 30 s (for Ray Serve's proxies); a test's node has none.
NO_DRAIN = {"RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
ENGINE_START_S = 60.0


@contextlib.contextmanager
def ray_cluster(head_cpus: int, worker_environments: list[dict[str, str]], dashboard: bool = False) -> Iterator[tuple[Cluster, list]]:
    """A head node (where the driver connects) and one one-CPU worker per environment; a worker's
    processes see its variables (``DOCKER_HOST``: that worker's engine). The driver joins it. The
    head's dashboard (its CPU is the suite's) only where a test reads Ray's state API, no log monitor
    (the driver takes no worker logs) and no autoscaler monitor (nothing here scales the cluster)."""
    ray.shutdown()
    head = {"num_cpus": head_cpus, "include_dashboard": dashboard, "include_log_monitor": False, "no_monitor": True}
    head["_system_config"] = FAST_HEALTH_CHECKS
    cluster = Cluster(initialize_head=True, head_node_args=head)
    workers = []
    try:
        for environment in worker_environments:
            workers.append(add_node(cluster, environment))
        ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.ERROR)
        cluster.wait_for_nodes()
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()


def add_node(cluster, environment: dict[str, str], num_cpus: int = 1):
    """A one-CPU node whose processes (and so its Ray workers) start with ``environment`` added."""
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        return cluster.add_node(num_cpus=num_cpus)
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


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


@contextlib.contextmanager
def isolated_node(cluster: Cluster, hidden: Path, num_cpus: int = 1) -> Iterator[IsolatedNode]:
    """A worker node as a machine of its own would be: its Ray processes and its own ``dockerd`` run
    in a private mount namespace (``unshare --mount --propagation private``) where ``hidden`` (the
    driver's work directories) is an empty tmpfs, so a phase there that reads a driver-side path,
    or bind-mounts one, finds nothing. Its engine's socket and the node caches stay visible. The
    engine's data root is a tmpfs of that namespace too: gone with it, where deleting the layers of
    the images loaded there took 25 s on a loaded machine. No log monitor: the driver takes no
    worker logs."""
    root = Path(tempfile.mkdtemp(prefix="hx-node-", dir="/tmp"))
    host = f"unix://{root}/docker.sock"
    dockerd = (
        f"dockerd --bridge=none --iptables=false --data-root={root}/data --exec-root={root}/exec"
        f" --pidfile={root}/dockerd.pid -H={host} >{root}/dockerd.log 2>&1 &"
    )
    ray_bin = Path(sys.executable).with_name("ray")
    script = (
        f"set -e; mount -t tmpfs -o size=1m,mode=0755 harness-hidden {shlex.quote(str(hidden))};"
        f" mkdir {root}/data; mount -t tmpfs -o size=4g,mode=0710 harness-engine {root}/data; {dockerd}"
        f" exec {ray_bin} start --address={cluster.address} --num-cpus={num_cpus} --block --disable-usage-stats --include-log-monitor=False"
    )
    before = {n["NodeID"] for n in ray.nodes()}
    with open(root / "node.log", "wb") as log:
        process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "DOCKER_HOST": host, **NO_DRAIN},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + ENGINE_START_S
        node_id = None
        while node_id is None:
            node_id = next((n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeID"] not in before), None)
            if node_id is None and (process.poll() is not None or time.monotonic() > deadline):
                pytest.fail(f"the isolated node did not join; {root / 'node.log'} says:\n{(root / 'node.log').read_text()[-2000:]}")
            time.sleep(0.2)
        client = None
        while client is None:
            try:
                client = docker.DockerClient(base_url=host)
            except (docker.errors.DockerException, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"the isolated node's dockerd did not start:\n{(root / 'dockerd.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield IsolatedNode(node_id, host, client, process)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # ray stops its processes, dockerd its containers
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class IsolatedNode:
    node_id: str
    docker_host: str
    client: docker.DockerClient
    process: subprocess.Popen
    killed: bool = False

    def kill(self) -> None:
        """The node dies as a machine would: its raylet is killed (its engine, and what runs there, stay)."""
        self.killed = True
        for child in psutil.Process(self.process.pid).children(recursive=True):
            if child.name() == "raylet":
                child.kill()
