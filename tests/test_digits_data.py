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
    assert json.loads((comp.root / ".prepared").read_text())["files"] == 1797 + 6


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
    secret = digits.read_secret(comp.root)
    assert all(r["split"] == digits.split_of(secret, r["id"]) for r in labels)
    assert stat.S_IMODE(comp.hidden.stat().st_mode) == 0o700


def test_ids_are_opaque_and_rows_shuffled(comp):
    secret = digits.read_secret(comp.root)
    assert len(secret) == 32 and stat.S_IMODE((comp.hidden / "secret").stat().st_mode) == 0o600
    assert not (comp.data / "secret").exists() and not list(comp.data.rglob("secret"))
    train, test = [r["id"] for r in rows(comp.train / "train.csv")], [r["id"] for r in rows(comp.test / "test.csv")]
    everything = train + test
    assert len(set(everything)) == 1797 and all(len(i) == 12 and int(i, 16) >= 0 for i in everything)
    assert not all(i.isdigit() for i in everything)  # not row indices
    assert train != sorted(train) and test != sorted(test)  # the rows are not in id order
    # the ids are the keyed hash of scikit-learn's row index: nothing without the secret recovers it
    assert set(everything) == {digits.opaque_id(secret, i) for i in range(1797)}
    assert digits.opaque_id(b"another secret", 0) not in set(everything)


def test_the_split_depends_on_the_secret(comp):
    labels = rows(comp.labels)
    secret = digits.read_secret(comp.root)
    other = [digits.split_of(secret[::-1], r["id"]) for r in labels]
    assert other != [r["split"] for r in labels]


def test_prepare_is_deterministic_and_idempotent(comp, tmp_path):
    before = (comp.root / ".prepared").stat().st_mtime_ns
    digits.prepare(comp.root)  # marker present: nothing happens
    assert (comp.root / ".prepared").stat().st_mtime_ns == before
    other = tmp_path / "again"
    assert not digits.is_prepared(other)
    digits.prepare(other)
    assert digits.is_prepared(other)
    # another build draws another secret: other ids
    assert (other / "data/train/train.csv").read_bytes() != (comp.root / "data/train/train.csv").read_bytes()
    same = tmp_path / "same"
    digits.prepare(same, secret=digits.read_secret(comp.root))  # the same secret: the same bytes
    for rel in ("data/train/train.csv", "data/test/test.csv", "hidden/labels.csv", "hidden/secret"):
        assert (same / rel).read_bytes() == (comp.root / rel).read_bytes()
    first = rows(comp.train / "train.csv")[0]["id"]
    assert (same / "data/train/images" / f"{first}.png").read_bytes() == (comp.train / "images" / f"{first}.png").read_bytes()
    assert [p.name for p in same.iterdir() if p.name.startswith(".prepare-")] == []


def test_an_interrupted_build_keeps_its_secret(tmp_path):
    root = tmp_path / "digits"
    (root / "hidden").mkdir(parents=True)
    (root / "hidden" / "secret").write_bytes(b"k" * 32)  # left by a build that crashed before its marker
    digits.prepare(root)
    assert digits.read_secret(root) == b"k" * 32
    assert rows(root / "data/test/test.csv")[0]["id"] in {digits.opaque_id(b"k" * 32, i) for i in range(1797)}
