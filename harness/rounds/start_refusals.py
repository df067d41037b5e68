"""Whose fault is a container the engine refused to start for a reason no rule knows? The node's
at first (INFRA_ERROR, retried, never charged); the image's once the same refusal came twice from
nodes that started other containers in this round (RUNTIME_ERROR, with the engine's message), so
an image that can never start is not retried forever."""

from __future__ import annotations

import re

from harness.limits import PhaseVerdict
from harness.runner.phase import PhaseResult

_IDS = re.compile(r"\b[0-9a-f]{12,64}\b")  # container and layer ids differ between attempts


class StartRefusals:
    def __init__(self) -> None:
        self._healthy: set[str] = set()  # nodes that started a container in this round
        self._refused: dict[str, list[tuple[str, str]]] = {}  # submission id -> [(node, refusal)]

    def saw(self, result: PhaseResult) -> None:
        """Note a phase's result: its node is healthy when its container started."""
        if result.verdict is not PhaseVerdict.INFRA_ERROR:
            self._healthy.add(result.node)

    def blame(self, submission_id: str, failure: PhaseResult | None) -> str | None:
        """The message that makes ``failure`` the image's, or None while it may still be the node's."""
        if failure is None or not failure.start_refused:
            return None
        refusals = self._refused.setdefault(submission_id, [])
        refusals.append((failure.node, _IDS.sub("<id>", failure.start_refused)))
        same = [node for node, said in refusals if said == refusals[-1][1] and node in self._healthy]
        if len(same) < 2:
            return None
        where = " and ".join(f"node {node}" if node else "this machine" for node in dict.fromkeys(same))
        return (
            f"{failure.phase} could not start, the same way twice on {where}, where other containers started: "
            f"{failure.start_refused} (the image's files or metadata make the container engine refuse it; "
            "check what the message names, e.g. a path the harness mounts over being a link or a file in the image)"
        )
