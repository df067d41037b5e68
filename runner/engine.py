"""Connect to the Docker engine, with a message that says what to do when none answers."""

from __future__ import annotations

import docker
import docker.errors

from harness.runner.backend import EngineUnavailable

__all__ = ["EngineUnavailable", "connect"]


def connect() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
        return client
    except (docker.errors.DockerException, OSError) as exc:
        raise EngineUnavailable(
            f"no Docker engine answers ({exc}). Start one: scripts/setup.sh installs and starts it "
            "(as root), or start your own engine and set DOCKER_HOST if it is not the default socket"
        ) from None
