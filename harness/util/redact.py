"""No secret in a record: credentials are taken out of the configuration before a record keeps it.

A record keeps the resolved configuration (``manifest.config``), and from the record it reaches
MLflow (params, the record as an artifact) and audit reports. So before a record is made:

- the user and password of any URL (``http://alice:s3cret@host`` -> ``http://***@host``), in any
  string of the configuration (``tracking.uri``, ``images.debian_mirror``, ``runner.address``);
- the value of any key named like a credential (``token``, ``password``, ``secret``, ``key``,
  ``credentials``, ``auth``: ``api_key``, ``accessToken``, ``db-password``) becomes ``***``.

``config_sha256`` is then the hash of the redacted configuration (the same YAML rendering as
``Settings.config_sha256``, which it equals whenever nothing was redacted).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

MASK = "***"
SECRET_WORDS = frozenset(
    {
        "token",
        "tokens",
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "secrets",
        "key",
        "apikey",
        "credential",
        "credentials",
        "auth",
    }
)
# scheme://user[:password]@ : everything between "://" and the last "@" before the host's end.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#@\s]+)@")
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def redact_text(text: str) -> str:
    """``text`` with every URL's user and password replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def secret_name(name: str) -> bool:
    """Whether a configuration key's name says its value is a credential (``api_key``, ``accessToken``)."""
    words = [w.lower() for w in _WORD.findall(name)]
    joined = "".join(words)
    return any(w in SECRET_WORDS for w in words) or joined in SECRET_WORDS


def redact_config(value: Any, name: str = "") -> Any:
    """A copy of a configuration (dicts, lists, scalars) with its credentials replaced by ``***``."""
    if name and secret_name(name) and value not in (None, "", MASK):
        return MASK
    if isinstance(value, dict):
        return {k: redact_config(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_config(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def config_sha256(config: dict[str, Any]) -> str:
    """SHA-256 of the configuration's sorted YAML, as ``Settings.config_sha256`` renders it."""
    from omegaconf import OmegaConf

    return hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(config), resolve=True, sort_keys=True).encode()).hexdigest()


def redact_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its configuration redacted (and ``config_sha256`` of what is kept); the same
    object when there was nothing to redact."""
    config = manifest.get("config")
    if not isinstance(config, dict):
        return manifest
    redacted = redact_config(config)
    if redacted == config:
        return manifest
    return {**manifest, "config": redacted, "config_sha256": config_sha256(redacted)}
