"""The registry process: Debian's ``docker-registry`` (distribution 2.8) on loopback, its storage on
disk, trusting only tokens signed by the service's issuer key."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests
import yaml

from harness.registry.keys import IssuerKey
from harness.registry.storage import stored_bytes
from harness.registry.tokens import ISSUER
from harness.util.children import PidFile, bound_to_parent
from harness.util.errors import HarnessError

SERVICE = "harness-registry"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
GC_TIMEOUT_S = 600.0
PORT_FREE_WAIT_S = 5.0  # a stale registry just ended lets go of its port a moment after its pid shows it gone
LOG_TAIL_LINES = 15


def registry_binary() -> str:
    """The distribution registry's executable on PATH (Debian names it ``docker-registry``)."""
    for name in ("docker-registry", "registry"):
        found = shutil.which(name)
        if found:
            return found
    raise HarnessError(
        "the container registry is not installed (no docker-registry or registry on PATH); "
        "run scripts/setup.sh or `apt-get install docker-registry`"
    )


def direct_session() -> requests.Session:
    """HTTP to the registry, ignoring proxy variables: it sits beside the service, not out there."""
    session = requests.Session()
    session.trust_env = False
    return session


class RegistryServer:
    """One registry process for one competition; ``root`` is its folder in the work directory
    (``service/<competition>/``): ``registry/`` its storage, ``registry.yml`` its configuration
    (written at each start), ``registry.log`` its output, ``registry.pid`` the running registry.

    The registry ends with the process that started it, even on that process's SIGKILL (call
    ``start`` from the main thread or one that outlives the registry); one an older crash left
    running with this configuration is ended at the next start."""

    def __init__(self, root: Path, *, realm: str, key: IssuerKey, host: str = "127.0.0.1", port: int = 5050, service: str = SERVICE):
        self.root = Path(root)
        self.realm = realm
        self.key = key
        self.host = host
        self.port = port
        self.service = service
        self.config_path = self.root / "registry.yml"
        self.log_path = self.root / "registry.log"
        self.pidfile = PidFile(self.root / "registry.pid", "the registry")
        self._process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    @property
    def address(self) -> str:
        """``host:port``, the registry part of an image reference."""
        return f"{self.host}:{self.port}"

    def config(self) -> dict[str, object]:
        """The registry's configuration: filesystem storage, token auth by this issuer, no debug listener."""
        return {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "registry")}, "delete": {"enabled": True}},
            # the secret signs upload state between requests; one process, so a fresh one per start does
            "http": {"addr": self.address, "secret": secrets.token_urlsafe(32), "headers": {"X-Content-Type-Options": ["nosniff"]}},
            "auth": {
                "token": {"realm": self.realm, "service": self.service, "issuer": ISSUER, "rootcertbundle": str(self.key.cert_path)},
            },
        }

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Write the configuration, start the registry and wait until ``/v2/`` asks for a token."""
        binary = registry_binary()
        command = [binary, "serve", str(self.config_path)]
        self.pidfile.end_stale(command)
        self._check_port_free()
        self._write_config()
        with open(self.log_path, "ab") as log:
            self._log_start = log.tell()
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_environment(),
                start_new_session=True,  # a Ctrl-C in the terminal reaches the service, which stops the registry last
                preexec_fn=bound_to_parent(signal.SIGTERM),
            )
        self.pidfile.write(self._process.pid)
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise

    def collect_garbage(self, timeout_s: float = GC_TIMEOUT_S) -> int:
        """The registry's offline ``garbage-collect``: delete the blobs no manifest references any
        more (those of the manifests ``harness gc`` deleted). Only while no registry serves this
        storage (one an earlier crash left is ended first); the bytes it freed."""
        binary = registry_binary()
        if self._process is not None:
            raise HarnessError("the registry's garbage-collect needs the registry stopped; stop it first")
        try:
            self.pidfile.end_stale([binary, "serve", str(self.config_path)])
        except HarnessError as exc:
            raise HarnessError(f"the registry's garbage-collect needs the registry stopped: {exc} (its next start collects)") from None
        storage = self.root / "registry"
        if not (storage / "docker" / "registry" / "v2" / "repositories").is_dir():
            return 0  # nothing was ever pushed (the garbage-collect fails on a storage without repositories)
        self._write_config()
        before = stored_bytes(storage)
        try:
            done = subprocess.run(
                [binary, "garbage-collect", str(self.config_path)],
                capture_output=True,
                env=_environment(),
                stdin=subprocess.DEVNULL,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise HarnessError(f"the registry's garbage-collect did not finish within {timeout_s:.0f} s; run it again") from None
        with open(self.log_path, "ab") as log:
            log.write(done.stdout + done.stderr)
        if done.returncode != 0:
            said = (done.stderr or done.stdout).decode("utf-8", errors="replace").strip().splitlines()
            raise HarnessError(f"the registry's garbage-collect failed (status {done.returncode}): {said[-1] if said else 'no output'}")
        return before - stored_bytes(storage)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if the registry has not exited within a few seconds."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.pidfile.clear()

    def __enter__(self) -> RegistryServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_config(self) -> None:
        (self.root / "registry").mkdir(parents=True, exist_ok=True)
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(self.config(), fh, sort_keys=False)

    def _check_port_free(self) -> None:
        deadline = time.monotonic() + PORT_FREE_WAIT_S
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the registry's own listener does
                try:
                    probe.bind((self.host, self.port))
                    return
                except OSError as exc:
                    if time.monotonic() >= deadline:
                        raise HarnessError(
                            f"the registry cannot listen on {self.address}: {exc.strerror or exc}; stop what uses that port or choose another registry port"
                        ) from None
            time.sleep(0.1)

    def _wait_ready(self, timeout_s: float) -> None:
        url = f"http://{self.address}/v2/"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise HarnessError(
                    f"the registry exited at start (status {self._process.returncode}); {self.log_path} says:\n{self._log_tail()}"
                )
            try:
                answer = direct_session().get(url, timeout=1.0)
            except requests.RequestException:
                time.sleep(0.1)
                continue
            if answer.status_code == 401:
                return
            raise HarnessError(f"the registry at {url} answered {answer.status_code} without asking for a token; check {self.config_path}")
        raise HarnessError(f"the registry did not answer on {url} within {timeout_s:.0f} s; {self.log_path} says:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        """What this start wrote: its panic or error lines when there are some (a Go panic's stack
        says nothing to a user), else its last lines."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_start)
                lines = log.read().decode("utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        errors = [line for line in lines if line.startswith("panic:") or "level=fatal" in line or "level=error" in line]
        return "\n".join((errors or lines)[-LOG_TAIL_LINES:]) or "(empty log)"


def _environment() -> dict[str, str]:
    """The caller's environment less its REGISTRY_* variables, which override the configuration file."""
    return {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}
