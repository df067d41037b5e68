"""Execution (``harness.runner``): run a phase in a container behind a ``Backend``, fan phases out over Ray."""
