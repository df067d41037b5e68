"""What a run may use and how it is held to it."""

from limits.sizes import format_size, parse_size
from limits.spec import PHASES, Limits, LimitsError, PhaseLimits
from limits.verdicts import PhaseVerdict, Verdict

__all__ = [
    "PHASES",
    "Limits",
    "LimitsError",
    "PhaseLimits",
    "PhaseVerdict",
    "Verdict",
    "format_size",
    "parse_size",
]
