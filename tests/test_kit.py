"""The participant kit: nothing of the test set in it, and ``check --kit`` is the official path on a dev split."""

from __future__ import annotations

import io
import json
import math
import tarfile
import zipfile
from pathlib import Path

import pytest

from harness.cli import main
from harness.competition.kit import KitCompetition, build_kit
from harness.evaluation.check import check_image, check_kit
from tests.kit_leaks import digests, leaks, secrets_of


def make_kit(competition, tmp_path: Path, *overrides: str) -> Path:
    comp = competition(*overrides)
    comp.ensure_data()
    output = tmp_path / "kit"
    build_kit(comp, output)
    return output


def test_kit_holds_nothing_of_the_test_inputs_or_hidden_labels(competition, home, tmp_path):
    assert main(["kit", "digits", "--output", str(tmp_path / "kit")]) == 0
    kit = tmp_path / "kit"
    organizer = home / "competitions" / "digits"
    secret = {**digests(organizer / "data" / "test"), **digests(organizer / "hidden")}
    # A file of the organizer's training data is the participant's anyway (the description both
    # directories carry, an 8x8 image that happens to appear in both): only the rest must stay out.
    public = set(digests(organizer / "data" / "train").values())
    kept = digests(kit)
    leaked = {path for path, digest in kept.items() if digest in set(secret.values()) - public}
    assert not leaked
    assert not [p for p in kit.rglob("*") if p.name == "hidden"]
    # Nor inside any file: no test id, hidden label row, test image or the secret key in any bytes
    # of the kit (kit.json, the README, the tables, members of any archive).
    secret = secrets_of(organizer)
    assert sum(name.startswith("test id ") for name in secret) == len((organizer / "hidden/labels.csv").read_text().splitlines()) - 1
    assert leaks(kit, secret) == []
    # Every file is in the manifest with its hash; the dev split is drawn from the training rows only.
    manifest = json.loads((kit / "kit-manifest.json").read_text())["files"]
    assert manifest == {p: d for p, d in kept.items() if p != "kit-manifest.json"}
    spec = json.loads((kit / "kit.json").read_text())
    assert spec["contract_version"] == 1 and spec["competition"] == "digits"
    assert "runner" not in spec["config"] and "tracking" not in spec["config"] and "prepare" not in spec["config"]["competition"]
    train_ids = {line.split(",")[0] for line in (organizer / "data/train/train.csv").read_text().splitlines()[1:]}
    dev_ids = [line.split(",")[0] for line in (kit / "data/dev/test.csv").read_text().splitlines()[1:]]
    kit_train = [line.split(",")[0] for line in (kit / "data/train/train.csv").read_text().splitlines()[1:]]
    assert (kit / "data/dev/test.csv").read_text().splitlines()[0] == "id"
    assert set(dev_ids) <= train_ids and not set(dev_ids) & set(kit_train)
    assert len(dev_ids) == spec["dev_split"]["dev_rows"] == math.ceil(0.2 * len(train_ids))
    assert {p.stem for p in (kit / "data/dev/images").iterdir()} == set(dev_ids)
    assert (kit / "sample-submission/Dockerfile").is_file() and (kit / "base-image/Dockerfile").is_file()


@pytest.mark.docker
def test_check_kit_scores_the_dev_split_with_an_empty_home(competition, tmp_path, behave_image, monkeypatch, capsys):
    kit = make_kit(competition, tmp_path)
    empty = tmp_path / "participant-home"
    empty.mkdir()
    monkeypatch.setenv("HARNESS_HOME", str(empty))
    image = behave_image("constant")
    capsys.readouterr()
    assert main(["check", "--kit", str(kit), "--image", image, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["verdict"] == "SCORED", record["message"]
    assert 0.03 < record["scores"]["public"]["accuracy"] < 0.2  # a constant "0" on the dev rows
    assert not (empty / "competitions").exists()
    assert not [p for root in (empty, kit) for p in root.rglob("*") if p.name == "hidden"]
    assert list((empty / "kits" / "digits" / "checks").iterdir())
    assert main(["check", "--kit", str(kit), "--image", image]) == 0
    assert "dev: accuracy=" in capsys.readouterr().out


@pytest.mark.docker
@pytest.mark.parametrize("behaviour", ["crash", "sleeper", "malformed"])
def test_a_failing_submission_gets_the_same_verdict_and_message(competition, docker_client, tmp_path, behave_image, behaviour):
    overrides = ("limits.train.wall_clock_s=2",)
    kit = make_kit(competition, tmp_path, *overrides)
    image = behave_image(behaviour)
    with open("/dev/null", "w") as quiet:
        official = check_image(competition(*overrides), image, out=quiet)
        local = check_kit(kit, image, out=quiet)
    assert local.verdict == official.verdict != "SCORED"
    assert (local.failed_phase, local.message) == (official.failed_phase, official.message)


def test_a_changed_kit_is_refused(competition, tmp_path):
    kit = make_kit(competition, tmp_path)
    (kit / "dev-labels/labels.csv").write_text("id,label,split\n")
    with pytest.raises(Exception, match="differs from its manifest"):
        KitCompetition.from_kit(kit).ensure_data()


def test_the_leak_search_finds_what_is_planted_in_any_file_or_archive(home, tmp_path):
    """The search above, shown to work: a test id in kit.json, a label row in a .tar.gz, a test
    image in a .zip, the key's hex in the README, each planted in a copy of a kit, is found."""
    assert main(["kit", "digits", "--output", str(tmp_path / "kit")]) == 0
    kit, organizer = tmp_path / "kit", home / "competitions" / "digits"
    secret = secrets_of(organizer)
    assert leaks(kit, secret) == []
    test_id, row = next(name for name in secret if name.startswith("test id ")), next(n for n in secret if n.startswith("label row "))
    image = next(name for name in secret if name.startswith("test file images/"))
    spec = json.loads((kit / "kit.json").read_text())
    (kit / "kit.json").write_text(json.dumps({**spec, "note": f"x{secret[test_id].decode()}x"}))
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        info = tarfile.TarInfo("deep/labels.csv")
        info.size = len(b"id,label\n" + secret[row])
        tar.addfile(info, io.BytesIO(b"id,label\n" + secret[row]))
    (kit / "sample-submission" / "extra.tar.gz").write_bytes(packed.getvalue())
    with zipfile.ZipFile(kit / "data" / "train" / "more.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("img.png", secret[image])
    with (kit / "README.md").open("a") as readme:
        readme.write(secret["the secret key (hex)"].decode())
    found = set(leaks(kit, secret))
    assert {
        ("kit.json", test_id),
        ("sample-submission/extra.tar.gz!!deep/labels.csv", row),
        ("data/train/more.zip!img.png", image),
        ("README.md", "the secret key (hex)"),
    } <= found, found


@pytest.mark.parametrize(
    ("mirror", "secret"),
    [
        ("http://mirror-user:Pa55word-in-kit@mirror.example/debian", b"Pa55word-in-kit"),
        ("https://ghp_TokenOnlyUserinfo123@mirror.example/debian", b"ghp_TokenOnlyUserinfo123"),
        ("http://user%40corp:p%40ss-w0rd-kit@mirror.example/debian", b"p%40ss-w0rd-kit"),
    ],
    ids=["user-and-password", "token-as-user", "percent-encoded"],
)
def test_the_kit_carries_no_organizer_credential(competition, tmp_path, mirror, secret):
    """The organizer's private Debian mirror, credentials in its URL: the kit every team downloads
    (kit.json, base-image/images.yaml, any file or archive member) holds neither the password nor
    the user part, redacted as a record's configuration is, and still names the mirror's host."""
    kit = make_kit(competition, tmp_path, f"images.debian_mirror={mirror}")
    assert leaks(kit, {"the credential": secret, "the whole userinfo": mirror.split("://")[1].split("@")[0].encode()}) == []
    images = (kit / "base-image" / "images.yaml").read_text()
    assert "debian_mirror: http" in images and "://***@mirror.example/debian" in images
    assert json.loads((kit / "kit.json").read_text())["config"]["images"]["debian_mirror"].endswith("://***@mirror.example/debian")
