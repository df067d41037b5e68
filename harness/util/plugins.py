"""Extensions an organizer installs from their own package: entry points, and "module:attr" targets."""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any


@cache
def plugins(group: str) -> dict[str, EntryPoint]:
    """The entry points installed in ``group`` (e.g. ``harness.metrics``), by name."""
    return {ep.name: ep for ep in entry_points(group=group)}


def load_target(target: str) -> Any:
    """The object a ``module.path:attribute`` string names; ``ImportError`` or ``AttributeError`` when it doesn't exist."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ImportError(f"{target!r} is not of the form module.path:attribute")
    return getattr(importlib.import_module(module_name), attr)
