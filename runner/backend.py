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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from harness.runner.phase import PhaseResult, PhaseSpec
from harness.util.plugins import load_target, plugins


class EngineError(Exception):
    """The container engine failed, or refused an image operation; the message is what it answered."""


class EngineUnavailable(EngineError):
    """No container engine answers; the message says how to start one."""


@dataclass(frozen=True)
class ImageFacts:
    """What the engine knows of one image: what intake checks and retention weighs."""

    id: str  # the content-addressed id, "sha256:<64 hex>"
    os: str = ""
    architecture: str = ""
    size_bytes: int = 0
    config: Mapping[str, Any] | None = None  # the image's config (ENTRYPOINT, ENV, VOLUMEs, labels)
    names: frozenset[str] = field(default_factory=frozenset)  # its tags and repository digests


@runtime_checkable
class Backend(Protocol):
    name: str  # its ``runner.backend`` name: other nodes of the cluster make theirs by it

    def run(self, spec: PhaseSpec) -> PhaseResult:
        """Run the phase to its end under its limits, and clean up after it. An engine failure is an
        ``INFRA_ERROR`` result, never an exception: whatever the image does is its own verdict."""
        ...

    def engine_version(self) -> str:
        """The engine's version, for the record's host facts."""
        ...

    def host_facts(self) -> dict[str, Any]:
        """This node as a phase's record names it: CPU, memory, kernel, GPUs, and the engine's own
        facts (version, data root, cgroup layout) where it has them."""
        ...

    def engine_info(self) -> Mapping[str, Any]:
        """The engine's description of itself (``docker info``'s fields: its runtimes, its CDI spec
        directories), which the GPU checks and gc read; ``EngineError`` when it does not answer."""
        ...

    def remove_containers(self, labels: Mapping[str, str]) -> int:
        """Remove every container this harness started with these labels (a cancelled round's, a
        dead driver's); returns how many."""
        ...

    def image(self, reference: str) -> ImageFacts | None:
        """The image ``reference`` names on this engine; None when it has none (``EngineError`` when
        the engine cannot say)."""
        ...

    def pull_image(self, repository: str, tag: str, auth: Mapping[str, str]) -> None:
        """Pull ``repository:tag`` (or ``@digest``) with these credentials; ``EngineError`` when it fails."""
        ...

    def remove_image(self, reference: str) -> None:
        """Untag ``reference`` (its layers too when nothing else names them); one already gone is
        removed; ``EngineError`` when the engine refuses (a container uses it)."""
        ...

    def save_image(self, digest: str, out: BinaryIO) -> None:
        """Write the archive of the image whose id is ``digest`` to ``out`` (the depot's copy for other nodes)."""
        ...

    def ensure_image(self, digest: str, depot: Any, node_dir: Path, *, pull_from: str | None = None, credential: Any = None) -> None:
        """Bring the image whose id is ``digest`` to this node (pulled, else from the round's depot's
        archive, which ``save_image`` wrote on the driver's node)."""
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
    """A backend by its ``runner.backend`` name, on this machine's engine; ``options`` go to its
    constructor (e.g. ``client``). ``EngineUnavailable`` when no engine answers."""
    if name in _registered:
        return _registered[name](**options)
    if name in BUILT_IN:
        return load_target(BUILT_IN[name])(**options)
    return plugins("harness.backends")[check_backend(name)].load()(**options)
