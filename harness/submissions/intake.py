"""Intake: pin a submitted image reference to its content digest, refusing images that cannot run.

Refused before anything runs (``INVALID_IMAGE``): an image not on the engine, built for another OS
or architecture than the hosts', over the size cap, or whose metadata the harness cannot make
harmless (no ENTRYPOINT, a relative WORKDIR or one under /proc, /sys or /dev, ``ENV LD_PRELOAD`` or
``LD_AUDIT``, a VOLUME over /, /proc, /sys or /dev, inside the contract's mounts, or more than 64
of them, a ``harness.*`` label; see
``harness.runner.image_faults``). Whether the entrypoint's file exists and can run is not checked
here: that needs a container, and the phase's start says it exactly (``RUNTIME_ERROR``, "train
could not start: ...").
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from harness.runner import Backend, EngineError, image_problem
from harness.util.errors import IntakeError
from harness.util.sizes import format_size

_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


@dataclass(frozen=True)
class PinnedImage:
    reference: str
    digest: str  # the image's content-addressed id, "sha256:<64 hex>"
    size_bytes: int
    architecture: str


def platform_problem(system: str, arch: str) -> str | None:
    """Why an image of this OS and architecture cannot run on the evaluation hosts, or None."""
    if system and system != "linux":
        return f"is built for {system}, but the evaluation hosts run linux; rebuild it for linux"
    host = _ARCH_ALIASES.get(platform.machine(), platform.machine())
    if arch and arch != host:
        return f"is built for {arch}, but the evaluation hosts are {host}; rebuild it for {host}"
    return None


def pin_image(backend: Backend, reference: str, *, max_bytes: int | None = None) -> PinnedImage:
    if not reference or not reference.strip():
        raise IntakeError("no image given: pass --image NAME[:TAG] or an image id")
    try:
        image = backend.image(reference)
    except EngineError as exc:
        raise IntakeError(f"image {reference!r} cannot be read: {exc}") from None
    if image is None:
        raise IntakeError(
            f"image {reference!r} is not on this machine's Docker engine; build it (docker build -t {reference} .) "
            "or load it (docker load -i image.tar) first"
        )
    if problem := platform_problem(image.os, image.architecture):
        raise IntakeError(f"image {reference!r} {problem}")
    size = image.size_bytes
    if max_bytes is not None and size > max_bytes:
        raise IntakeError(f"image {reference!r} is {format_size(size)}, over the size cap of {format_size(max_bytes)}")
    if problem := image_problem(image.config):
        raise IntakeError(f"image {reference!r} {problem}")
    return PinnedImage(reference, image.id, size, image.architecture)
