"""Issue 25, done when: from an organizer's own files (a CSV table with a group column; a folder of
small PNGs with a labels table) to a scored submission pushed through the service, with `harness` commands
and YAML alone (each a subprocess): `harness competition new` writes the competition file and the same
bytes again, `harness data check` is clean, the kit holds nothing of the test side, and a team's image,
pushed with `harness push`, is scored on the board. One service start for the file."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from pathlib import Path

import pytest
from PIL import Image

from tests.kit_leaks import leaks, secrets_of
from tests.service_helpers import Service, harness

pytestmark = pytest.mark.docker
WAIT_S = "600"


def organizer_files(root: Path) -> tuple[Path, Path]:
    """What an organizer brings: flats.csv (rent by flat, in 8 districts) and a folder of 4x4 PNGs with labels.csv."""
    rng = random.Random(25)
    table = root / "flats.csv"
    root.mkdir(parents=True)
    with table.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["district", "rooms", "area", "rent"])
        for i in range(64):
            rooms, area = rng.randint(1, 5), round(rng.uniform(20, 140), 1)
            writer.writerow([f"d{i % 8}", rooms, area, round(9 * area + 60 * rooms + rng.gauss(0, 40))])
    folder = root / "shapes"
    (folder / "png").mkdir(parents=True)
    with (folder / "labels.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "shape", "camera"])
        for i in range(36):
            shape = ("dot", "bar", "box")[i % 3]
            pixels = bytes(rng.randrange(256) for _ in range(16))
            Image.frombytes("L", (4, 4), pixels).save(folder / "png" / f"s{i:02}.png")
            writer.writerow([f"png/s{i:02}.png", shape, ("a", "b")[i % 2]])
    return table, folder


def majority_accuracy(organizer: Path) -> float:
    """The public accuracy of predicting the training table's most common class, from the organizer's files:
    which class that is, and how many public rows have it, depend on the split the secret drew."""
    with (organizer / "data/train/train.csv").open(newline="") as fh:
        trained = [row[-1] for row in list(csv.reader(fh))[1:]]
    best = max(sorted(set(trained)), key=trained.count)
    with (organizer / "hidden/labels.csv").open(newline="") as fh:
        public = [row["shape"] for row in csv.DictReader(fh) if row["split"] == "public"]
    return sum(label == best for label in public) / len(public)


def everything(*roots: Path) -> dict[str, str]:
    return {
        f"{root.name}/{p.relative_to(root)}": hashlib.sha256(p.read_bytes()).hexdigest()
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "data-manifest.json" and "manifests" not in p.parts
    }


def test_from_the_organizer_s_files_to_a_scored_submission(home, behave_image, tmp_path):
    image = behave_image("majority")  # predicts the training data's most common target: valid for a class or a number
    table, folder = organizer_files(tmp_path / "organizer")

    # The table, split by its group column: the competition file, the data, the check, the next commands.
    new = ("competition", "new", "flats", "--from", str(table), "--target", "rent", "--group-column", "district")
    done = harness(home, *new)
    assert f"flats: wrote {home / 'config/competition/flats.yaml'}" in done.stdout
    assert "kind value, scored by rmse, mae" in done.stdout and "test = whole groups of district" in done.stdout
    assert "0 error(s), 0 warning(s)" in done.stdout and "harness serve flats" in done.stdout
    first = everything(home / "config", home / "competitions" / "flats")
    harness(home, *new)  # again, with the secret it drew: the same bytes
    assert everything(home / "config", home / "competitions" / "flats") == first

    # The folder of PNGs and its labels table: the table and the file column are found.
    done = harness(home, "competition", "new", "shapes", "--from", str(folder), "--target", "shape")
    assert "kind label, scored by accuracy, macro_f1" in done.stdout and "0 error(s), 0 warning(s)" in done.stdout
    written = (home / "config/competition/shapes.yaml").read_text()
    assert "prepare: files" in written and "file_column: image" in written and "classes: [bar, box, dot]" in written

    for name in ("flats", "shapes"):
        assert "0 error(s), 0 warning(s)" in harness(home, "data", "check", name).stdout
        kit = tmp_path / f"{name}-kit"
        harness(home, "kit", name, "--output", str(kit))
        organizer = home / "competitions" / name
        assert leaks(kit, secrets_of(organizer)) == []
        assert not [p for p in kit.rglob("*") if p.name in ("hidden", "secret", "sources.csv")]
    assert (tmp_path / "shapes-kit/data/dev/files").is_dir()  # the per-item files follow their rows into the kit

    # The table's competition scores locally (harness check) ...
    local = json.loads(harness(home, "check", "flats", "--image", image, "--json").stdout)
    assert local["verdict"] == "SCORED" and set(local["scores"]["public"]) == {"rmse", "mae"}

    # ... and the folder's through the service: a team pushes with harness push and is scored on the board.
    service = Service(home, competition="shapes").start()
    try:
        team = service.add_team("Team Shapes")
        participant = {"HARNESS_SERVER": service.url, "HARNESS_TOKEN": team["token"], "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        pushed = json.loads(harness(home, "push", "shapes", image, "-m", "the majority", "--json", env=participant).stdout)
        status = harness(home, "status", "shapes", pushed["id"], "--wait", "--timeout", WAIT_S, "--json", env=participant, timeout=660)
        verdict = json.loads(status.stdout)
        assert verdict["verdict"] == "SCORED", verdict
        board = json.loads(harness(home, "leaderboard", "shapes", "--remote", "--json", env=participant).stdout)
        rows = {row["team"]: row for row in board["rows"]}
        assert board["metric"] == "accuracy" and rows["Team Shapes"]["score"] == verdict["public_scores"]["accuracy"]
        assert rows["Team Shapes"]["score"] == pytest.approx(majority_accuracy(home / "competitions" / "shapes"))
    finally:
        try:
            service.stop()
        finally:
            service.kill()
