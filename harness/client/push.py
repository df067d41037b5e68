"""Tag a local image under the team's namespace in the competition's registry and push it through
the Docker SDK, with the team's id and token as the registry login; the pushed manifest's digest
comes from the push stream's ``aux`` record."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import docker
import docker.errors

from harness.client.text import shown
from harness.util.errors import HarnessError

_HEX = re.compile(r"(sha256:)?[0-9a-f]{1,64}")
_NAME_MAX, _TAG_MAX = 128, 128


class PushError(HarnessError):
    """The image could not be tagged or pushed; the message says why and what to do."""


@dataclass(frozen=True)
class Pushed:
    repository: str  # <registry>/<namespace>/<name>: what a submission names
    tag: str
    digest: str  # the manifest's digest in the registry


def target_name(reference: str, image_id: str, tags: list[str]) -> tuple[str, str]:
    """The (name, tag) to push ``reference`` as: its repository's last component and its tag (or
    ``latest``) in the registry's grammar; an image id with no name gets ``image-<12 hex of the id>``."""
    derived = f"image-{image_id.removeprefix('sha256:')[:12]}"
    bare = reference.split("@", 1)[0]
    if _HEX.fullmatch(bare) and bare not in tags and f"{bare}:latest" not in tags:
        return derived, "latest"
    path, _, tag = bare.rpartition(":") if ":" in bare.rsplit("/", 1)[-1] else (bare, "", "latest")
    name = re.sub(r"[._-]{2,}", "-", re.sub(r"[^a-z0-9._-]+", "-", path.rsplit("/", 1)[-1].lower()))[:_NAME_MAX].strip("._-")
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", tag)[:_TAG_MAX].lstrip(".-") or "latest"
    return name or derived, tag


def push_image(
    client: docker.DockerClient,
    reference: str,
    *,
    registry: str,
    namespace: str,
    username: str,
    token: str,
    log: Callable[[str], None] = lambda line: None,
) -> Pushed:
    """Push the local image ``reference`` as ``<registry>/<namespace>/<name>:<tag>``; ``log`` gets one
    line per layer state. The extra tag is removed afterwards (kept when it is the image's only name,
    since removing it would delete the image)."""
    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        raise PushError(
            f"image {reference!r} is not on this machine's Docker engine; build it (docker build -t {reference} .) "
            "or load it (docker load -i image.tar) first"
        ) from None
    except docker.errors.APIError as exc:
        raise PushError(f"image {reference!r} cannot be read: {exc.explanation or exc}") from None
    name, tag = target_name(reference, image.id, list(image.tags))
    repository = f"{registry}/{namespace}/{name}"
    target = f"{repository}:{tag}"
    added = target not in image.tags
    try:
        image.tag(repository, tag)
    except docker.errors.APIError as exc:
        raise PushError(f"cannot tag {reference!r} as {target}: {exc.explanation or exc}") from None
    try:
        digest = _push(client, repository, tag, registry, {"username": username, "password": token}, log)
    finally:
        if added and image.tags:  # image.tags is as it was before the tag: another name keeps the image
            try:
                client.images.remove(target)
            except docker.errors.APIError as exc:
                log(f"could not remove the tag {target}: {exc.explanation or exc}")
    return Pushed(repository, tag, digest)


def _push(client, repository: str, tag: str, registry: str, auth: dict[str, str], log: Callable[[str], None]) -> str:
    target, states, digest = f"{repository}:{tag}", {}, None
    try:
        for entry in client.images.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
            if error := entry.get("error") or (entry.get("errorDetail") or {}).get("message"):
                raise PushError(_push_failure(target, registry, str(error)))
            if aux := entry.get("aux"):
                digest = aux.get("Digest") or digest
            status, layer = entry.get("status"), entry.get("id")
            if status and layer and states.get(layer) != status:
                states[layer] = status
                log(f"{shown(layer)}: {shown(status)}")
            elif status and not layer:
                log(shown(status))
    except docker.errors.APIError as exc:
        raise PushError(_push_failure(target, registry, str(exc.explanation or exc))) from None
    if not digest or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise PushError(f"the push of {target} ended without the manifest's digest; push again")
    return digest


def _push_failure(target: str, registry: str, error: str) -> str:
    text, lowered = shown(error), error.lower()
    if any(word in lowered for word in ("denied", "unauthorized", "authentication required", "forbidden")):
        return f"the registry {registry} refused the push of {target} ({text}); check your team token (harness login) and the competition"
    if any(word in lowered for word in ("connection refused", "no such host", "dial tcp", "i/o timeout", "eof")):
        return f"the registry {registry} does not answer ({text}); try again later or ask the organizer"
    return f"the push of {target} failed: {text}"
