"""Compose the configuration from ``configs/`` with Hydra, then check it into typed settings."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from harness.competition.rules import SECTIONS, Rules
from harness.limits import Limits, LimitsError
from harness.scoring import PredictionsSpec, check_metrics
from harness.util.errors import ConfigError

CONFIG_DIR = Path(os.environ.get("HARNESS_CONFIG_DIR") or str(files("harness.configs")))


def available_competitions() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "competition").glob("*.yaml"))


def compose_config(competition: str, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    if competition not in available_competitions():
        raise ConfigError(
            f"unknown competition {competition!r}; available: {', '.join(available_competitions()) or 'none'} "
            f"(competitions are YAML files in {CONFIG_DIR / 'competition'})"
        )
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{item!r} is not an override; write key=value, e.g. limits.train.wall_clock_s=600")
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            cfg = compose("config", overrides=[f"competition={competition}", *overrides])
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_hydra_message(exc)) from None
    return cfg


def _hydra_message(exc: Exception) -> str:
    text = str(exc).split("\nConfig search path")[0]
    unknown = re.match(r"Could not override '([^']+)'", text)
    if unknown:
        return f"{unknown.group(1)}: no such configuration key (the keys are in the YAML files under {CONFIG_DIR})"
    return "configuration: " + " ".join(text.split())


@dataclass(frozen=True)
class CompetitionSettings:
    name: str
    title: str
    prepare: str
    command: dict[str, tuple[str, ...]]
    predictions: PredictionsSpec
    metrics: tuple[str, ...]
    public_fraction: float
    rules: Rules = Rules()

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]


@dataclass(frozen=True)
class Settings:
    """The checked configuration of one command: everything a run depends on."""

    competition: CompetitionSettings
    limits: Limits
    runner: DictConfig
    tracking: DictConfig
    images: DictConfig
    seed: int
    raw: DictConfig

    @property
    def resolved_yaml(self) -> str:
        return OmegaConf.to_yaml(self.raw, resolve=True, sort_keys=True)

    @property
    def config_sha256(self) -> str:
        return hashlib.sha256(self.resolved_yaml.encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return OmegaConf.to_container(self.raw, resolve=True)  # type: ignore[return-value]


def load_settings(competition: str, overrides: list[str] | tuple[str, ...] = ()) -> Settings:
    settings = settings_from_config(compose_config(competition, overrides))
    if settings.competition.name != competition:
        raise ConfigError(f"competition.name: {settings.competition.name!r} differs from the file name {competition}.yaml; make them equal")
    return settings


def settings_from_config(cfg: DictConfig) -> Settings:
    """Check a composed configuration (or one a record kept) into typed settings."""
    try:
        limits = Limits.from_mapping(OmegaConf.to_container(cfg.limits), "limits")
    except LimitsError as exc:
        raise ConfigError(str(exc)) from None
    seed = cfg.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed: must be a whole number, got {seed!r}")
    return Settings(_competition(cfg.competition), limits, cfg.runner, cfg.tracking, cfg.images, seed, cfg)


COMPETITION_KEYS = ("name", "title", "prepare", "command", "predictions", "metrics", *SECTIONS)


def _competition(node: DictConfig) -> CompetitionSettings:
    where = "competition"
    unknown = sorted(set(node) - set(COMPETITION_KEYS))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(COMPETITION_KEYS)})")
    for key in ("name", "prepare", "command", "predictions", "metrics"):
        if node.get(key) is None:
            raise ConfigError(f"{where}.{key}: missing")
    command = {}
    for phase in ("train", "infer"):
        value = node.command.get(phase)
        if value is None or isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}.command.{phase}: must be a list of strings, e.g. [{phase}]")
        command[phase] = tuple(value)
    try:
        predictions = PredictionsSpec.from_mapping(OmegaConf.to_container(node.predictions), f"{where}.predictions")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    metrics = (node.metrics.get("primary"), *(node.metrics.get("others") or ()))
    try:
        check_metrics(list(metrics), predictions.kind)
    except ValueError as exc:
        raise ConfigError(f"{where}.metrics: {exc}") from None
    fraction = (node.get("split") or {}).get("public_fraction", 0.5)
    if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"{where}.split.public_fraction: must be between 0 and 1, got {fraction!r}")
    return CompetitionSettings(
        name=node.name,
        title=node.get("title") or node.name,
        prepare=node.prepare,
        command=command,
        predictions=predictions,
        metrics=tuple(metrics),
        public_fraction=float(fraction),
        rules=Rules.from_mapping(OmegaConf.to_container(node), where),  # type: ignore[arg-type]
    )
