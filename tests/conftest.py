"""Shared fixtures: a real Docker engine, real images built by the tests, a prepared work directory.

The suite runs in pytest-xdist workers (``-n``, pyproject's addopts); what every worker needs and
is costly to make (the images, the wheel, the prepared data) is made once for the whole run by
``made_once`` and shared through the run's common temporary directory."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.competition.config import compose_config, load_settings
from harness.competition.core import Competition
from harness.participant.images import OS_BASE_REPO, build_context_image, build_images, ensure_os_base
from harness.runner.engine import connect

TESTS = Path(__file__).resolve().parent
BEHAVE_DIR = TESTS / "images" / "behave"
SAMPLE_IMAGE = "harness/sample-submission:latest"


def made_once(tmp_path_factory, name: str, make: Callable[[Path], Any]) -> Any:
    """``make(directory)`` once per run, however many xdist workers ask: the first one makes it under
    a lock in the run's common temporary directory, the others wait there and read its answer (JSON).
    A ``make`` that raises leaves no answer, so the next worker to ask tries again and says why."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-of-<user>/pytest-<n>/, above each worker's popen-gw<k>/
    answer = root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if answer.exists():
            return json.loads(answer.read_text())
        directory = root / name
        directory.mkdir(exist_ok=True)
        value = make(directory)
        answer.write_text(json.dumps(value))
        return value


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest files first (tests/durations.json; a file not there yet counts as a median one):
    xdist hands whole files to whichever worker is free, in this order (``--no-loadscope-reorder``),
    so the long ones start early and the short ones fill in around them instead of trailing at the end."""
    from durations import read

    seconds = read()
    default = sorted(seconds.values())[len(seconds) // 2] if seconds else 0
    root = config.rootpath
    items.sort(key=lambda item: -seconds.get(item.path.relative_to(root).as_posix(), default))


@pytest.fixture(scope="session")
def docker_client():
    return connect()  # no skip: the README's test command starts an engine, and the tests need one


@pytest.fixture(scope="session")
def images_cfg():
    return compose_config("digits").images


def _ensure_os_base(images_cfg) -> dict[str, str | None]:
    client = connect()
    before = {tag: image.id for image in client.images.list(name=OS_BASE_REPO) for tag in image.tags}
    tag = ensure_os_base(images_cfg, log=lambda line: None)
    built = client.images.get(tag).id
    bootstrapped = tag.startswith(f"{OS_BASE_REPO}:") and before.get(tag) != built
    return {"tag": tag, "bootstrapped": built if bootstrapped else None}


def _made_os_base(tmp_path_factory, images_cfg) -> dict[str, str | None]:
    return made_once(tmp_path_factory, "os-base", lambda directory: _ensure_os_base(images_cfg))


def _made_sample(tmp_path_factory, images_cfg) -> dict[str, str]:
    def make(directory: Path) -> dict[str, str]:
        home = Path(os.environ.get("HARNESS_TEST_WHEELHOUSE_HOME") or directory)
        build_images(images_cfg, home, log=lambda line: None)
        return {"tag": SAMPLE_IMAGE, "wheelhouse": str(home / "wheelhouse")}

    return made_once(tmp_path_factory, "sample-image", make)


def pytest_sessionstart(session: pytest.Session) -> None:
    """The whole suite in xdist workers: the controller, idle until the workers have started and
    collected (about 16 s), makes the OS base and then the sample meanwhile, through ``made_once``,
    so that on a fresh machine the first tests that need them wait that much less. A worker asking
    first waits for the controller's answer; one that finds none (a make that failed) makes it
    itself and says why. A run of some of the tests makes nothing it may not need."""
    config = session.config
    whole_suite = config.args_source == pytest.Config.ArgsSource.TESTPATHS and not config.option.keyword and not config.option.markexpr
    if os.environ.get("PYTEST_XDIST_WORKER") or not config.getoption("numprocesses", None) or not whole_suite:
        return
    factory = config._tmp_path_factory  # the one xdist gives each worker its directory under
    factory.getbasetemp()  # made here, not raced by the thread below
    threading.Thread(target=_make_images_early, args=(factory, compose_config("digits").images), daemon=True).start()


def _make_images_early(factory, images_cfg) -> None:
    with contextlib.suppress(Exception):  # the worker that asks next makes it again, and its test says why
        _made_os_base(factory, images_cfg)
        _made_sample(factory, images_cfg)


@pytest.fixture(scope="session")
def _os_base(docker_client, images_cfg, tmp_path_factory) -> dict[str, str | None]:
    return _made_os_base(tmp_path_factory, images_cfg)


@pytest.fixture(scope="session")
def os_base(_os_base) -> str:
    return _os_base["tag"]


@pytest.fixture(scope="session")
def os_base_bootstrapped(_os_base) -> str | None:
    """The image id of the OS base that this run bootstrapped with mmdebstrap (a fresh machine's
    first build), or None where it was there already: tests/test_images_reproducible.py compares it
    with a second bootstrap instead of making two of its own."""
    return _os_base["bootstrapped"]


@pytest.fixture(scope="session")
def behave_image(os_base, tmp_path_factory):
    """``behave_image("sleeper")`` -> the tag of a test submission with that behaviour, built once."""

    def build(behaviour: str) -> str:
        def make(directory: Path) -> str:
            tag = f"harness-test/{behaviour}:latest"
            build_context_image(tag, BEHAVE_DIR, {"BASE": os_base, "BEHAVIOUR": behaviour}, log=lambda line: None)
            return tag

        return made_once(tmp_path_factory, f"behave-{behaviour}", make)

    return build


@pytest.fixture(scope="session")
def _sample(docker_client, images_cfg, tmp_path_factory, _os_base) -> dict[str, str]:
    # After the OS base (made once): else the worker building the sample bootstraps a second one
    # beside the worker making it for the behaviour images, both at once on a fresh machine.
    return _made_sample(tmp_path_factory, images_cfg)


@pytest.fixture(scope="session")
def sample_image(_sample) -> str:
    return _sample["tag"]


@pytest.fixture(scope="session")
def sample_wheelhouse(_sample) -> Path:
    """The wheelhouse the sample image was built from: tests/test_demo.py gives each demo's work
    directory a copy instead of a download of its own."""
    return Path(_sample["wheelhouse"])


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built once from a copy of the checkout (tests/test_package.py and
    tests/test_light_install.py install it)."""
    from wheels import build_wheel

    return Path(made_once(tmp_path_factory, "wheel", lambda directory: str(build_wheel(directory))))


def _prepare_data(home: Path) -> str:
    from mlflow.tracking import MlflowClient

    from harness.records.tracking import default_tracking_uri, quiet_mlflow

    competition = Competition.load(load_settings("digits"), home)
    competition.ensure_data()
    quiet_mlflow()
    MlflowClient(tracking_uri=default_tracking_uri(home)).search_experiments()  # an empty store: MLflow's Default experiment only
    return str(home)


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory) -> Path:
    """A work directory with the digits data prepared once, and the embedded MLflow store's tables
    made once (MLflow's schema migrations take seconds per new store); tests copy it."""
    return Path(made_once(tmp_path_factory, "prepared-home", _prepare_data))


@pytest.fixture(scope="session")
def _prepared_images(prepared_data) -> dict:
    from homes import image_stats

    return image_stats(prepared_data)


@pytest.fixture
def home(prepared_data, _prepared_images, tmp_path, monkeypatch) -> Iterator[Path]:
    """A fresh work directory (HARNESS_HOME) holding the prepared digits data, its images hard links
    to the prepared ones (tests/homes.py): a test that changes one in place takes ``own_copy`` first."""
    from homes import changed_images, make_home

    target = tmp_path / "home"
    make_home(prepared_data, target)
    monkeypatch.setenv("HARNESS_HOME", str(target))
    yield target
    if changed := changed_images(prepared_data, _prepared_images):
        pytest.fail(
            f"this test changed {len(changed)} prepared image(s) in place through its home's links, e.g. {changed[0]}: take homes.own_copy first"
        )


@pytest.fixture
def competition(home):
    """``competition(*overrides)``: digits in the test's work directory, without its smoke stage (the
    tests of the full phases' limits and verdicts; tests/test_smoke.py tests the stage)."""

    def make(*overrides: str) -> Competition:
        return Competition.load(load_settings("digits", ["competition.smoke.enabled=false", *overrides]), home)

    return make


_shared_services: list = []  # this worker's shared service, once a module has asked for it


@pytest.fixture(scope="session")
def _shared_serve(prepared_data, tmp_path_factory):
    from tests.service_helpers import serving_shared

    home = tmp_path_factory.mktemp("shared-serve") / "home"
    shutil.copytree(prepared_data, home, symlinks=True)
    with serving_shared(home) as service:
        _shared_services.append(service)
        yield service


@pytest.fixture(scope="module")
def shared_service(_shared_serve):
    """One ``harness serve`` per xdist worker (digits, tests/service_helpers.py's SHARED_OVERRIDES),
    lent to each module that asks; its tests use teams of their own."""
    from tests.service_helpers import lent

    with lent(_shared_serve) as service:
        yield service


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """Stop the shared service once no module still to come can use it. xdist hands out whole files
    in the collection's order (``--no-loadscope-reorder``), so a worker moving on to a file after
    the last one that asks for it will never be lent it again; idle, its Ray alone costs about 6% of
    a core until the session ends. (Stopping it between modules and starting it again costs more.)"""
    yield
    if not _shared_services or (nextitem is not None and nextitem.path == item.path):
        return
    order, last_shared = _file_order(item.session)
    if nextitem is None or order[nextitem.path] > last_shared:
        service = _shared_services[0]
        if service.process is not None and service.process.poll() is None:
            service.stop()


def _file_order(session: pytest.Session) -> tuple[dict[Path, int], int]:
    """Each test file's place in the collection's order, and the place of the last one that uses the shared service."""
    if not hasattr(session, "_harness_file_order"):
        order: dict[Path, int] = {}
        last_shared = -1
        for test in session.items:
            order.setdefault(test.path, len(order))
            if "shared_service" in test.fixturenames:
                last_shared = order[test.path]
        session._harness_file_order = (order, last_shared)
    return session._harness_file_order
