"""Verdicts: what happened to one phase, and to a whole evaluation."""

from enum import StrEnum


class PhaseVerdict(StrEnum):
    OK = "OK"
    TIMEOUT = "TIMEOUT"
    MEMORY_LIMIT = "MEMORY_LIMIT"
    OUTPUT_LIMIT = "OUTPUT_LIMIT"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    INFRA_ERROR = "INFRA_ERROR"

    def __str__(self) -> str:
        return self.value


class Verdict(StrEnum):
    """The overall verdict of an evaluation (``verdict`` in the record)."""

    SCORED = "SCORED"
    TIMEOUT = "TIMEOUT"
    MEMORY_LIMIT = "MEMORY_LIMIT"
    OUTPUT_LIMIT = "OUTPUT_LIMIT"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    INFRA_ERROR = "INFRA_ERROR"
    INVALID_IMAGE = "INVALID_IMAGE"
    INVALID_PREDICTIONS = "INVALID_PREDICTIONS"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def from_phase(cls, verdict: PhaseVerdict) -> "Verdict":
        if verdict is PhaseVerdict.OK:
            raise ValueError("an OK phase is not a final verdict")
        return cls(verdict.value)

    @property
    def charged(self) -> bool:
        """Whether the participant is charged: infrastructure failures are the organizer's."""
        return self is not Verdict.INFRA_ERROR
