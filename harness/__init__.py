"""harness: a reproducible online/online evaluation harness for machine-learning competitions."""

__version__ = "0.1.0"
