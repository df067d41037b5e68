"""The wire shape of a submission (``GET /api/v1/competitions/{c}/submissions/{id}``, and each entry of
the team's list): one model that the service answers with (its routes' ``response_model``) and the
client returns, as Ray's job SDK shares its request and response types with its server."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The ledger's states as a team reads them: ``pending`` is ``queued``; ``withdrawn`` by the team
# itself while queued (``harness cancel``: never evaluated, not charged) is ``cancelled``.
WireState = Literal["queued", "running", "evaluated", "withdrawn", "disqualified", "cancelled"]
FINAL_STATES = ("evaluated", "withdrawn", "disqualified", "cancelled")
ENDED_STATES = ("withdrawn", "disqualified", "cancelled")  # final without a verdict that stands


def wire_state(state: str, quota_exempt: str | None = None) -> WireState:
    """A ledger state (and its quota exemption) as a team reads it."""
    if state == "withdrawn" and quota_exempt == "cancelled":
        return "cancelled"
    return "queued" if state == "pending" else str(state)  # type: ignore[return-value]


class PhaseSummary(BaseModel):
    """What a team sees of one recorded phase."""

    model_config = ConfigDict(extra="forbid")

    verdict: str | None = None
    wall_s: float | None = None
    exit_code: int | None = None
    peak_memory_bytes: int | None = None


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The JSON object the API answers."""
        return self.model_dump(mode="json")


class SubmissionView(_Wire):
    """A team's submission as the service shows it: where it stands and, once evaluated, its latest
    standing record's verdict, message and public scores (never private ones, never another team's)."""

    id: str
    team: str
    image: str
    image_digest: str
    registry_digest: str | None = Field(None, description="the digest the registry gave the pushed image, when it came through it")
    message: str = ""
    submitted_at: str
    state: WireState
    phase: str | None = Field(None, description="the phase a round runs now, while running")
    queue_position: int | None = Field(None, description="1-based place among the queued submissions, while queued")
    verdict: str | None = None
    failed_phase: str | None = None
    verdict_message: str | None = None
    public_scores: dict[str, float] = Field(default_factory=dict)
    evaluated_at: str | None = None
    phases: dict[str, PhaseSummary] = Field(default_factory=dict)


class SubmissionList(_Wire):
    """The team's submissions, newest first (``GET /api/v1/competitions/{c}/submissions``)."""

    submissions: list[SubmissionView]
