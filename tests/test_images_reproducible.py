"""The participant base image's pins: the wheelhouse lock is checked, and the bootstrapped OS base
is the same image (the same id) whenever it is built from the same inputs."""

import json
import re

import pytest

from harness.competition.config import compose_config
from harness.participant import images, wheelhouse


def test_the_bundled_lock_pins_the_configured_packages():
    """configs/images/wheelhouse.lock locks exactly images.packages, each pinned to one version."""
    cfg = compose_config("digits").images
    lock = wheelhouse.read_lock(wheelhouse.lock_path(cfg))
    assert lock["packages"] == list(cfg.packages) and lock["python"] == cfg.python
    assert all("==" in p for p in cfg.packages)
    names = {w["file"].split("-")[0].lower() for w in lock["wheels"]}
    assert {"torch", "numpy", "pillow"} <= names
    assert next(w["file"] for w in lock["wheels"] if w["file"].startswith("torch-")).startswith("torch-2.13.0+cpu-")
    assert all(len(w["sha256"]) == 64 for w in lock["wheels"])


def test_the_base_wheelhouse_comes_from_the_committed_lock_into_an_empty_directory(tmp_path):
    """A cold start: the bundled lock downloads into an empty directory exactly its wheels (the same
    file names, the same sha256), whatever the index serves as newest today, and the image's
    requirements.txt pins each of them by that sha256."""
    cfg = compose_config("digits").images
    lock_file = wheelhouse.lock_path(cfg)
    lock = wheelhouse.read_lock(lock_file)
    built = wheelhouse.prepare_wheelhouse(cfg.packages, tmp_path / "wheelhouse", log=lambda line: None, python=cfg.python, lock=lock_file)
    fetched = {w.name: wheelhouse.sha256_file(w) for w in built.glob("*.whl")}
    assert fetched == {w["file"]: w["sha256"] for w in lock["wheels"]}
    assert (built / "requirements.txt").read_text() == wheelhouse.locked_requirements(lock)


def test_the_lock_drives_the_download_and_names_the_wheel_it_cannot_get(tmp_path):
    """A real `pip download`: a lock of jinja2 whose dependency markupsafe is locked at 3.0.2 (older
    than what resolving jinja2 afresh picks) gets markupsafe 3.0.2; a locked sha256 the index does
    not serve, and a locked version the index does not have, each fail with one line naming the
    wheel and `harness images lock`, and leave no wheelhouse behind."""
    quiet = lambda line: None  # noqa: E731
    first = wheelhouse.prepare_wheelhouse(["jinja2==3.1.6", "markupsafe==3.0.2"], tmp_path / "first", log=quiet)
    lock = wheelhouse.make_lock(first, ["jinja2==3.1.6"], wheelhouse.DEFAULT_PYTHON)
    lock_file = tmp_path / "wheelhouse.lock"
    lock_file.write_text(json.dumps(lock))
    markupsafe = next(w for w in lock["wheels"] if w["file"].lower().startswith("markupsafe-"))
    assert markupsafe["file"].lower().startswith("markupsafe-3.0.2-")

    good = wheelhouse.prepare_wheelhouse(["jinja2==3.1.6"], tmp_path / "good", log=quiet, lock=lock_file)
    assert sorted(w.name for w in good.glob("*.whl")) == sorted(w["file"] for w in lock["wheels"])
    assert f"{markupsafe['file'].split('-')[0]}==3.0.2 --hash=sha256:{markupsafe['sha256']}\n" in (good / "requirements.txt").read_text()

    markupsafe["sha256"] = "0" * 64
    lock_file.write_text(json.dumps(lock))
    with pytest.raises(wheelhouse.ImageBuildError) as raised:
        wheelhouse.prepare_wheelhouse(["jinja2==3.1.6"], tmp_path / "tampered", log=quiet, lock=lock_file)
    message = str(raised.value)
    assert "\n" not in message and markupsafe["file"] in message and "the lock says " + "0" * 64 in message
    assert "harness images lock" in message
    assert not (tmp_path / "tampered").exists() and not list((tmp_path / "tampered.tmp").glob("*.whl"))

    markupsafe["file"] = markupsafe["file"].replace("3.0.2", "0.0.1")
    lock_file.write_text(json.dumps(lock))
    with pytest.raises(wheelhouse.ImageBuildError, match=rf"{re.escape(markupsafe['file'])} is not served by the package index") as raised:
        wheelhouse.prepare_wheelhouse(["jinja2==3.1.6"], tmp_path / "gone", log=quiet, lock=lock_file)
    assert "\n" not in str(raised.value) and "harness images lock" in str(raised.value)

    lock["packages"] = ["jinja2==3.1.5"]
    lock_file.write_text(json.dumps(lock))
    with pytest.raises(wheelhouse.ImageBuildError, match="harness images lock"):
        wheelhouse.prepare_wheelhouse(["jinja2==3.1.6"], tmp_path / "other", log=quiet, lock=lock_file)


def test_a_wheelhouse_tampered_after_download_fails_its_next_build(tmp_path):
    """The stamped wheelhouse is verified on every build: a wheel changed on disk since is named."""
    quiet = lambda line: None  # noqa: E731
    first = wheelhouse.prepare_wheelhouse(["markupsafe==3.0.2"], tmp_path / "first", log=quiet)
    lock_file = tmp_path / "wheelhouse.lock"
    lock_file.write_text(json.dumps(wheelhouse.make_lock(first, ["markupsafe==3.0.2"], wheelhouse.DEFAULT_PYTHON)))
    good = wheelhouse.prepare_wheelhouse(["markupsafe==3.0.2"], tmp_path / "good", log=quiet, lock=lock_file)
    (wheel,) = good.glob("*.whl")
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    with pytest.raises(wheelhouse.ImageBuildError, match=rf"{re.escape(wheel.name)} has sha256 \w+, the lock says"):
        wheelhouse.prepare_wheelhouse(["markupsafe==3.0.2"], tmp_path / "good", log=quiet, lock=lock_file)


def test_os_base_config_has_no_clock():
    """The image config (whose sha256 is the image id) depends on its inputs only."""
    one = images.os_base_config("a" * 64, 1735689600, "{}", "mmdebstrap")
    assert one == images.os_base_config("a" * 64, 1735689600, "{}", "mmdebstrap")
    assert json.loads(one)["created"] == "2025-01-01T00:00:00Z"
    assert one != images.os_base_config("b" * 64, 1735689600, "{}", "mmdebstrap")


@pytest.mark.docker
@pytest.mark.slow
def test_two_bootstraps_of_the_os_base_are_the_same_image(docker_client, os_base, os_base_bootstrapped):
    """mmdebstrap with SOURCE_DATE_EPOCH and an image archive written with a fixed `created`: two
    bootstraps from the same mirror give the same image id (~2 x 20 s). The first of the two is the
    session's ``os_base`` where it is a bootstrap: made by this run (a fresh machine), or found on the
    engine labelled with today's inputs (``ensure_os_base`` checked the label), made by an earlier run."""
    cfg = compose_config("digits").images
    tags = ["harness-pins-test/os-base:one", "harness-pins-test/os-base:two"]
    earlier = docker_client.images.get(os_base).id if os_base.startswith(f"{images.OS_BASE_REPO}:") else None
    try:
        first = os_base_bootstrapped or earlier or images.bootstrap_os_base(cfg, tags[0], log=lambda line: None)
        second = images.bootstrap_os_base(cfg, tags[1], log=lambda line: None)
        assert first == second
        assert docker_client.images.get(tags[1]).attrs["Created"].startswith("2025-01-01T00:00:00")
    finally:
        for tag in tags:
            try:
                docker_client.images.remove(tag)
            except Exception:  # noqa: BLE001 - never built
                pass
