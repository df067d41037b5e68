"""Manifest lookups: what the registry holds under a digest, and how big the image is, before
anything is pulled. The client signs its own organizer (pull) token with the issuer key."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import zlib
from collections.abc import Iterator
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
MAX_CONFIG_BYTES = 1024 * 1024
CHUNK_BYTES = 1 << 20
CATALOG_PAGE = 1000
IMAGE_MANIFESTS = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")
INDEXES = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


class NotInRegistry(HarnessError):
    """The registry holds no manifest under that repository and digest."""


class RegistryUnavailable(HarnessError):
    """The registry does not answer, or refuses the issuer's own token."""


@dataclass(frozen=True)
class Layer:
    digest: str
    media_type: str
    size_bytes: int  # as stored (compressed)


@dataclass(frozen=True)
class Manifest:
    """``digest`` and ``media_type`` of what was asked for; ``size_bytes`` (config plus every layer,
    compressed, as stored), ``config_digest`` and ``layers`` of the image it stands for."""

    digest: str
    media_type: str
    size_bytes: int
    config_digest: str
    layers: tuple[Layer, ...] = ()


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
        if not all(DIGEST.fullmatch(str(layer.get("digest"))) for layer in layers) or not DIGEST.fullmatch(config["digest"]):
            raise HarnessError(f"{repository}@{digest} has a malformed manifest (layer or config digests); push the image again")
        found = tuple(Layer(layer["digest"], str(layer.get("mediaType") or ""), layer["size"]) for layer in layers)
        return Manifest(digest=digest, media_type=media_type, size_bytes=sum(sizes), config_digest=config["digest"], layers=found)

    def image_config(self, repository: str, manifest: Manifest) -> dict:
        """The image's configuration (its ``config`` blob: OS, architecture, entrypoint, ENV, VOLUME,
        labels), read before anything is pulled; checked against its digest."""
        raw = b"".join(self._blob(repository, manifest.config_digest, MAX_CONFIG_BYTES))
        return _json_object(raw, manifest.config_digest, MAX_CONFIG_BYTES, f"the configuration of {repository}@{manifest.digest}")

    def unpacked_size(self, repository: str, manifest: Manifest, cap: int) -> int | None:
        """The image's layers' size once unpacked, read from the registry by streaming each through
        its decompressor without keeping it, and given up past ``cap`` (a small layer can unpack to
        many GB): at least ``cap + 1`` then. None when a layer is compressed in a way this Python cannot read (zstd)."""
        total = 0
        for layer in manifest.layers:
            if layer.media_type.endswith("gzip"):
                unpack = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            elif layer.media_type.endswith(".tar"):
                unpack = None
            else:
                return None
            for chunk in self._blob(repository, layer.digest, None):
                total += len(chunk) if unpack is None else _unpacked(unpack, chunk, cap + 1 - total)
                if total > cap:
                    return total
        return total

    def _blob(self, repository: str, digest: str, limit: int | None) -> Iterator[bytes]:
        """The blob's bytes in chunks (at most ``limit`` + 1 of them)."""
        url = f"http://{self.address}/v2/{repository}/blobs/{digest}"
        try:
            with direct_session().get(url, headers=self._headers(repository), timeout=TIMEOUT_S, stream=True) as answer:
                if answer.status_code != 200:
                    raise RegistryUnavailable(
                        f"the registry at {self.address} answered {answer.status_code} for the blob {digest} of {repository}"
                    )
                read = 0
                for chunk in answer.iter_content(CHUNK_BYTES):
                    yield chunk
                    read += len(chunk)
                    if limit is not None and read > limit:
                        return
        except requests.RequestException as exc:
            raise RegistryUnavailable(
                f"the registry at {self.address} does not answer ({type(exc).__name__}) for the blob {digest}"
            ) from None

    def repositories(self, prefix: str) -> list[str]:
        """Every repository of the registry under ``prefix`` (its catalog, page by page)."""
        found, last = [], ""
        while True:
            body = self._get_json("/v2/_catalog", {"n": CATALOG_PAGE, "last": last}, [Access("registry", "catalog", ("*",))])
            names = body.get("repositories") or []
            found += [name for name in names if isinstance(name, str) and name.startswith(prefix)]
            if len(names) < CATALOG_PAGE:
                return found
            last = names[-1]

    def tags(self, repository: str) -> list[str]:
        body = self._get_json(f"/v2/{repository}/tags/list", {}, [Access("repository", repository, ("pull",))])
        return [tag for tag in body.get("tags") or [] if isinstance(tag, str)]

    def tag_digest(self, repository: str, tag: str) -> str:
        """The digest of the manifest ``repository:tag`` names now."""
        try:
            answer = direct_session().head(
                f"http://{self.address}/v2/{repository}/manifests/{tag}", headers=self._headers(repository), timeout=TIMEOUT_S
            )
        except requests.RequestException as exc:
            raise RegistryUnavailable(f"the registry at {self.address} does not answer ({type(exc).__name__})") from None
        digest = answer.headers.get("Docker-Content-Digest", "")
        if answer.status_code == 404 or not DIGEST.fullmatch(digest):
            raise NotInRegistry(f"{repository}:{tag} is not in the registry at {self.address}")
        return digest

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete ``repository@digest`` (and the tags naming it) with a ``delete`` token the organizer
        signs itself (the token endpoint grants no one ``delete``); whether it was there. Its blobs
        stay until the registry's garbage-collect (``harness.registry.storage``)."""
        if not DIGEST.fullmatch(digest) or not is_repository_name(repository):
            raise HarnessError(f"{repository}@{digest} is not a repository and image digest")
        token = issue_token(self.key, subject="harness-gc", audience=self.service, access=[Access("repository", repository, ("delete",))])
        try:
            answer = direct_session().delete(
                f"http://{self.address}/v2/{repository}/manifests/{digest}", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S
            )
        except requests.RequestException as exc:
            raise RegistryUnavailable(f"the registry at {self.address} does not answer ({type(exc).__name__})") from None
        if answer.status_code in (202, 404):
            return answer.status_code == 202
        if answer.status_code == 405:
            raise RegistryUnavailable(
                f"the registry at {self.address} does not allow deletes (storage.delete.enabled); restart the service"
            )
        raise RegistryUnavailable(f"the registry at {self.address} answered {answer.status_code} to the delete of {repository}@{digest}")

    def _get_json(self, path: str, params: dict, access: list[Access]) -> dict:
        token = issue_token(self.key, subject="harness-worker", audience=self.service, access=access)
        try:
            answer = direct_session().get(
                f"http://{self.address}{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S
            )
        except requests.RequestException as exc:
            raise RegistryUnavailable(f"the registry at {self.address} does not answer ({type(exc).__name__})") from None
        if answer.status_code == 404:
            return {}
        if answer.status_code != 200:
            raise RegistryUnavailable(f"the registry at {self.address} answered {answer.status_code} for {path}; see its log")
        body = answer.json()
        return body if isinstance(body, dict) else {}

    def _headers(self, repository: str) -> dict[str, str]:
        token = issue_token(
            self.key, subject="harness-worker", audience=self.service, access=grant([Access("repository", repository, ("pull",))], None)
        )
        return {"Authorization": f"Bearer {token}", "Accept": ", ".join(IMAGE_MANIFESTS + INDEXES)}

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
        try:
            with direct_session().get(url, headers=self._headers(repository), timeout=TIMEOUT_S, stream=True) as answer:
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
        body = _json_object(raw, digest, MAX_MANIFEST_BYTES, f"the manifest of {repository}@{digest}")
        media_type = body.get("mediaType") or answer.headers.get("Content-Type", "").split(";")[0]
        if media_type not in IMAGE_MANIFESTS + INDEXES:
            raise HarnessError(
                f"{repository}@{digest} is a {media_type or 'manifest of unknown type'}, not a container image; push an image"
            )
        return body, media_type


def _json_object(raw: bytes, digest: str, limit: int, what: str) -> dict:
    """``raw`` (a manifest or an image's config) as a JSON object, once it is within ``limit`` and hashes to ``digest``."""
    if len(raw) > limit or hashlib.sha256(raw).hexdigest() != digest.removeprefix("sha256:"):
        raise HarnessError(f"{what} does not match its digest or is too large; push the image again")
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise HarnessError(f"{what} is not a JSON object; push an image")
    return body


def _unpacked(unpack, chunk: bytes, room: int) -> int:
    """Bytes ``chunk`` unpacks to, never holding more than a megabyte of them at once, stopping past ``room``."""
    total, data = 0, chunk
    while data and total <= room:
        total += len(unpack.decompress(data, CHUNK_BYTES))
        data = unpack.unconsumed_tail
    return total
