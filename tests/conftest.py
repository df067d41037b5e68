"""Shared fixtures: a real Docker engine, real images built by the tests, a prepared work directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.competition.config import compose_config, load_settings
from harness.competition.core import Competition
from harness.participant.images import OS_BASE_REPO, build_context_image, build_images, ensure_os_base
from harness.runner.engine import connect

TESTS = Path(__file__).resolve().parent
BEHAVE_DIR = TESTS / "images" / "behave"
SAMPLE_IMAGE = "harness/sample-submission:latest"
_BOOTSTRAPPED: dict[str, str] = {}  # the OS base tag this session bootstrapped -> its image id


@pytest.fixture(scope="session")
def docker_client():
    return connect()  # no skip: the README's test command starts an engine, and the tests need one


@pytest.fixture(scope="session")
def images_cfg():
    return compose_config("digits").images


@pytest.fixture(scope="session")
def os_base(docker_client, images_cfg) -> str:
    before = {tag: image.id for image in docker_client.images.list(name=OS_BASE_REPO) for tag in image.tags}
    tag = ensure_os_base(images_cfg, log=lambda line: None)
    built = docker_client.images.get(tag).id
    if tag.startswith(f"{OS_BASE_REPO}:") and before.get(tag) != built:
        _BOOTSTRAPPED[tag] = built
    return tag


@pytest.fixture(scope="session")
def os_base_bootstrapped(os_base) -> str | None:
    """The image id of the OS base that this session bootstrapped with mmdebstrap (a fresh machine's
    first build), or None where it was there already: tests/test_images_reproducible.py compares it
    with a second bootstrap instead of making two of its own."""
    return _BOOTSTRAPPED.get(os_base)


@pytest.fixture(scope="session")
def behave_image(os_base):
    """``behave_image("sleeper")`` -> the tag of a test submission with that behaviour, built once."""
    built: dict[str, str] = {}

    def build(behaviour: str) -> str:
        if behaviour not in built:
            tag = f"harness-test/{behaviour}:latest"
            build_context_image(tag, BEHAVE_DIR, {"BASE": os_base, "BEHAVIOUR": behaviour}, log=lambda line: None)
            built[behaviour] = tag
        return built[behaviour]

    return build


@pytest.fixture(scope="session")
def sample_image(docker_client, images_cfg, tmp_path_factory) -> str:
    home = Path(os.environ.get("HARNESS_TEST_WHEELHOUSE_HOME") or tmp_path_factory.mktemp("images-home"))
    build_images(images_cfg, home, log=lambda line: None)
    return SAMPLE_IMAGE


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built once from a copy of the checkout (tests/test_package.py and
    tests/test_light_install.py install it)."""
    from wheels import build_wheel

    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory) -> Path:
    """A work directory with the digits data prepared once, and the embedded MLflow store's tables
    made once (MLflow's schema migrations take seconds per new store); tests copy it."""
    from mlflow.tracking import MlflowClient

    from harness.records.tracking import default_tracking_uri, quiet_mlflow

    home = tmp_path_factory.mktemp("prepared-home")
    competition = Competition.load(load_settings("digits"), home)
    competition.ensure_data()
    quiet_mlflow()
    MlflowClient(tracking_uri=default_tracking_uri(home)).search_experiments()  # an empty store: MLflow's Default experiment only
    return home


@pytest.fixture
def home(prepared_data, tmp_path, monkeypatch) -> Path:
    """A fresh work directory (HARNESS_HOME) holding the prepared digits data."""
    target = tmp_path / "home"
    shutil.copytree(prepared_data, target, symlinks=True)
    monkeypatch.setenv("HARNESS_HOME", str(target))
    return target


@pytest.fixture
def competition(home):
    """``competition(*overrides)``: digits in the test's work directory, without its smoke stage (the
    tests of the full phases' limits and verdicts; tests/test_smoke.py tests the stage)."""

    def make(*overrides: str) -> Competition:
        return Competition.load(load_settings("digits", ["competition.smoke.enabled=false", *overrides]), home)

    return make
