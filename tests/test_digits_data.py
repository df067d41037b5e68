"""The digits example competition: what prepare() writes (no Docker)."""

import csv
import json
import stat

import pytest
from PIL import Image

from harness.competition.builders import digits
from harness.competition.paths import CompetitionPaths


@pytest.fixture(scope="module")
def comp(tmp_path_factory):
    paths = CompetitionPaths(tmp_path_factory.mktemp("comp") / "digits")
    digits.prepare(paths.root)
    return paths


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_counts_and_headers(comp):
    train, test = rows(comp.train / "train.csv"), rows(comp.test / "test.csv")
    assert len(train) + len(test) == 1797
    assert abs(len(test) / 1797 - 0.3) < 0.01
    assert list(train[0]) == ["id", "label"]
    assert list(test[0]) == ["id"]  # no labels for the participant's test phase
    assert not {r["id"] for r in train} & {r["id"] for r in test}
    assert {r["label"] for r in train} == {str(d) for d in range(10)}
    for split, ids in (("train", train), ("test", test)):
        assert len(list((comp.data / split / "images").iterdir())) == len(ids)
        assert (comp.data / split / "DESCRIPTION.md").read_text().startswith("# Handwritten")
    assert json.loads((comp.root / ".prepared").read_text())["files"] == 1797 + 5


def test_images_are_8x8_grayscale(comp):
    first = rows(comp.train / "train.csv")[0]["id"]
    with Image.open(comp.train / "images" / f"{first}.png") as img:
        assert img.size == (8, 8) and img.mode == "L"
        assert img.getextrema()[1] > 200  # ink scaled from 0..16 up to 0..255


def test_hidden_labels_cover_exactly_the_test_ids(comp):
    labels = rows(comp.labels)
    assert list(labels[0]) == ["id", "label", "split"]
    assert [r["id"] for r in labels] == [r["id"] for r in rows(comp.test / "test.csv")]
    splits = [r["split"] for r in labels]
    assert set(splits) == {"public", "private"}
    assert 0.4 < splits.count("public") / len(splits) < 0.6
    assert all(r["split"] == digits.split_of(int(r["id"])) for r in labels)
    assert stat.S_IMODE(comp.hidden.stat().st_mode) == 0o700


def test_prepare_is_deterministic_and_idempotent(comp, tmp_path):
    before = (comp.root / ".prepared").stat().st_mtime_ns
    digits.prepare(comp.root)  # marker present: nothing happens
    assert (comp.root / ".prepared").stat().st_mtime_ns == before
    other = tmp_path / "again"
    assert not digits.is_prepared(other)
    digits.prepare(other)
    assert digits.is_prepared(other)
    for rel in ("data/train/train.csv", "data/test/test.csv", "hidden/labels.csv"):
        assert (other / rel).read_bytes() == (comp.root / rel).read_bytes()
    assert [p.name for p in other.iterdir() if p.name.startswith(".prepare-")] == []
