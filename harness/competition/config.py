"""Compose the configuration with Hydra, then check it into typed settings.

The schema (``harness.competition.schema``: every key, its type and default) is the primary config
in Hydra's ConfigStore. On top of it Hydra merges one file of each config group, found along the
search path: the directories of ``HARNESS_CONFIG_PATH`` (separated by ``os.pathsep``; earlier ones
win; ``harness --config-dir DIR`` prepends to it), then the work directory's own
``$HARNESS_HOME/config`` (where ``harness competition new`` writes; when it exists), then the
configs bundled in the package ``harness.configs`` (``pkg://harness.configs``). An organizer's ``competition/mine.yaml`` thus
composes with the bundled ``limits``/``runner`` groups, and an organizer file with a bundled
file's name replaces that file.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from hydra import compose, initialize
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from harness.competition.paths import harness_home
from harness.competition.phases import Phase, declared_phases
from harness.competition.rules import Rules
from harness.competition.schema import (
    ROOT,
    CompetitionConfig,
    HarnessConfig,
    ImagesConfig,
    RunnerConfig,
    ServiceConfig,
    TrackingConfig,
    check_values,
    defaults,
    explain,
)
from harness.limits import Limits, LimitsError
from harness.scoring import PredictionsSpec, check_metrics
from harness.util.errors import ConfigError

CONFIG_PATH_ENV = "HARNESS_CONFIG_PATH"
WORK_CONFIG = "config"  # $HARNESS_HOME/config, the work directory's own config directory
BUNDLED = "harness.configs"
BUNDLED_DIR = Path(str(files(BUNDLED)))  # where the bundled configs lie (configs/ in a checkout)


def config_path() -> list[Path]:
    """The organizer's config directories, from ``HARNESS_CONFIG_PATH``, earliest (strongest) first."""
    if os.environ.get("HARNESS_CONFIG_DIR"):
        raise ConfigError(
            f"HARNESS_CONFIG_DIR is no longer read: set {CONFIG_PATH_ENV} (or pass --config-dir); "
            "its directories are layered on top of the bundled configs instead of replacing them"
        )
    directories = []
    for entry in os.environ.get(CONFIG_PATH_ENV, "").split(os.pathsep):
        if not entry.strip():
            continue
        directory = Path(entry).expanduser().resolve()
        if not directory.is_dir():
            raise ConfigError(
                f"{CONFIG_PATH_ENV}: {entry} is not a directory (it lists directories of config groups, e.g. DIR/competition/NAME.yaml)"
            )
        directories.append(directory)
    own = work_config_dir()
    if own.is_dir() and own not in directories:
        directories.append(own)
    return directories


def work_config_dir() -> Path:
    """The work directory's own config directory, ``$HARNESS_HOME/config``: layered after those of
    ``HARNESS_CONFIG_PATH`` (when it exists), and where ``harness competition new`` writes."""
    return harness_home() / WORK_CONFIG


def search_path() -> list[str]:
    """Hydra's search path for the config groups: the organizer's directories, then the bundled configs."""
    return [f"file://{d}" for d in config_path()] + [f"pkg://{BUNDLED}"]


def _where() -> str:
    organizer = ", ".join(str(d) for d in config_path())
    layered = f"{organizer}, then " if organizer else f"directories in {CONFIG_PATH_ENV} or --config-dir, layered on "
    return f"{layered}the bundled configs in {BUNDLED_DIR}; `harness competition new NAME --from FILE` writes one"


def available_competitions() -> list[str]:
    """The competitions of the organizer's directories and the bundled ones."""
    names = {p.stem for d in config_path() for p in (d / "competition").glob("*.yaml")}
    bundled = files(BUNDLED).joinpath("competition")
    names |= {entry.name.removesuffix(".yaml") for entry in bundled.iterdir() if entry.name.endswith(".yaml")}
    return sorted(names)


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def compose_config(competition: str, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The composed, resolved and checked configuration of ``competition`` with ``overrides``."""
    names = available_competitions()
    if competition not in names:
        raise ConfigError(
            f"unknown competition {competition!r}; available: {', '.join(names) or 'none'} "
            f"(a competition is a file competition/<name>.yaml in {_where()})"
        )
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{item!r} is not an override; write key=value, e.g. limits.train.wall_clock_s=600")
    directories = [*config_path(), BUNDLED_DIR]
    contents = _contents(directories)
    if RESOLVER_CALL.search("\n".join([contents, *overrides])):  # ${oc.env:...}, ${now:...}: their values may differ next time
        return _compose(competition, overrides)
    key = (competition, tuple(overrides), hashlib.sha256(contents.encode()).hexdigest())  # the contents name each file
    if key not in _composed:
        if len(_composed) >= COMPOSED_KEPT:
            del _composed[next(iter(_composed))]
        _composed[key] = _compose(competition, overrides)
    return copy.deepcopy(_composed[key])


# A process that composes the same configuration again (the tests' in-process commands and fixtures,
# hundreds of times a run) gets it back while no file of the search path changed: Hydra takes 0.2 CPU-s a time.
_composed: dict[tuple, DictConfig] = {}
COMPOSED_KEPT = 16
RESOLVER_CALL = re.compile(r"\$\{[\w.]+:")


def _contents(directories: list[Path]) -> str:
    """Every config group file along the search path, its path then its text."""
    return "\n".join(
        f"{path}\n{path.read_text(errors='replace')}" for directory in directories for path in sorted(directory.glob("*/*.y*ml"))
    )


def _compose(competition: str, overrides: list[str] | tuple[str, ...]) -> DictConfig:
    searchpath = f"hydra.searchpath=[{','.join(_quoted(p) for p in search_path())}]"
    try:
        with initialize(version_base=None, config_path=None, job_name="harness"):
            cfg = compose(ROOT, overrides=[searchpath, f"competition={competition}", *overrides])
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(explain(exc)) from None
    check_values(cfg)
    return cfg


@dataclass(frozen=True)
class CompetitionSettings:
    name: str
    title: str
    prepare: str
    command: dict[str, tuple[str, ...]]
    predictions: PredictionsSpec
    metrics: tuple[str, ...]
    public_fraction: float
    rules: Rules
    phases: tuple[Phase, ...] = ()  # as declared (competition.phases); none: one implicit phase

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    @property
    def other_metrics(self) -> tuple[str, ...]:
        """The secondary metrics (``metrics.others``): scored and shown beside the primary one, never ranked on."""
        return self.metrics[1:]


@dataclass(frozen=True)
class Settings:
    """The checked configuration of one command: everything a run depends on."""

    competition: CompetitionSettings
    limits: Limits
    runner: RunnerConfig
    tracking: TrackingConfig
    images: ImagesConfig
    seed: int
    raw: DictConfig  # the configuration as given (what config_sha256 hashes)
    service: ServiceConfig  # `harness serve`'s settings
    competition_config: CompetitionConfig  # the competition's keys as declared, with the schema's defaults

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
    """Check a composed configuration (or one a record kept) into typed settings.

    The configuration is merged onto the schema first: a key an older record lacks takes its
    default (in ``runner``, ``tracking``, ``images``, ...), while ``raw`` stays what was given, so
    its hash is the record's."""
    try:
        checked = OmegaConf.merge(defaults(), cfg)
        OmegaConf.resolve(checked)
    except OmegaConfBaseException as exc:
        raise ConfigError(explain(exc)) from None
    check_values(checked)
    try:
        limits = Limits.from_mapping(OmegaConf.to_container(checked.limits), "limits")  # type: ignore[arg-type]
    except LimitsError as exc:
        raise ConfigError(str(exc)) from None
    competition = _competition(checked.competition)
    typed: HarnessConfig = OmegaConf.to_object(checked)  # type: ignore[assignment]
    return Settings(competition, limits, typed.runner, typed.tracking, typed.images, typed.seed, cfg, typed.service, typed.competition)


def _competition(node: DictConfig) -> CompetitionSettings:
    where = "competition"
    command = {}
    for phase in ("train", "infer"):
        command[phase] = tuple(node.command[phase])
    try:
        predictions = PredictionsSpec.from_mapping(OmegaConf.to_container(node.predictions), f"{where}.predictions")  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    metrics = _metrics(node.metrics, predictions.kind, f"{where}.metrics")
    fraction = node.split.public_fraction
    if not 0 < fraction < 1:
        raise ConfigError(f"{where}.split.public_fraction: must be between 0 and 1, got {fraction!r}")
    return CompetitionSettings(
        name=node.name,
        title=node.title,
        prepare=node.prepare,
        command=command,
        predictions=predictions,
        metrics=tuple(metrics),
        public_fraction=float(fraction),
        rules=Rules.from_mapping(OmegaConf.to_container(node), where),  # type: ignore[arg-type]
        phases=declared_phases(OmegaConf.to_container(node.phases) if node.get("phases") else []),  # type: ignore[arg-type]
    )


def _metrics(node: DictConfig, kind: str, where: str) -> tuple[str, ...]:
    """``(primary, *others)``, each one known, able to score ``kind`` predictions and named once."""
    names = (node.primary, *node.others)
    for key, name in (("primary", node.primary), *(("others", n) for n in node.others)):
        try:
            check_metrics([name], kind)
        except ValueError as exc:
            raise ConfigError(f"{where}.{key}: {exc}") from None
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{where}.others: {', '.join(repeated)} is named twice (primary and others name each metric once)")
    return names
