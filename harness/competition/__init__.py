"""A competition: its configuration (Hydra), its rules, its data on disk and where everything lives."""

from harness.competition.config import Settings, load_settings
from harness.competition.core import Competition
from harness.competition.paths import CompetitionPaths, RunPaths, harness_home

__all__ = ["Competition", "CompetitionPaths", "RunPaths", "Settings", "harness_home", "load_settings"]
