"""Dockerfiles and the sample submission (installed as ``harness.images``)."""
