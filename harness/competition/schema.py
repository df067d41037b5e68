"""The configuration's schema: every config group's keys, types and defaults, in one place.

These dataclasses are Hydra structured configs, stored in Hydra's ConfigStore: the composed
configuration starts from them, and the YAML files of ``harness.configs`` (and an organizer's own
directories) only set what differs. Hydra refuses an unknown key or a value of the wrong type
while composing; ``check_values`` then refuses values out of range (``runner.max_parallel=0``,
nan, inf); ``explain`` turns either into one line naming the key.

The ``limits`` group's schema is ``harness.limits.spec.LimitsConfig`` and ``competition.predictions``'s
is ``harness.scoring.spec.PredictionsConfig``: they live beside the checked types that take their
defaults from them.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from harness.limits.spec import LimitsConfig
from harness.scoring.spec import PredictionsConfig
from harness.util.errors import ConfigError

ROOT = "harness"  # the primary config's name in the ConfigStore
SEED_MAX = 2**32 - 1  # numpy's seeds stop there


def key(default: Any = MISSING, *, factory: Any = None, must: str | None = None, **checks: Any) -> Any:
    """A schema field. ``must`` says what the value must be (it completes ``KEY: must be ...``);
    ``checks`` are what ``check_values`` holds a value to: ``least``, ``most``, ``choices``,
    ``pattern``, ``nonempty``."""
    metadata = {"must": must, **checks}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# --- competition -----------------------------------------------------------------------------


@dataclass
class CommandConfig:
    """Arguments of the participant's entrypoint for each phase."""

    train: list[str] = key(factory=lambda: ["train"], must="a list of strings, e.g. [train]")
    infer: list[str] = key(factory=lambda: ["infer"], must="a list of strings, e.g. [infer]")


@dataclass
class MetricsConfig:
    primary: str = key(must="a metric name")  # ranks the leaderboard
    others: list[str] = key(factory=list, must="a list of metric names")  # reported beside it


@dataclass
class IntakeConfig:
    max_image_size: Any = None  # largest image `harness submit` accepts (its size on the engine); null: no cap
    # Most a team's images may take in the service's registry (each blob once per team, as stored);
    # past it the token issuer grants no push. null: no budget.
    team_registry_size: Any = "20g"


@dataclass
class QuotaConfig:
    per_day: int | None = key(None, must="a positive whole number")  # charged submissions per team in any 24 hours; null: no limit
    # Whether a submission ended by the smoke stage counts against per_day.
    charge_smoke_failures: bool = key(False, must="true or false")
    # Most submissions of one team a round evaluates at once (its others wait, still queued and
    # cancellable, while other teams' go first); null: no cap.
    concurrent_per_team: int | None = key(2, must="a positive whole number, or null for no cap", least=1)


@dataclass
class RerunConfig:
    """The winners' re-run that ``harness finalize`` waits for (``harness rerun-winners``): the
    ``top_k`` best of the private board, each run again ``times`` times with other seeds."""

    top_k: int = key(0, must="a whole number, 0 or more (0: finalize waits for no re-run)", least=0)
    times: int = key(2, must="a positive whole number", least=1)


# What a ranked submission used, as its record's phases measured it (each board row shows them; the
# leaderboard's tie_breaker may name one): wall time per phase, CPU seconds and peak memory over both
# phases, GPU seconds (each GPU phase's wall time times its GPUs) and peak GPU memory where any.
RESOURCES = ("train_wall_s", "infer_wall_s", "cpu_s", "peak_memory_bytes", "gpu_s", "peak_gpu_memory_bytes")


@dataclass
class LeaderboardConfig:
    rule: str = key("best", must="one of best, last")  # best: a team's best scored submission ranks; last: its latest
    final_selections: int = key(2, must="a positive whole number")  # submissions a team may select for the private board
    rerun: RerunConfig = field(default_factory=RerunConfig)
    # Bootstrap over the scored ids: each score's interval at this level, and an adjacent pair whose
    # upper one wins fewer than this share of the paired resamples is marked tied within noise.
    confidence: float = key(0.95, must="a number between 0.5 and 0.999", least=0.5, most=0.999)
    resamples: int = key(1000, must="a whole number from 0 to 100000 (0: no intervals)", least=0, most=100_000)
    # Equal scores go to the submission that used less of this resource, then to the earlier one; null: the earlier one.
    tie_breaker: str | None = key(None, must=f"null or one of {', '.join(RESOURCES)}", choices=RESOURCES)


@dataclass
class DataConfig:
    train_table: str = key("train.csv", must="a file name (no directory)")  # under data/train: id, target, features
    test_table: str = key("test.csv", must="a file name (no directory)")  # under data/test: id, features, never the target


@dataclass
class SplitConfig:
    public_fraction: float = key(0.5, must="between 0 and 1")  # share of the test ids scored on the public board
    group_column: str | None = key(None, must="a column name or null")  # values that must not straddle train and test
    time_column: str | None = key(None, must="a column name or null")  # test rows must all come after the train rows


@dataclass
class KitConfig:
    """The participant kit (`harness kit`): the dev split it carves from the training data."""

    # Share of the training rows held out as the kit's dev split (by group_column/time_column when set).
    dev_fraction: float = key(0.2, must="between 0 and 1 (exclusive)", least=0.01, most=0.99)
    # The sample submission the kit ships: a folder of the package's images (harness.images):
    # sample-submission (digits' small torch network) or sample-tables (least squares on a table's numbers).
    sample: str = key("sample-submission", must="a folder of harness.images, e.g. sample-tables", pattern=r"sample-[a-z0-9-]+")


@dataclass
class SourceConfig:
    """The organizer's own files, which the built-in data builders read (``prepare: tables`` or
    ``prepare: files``, ``harness.competition.builders.tables``): the target is
    ``predictions.target_column``, the group and time columns ``split.group_column`` and
    ``split.time_column``. Relative paths are read from the current directory."""

    # tables: the labelled table (CSV or Parquet), one row per item; files: the table that maps each
    # file to its label (and group, time, features).
    table: str | None = key(None, must="a CSV or Parquet file, or null", nonempty=True)
    # A labelled test table with the same columns; null: the test rows are carved out of `table`.
    test_table: str | None = key(None, must="a CSV or Parquet file, or null", nonempty=True)
    # files: the folder of per-item files (images, audio, text, anything), and the table's column
    # that names each row's file in it.
    folder: str | None = key(None, must="a folder, or null", nonempty=True)
    file_column: str | None = key(None, must="a column name or null", nonempty=True)
    # The organizer's own id column: its values are never published (each row gets an opaque id
    # keyed by the competition's secret); null: the rows have none.
    id_column: str | None = key(None, must="a column name or null", nonempty=True)
    # Columns never published (a note, a copy of the target under another name).
    drop_columns: list[str] = key(factory=list, must="a list of column names")
    # Share of the rows carved into test when there is no test_table: whole groups of
    # split.group_column, the latest rows by split.time_column, or rows keyed at random.
    test_fraction: float = key(0.3, must="between 0 and 1 (exclusive)", least=0.01, most=0.99)


def _smoke_limits() -> dict[str, Any]:
    return {"train": {"wall_clock_s": 60.0}, "infer": {"wall_clock_s": 60.0}}


@dataclass
class SmokeConfig:
    """The smoke stage (``harness.competition.smoke``): before the full evaluation, train and infer run
    under the same contract on a few training rows, so that a broken submission fails in seconds."""

    enabled: bool = key(False, must="true or false")
    # Training rows the smoke train phase gets, and training rows (without their target) it infers on;
    # carved from the training data by seed, by the competition's split rule.
    train_rows: int = key(48, must="a whole number from 2 to 10000", least=2, most=10_000)
    test_rows: int = key(32, must="a whole number from 1 to 10000", least=1, most=10_000)
    # Per phase, the limits that differ from limits.<phase> (the same keys); a smoke phase never gets
    # more wall-clock time than its full phase.
    limits: dict[str, Any] = key(factory=_smoke_limits, must="a mapping of train and infer to limits (limits.train's keys)")


@dataclass
class WebhookConfig:
    """One receiver of the competition's notifications (``competition.webhooks``; harness.records.outbox).
    The secret is never written here: the composed configuration is hashed into and copied into
    every record. ``secret_env`` names the service's environment variable that holds it."""

    url: str = key(must="an http:// or https:// URL", pattern=r"https?://[^\s/?#@]+(/\S*)?")
    secret_env: str = key(
        must="the NAME of an environment variable holding the secret, e.g. HOOK_SECRET", pattern=r"[A-Za-z_][A-Za-z0-9_]*"
    )
    # verdict: a round's verdict on a submission; rescore: `harness rescore` replaced one.
    events: list[str] = key(factory=lambda: ["verdict"], must="a list of: verdict, rescore", choices=("verdict", "rescore"))


@dataclass
class RetentionConfig:
    """What `harness gc` keeps (everything else it may free): pending and running submissions, each
    team's selected ones, its ``top_k`` best scored ones and the ones its board would fall back to."""

    top_k: int = key(3, must="a whole number, 0 or more", least=0)  # best-public scored submissions kept per team
    between_rounds: bool = key(True, must="true or false")  # the service's evaluation loop frees the rest after each round
    # a manifest pushed, never submitted and no longer tagged (a later push took its tag) goes once
    # this old: a team may still submit the digest it just pushed over
    untagged_after_h: float = key(1.0, must="hours, 0 or more", least=0)


@dataclass
class PhaseConfig:
    """One phase of the competition (``competition.phases``; harness.competition.phases): its own
    share of the test pool (carved by the data builder, by a keyed hash of the id), dates and quota.
    No phases: the competition is one implicit phase, as it always was."""

    name: str = key(must="a phase name: lower-case letters, digits, - or _", pattern=r"[a-z0-9][a-z0-9_-]{0,31}")
    test_fraction: float = key(must="a share of the test pool above 0 and at most 1", least=0.001, most=1.0)
    opens: str | None = key(None, must="an ISO 8601 time, e.g. 2027-01-01T00:00:00Z, or null")  # null: from the start
    closes: str | None = key(None, must="an ISO 8601 time, e.g. 2027-02-01T00:00:00Z, or null")  # null: until the next one opens
    per_day: int | None = key(None, must="a positive whole number or null", least=1)  # null: competition.quota.per_day
    # A final phase takes no submissions: `harness phase run` evaluates the teams' selections on its test set.
    final: bool = key(False, must="true or false")


@dataclass
class CompetitionConfig:
    """The config group ``competition``: one YAML file per competition. Keys without a default
    (``name``, ``prepare``, ``metrics.primary``) must be declared there."""

    name: str = key(must="the competition's name (its file name)")
    title: str = "${.name}"
    # The data builder: tables or files (the organizer's own files, `source`), a name registered in
    # the harness.competitions entry points (digits, diabetes), or a module.path:function.
    prepare: str = key(must="a data builder: tables, files, a registered name, or module:function")
    source: SourceConfig = field(default_factory=SourceConfig)  # what the tables and files builders read
    command: CommandConfig = field(default_factory=CommandConfig)
    predictions: PredictionsConfig = field(default_factory=PredictionsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    intake: IntakeConfig = field(default_factory=IntakeConfig)
    quota: QuotaConfig = field(default_factory=QuotaConfig)
    leaderboard: LeaderboardConfig = field(default_factory=LeaderboardConfig)
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    kit: KitConfig = field(default_factory=KitConfig)
    webhooks: list[WebhookConfig] = key(factory=list, must="a list of {url, secret_env, events}")
    smoke: SmokeConfig = field(default_factory=SmokeConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    phases: list[PhaseConfig] = key(factory=list, must="a list of {name, test_fraction, opens, closes, per_day, final}")


# --- runner, tracking, images ----------------------------------------------------------------


@dataclass
class RunnerConfig:
    """The config group ``runner``: where and how the containers of a round run."""

    # Ray address: null starts a local Ray instance; "auto" or "ray://host:port" joins a cluster.
    address: str | None = key(None, must="a Ray address or null", nonempty=True)
    # Cap on evaluations running at once (null: as many as Ray's resources allow).
    max_parallel: int | None = key(None, must="a positive whole number, or null for no cap", least=1)
    # Container runtime: null for the engine's default (runc), or e.g. runsc for gVisor where installed.
    runtime: str | None = key(None, must="a container runtime's name or null", nonempty=True)
    # How often an INFRA_ERROR is retried before the submission is left pending.
    infra_retries: int = key(2, must="a whole number, 0 or more", least=0)
    # Seconds before the first retry of an INFRA_ERROR; doubled for each further attempt (at most 60 s).
    retry_backoff_s: float = key(5.0, must="a number of seconds, 0 or more", least=0)
    # Node-local directory where cluster nodes stage the data and image archives (null: $TMPDIR/harness-nodes).
    node_cache: str | None = key(None, must="a directory or null", nonempty=True)
    # The container backend, by its name in the backend registry.
    backend: str = key("docker", must="a container backend's name", nonempty=True)
    # Of the phases running at once, how many are kept for smoke phases when the competition has a
    # smoke stage, while any are queued or running (full phases never take the last ones then, so a
    # smoke phase never waits behind them).
    smoke_slots: int = key(1, must="a whole number, 0 or more", least=0)


@dataclass
class TrackingConfig:
    """The config group ``tracking``: MLflow."""

    # MLflow tracking URI; null: embedded sqlite under the work directory ($HARNESS_HOME/mlflow.db).
    uri: str | None = key(None, must="an MLflow tracking URI or null", nonempty=True)
    experiment: str = key("${competition.name}", must="an experiment name", nonempty=True)
    # Where every evaluation's trained model is archived (an MLflow artifact URI: a directory,
    # s3://, gs://, mlflow-artifacts:/...); null: $HARNESS_HOME/mlartifacts/models with the embedded
    # store, the tracking server's own artifact store (mlflow-artifacts:/models) with a server.
    models: str | None = key(None, must="an MLflow artifact URI or null", nonempty=True)


@dataclass
class ImagesConfig:
    """The config group ``images``: how `harness images build` makes the participant base image."""

    # An image to build FROM when it exists or can be pulled (null: never pull); otherwise the base
    # is bootstrapped from Debian packages with mmdebstrap.
    base: str | None = key("python:${.python}-slim", must="an image reference or null", nonempty=True)
    debian_suite: str = key("bookworm", must="a Debian suite, e.g. bookworm", nonempty=True)
    # null: read from /etc/apt/sources.list.d/debian.sources
    debian_mirror: str | None = key(None, must="a Debian mirror URL or null", nonempty=True)
    # Seconds to wait for a pull of `base`; 0: never pull.
    pull_timeout_s: float = key(20.0, must="a number of seconds, 0 or more", least=0)
    # Python packages baked into the participant base image, downloaded once into a wheelhouse.
    packages: list[str] = key(factory=lambda: ["torch==2.13.0+cpu", "numpy==2.4.6", "pillow==13.0.0"], must="a list of pip requirements")
    # The Python version of the participant base image (its wheelhouse is built for it).
    python: str = key("3.11", must="a Python version such as 3.11, 3.12 or 3.13", pattern=r"3\.\d+")
    # The wheelhouse lock (every wheel's file name and sha256), a file name in the bundled
    # configs/images/ or a path, which the download follows exactly; null: images.packages resolved
    # afresh, unverified. `harness images lock` writes it.
    lock: str | None = key("wheelhouse.lock", must="a lock file name or path, or null", nonempty=True)
    # The timestamp (seconds since 1970) of the bootstrapped Debian base: its files and its image
    # config carry it, so that two bootstraps from the same mirror state give the same image id.
    source_date_epoch: int = key(1735689600, must="a whole number of seconds since 1970, 0 or more", least=0)


@dataclass
class SignInConfig:
    """Failed authentications (API token, registry credentials, page sign-in) per client address."""

    max_failures: int = key(10, must="a positive whole number", least=1)  # failures allowed in a window, then 429
    window_s: float = key(60.0, must="a number of seconds above 0", least=0.001)


@dataclass
class NotifyConfig:
    """How the service delivers the webhooks' notifications (harness.service.notify): one attempt
    at a time, retried after ``first_retry_s`` doubling up to ``max_retry_s``, at most
    ``max_attempts`` times, then marked failed (`harness webhooks retry` sends it again)."""

    timeout_s: float = key(5.0, must="a number of seconds above 0", least=0.1)  # connect and read, each attempt
    first_retry_s: float = key(1.0, must="a number of seconds above 0", least=0.01)
    max_retry_s: float = key(600.0, must="a number of seconds above 0", least=0.01)
    max_attempts: int = key(20, must="a positive whole number", least=1)
    poll_s: float = key(0.5, must="a number of seconds above 0", least=0.01)  # how often the worker looks for due deliveries


@dataclass
class ServiceConfig:
    """The config group ``service``: `harness serve` (the JSON API, the pages, the registry beside
    them, the evaluation loop)."""

    host: str = key("127.0.0.1", must="a host address to listen on", nonempty=True)
    port: int = key(8000, must="a TCP port from 1 to 65535", least=1, most=65535)
    registry_host: str = key("127.0.0.1", must="a host address for the registry to listen on", nonempty=True)
    registry_port: int = key(5050, must="a TCP port from 1 to 65535", least=1, most=65535)
    # The service's address as the outside world reaches it (behind a TLS proxy: https://...): the
    # token realm the registry names to docker clients, and the address the service prints; null: http://host:port.
    public_url: str | None = key(None, must="an http:// or https:// URL, or null", pattern=r"https?://[^\s/?#]+(/[^\s?#]*)?")
    # The address participants push to (host:port); null: registry_host:registry_port.
    registry_public: str | None = key(None, must="host:port or null", nonempty=True)
    # The reverse proxies in front of the service, by address: from them (and only them) the client's
    # address is read from X-Forwarded-For, so that failed sign-ins count per participant, not per proxy.
    trusted_proxies: list[str] = key(factory=list, must="a list of IP addresses, e.g. [127.0.0.1]")
    max_body_bytes: int = key(65536, must="a positive whole number of bytes", least=1)  # larger request bodies: 413
    max_message_chars: int = key(500, must="a whole number from 0 to 500", least=0, most=500)  # a submission's message
    sign_in: SignInConfig = field(default_factory=SignInConfig)
    logs_max_bytes: int = key(65536, must="a positive whole number of bytes", least=1)  # each log stream's tail served
    poll_s: float = key(0.25, must="a number of seconds above 0", least=0.01)  # how often the evaluator looks at the ledger
    # The evaluator process is replaced after this many evaluated submissions (bounded memory over weeks).
    recycle_after: int = key(200, must="a positive whole number", least=1)
    notify: NotifyConfig = field(default_factory=NotifyConfig)  # webhook deliveries (competition.webhooks)


# --- the root --------------------------------------------------------------------------------


@dataclass
class HarnessConfig:
    """The composed configuration of one command."""

    competition: CompetitionConfig = field(default_factory=CompetitionConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    # The seed handed to every container as HARNESS_SEED.
    seed: int = key(42, must=f"a whole number from 0 to {SEED_MAX}", least=0, most=SEED_MAX)


GROUPS = ("competition", "limits", "runner", "tracking", "images", "service")


@dataclass
class HarnessRoot(HarnessConfig):
    """The primary config Hydra composes: the schema, then one file of each group on top."""

    defaults: list[Any] = field(
        default_factory=lambda: [
            "_self_",
            {"competition": MISSING},  # chosen by the command: `harness round digits` composes competition=digits
            {"limits": "default"},
            {"runner": "local"},
            {"tracking": "sqlite"},
            {"images": "default"},
            {"service": "default"},
        ]
    )


def register() -> None:
    """Store the schema in Hydra's ConfigStore (as the primary config ``harness``)."""
    ConfigStore.instance().store(name=ROOT, node=HarnessRoot)


def defaults() -> DictConfig:
    """Every key with its default, as a structured config (the competition's own keys missing)."""
    return OmegaConf.structured(HarnessConfig)


# --- checking --------------------------------------------------------------------------------


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _field(path: str) -> tuple[type, dataclasses.Field | None, Any]:
    """The dataclass holding ``path``'s last key, that key's field (None if unknown) and its type."""
    cls: type = HarnessConfig
    parts = re.sub(r"\[\d+\]", "", path).split(".")  # competition.webhooks[0].url: a list's items share a type
    for part in parts[:-1]:
        hint = _item(_hints(cls).get(part))
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            break
        cls = hint
    fields = {f.name: f for f in dataclasses.fields(cls)}
    found = fields.get(parts[-1])
    return cls, found, _hints(cls).get(parts[-1]) if found else None


def _item(hint: Any) -> Any:
    """The item type of ``list[X]``, else ``hint``."""
    return typing.get_args(hint)[0] if typing.get_origin(hint) is list and typing.get_args(hint) else hint


def _listed(item: type, cls: type = HarnessConfig, where: str = "") -> str | None:
    """The key of the list whose items are ``item``s (``competition.webhooks``), if any."""
    for f in dataclasses.fields(cls):
        hint = _hints(cls)[f.name]
        if hint is not item and _item(hint) is item:
            return f"{where}{f.name}"
        found = _listed(item, hint, f"{where}{f.name}.") if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None
        if found:
            return found
    return None


def _unknown(cls: type, name: str, path: str, how: str = "unknown key") -> str:
    """The line for a key ``cls`` does not have; a webhook's literal secret says where it goes instead."""
    if cls is WebhookConfig and name == "secret":
        return (
            f"{path}: a webhook's secret is never written in the configuration (it is hashed into and copied into every "
            f"record); put it in an environment variable of `harness serve` and name the variable: secret_env: HOOK_SECRET"
        )
    return f"{path}: {how} (known: {', '.join(known_keys(cls))}); the keys and their defaults are in {_declared(cls)}"


def known_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name != "defaults"]


def _declared(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _what(hint: Any) -> str:
    """What a value of type ``hint`` is, in words: 'a whole number', 'a list of strings or null'."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return (_what(inner[0]) if len(inner) == 1 else "a value") + " or null"
    if typing.get_origin(hint) is list:
        return f"a list of {_what(args[0])[2:]}s" if args else "a list"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return f"a mapping of {', '.join(known_keys(hint))}"
    return {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}.get(hint, "a value")


def _must(found: dataclasses.Field | None, hint: Any) -> str:
    return (found.metadata.get("must") if found else None) or _what(hint)


def explain(exc: BaseException, *, override: bool = False) -> str:
    """One line naming the key for an error Hydra or OmegaConf raised while composing or merging."""
    cause: BaseException | None = exc
    while cause is not None and not (isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None)):
        cause = cause.__cause__ or cause.__context__
    text = str(exc).split("\nConfig search path")[0]
    if cause is None:
        return "configuration: " + " ".join(text.split())
    path = str(cause.full_key)  # type: ignore[attr-defined]
    cls, found, hint = _field(path)
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) or found is None:
        how = "no such configuration key" if override or text.startswith("Could not override") else "unknown key"
        item = getattr(cause, "object_type", None)
        listed = _listed(item) if "." not in path and isinstance(item, type) and dataclasses.is_dataclass(item) else None
        if listed:  # a key of a list's item (competition.webhooks): OmegaConf names the key alone
            cls, path = item, f"{listed}[].{path}"
        return _unknown(cls, path.rsplit(".", 1)[-1], path, how)
    if isinstance(cause, ValidationError) and "is not Optional" in str(cause):
        return f"{path}: must be {_must(found, hint)}, not null"
    value = getattr(cause, "value", None)
    shown = OmegaConf.to_container(value) if isinstance(value, (DictConfig, ListConfig)) else value
    return f"{path}: must be {_must(found, hint)}, got {shown!r}"


def check_values(cfg: DictConfig) -> None:
    """Refuse a missing key, nan or inf anywhere, and a value out of its field's range; the
    message names the key. Types were checked by OmegaConf when the schema was merged."""
    _check(HarnessConfig, cfg, "")


def _check(cls: type, node: Any, where: str) -> None:
    hints = _hints(cls)
    unknown = sorted(set(node) - set(known_keys(cls)))  # a key added with +key=value
    if unknown:
        raise ConfigError(_unknown(cls, unknown[0], f"{where}{unknown[0]}"))
    for f in dataclasses.fields(cls):
        if f.name == "defaults":
            continue
        path = f"{where}{f.name}"
        if OmegaConf.is_missing(node, f.name):
            raise ConfigError(f"{path}: missing; it has no default, declare it ({_must(f, hints[f.name])})")
        value = node[f.name]
        hint = hints[f.name]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            _check(hint, value, f"{path}.")
            continue
        if value is not None and dataclasses.is_dataclass(_item(hint)):  # a list of groups (competition.webhooks)
            for i, item in enumerate(value):
                _check(_item(hint), item, f"{path}[{i}].")
            continue
        _check_value(path, value, f, hint)


def _finite(path: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path}: must be a finite number, got {value}")
    if isinstance(value, (ListConfig, list)):
        for i, item in enumerate(value):
            _finite(f"{path}[{i}]", item)
    if isinstance(value, (DictConfig, dict)):
        for k, item in value.items():
            _finite(f"{path}.{k}", item)


def _check_value(path: str, value: Any, f: dataclasses.Field, hint: Any) -> None:
    _finite(path, value)
    if value is None:
        return
    meta = f.metadata
    bad = False
    if "least" in meta and value < meta["least"]:
        bad = True
    if "most" in meta and value > meta["most"]:
        bad = True
    if meta.get("nonempty") and isinstance(value, str) and not value.strip():
        bad = True
    if "pattern" in meta and not re.fullmatch(meta["pattern"], str(value)):
        bad = True
    if "choices" in meta and any(item not in meta["choices"] for item in (value if isinstance(value, ListConfig | list) else [value])):
        bad = True
    if bad:
        raise ConfigError(f"{path}: must be {_must(f, hint)}, got {value!r}")


register()
