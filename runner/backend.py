"""The seam between an evaluation and what runs its containers.

A ``Backend`` runs one ``PhaseSpec`` (image, command, mounts, environment, limits) and returns a
``PhaseResult`` (verdict, figures, logs); everything above it (the evaluation, rounds on Ray,
``harness check``) is written against this protocol only. Backends are chosen by name with
``runner.backend`` (``docker`` today). Another container engine (Podman, Kubernetes) is one new
module with a class that satisfies the protocol, registered here or through the
``harness.backends`` entry point group of its own package::

    [project.entry-points."harness.backends"]
    podman = "my_package.podman:PodmanBackend"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from harness.runner.phase import PhaseResult, PhaseSpec
from harness.util.plugins import load_target, plugins


@runtime_checkable
class Backend(Protocol):
    def run(self, spec: PhaseSpec) -> PhaseResult:
        """Run the phase to its end under its limits, and clean up after it. An engine failure is an
        ``INFRA_ERROR`` result, never an exception: whatever the image does is its own verdict."""
        ...

    def engine_version(self) -> str:
        """The engine's version, for the record's host facts."""
        ...

    def remove_containers(self, labels: Mapping[str, str]) -> int:
        """Remove every container this harness started with these labels (a cancelled round's, a
        dead driver's); returns how many."""
        ...


# Built in: name -> "module:class", imported on first use (the Docker SDK only when asked for).
BUILT_IN = {"docker": "harness.runner.docker_backend:DockerBackend"}
_registered: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    _registered[name] = factory


def available_backends() -> list[str]:
    return sorted({*BUILT_IN, *_registered, *plugins("harness.backends")})


def check_backend(name: str) -> str:
    """``name`` when a backend of that name exists; ``ValueError`` naming the key and the choices otherwise."""
    if name not in available_backends():
        raise ValueError(f"runner.backend: no backend named {name!r} (available: {', '.join(available_backends())})")
    return name


def create_backend(name: str, **options: Any) -> Backend:
    """A backend by its ``runner.backend`` name; ``options`` go to its constructor (e.g. ``client``)."""
    if name in _registered:
        return _registered[name](**options)
    if name in BUILT_IN:
        return load_target(BUILT_IN[name])(**options)
    return plugins("harness.backends")[check_backend(name)].load()(**options)
