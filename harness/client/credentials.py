"""Where the participant's service address and team token are kept, and the environment over them.

``~/.config/harness/credentials.json`` (``$XDG_CONFIG_HOME/harness/`` when set): written whole,
created with mode 600 in a folder of mode 700, so the token is never readable by another user,
not even while it is written. ``HARNESS_SERVER`` and ``HARNESS_TOKEN`` override the file (CI jobs
and tests run without one). The token never appears in a repr, a message or ``--json`` output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.util.errors import HarnessError
from harness.util.files import read_json_object, write_json_atomic

SERVER_ENV, TOKEN_ENV, ALLOW_HTTP_ENV = "HARNESS_SERVER", "HARNESS_TOKEN", "HARNESS_ALLOW_HTTP"
LOGIN_HINT = "run `harness login URL --token T` with the address and team token the organizer gave you"


class NotLoggedIn(HarnessError):
    """No service address or no team token, neither stored nor in the environment."""


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str | None = field(repr=False)
    allow_http: bool = False  # plain http to a host other than this machine, as the participant chose at login
    source: str = "environment"  # where they came from: the file's path or "environment"


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "harness" / "credentials.json"


def load_credentials(*, need_token: bool = True) -> Credentials:
    """The stored credentials with the environment over them; without a server (or a token, when
    ``need_token``) one line telling the participant to log in."""
    path = credentials_path()
    stored: dict = {}  # read only when the environment does not give both
    if path.exists() and not (os.environ.get(SERVER_ENV) and os.environ.get(TOKEN_ENV)):
        stored = read_json_object(path, "harness credentials", ("server", "token"), f"log in again ({LOGIN_HINT})")
    server = os.environ.get(SERVER_ENV) or stored.get("server")
    token = os.environ.get(TOKEN_ENV) or stored.get("token")
    if not server or (need_token and not token):
        missing = "no service address" if not server else "no team token"
        raise NotLoggedIn(f"{missing}: {LOGIN_HINT} (or set {SERVER_ENV} and {TOKEN_ENV})")
    allow_http = os.environ.get(ALLOW_HTTP_ENV) == "1" or (stored.get("server") == server and stored.get("allow_http") is True)
    return Credentials(str(server), str(token) if token else None, allow_http, str(path) if stored else "environment")


def save_credentials(server: str, token: str, *, allow_http: bool = False) -> Path:
    """Store ``server`` and ``token`` whole (a crash leaves the old file or the new one), mode 600 from
    the moment the file exists; its folder is made (or kept) 700."""
    path = credentials_path()
    data = {"server": server, "token": token, **({"allow_http": True} if allow_http else {})}
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        write_json_atomic(path, data)  # its temporary file is made 0600: the token is never readable by others
    except OSError as exc:
        raise HarnessError(f"cannot store the credentials in {path}: {exc.strerror or exc}") from None
    return path
