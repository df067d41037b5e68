"""``harness serve``: the registry, the evaluation loop and the API under uvicorn, until interrupted."""

from __future__ import annotations

import ipaddress
import socket
import sys
from contextlib import asynccontextmanager

import anyio

from harness.competition.core import Competition
from harness.competition.paths import ServicePaths
from harness.service.context import SERVICE_NAME, ServiceContext
from harness.service.evaluator import Evaluator
from harness.util.errors import HarnessError


def serve(
    competition: Competition, overrides: list[str], *, host: str | None = None, port: int | None = None, registry_port: int | None = None
) -> int:
    import uvicorn

    from harness.registry import IssuerKey, RegistryServer
    from harness.service.app import create_app

    settings = competition.settings.service
    host, port = host or settings.host, port or settings.port
    registry_port = registry_port or settings.registry_port
    _check_free(host, port, "the service")
    if warning := plain_http_warning(host, settings.public_url):
        print(warning, file=sys.stderr, flush=True)
    paths = ServicePaths.of(competition.name, competition.home)
    paths.root.mkdir(parents=True, exist_ok=True)
    key = IssuerKey.load_or_create(paths.registry_auth)
    base = (settings.public_url or f"http://{_connectable(host)}:{port}").rstrip("/")  # where clients, the engine included, reach us
    realm = f"{base}/api/v1/registry/token"
    registry = RegistryServer(paths.root, realm=realm, key=key, host=settings.registry_host, port=registry_port, service=SERVICE_NAME)
    public = settings.registry_public or registry.address
    ctx = ServiceContext(competition, settings, key, registry.address, public)
    evaluator = Evaluator(competition.name, overrides, paths.root / "evaluator.pid")

    @asynccontextmanager
    async def beside(app):
        # uvicorn ends the process with the signal it caught once it has shut down: what runs beside
        # the API stops here, inside the shutdown, never after it
        evaluator.start()
        print(f"{competition.name}: API {base}/api/v1 (docs {base}/docs), pages {base}/, registry {public}", file=sys.stderr, flush=True)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(_stop, evaluator, registry)

    server = uvicorn.Server(uvicorn.Config(create_app(ctx, beside), host=host, port=port, log_level="warning", access_log=False))
    evaluator.end_stale()
    _collect_garbage(registry)
    registry.start()  # from this thread, which lives as long as the service: the registry dies with it
    try:
        server.run()
    finally:
        _stop(evaluator, registry)
    return 0


def _collect_garbage(registry) -> None:
    """Free the blobs of the manifests ``harness gc`` deleted since the last start (the registry's
    garbage-collect runs only while the registry is stopped); a failure is said and the start goes on."""
    try:
        freed = registry.collect_garbage()
    except HarnessError as exc:
        print(f"harness serve: the registry's garbage-collect did not run: {exc}", file=sys.stderr, flush=True)
        return
    if freed:
        from harness.util.sizes import format_size

        print(f"harness serve: the registry's garbage-collect freed {format_size(freed)}", file=sys.stderr, flush=True)


def _stop(evaluator: Evaluator, registry) -> None:
    evaluator.stop()
    registry.stop()


def plain_http_warning(host: str, public_url: str | None) -> str | None:
    """What to say when the service listens beyond this machine with no TLS in front of it: team
    tokens and session cookies would cross the network in clear."""
    if _loopback(host) or (public_url or "").lower().startswith("https://"):
        return None
    return (
        f"harness serve: warning: listening on {host} over plain HTTP and service.public_url is not https: team tokens "
        "and session cookies would cross the network in clear; put the service behind a TLS reverse proxy and set "
        "service.public_url=https://... (docs/deployment.md), or listen on 127.0.0.1"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def _connectable(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host


def _check_free(host: str, port: int, what: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise HarnessError(
                f"{what} cannot listen on {host}:{port}: {exc.strerror or exc}; stop what uses that port or pass --port"
            ) from None
