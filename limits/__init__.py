"""What a run may use and how it is held to it."""

from harness.limits.spec import PHASES, Limits, LimitsError, PhaseLimits
from harness.limits.verdicts import PhaseVerdict, Verdict

__all__ = [
    "PHASES",
    "Limits",
    "LimitsError",
    "PhaseLimits",
    "PhaseVerdict",
    "Verdict",
]
