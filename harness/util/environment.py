"""The Python environment a harness runs in, as a fingerprint a record keeps: which release made it,
with which packages, so that an audit made with another environment says what differs."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
import re
from typing import Any


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def environment_fingerprint() -> dict[str, Any]:
    """``{"sha256", "python", "packages"}``: every installed distribution's name and version, and the
    SHA-256 of their sorted ``name==version`` lines with the Python version (the same environment,
    the same hash, on any machine). Read once per process; treat the result as read-only."""
    packages: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages.setdefault(_canonical(name), dist.version)
    packages = dict(sorted(packages.items()))
    python = platform.python_version()
    lines = [f"python=={python}", *(f"{name}=={version}" for name, version in packages.items())]
    return {"sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(), "python": python, "packages": packages}


def environment_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, one item each: ``numpy 2.4.6 -> 2.4.7``, ``+uv 0.13.9``, ``-six 1.17.0``."""
    changes = []
    if before.get("python") != after.get("python"):
        changes.append(f"Python {before.get('python')} -> {after.get('python')}")
    old, new = before.get("packages") or {}, after.get("packages") or {}
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            changes.append(f"-{name} {old[name]}")
        elif name not in old:
            changes.append(f"+{name} {new[name]}")
        elif old[name] != new[name]:
            changes.append(f"{name} {old[name]} -> {new[name]}")
    return changes
