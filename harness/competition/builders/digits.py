"""The example competition: scikit-learn's bundled 8x8 digits (1797 images, no download).

Layout under ``root`` (see :class:`harness.paths.CompetitionPaths`)::

    data/train/{DESCRIPTION.md, train.csv (id,label), images/<id>.png}
    data/test/{DESCRIPTION.md, test.csv (id), images/<id>.png}
    hidden/labels.csv (id,label,split)     mode 0700, never mounted
    hidden/secret                          the organizer's key (32 random bytes), mode 0600
    .prepared                              JSON marker, written last
    data/phases/<phase>/test/{...}         with phases: each phase's test set, carved from data/test
    hidden/phases/<phase>/labels.csv       its labels (harness.competition.builders.phased)

The ids are opaque: an HMAC-SHA256 of scikit-learn's row index keyed by the secret, so nothing
public maps an id back to a row of ``load_digits`` (a submission that bundles scikit-learn's copy
cannot look its answers up). The rows of each table are in a keyed-random order, and whether a
test id is on the public or the private leaderboard is a keyed hash of the id too: without the
secret, neither can be computed. Given the same secret the builder writes the same bytes.
With phases (``phases=``) the test set above is the pool, never mounted, and each phase's set is
carved out of it by a keyed hash of the id (``harness.competition.builders.phased``).
"""

from __future__ import annotations

from pathlib import Path

from harness.competition.builders.keyed import (  # noqa: F401 - the digits names the tests and older code use
    ID_CHARS,
    MARKER,
    SECRET,
    SECRET_BYTES,
    building,
    is_prepared,
    keyed,
    keyed_order,
    opaque_id,
    read_secret,
    split_of,
    the_secret,
    unique_ids,
)
from harness.competition.builders.phased import carve_phases

SEED = 20240601
TEST_SIZE = 0.3

DESCRIPTION = """\
# Handwritten digits (8x8)

Classify small grayscale images of handwritten digits into the classes 0-9.

## Data
- `/data/train/train.csv`: columns `id,label` (label is the digit, 0-9), one row per image.
- `/data/train/images/<id>.png`: 8x8 grayscale PNG, pixel values 0 (white) to 255 (ink).
- `/data/test/test.csv`: column `id` only; the test labels are never given to your container.
- `/data/test/images/<id>.png`: the test images, same format.

Ids are opaque strings (12 hex characters) in no particular order. The data is scikit-learn's `load_digits` (UCI optical digits), split 70/30
into train and test with every class in the same proportion.

## What to hand in
In the `infer` phase write `/output/predictions.csv` with the header `id,label` and one row for
every id of `test.csv`, each exactly once, `label` being a digit 0-9.

## Metric
Accuracy (fraction of test ids predicted correctly). Half of the test ids make up the public
leaderboard, the other half the private one; which half an id is in is not disclosed.
"""


def prepare(root: Path, public_fraction: float = 0.5, secret: bytes | None = None, phases: list[dict] | None = None) -> None:
    """Write the competition under ``root``, then each of ``phases``' test sets (``{name,
    test_start, test_fraction, final}``); a no-op for what is already prepared.

    The secret is ``secret`` if given, else the one a previous (interrupted) build left in
    ``hidden/``, else 32 fresh random bytes.
    """
    root = Path(root)
    if not is_prepared(root):
        _prepare_pool(root, public_fraction, secret)
    carve_phases(root, phases or [], public_fraction)


def _prepare_pool(root: Path, public_fraction: float, secret: bytes | None) -> None:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    secret = the_secret(root, secret)
    digits = load_digits()
    rows = np.arange(len(digits.target))
    train_rows, test_rows = train_test_split(rows, test_size=TEST_SIZE, stratify=digits.target, random_state=SEED)
    ids = unique_ids(secret, (int(i) for i in rows))

    def shuffled(split_rows: np.ndarray) -> list[int]:  # a keyed-random order, not the id's
        return sorted((int(i) for i in split_rows), key=lambda i: keyed(secret, "order", ids[i]))

    test_order = shuffled(test_rows)
    with building(root, secret, {"competition": "digits"}) as tmp:
        for split, split_rows in (("train", shuffled(train_rows)), ("test", test_order)):
            d = tmp / "data" / split
            (d / "images").mkdir(parents=True)
            for i in split_rows:
                pixels = np.rint(digits.images[i] * (255 / 16)).astype(np.uint8)
                Image.fromarray(pixels).save(d / "images" / f"{ids[i]}.png")
            lines = [f"{ids[i]},{digits.target[i]}" if split == "train" else ids[i] for i in split_rows]
            header = "id,label" if split == "train" else "id"
            (d / f"{split}.csv").write_text("\n".join([header, *lines]) + "\n")
            (d / "DESCRIPTION.md").write_text(DESCRIPTION)
        lines = [f"{ids[i]},{digits.target[i]},{split_of(secret, ids[i], public_fraction)}" for i in test_order]
        (tmp / "hidden" / "labels.csv").write_text("\n".join(["id,label,split", *lines]) + "\n")
