"""Find and remove the harness's containers by their labels (after a cancel, a lost node or a dead
driver): on this machine's engine, and on the engine of every other live node of the Ray cluster
(``sweep``, through each node's ``Backend``; ``remove_containers`` is the Docker backend's part)."""

from __future__ import annotations

import docker
import docker.errors
import ray
import ray.exceptions
import requests.exceptions
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from harness.limits.cgroups import RunCgroup
from harness.runner.backend import Backend, EngineError, create_backend
from harness.runner.docker_backend import LABEL

CONFLICT = 409  # the engine is removing it already (another sweep got there first)


def remove_containers(client: docker.DockerClient, labels: dict[str, str] | None = None) -> int:
    """Force-remove every harness container matching ``labels``, and the run's parent cgroup; returns how many."""
    filters = {"label": [LABEL] + [f"{k}={v}" for k, v in (labels or {}).items()]}
    removed = []
    for container in client.containers.list(all=True, filters=filters):
        try:
            container.remove(force=True, v=True)
            removed.append(container.labels.get(LABEL, ""))
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != CONFLICT:
                raise
    if removed:
        info = client.info()
        for run_id in removed:
            RunCgroup(run_id, version=str(info.get("CgroupVersion", "1")), driver=info.get("CgroupDriver", "")).remove()
    return len(removed)


@ray.remote(num_cpus=0, max_retries=0)
def _remove_on_node(backend_name: str, labels: dict[str, str]) -> int:
    return create_backend(backend_name).remove_containers(labels)


def sweep(backend: Backend, labels: dict[str, str]) -> int:
    """Remove matching containers here and on every other live Ray node; an engine or a node that
    fails to answer is skipped (a lost node took its containers with it; an engine that restarts
    has killed them, and the round's last sweep looks again)."""
    try:
        removed = backend.remove_containers(labels)
    except (EngineError, docker.errors.DockerException, requests.exceptions.RequestException):
        removed = 0
    if not ray.is_initialized():
        return removed
    here = ray.get_runtime_context().get_node_id()
    refs = [
        _remove_on_node.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote(backend.name, labels)
        for node in ray.nodes()
        if node["Alive"] and node["NodeID"] != here
    ]
    for ref in refs:
        try:
            removed += ray.get(ref, timeout=60)
        except ray.exceptions.RayError:
            pass
    return removed
