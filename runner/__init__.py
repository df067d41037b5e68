"""Execution (``harness.runner``): run a phase in a container behind a ``Backend``, fan phases out over Ray.

The names below are the runner's public surface: the service, the command line and the submissions
room import these from ``harness.runner`` and never a module inside it (``tests/test_layers.py``).
Each is loaded on first use, so importing one module of the runner does not import the engine's SDK."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "Backend": "backend",
    "EngineError": "backend",
    "EngineUnavailable": "backend",
    "ImageFacts": "backend",
    "available_backends": "backend",
    "check_backend": "backend",
    "create_backend": "backend",
    "register_backend": "backend",
    "connect_engine": "engine",
    "image_problem": "image_faults",
    "CursorError": "logs",
    "PhaseLogs": "logs",
    "parse_cursor": "logs",
    "read_phase_logs": "logs",
}
_RENAMED = {"connect_engine": "connect"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'harness.runner' has no attribute {name!r}")
    value = getattr(import_module(f"harness.runner.{_PUBLIC[name]}"), _RENAMED.get(name, name))
    globals()[name] = value
    return value
