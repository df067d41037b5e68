"""Test helpers around a real registry: a free port, a token endpoint on loopback (the contract's
``GET /api/v1/registry/token`` served by ``token_answer``, as the service will), a running registry
with its issuer key, a tiny image built from scratch, and push/pull through the docker SDK."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import docker

from harness.registry import SERVICE, IssuerKey, RegistryServer, token_answer

TOKEN_PATH = "/api/v1/registry/token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TokenEndpoint:
    """A token endpoint on 127.0.0.1: HTTP Basic credentials ``username -> (password, namespace)``
    (a team's namespace, or ``None`` for the organizer's workers), answers from ``token_answer``.
    ``requests`` counts the calls, ``refused`` the wrong credentials, ``granted`` the usernames answered."""

    def __init__(self, key: IssuerKey, credentials: dict[str, tuple[str, str | None]], service: str = SERVICE):
        self.key = key
        self.credentials = credentials
        self.service = service
        self.requests = 0
        self.refused = 0
        self.granted: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests += 1
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                caller = endpoint.authenticate(self.headers.get("Authorization", ""))
                if url.path != TOKEN_PATH:
                    self.answer(404, {"detail": "not found"})
                elif caller is None:
                    endpoint.refused += 1
                    self.answer(401, {"detail": "a valid team token is required"})
                elif query.get("service", [endpoint.service]) != [endpoint.service]:
                    self.answer(400, {"detail": f"this token service issues tokens for {endpoint.service} only"})
                else:
                    username, namespace = caller
                    endpoint.granted.append(username)
                    body = token_answer(
                        endpoint.key, service=endpoint.service, scopes=query.get("scope", []), namespace=namespace, subject=username
                    )
                    self.answer(200, body)

            def answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="harness"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{TOKEN_PATH}"

    def authenticate(self, header: str) -> tuple[str, str | None] | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = self.credentials.get(username)
        if expected is None or not hmac.compare_digest(password.encode(), expected[0].encode()):
            return None
        return username, expected[1]

    def __enter__(self) -> TokenEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class RunningRegistry:
    server: RegistryServer
    tokens: TokenEndpoint
    key: IssuerKey

    @property
    def address(self) -> str:
        return self.server.address


@contextlib.contextmanager
def running_registry(root: Path, credentials: dict[str, tuple[str, str | None]]) -> Iterator[RunningRegistry]:
    """A registry under ``root`` (a work directory's ``service/<competition>/``) on a free port,
    trusting a fresh issuer key, with its token endpoint; both stopped on exit."""
    key = IssuerKey.load_or_create(root / "registry-auth")
    with TokenEndpoint(key, credentials) as tokens:
        with RegistryServer(root, realm=tokens.realm, key=key, port=free_port()) as server:
            yield RunningRegistry(server=server, tokens=tokens, key=key)


def build_tiny_image(client: docker.DockerClient, tag: str, content: bytes, workdir: Path) -> str:
    """Build ``tag`` from scratch holding one file with ``content`` (no base image needed); its id."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "payload.txt").write_bytes(content)
    (workdir / "Dockerfile").write_text("FROM scratch\nCOPY payload.txt /payload.txt\n")
    # no build cache: looking for a cached step, Docker 20.10's builder reads every image with the same
    # parent (scratch: any such image), and fails ("unable to find image") on one another test removes meanwhile
    image, _ = client.images.build(path=str(workdir), tag=tag, rm=True, network_mode="none", nocache=True)
    return image.id


class DockerRefused(Exception):
    """The engine reported an error in a push or pull stream (the message is the engine's)."""


def push(client: docker.DockerClient, repository: str, tag: str, auth: dict[str, str]) -> str:
    """Push ``repository:tag`` with ``auth`` (username/password); the digest the engine reports."""
    digest = None
    for event in client.images.push(repository, tag=tag, auth_config=auth, stream=True, decode=True):
        if "error" in event:
            raise DockerRefused(event["error"])
        digest = (event.get("aux") or {}).get("Digest", digest)
    if digest is None:
        raise DockerRefused(f"the push of {repository}:{tag} reported no digest")
    return digest


def pull_by_digest(client: docker.DockerClient, repository: str, digest: str, auth: dict[str, str]) -> None:
    """Pull ``repository@digest`` with ``auth``; an engine error (at the start or in the stream) raises DockerRefused."""
    try:
        for event in client.api.pull(repository, tag=digest, auth_config=auth, stream=True, decode=True):
            if "error" in event:
                raise DockerRefused(event["error"])
    except docker.errors.APIError as exc:
        raise DockerRefused(str(exc.explanation or exc)) from None


def remove_images(client: docker.DockerClient, references: list[str]) -> None:
    """Remove tags and digests the tests left in the engine (those already gone are skipped)."""
    for reference in references:
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.NotFound):
            client.images.remove(reference, force=True, noprune=False)


def add_evaluated(ledger, team: str, image: str, image_id: str):
    """A ledger row for ``image`` evaluated without a score (what gc's retention policy does not keep)."""
    from harness.submissions.ledger import EVALUATED

    done = ledger.add(team, image, image_id)
    done.state = EVALUATED
    ledger.save(done)
    return done
