"""The OCI registry beside the service: its process, the token issuer, the scopes granted, manifest lookups."""

from harness.registry.keys import IssuerKey
from harness.registry.lookup import Manifest, NotInRegistry, RegistryClient, RegistryUnavailable
from harness.registry.scopes import Access, grant, is_repository_name, parse_scopes
from harness.registry.server import SERVICE, RegistryServer, registry_binary
from harness.registry.tokens import issue_token, token_answer

__all__ = [
    "SERVICE",
    "Access",
    "IssuerKey",
    "Manifest",
    "NotInRegistry",
    "RegistryClient",
    "RegistryServer",
    "RegistryUnavailable",
    "grant",
    "is_repository_name",
    "issue_token",
    "parse_scopes",
    "registry_binary",
    "token_answer",
]
