"""The participant base image's pins: the wheelhouse lock is checked, and the bootstrapped OS base
is the same image (the same id) whenever it is built from the same inputs."""

import json

import pytest

from harness.competition.config import compose_config
from harness.participant import images


def test_the_bundled_lock_pins_the_configured_packages():
    """configs/images/wheelhouse.lock locks exactly images.packages, each pinned to one version."""
    cfg = compose_config("digits").images
    lock = images.read_lock(images.lock_path(cfg))
    assert lock["packages"] == list(cfg.packages) and lock["python"] == cfg.python
    assert all("==" in p for p in cfg.packages)
    names = {w["file"].split("-")[0].lower() for w in lock["wheels"]}
    assert {"torch", "numpy", "pillow"} <= names
    assert next(w["file"] for w in lock["wheels"] if w["file"].startswith("torch-")).startswith("torch-2.13.0+cpu-")
    assert all(len(w["sha256"]) == 64 for w in lock["wheels"])


def test_the_wheelhouse_is_verified_against_its_lock(tmp_path):
    """A real `pip download` of a small package: the lock written from it verifies; a tampered entry
    fails with one error naming the wheel; requirements.txt pins every wheel by sha256."""
    packages = ["markupsafe==3.0.2"]
    first = images.prepare_wheelhouse(packages, tmp_path / "first", log=lambda line: None)
    lock = images.make_lock(first, packages, images.DEFAULT_PYTHON)
    lock_file = tmp_path / "wheelhouse.lock"
    lock_file.write_text(json.dumps(lock))

    good = images.prepare_wheelhouse(packages, tmp_path / "good", log=lambda line: None, lock=lock_file)
    (wheel,) = good.glob("*.whl")
    name = wheel.name.split("-")[0]
    assert (good / "requirements.txt").read_text() == f"{name}==3.0.2 --hash=sha256:{lock['wheels'][0]['sha256']}\n"

    lock["wheels"][0]["sha256"] = "0" * 64
    lock_file.write_text(json.dumps(lock))
    with pytest.raises(images.ImageBuildError, match=rf"{wheel.name} has sha256 \w+, the lock says 0{{64}}"):
        images.prepare_wheelhouse(packages, tmp_path / "good", log=lambda line: None, lock=lock_file)
    assert not (tmp_path / "good.tmp" / ".packages.json").exists()  # a wheelhouse that fails is never stamped

    lock["packages"] = ["markupsafe==3.0.1"]
    lock_file.write_text(json.dumps(lock))
    with pytest.raises(images.ImageBuildError, match="harness images lock"):
        images.prepare_wheelhouse(packages, tmp_path / "other", log=lambda line: None, lock=lock_file)


def test_os_base_config_has_no_clock():
    """The image config (whose sha256 is the image id) depends on its inputs only."""
    one = images.os_base_config("a" * 64, 1735689600, "{}", "mmdebstrap")
    assert one == images.os_base_config("a" * 64, 1735689600, "{}", "mmdebstrap")
    assert json.loads(one)["created"] == "2025-01-01T00:00:00Z"
    assert one != images.os_base_config("b" * 64, 1735689600, "{}", "mmdebstrap")


@pytest.mark.docker
@pytest.mark.slow
def test_two_bootstraps_of_the_os_base_are_the_same_image(docker_client):
    """mmdebstrap with SOURCE_DATE_EPOCH and an image archive written with a fixed `created`: two
    bootstraps from the same mirror give the same image id (~2 x 20 s)."""
    cfg = compose_config("digits").images
    tags = ["harness-pins-test/os-base:one", "harness-pins-test/os-base:two"]
    try:
        ids = [images.bootstrap_os_base(cfg, tag, log=lambda line: None) for tag in tags]
        assert ids[0] == ids[1]
        assert docker_client.images.get(tags[0]).attrs["Created"].startswith("2025-01-01T00:00:00")
    finally:
        for tag in tags:
            try:
                docker_client.images.remove(tag)
            except Exception:  # noqa: BLE001 - never built
                pass
