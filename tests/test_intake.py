"""Intake validates before it accepts: the image exists, fits the size cap, matches the hosts' architecture."""

from __future__ import annotations

import hashlib
import io
import json
import platform
import tarfile

import pytest

from harness.cli import main
from harness.submissions.ledger import Ledger

pytestmark = pytest.mark.docker


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


HOST = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
FOREIGN = "arm64" if HOST == "amd64" else "amd64"


@pytest.fixture(scope="module")
def foreign_image(docker_client) -> str:
    """A real image on the engine built for another architecture (``docker load`` of a hand-made archive)."""
    layer = _tar({"hello.txt": b"hi\n"})
    config = json.dumps(
        {
            "architecture": FOREIGN,
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["harness-test/foreign-arch:latest"], "Layers": ["layer.tar"]}]).encode()
    docker_client.images.load(_tar({"layer.tar": layer, config_name: config, "manifest.json": manifest}))
    return "harness-test/foreign-arch:latest"


def test_team_is_checked_before_the_image(home, capsys):
    assert main(["submit", "digits", "--team", "x" * 65, "--image", "nobody/nothing:0"]) == 2
    assert "the team name is 65 characters long; at most 64 are allowed" in capsys.readouterr().err


def test_size_cap_message(home, behave_image, capsys):
    assert main(["submit", "digits", "competition.intake.max_image_size=1m", "--team", "A", "--image", behave_image("constant")]) == 2
    assert "over the size cap of 1.0 MiB" in capsys.readouterr().err
    assert Ledger(home, "digits").all() == []


def test_wrong_architecture_is_refused(home, foreign_image, capsys):
    assert main(["submit", "digits", "--team", "A", "--image", foreign_image]) == 2
    assert f"is built for {FOREIGN}, but the evaluation hosts are {HOST}; rebuild it for {HOST}" in capsys.readouterr().err
    assert Ledger(home, "digits").all() == []
