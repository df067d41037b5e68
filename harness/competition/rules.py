"""How a competition is run, from its config: intake cap, quota, leaderboard rule, data layout.

Each section is optional in the YAML: its keys, types and defaults are the schema's
(``harness.competition.schema``: ``IntakeConfig``, ``QuotaConfig``, ...), and a key a mapping
lacks takes its default from there. A present key with a bad value raises ConfigError naming the
key, e.g. ``competition.quota.per_day: must be ...``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.competition.schema import RESOURCES, DataConfig, IntakeConfig, LeaderboardConfig, QuotaConfig, RetentionConfig, SplitConfig
from harness.util.errors import ConfigError
from harness.util.sizes import parse_size

RANKING_RULES = ("best", "last")
_SECTION_TYPES = {
    "intake": IntakeConfig,
    "quota": QuotaConfig,
    "leaderboard": LeaderboardConfig,
    "data": DataConfig,
    "split": SplitConfig,
    "retention": RetentionConfig,
}
SECTIONS = {section: tuple(f.name for f in dataclasses.fields(cls)) for section, cls in _SECTION_TYPES.items()}


@dataclass(frozen=True)
class Rules:
    """The checked rules; built by ``from_mapping``, with the schema's defaults for what a config leaves out."""

    max_image_bytes: int | None  # intake refuses larger images; None: no cap
    team_registry_bytes: int | None  # a team's images in the registry, past which it may not push; None: no budget
    per_day: int | None  # charged submissions per team in any 24 hours; None: no limit
    charge_smoke_failures: bool  # whether a submission ended by the smoke stage is charged
    rule: str  # best: a team's best scored submission ranks; last: its latest scored one
    final_selections: int  # submissions a team may select for the private leaderboard
    train_table: str  # under data/train: the id, the target and any feature columns
    test_table: str  # under data/test: the id and feature columns, never the target
    group_column: str | None  # values that must not straddle train and test
    time_column: str | None  # test rows must all come after the train rows
    keep_top: int = 3  # best-public scored submissions `harness gc` keeps per team (retention.top_k)
    gc_between_rounds: bool = True  # the service's evaluation loop frees the rest after each round
    untagged_after_s: float = 3600.0  # an untagged manifest no submission names is freed once this old
    concurrent_per_team: int | None = None  # most submissions of one team a round evaluates at once; None: no cap
    rerun_top_k: int = 0  # the private board's best that finalize wants re-run (leaderboard.rerun.top_k); 0: none
    rerun_times: int = 2  # how often each (leaderboard.rerun.times)
    confidence: float = 0.95  # the level of each score's interval and of "tied within noise"
    resamples: int = 1000  # bootstrap resamples of the scored ids; 0: no intervals
    tie_breaker: str | None = None  # a resource (RESOURCES): less of it wins an equal score

    @classmethod
    def from_mapping(cls, node: Mapping[str, Any], where: str = "competition") -> Rules:
        for section, keys in SECTIONS.items():
            value = node.get(section)
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}.{section}: must be a mapping of {', '.join(keys)}")
            unknown = sorted(set(value) - set(keys))
            if unknown:
                raise ConfigError(f"{where}.{section}.{unknown[0]}: unknown key (known: {', '.join(keys)})")

        def get(section: str, key: str) -> Any:
            value = node.get(section) or {}
            return value[key] if key in value else getattr(_SECTION_TYPES[section](), key)

        return cls(
            max_image_bytes=_size(get("intake", "max_image_size"), f"{where}.intake.max_image_size"),
            team_registry_bytes=_size(get("intake", "team_registry_size"), f"{where}.intake.team_registry_size"),
            per_day=None if get("quota", "per_day") is None else _positive(get("quota", "per_day"), f"{where}.quota.per_day"),
            charge_smoke_failures=_flag(get("quota", "charge_smoke_failures"), f"{where}.quota.charge_smoke_failures"),
            rule=_choice(get("leaderboard", "rule"), f"{where}.leaderboard.rule", RANKING_RULES),
            final_selections=_positive(get("leaderboard", "final_selections"), f"{where}.leaderboard.final_selections"),
            train_table=_name(get("data", "train_table"), f"{where}.data.train_table"),
            test_table=_name(get("data", "test_table"), f"{where}.data.test_table"),
            group_column=_column(get("split", "group_column"), f"{where}.split.group_column"),
            time_column=_column(get("split", "time_column"), f"{where}.split.time_column"),
            keep_top=_count(get("retention", "top_k"), f"{where}.retention.top_k"),
            gc_between_rounds=_flag(get("retention", "between_rounds"), f"{where}.retention.between_rounds"),
            untagged_after_s=_hours(get("retention", "untagged_after_h"), f"{where}.retention.untagged_after_h") * 3600,
            **_rerun(get("leaderboard", "rerun"), f"{where}.leaderboard.rerun"),
            concurrent_per_team=None
            if get("quota", "concurrent_per_team") is None
            else _positive(get("quota", "concurrent_per_team"), f"{where}.quota.concurrent_per_team"),
            confidence=_level(get("leaderboard", "confidence"), f"{where}.leaderboard.confidence"),
            resamples=_count(get("leaderboard", "resamples"), f"{where}.leaderboard.resamples"),
            tie_breaker=None
            if get("leaderboard", "tie_breaker") is None
            else _choice(get("leaderboard", "tie_breaker"), f"{where}.leaderboard.tie_breaker", RESOURCES),
        )


def _size(raw: Any, key: str) -> int | None:
    if raw is None:
        return None
    try:
        size = parse_size(raw)
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"{key}: {exc}") from None
    if size < 1:
        raise ConfigError(f"{key}: must be at least 1 byte, or null for no cap")
    return size


def _flag(raw: Any, key: str) -> bool:
    if not isinstance(raw, bool):
        raise ConfigError(f"{key}: must be true or false, got {raw!r}")
    return raw


def _rerun(raw: Any, key: str) -> dict[str, int]:
    """``leaderboard.rerun`` ({top_k, times}) as the Rules' two fields."""
    if dataclasses.is_dataclass(raw):
        raw = dataclasses.asdict(raw)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: must be a mapping of top_k, times")
    unknown = sorted(set(raw) - {"top_k", "times"})
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown key (known: top_k, times)")
    return {"rerun_top_k": _count(raw.get("top_k", 0), f"{key}.top_k"), "rerun_times": _positive(raw.get("times", 2), f"{key}.times")}


def _hours(raw: Any, key: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw < float("inf"):
        raise ConfigError(f"{key}: must be hours, 0 or more, got {raw!r}")
    return float(raw)


def _positive(raw: Any, key: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ConfigError(f"{key}: must be a positive whole number, got {raw!r}")
    return raw


def _count(raw: Any, key: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ConfigError(f"{key}: must be a whole number, 0 or more, got {raw!r}")
    return raw


def _level(raw: Any, key: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0.5 <= raw <= 0.999:
        raise ConfigError(f"{key}: must be a number between 0.5 and 0.999, got {raw!r}")
    return float(raw)


def _choice(raw: Any, key: str, choices: tuple[str, ...]) -> str:
    if raw not in choices:
        raise ConfigError(f"{key}: must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _name(raw: Any, key: str) -> str:
    if not isinstance(raw, str) or not raw.strip() or "/" in raw or raw in (".", ".."):
        raise ConfigError(f"{key}: must be a file name (no directory), got {raw!r}")
    return raw


def _column(raw: Any, key: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{key}: must be a column name or null, got {raw!r}")
    return raw
