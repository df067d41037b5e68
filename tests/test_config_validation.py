"""Every config key is checked against the structured-config schema, with its full dotted name in
one line; an organizer's config directories are layered on top of the bundled configs."""

from __future__ import annotations

import dataclasses
from importlib.resources import files

import pytest
import yaml
from omegaconf import OmegaConf

from harness.cli import main
from harness.competition import schema
from harness.competition.config import BUNDLED_DIR, available_competitions, load_settings, settings_from_config
from harness.limits.spec import Limits, LimitsConfig, PhaseLimits, PhaseLimitsConfig
from harness.scoring.spec import PredictionsConfig, PredictionsSpec
from harness.util.errors import ConfigError
from harness.util.sizes import parse_size

RUNNER_KEYS = "address, max_parallel, runtime, infra_retries, retry_backoff_s, node_cache, backend, smoke_slots"


@pytest.fixture(autouse=True)
def no_organizer_dirs(monkeypatch):
    monkeypatch.delenv("HARNESS_CONFIG_PATH", raising=False)
    monkeypatch.delenv("HARNESS_CONFIG_DIR", raising=False)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("runner.max_parallel=banana", "runner.max_parallel: must be a positive whole number, or null for no cap, got 'banana'"),
        ("runner.max_parallel=0", "runner.max_parallel: must be a positive whole number, or null for no cap, got 0"),
        ("runner.max_parallel=true", "runner.max_parallel: must be a positive whole number, or null for no cap, got True"),
        ("runner.infra_retries=banana", "runner.infra_retries: must be a whole number, 0 or more, got 'banana'"),
        ("runner.infra_retries=-1", "runner.infra_retries: must be a whole number, 0 or more, got -1"),
        ("runner.infra_retries=null", "runner.infra_retries: must be a whole number, 0 or more, not null"),
        ("runner.retry_backoff_s=-1", "runner.retry_backoff_s: must be a number of seconds, 0 or more, got -1.0"),
        ("runner.retry_backoff_s=nan", "runner.retry_backoff_s: must be a finite number, got nan"),
        ("runner.retry_backoff_s=inf", "runner.retry_backoff_s: must be a finite number, got inf"),
        ("runner.backend=''", "runner.backend: must be a container backend's name, got ''"),
        ("runner.foo=1", f"runner.foo: no such configuration key (known: {RUNNER_KEYS})"),
        ("+runner.foo=1", f"runner.foo: unknown key (known: {RUNNER_KEYS})"),
        ("limits.train.cpus=nan", "limits.train.cpus: must be a finite number, got nan"),
        ("limits.train.cpus=inf", "limits.train.cpus: must be a finite number, got inf"),
        ("limits.infer.cpus=-1", "limits.infer.cpus: cpus must be positive"),
        ("limits.train.wall_clock_s=nan", "limits.train.wall_clock_s: must be a finite number, got nan"),
        ("limits.train.wall_clock_s=-inf", "limits.train.wall_clock_s: must be a finite number, got -inf"),
        ("limits.train.wall_clock_s=0", "limits.train.wall_clock_s: must be a positive, finite number of seconds, got 0.0"),
        ("limits.train.memory=inf", "limits.train.memory: must be a finite number, got inf"),
        ("limits.train.disk=-1", "limits.train.disk: -1 is negative"),
        ("limits.infer.memory=-5g", "limits.infer.memory: '-5g' is not a size"),
        ("limits.infer.tmp=0", "limits.infer.tmp: must be at least 1 byte, got 0"),
        ("limits.train.log_bytes=-1", "limits.train.log_bytes: -1 is negative"),
        ("limits.train.gpus=-1", "limits.train.gpus: must be 0 or more, got -1"),
        ("limits.train.pids=0", "limits.train.pids: must be at least 1, got 0"),
        ("limits.train.pids=2.5", "limits.train.pids: must be a whole number, got 2.5"),
        ("limits.train.files=many", "limits.train.files: must be a whole number, got 'many'"),
        ("tracking.uri=''", "tracking.uri: must be an MLflow tracking URI or null, got ''"),
        ("tracking.experiment=''", "tracking.experiment: must be an experiment name, got ''"),
        ("tracking.user=me", "tracking.user: no such configuration key (known: uri, experiment, models)"),
        ("images.python=banana", "images.python: must be a Python version such as 3.11, 3.12 or 3.13, got 'banana'"),
        ("images.pull_timeout_s=nan", "images.pull_timeout_s: must be a finite number, got nan"),
        ("images.pull_timeout_s=-1", "images.pull_timeout_s: must be a number of seconds, 0 or more, got -1.0"),
        ("images.packages=numpy", "images.packages: must be a list of pip requirements, got 'numpy'"),
        (
            "images.tag=x",
            "images.tag: no such configuration key (known: base, debian_suite, debian_mirror, pull_timeout_s, packages, python, lock, source_date_epoch)",
        ),
        ("seed=-1", "seed: must be a whole number from 0 to 4294967295, got -1"),
        ("seed=1.5", "seed: must be a whole number from 0 to 4294967295, got 1.5"),
        ("competition.split.public_fraction=nan", "competition.split.public_fraction: must be a finite number, got nan"),
        ("competition.split.public_fraction=1", "competition.split.public_fraction: must be between 0 and 1, got 1.0"),
        ("competition.intake.max_image_size=inf", "competition.intake.max_image_size: must be a finite number, got inf"),
        ("competition.predictions.max_bytes=inf", "competition.predictions.max_bytes: must be a finite number, got inf"),
        ("competition.predictions.max_bytes=-1", "competition.predictions.max_bytes: -1 is negative"),
        ("competition.quota.per_day=nan", "competition.quota.per_day: must be a positive whole number, got nan"),
        ("competition.quota=5", "competition.quota: must be a mapping of per_day, charge_smoke_failures, concurrent_per_team, got 5"),
        (
            "competition.quota.concurrent_per_team=0",
            "competition.quota.concurrent_per_team: must be a positive whole number, or null for no cap, got 0",
        ),
        ("competition.leaderboard.rerun.times=0", "competition.leaderboard.rerun.times: must be a positive whole number, got 0"),
        ("competition.command.train=go", "competition.command.train: must be a list of strings, e.g. [train], got 'go'"),
        ("competition.metrics.primary=null", "competition.metrics.primary: must be a metric name, not null"),
        ("service.port=0", "service.port: must be a TCP port from 1 to 65535, got 0"),
        ("service.public_url=ftp://x", "service.public_url: must be an http:// or https:// URL, or null, got 'ftp://x'"),
        ("service.public_url='https://x y'", "service.public_url: must be an http:// or https:// URL, or null, got 'https://x y'"),
        ("service.max_message_chars=501", "service.max_message_chars: must be a whole number from 0 to 500, got 501"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(override, expected):
    with pytest.raises(ConfigError) as refused:
        load_settings("digits", [override])
    message = str(refused.value)
    assert message.startswith(expected) and "\n" not in message


@pytest.mark.parametrize("override", ["runner.max_parallel=0", "limits.train.wall_clock_s=nan", "runner.infra_retries=banana"])
def test_the_command_line_prints_one_line_and_exits_2(tmp_path, monkeypatch, capsys, override):
    home = tmp_path / "home"
    monkeypatch.setenv("HARNESS_HOME", str(home))
    assert main(["leaderboard", "digits", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: {override.split('=')[0]}: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not home.exists()


def test_the_new_keys_and_their_defaults():
    settings = load_settings("digits")
    assert settings.runner.backend == "docker"
    assert settings.images.python == "3.11" and settings.images.base == "python:3.11-slim"
    assert load_settings("digits", ["images.python=3.12"]).images.base == "python:3.12-slim"
    assert load_settings("digits", ["runner.backend=podman"]).runner.backend == "podman"


def test_the_resolved_config_holds_every_key():
    """Records keep the resolved config and its hash: every key of the schema is in it, with its value."""
    resolved = dict(_leaves(load_settings("digits").as_dict()))
    assert {key for key, _ in _leaves(OmegaConf.to_container(schema.defaults()))} == set(resolved)
    assert resolved["runner.backend"] == "docker" and resolved["images.python"] == "3.11" and resolved["seed"] == 42


# --- one place for each default ------------------------------------------------------------


def test_the_typed_forms_take_their_defaults_from_the_schema():
    train, infer = PhaseLimitsConfig(), LimitsConfig().infer
    assert PhaseLimits().memory == parse_size(train.memory) and PhaseLimits().wall_clock_s == train.wall_clock_s
    assert Limits().infer.wall_clock_s == infer.wall_clock_s and Limits().infer.disk == parse_size(infer.disk)
    assert Limits.from_mapping({"infer": {"gpus": 1}}).infer.files == infer.files  # a key left out: that phase's default
    assert PredictionsSpec().max_bytes == parse_size(PredictionsConfig().max_bytes)
    composed = load_settings("digits")
    assert composed.limits == Limits()  # the bundled limits file sets nothing: the schema's defaults
    assert composed.runner.infra_retries == schema.RunnerConfig().infra_retries


def _leaves(node, prefix=""):
    for k, v in (node or {}).items():
        if k == "defaults":
            continue
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield prefix + k, v


@pytest.mark.parametrize("group", ["limits", "runner", "tracking", "images"])
def test_the_bundled_group_files_only_set_what_differs_from_the_schema(group):
    defaults = OmegaConf.to_container(schema.defaults()[group])
    for path in sorted(files("harness.configs").joinpath(group).iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".yaml"):
            continue
        for key, value in _leaves(yaml.safe_load(path.read_text())):
            default = defaults
            for part in key.split("."):
                default = default[part]
            assert value != default, f"{group}/{path.name}: {key} repeats the schema's default {default!r}"


# --- records ---------------------------------------------------------------------------------


def test_a_record_made_before_a_key_existed_still_loads_and_keeps_its_hash():
    settings = load_settings("digits")
    recorded = settings.as_dict()
    del recorded["runner"]["backend"], recorded["images"]["python"]
    old = settings_from_config(OmegaConf.create(recorded))
    assert old.runner.backend == "docker" and old.images.python == "3.11"
    assert old.as_dict() == recorded  # the record's configuration, as it was: its hash is the record's
    recorded["runner"]["max_parallel"] = 0
    with pytest.raises(ConfigError, match=r"^runner\.max_parallel: must be a positive whole number"):
        settings_from_config(OmegaConf.create(recorded))


# --- layering --------------------------------------------------------------------------------

MINE = """\
name: mine
prepare: harness.competition.builders.digits:prepare
predictions:
  kind: value
  target_column: y
metrics:
  primary: rmse
"""


def _organizer(tmp_path, name="organizer", **yamls):
    root = tmp_path / name
    for relative, text in yamls.items():
        path = root / (relative.replace("__", "/").removesuffix("_yaml") + ".yaml")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_an_organizer_competition_composes_with_the_bundled_groups(tmp_path, monkeypatch):
    organizer = _organizer(tmp_path, competition__mine_yaml=MINE)
    monkeypatch.setenv("HARNESS_CONFIG_PATH", str(organizer))
    assert available_competitions() == ["diabetes", "digits", "mine"]
    settings = load_settings("mine", ["runner=cluster"])
    assert settings.competition.title == "mine" and settings.competition.primary_metric == "rmse"
    assert settings.limits == Limits() and settings.runner.address == "auto"
    assert settings.tracking.experiment == "mine"
    assert load_settings("digits").competition.title == "Handwritten digits (8x8)"  # the bundled one, still there


def test_an_organizer_file_overrides_the_bundled_file_of_the_same_name(tmp_path, monkeypatch):
    first = _organizer(
        tmp_path,
        "first",
        limits__default_yaml="train:\n  wall_clock_s: 42\n",
        competition__digits_yaml=(BUNDLED_DIR / "competition" / "digits.yaml").read_text().replace("per_day: 5", "per_day: 9"),
    )
    second = _organizer(tmp_path, "second", limits__default_yaml="train:\n  wall_clock_s: 7\n", limits__tiny_yaml="infer:\n  memory: 64m\n")
    monkeypatch.setenv("HARNESS_CONFIG_PATH", f"{first}:{second}")
    settings = load_settings("digits")
    assert settings.limits.train.wall_clock_s == 42  # the earlier directory wins
    assert settings.limits.train.memory == 2 * 1024**3 and settings.limits.infer == Limits().infer  # the rest: the schema's
    assert settings.competition.rules.per_day == 9
    tiny = load_settings("digits", ["limits=tiny"])  # a new option of a bundled group
    assert tiny.limits.infer.memory == 64 * 1024**2 and tiny.limits.train == Limits().train


def test_a_directory_with_spaces_and_quotes_is_found(tmp_path, monkeypatch):
    organizer = _organizer(tmp_path, "it's a dir", competition__mine_yaml=MINE)
    monkeypatch.setenv("HARNESS_CONFIG_PATH", str(organizer))
    assert load_settings("mine").competition.name == "mine"


def test_an_unknown_key_in_an_organizer_file_names_the_key(tmp_path, monkeypatch):
    organizer = _organizer(tmp_path, runner__local_yaml="max_paralel: 2\n", limits__default_yaml="train:\n  cpus: .nan\n")
    monkeypatch.setenv("HARNESS_CONFIG_PATH", str(organizer))
    with pytest.raises(ConfigError, match=rf"^runner\.max_paralel: unknown key \(known: {RUNNER_KEYS}\)"):
        load_settings("digits")
    (organizer / "runner" / "local.yaml").unlink()
    with pytest.raises(ConfigError, match=r"^limits\.train\.cpus: must be a finite number, got nan$"):
        load_settings("digits")


def test_a_competition_without_its_required_keys_names_them(tmp_path, monkeypatch):
    organizer = _organizer(tmp_path, competition__bare_yaml="name: bare\nprepare: x:y\n")
    monkeypatch.setenv("HARNESS_CONFIG_PATH", str(organizer))
    with pytest.raises(ConfigError, match=r"^competition\.metrics\.primary: missing"):
        load_settings("bare")


def test_where_competitions_live_is_named(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as refused:
        load_settings("nope")
    assert "available: diabetes, digits" in str(refused.value) and str(BUNDLED_DIR) in str(refused.value)
    assert "HARNESS_CONFIG_PATH" in str(refused.value)
    organizer = _organizer(tmp_path, competition__mine_yaml=MINE)
    monkeypatch.setenv("HARNESS_CONFIG_PATH", str(organizer))
    with pytest.raises(
        ConfigError, match=rf"available: diabetes, digits, mine \(a competition is a file competition/<name>\.yaml in {organizer}"
    ):
        load_settings("nope")


def test_a_config_path_that_is_not_a_directory_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CONFIG_PATH", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=rf"^HARNESS_CONFIG_PATH: {tmp_path / 'missing'} is not a directory"):
        load_settings("digits")


def test_the_old_replacing_variable_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"^HARNESS_CONFIG_DIR is no longer read: set HARNESS_CONFIG_PATH"):
        load_settings("digits")


def test_nan_is_refused_in_every_float_of_the_schema():
    floats = [
        f"{group}.{f.name}"
        for group, cls in (("runner", schema.RunnerConfig), ("images", schema.ImagesConfig), ("limits.train", PhaseLimitsConfig))
        for f in dataclasses.fields(cls)
        if f.type in (float, "float")
    ]
    assert floats
    for key in floats:
        with pytest.raises(ConfigError, match=rf"^{key}: must be a finite number, got nan"):
            load_settings("digits", [f"{key}=nan"])
