"""Manifest lookups: what the registry holds under a digest, and how big the image is, before
anything is pulled. The client signs its own organizer (pull) token with the issuer key."""

from __future__ import annotations

import hashlib
import json
import platform
import re
from dataclasses import dataclass

import requests

from harness.registry.keys import IssuerKey
from harness.registry.scopes import Access, grant, is_repository_name
from harness.registry.server import SERVICE, direct_session
from harness.registry.tokens import issue_token
from harness.util.errors import HarnessError

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
TIMEOUT_S = 10.0
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
IMAGE_MANIFESTS = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")
INDEXES = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


class NotInRegistry(HarnessError):
    """The registry holds no manifest under that repository and digest."""


class RegistryUnavailable(HarnessError):
    """The registry does not answer, or refuses the issuer's own token."""


@dataclass(frozen=True)
class Manifest:
    """``digest`` and ``media_type`` of what was asked for; ``size_bytes`` (config plus every layer,
    compressed, as stored) and ``config_digest`` of the image it stands for."""

    digest: str
    media_type: str
    size_bytes: int
    config_digest: str


def host_architecture() -> str:
    machine = platform.machine().lower()
    return _ARCHITECTURES.get(machine, machine)


class RegistryClient:
    """Reads manifests from the registry at ``address`` (``host:port``) with pull tokens it signs itself."""

    def __init__(self, address: str, key: IssuerKey, service: str = SERVICE):
        self.address = address
        self.key = key
        self.service = service

    def manifest(self, repository: str, digest: str) -> Manifest:
        """The manifest of ``repository@digest``. For an index (an OCI index or a Docker manifest
        list) the size and config are those of its ``linux`` image for this host's architecture
        (what a pull by that digest gives here); digest and media type stay the index's."""
        if not DIGEST.fullmatch(digest):
            raise HarnessError(f"{digest!r} is not an image digest; give sha256: followed by 64 lowercase hex digits")
        if not is_repository_name(repository):
            raise HarnessError(f"{repository!r} is not a repository name (lowercase letters, digits, '.', '_', '-' in parts joined by '/')")
        body, media_type = self._fetch(repository, digest)
        image = body
        if media_type in INDEXES:
            image = self._fetch(repository, self._platform_manifest(repository, digest, body))[0]
        config, layers = image.get("config"), image.get("layers")
        if not isinstance(config, dict) or not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
            raise HarnessError(f"{repository}@{digest} is not a container image (its manifest has no config and layers); push an image")
        sizes = [config.get("size"), *(layer.get("size") for layer in layers)]
        if not all(type(size) is int and size >= 0 for size in sizes) or not isinstance(config.get("digest"), str):
            raise HarnessError(f"{repository}@{digest} has a malformed manifest (sizes or config digest); push the image again")
        return Manifest(digest=digest, media_type=media_type, size_bytes=sum(sizes), config_digest=config["digest"])

    def _platform_manifest(self, repository: str, digest: str, index: dict) -> str:
        arch = host_architecture()
        entries = index.get("manifests")
        for entry in entries if isinstance(entries, list) else []:
            target = entry.get("platform") if isinstance(entry, dict) else None
            if isinstance(target, dict) and (target.get("os"), target.get("architecture")) == ("linux", arch):
                if DIGEST.fullmatch(str(entry.get("digest"))):
                    return entry["digest"]
        raise HarnessError(f"{repository}@{digest} holds no linux/{arch} image; build the image for linux/{arch} and push it")

    def _fetch(self, repository: str, digest: str) -> tuple[dict, str]:
        """The manifest's JSON and media type, checked against ``digest``."""
        url = f"http://{self.address}/v2/{repository}/manifests/{digest}"
        token = issue_token(
            self.key, subject="harness-worker", audience=self.service, access=grant([Access("repository", repository, ("pull",))], None)
        )
        headers = {"Authorization": f"Bearer {token}", "Accept": ", ".join(IMAGE_MANIFESTS + INDEXES)}
        try:
            with direct_session().get(url, headers=headers, timeout=TIMEOUT_S, stream=True) as answer:
                raw = answer.raw.read(MAX_MANIFEST_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise RegistryUnavailable(
                f"the registry at {self.address} does not answer ({type(exc).__name__}); check that the service's registry is running"
            ) from None
        if answer.status_code == 404:
            raise NotInRegistry(f"{repository}@{digest} is not in the registry at {self.address}; push it first")
        if answer.status_code in (401, 403):
            raise RegistryUnavailable(
                f"the registry at {self.address} refuses the service's own token ({answer.status_code}); "
                "its rootcertbundle must be this service's cert.pem: restart the service"
            )
        if answer.status_code != 200:
            raise RegistryUnavailable(
                f"the registry at {self.address} answered {answer.status_code} for {repository}@{digest}; see its log"
            )
        if len(raw) > MAX_MANIFEST_BYTES or hashlib.sha256(raw).hexdigest() != digest.removeprefix("sha256:"):
            raise HarnessError(f"the manifest of {repository}@{digest} does not match its digest or is too large; push the image again")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise HarnessError(f"the manifest of {repository}@{digest} is not a JSON object; push an image")
        media_type = body.get("mediaType") or answer.headers.get("Content-Type", "").split(";")[0]
        if media_type not in IMAGE_MANIFESTS + INDEXES:
            raise HarnessError(
                f"{repository}@{digest} is a {media_type or 'manifest of unknown type'}, not a container image; push an image"
            )
        return body, media_type
