"""Find and remove the harness's containers by their labels (after a cancel or a dead driver)."""

from __future__ import annotations

import docker
import docker.errors

from runner.docker_backend import LABEL


def remove_containers(client: docker.DockerClient, labels: dict[str, str] | None = None) -> int:
    """Force-remove every harness container matching ``labels``; returns how many were removed."""
    filters = {"label": [LABEL] + [f"{k}={v}" for k, v in (labels or {}).items()]}
    removed = 0
    for container in client.containers.list(all=True, filters=filters):
        try:
            container.remove(force=True, v=True)
            removed += 1
        except docker.errors.NotFound:
            pass
    return removed
