"""Running an evaluation's phases one after the other in this process (check, audit, re-infer)."""

from __future__ import annotations

import dataclasses
from typing import TextIO

from harness.competition.core import Competition
from harness.evaluation.evaluation import Evaluation
from harness.runner.backend import Backend, EngineError, EngineUnavailable, create_backend
from harness.runner.gpus import local_gpu_ids
from harness.util.errors import ConfigError, HarnessError
from harness.util.sizes import format_size


def local_backend(competition: Competition) -> Backend:
    """The competition's ``runner.backend``, on this machine's engine (``HarnessError`` saying how to
    start one when none answers)."""
    try:
        return create_backend(competition.settings.runner.backend)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except EngineUnavailable as exc:
        raise HarnessError(str(exc)) from None


def run_phases(evaluation: Evaluation, backend: Backend, out: TextIO, name: str) -> None:
    """Run every phase the evaluation asks for; ``name`` is what the progress lines call the image.
    A smoke stage says so first, and its phases are called ``smoke train`` and ``smoke infer``."""
    if evaluation.in_smoke and evaluation.intake_error is None:
        assert evaluation.smoke is not None
        print(f"{evaluation.smoke.label} first, then the full data", file=out, flush=True)
    while (spec := evaluation.next_phase()) is not None:
        if spec.limits.gpus:
            spec = dataclasses.replace(spec, gpu_ids=local_gpu_ids(spec.limits.gpus))
        phase = evaluation.phase_name(spec.phase)
        print(
            f"{phase}: running {name} (limits: {spec.limits.cpus:g} cpu, {format_size(spec.limits.memory)}, {spec.limits.wall_clock_s:g} s)",
            file=out,
            flush=True,
        )
        result = backend.run(spec)
        evaluation.accept(result)
        print(f"{phase}: {result.verdict.value} in {result.wall_s:.1f} s", file=out, flush=True)


def missing_image(backend: Backend, digest: str | None) -> str | None:
    """Why the image a record names cannot be run again here, or None when it is on this engine."""
    if not digest:
        return "the record names no image digest"
    try:
        found = backend.image(digest)
    except EngineError as exc:
        return f"image {digest} cannot be read on this machine's engine ({exc})"
    if found is None:
        return f"image {digest} is no longer on this machine's Docker engine (docker load it from the submission archive)"
    return None
