"""What a token may do: the scopes a client asks for and what a team or the organizer is granted.

A scope is ``type[(class)]:name:actions`` (``repository:teams/a/img:push,pull``). A team gets
``push``/``pull`` only on repositories strictly under its namespace; the organizer's workers
(``namespace=None``) get ``pull`` on every repository; nothing else gets any action (the catalog
included). Names outside the distribution grammar get nothing, which closes path games
(``teams/a/../b/x``) and prefix tricks (``teams/a-evil/x`` is not under ``teams/a``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.util.errors import HarnessError

# The distribution reference grammar for a repository path (without a registry host): lowercase
# alphanumeric components, separated inside by '.', '_', '__' or dashes, joined by '/'.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
MAX_REPOSITORY_LENGTH = 255
_TYPE = re.compile(r"[a-z0-9]+(?:\([a-z0-9]+\))?")
_ACTION = re.compile(r"[a-z*]+")
TEAM_ACTIONS = ("push", "pull")
WORKER_ACTIONS = ("pull",)


@dataclass(frozen=True)
class Access:
    """One resource and the actions on it, as in a scope and in a token's ``access`` claim."""

    type: str
    name: str
    actions: tuple[str, ...]

    def claim(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def is_repository_name(name: str) -> bool:
    """Whether ``name`` is a repository path in the registry's strict grammar (``teams/a/img``)."""
    return len(name) <= MAX_REPOSITORY_LENGTH and _REPOSITORY.fullmatch(name) is not None


def parse_scopes(scopes: list[str]) -> list[Access]:
    """The well-formed scopes among the ``scope`` query values, in order; malformed ones are
    dropped, so they are granted nothing. The type may carry a class (``repository(plugin)``); the
    name is what lies between the type and the last ':'."""
    parsed = []
    for scope in scopes:
        kind, sep, rest = scope.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not (sep and sep2 and name and _TYPE.fullmatch(kind)):
            continue
        words = actions.split(",")
        if not all(_ACTION.fullmatch(word) for word in words):
            continue
        parsed.append(Access(kind, name, tuple(dict.fromkeys(words))))
    return parsed


def grant(requested: list[Access], namespace: str | None) -> list[Access]:
    """Each requested access with the actions it is granted (possibly none): a team's namespace
    (``teams/team-a``) allows push/pull on repositories under ``namespace + "/"``; ``None`` (the
    organizer's workers) allows pull on every repository."""
    if namespace is not None and not is_repository_name(namespace):
        raise HarnessError(f"the team namespace {namespace!r} is not a valid repository path; fix the team's namespace in the ledger")
    granted = []
    for access in requested:
        allowed: tuple[str, ...] = ()
        if access.type == "repository" and is_repository_name(access.name):
            if namespace is None:
                allowed = WORKER_ACTIONS
            elif access.name.startswith(namespace + "/"):
                allowed = TEAM_ACTIONS
        granted.append(Access(access.type, access.name, tuple(a for a in access.actions if a in allowed)))
    return granted
