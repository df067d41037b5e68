"""harness: a reproducible online/online evaluation harness for machine-learning competitions."""

from importlib.metadata import version

__version__ = version("harness")  # the one version string lives in pyproject.toml
