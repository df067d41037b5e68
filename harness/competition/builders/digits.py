"""The example competition: scikit-learn's bundled 8x8 digits (1797 images, no download).

Layout under ``root`` (see :class:`harness.paths.CompetitionPaths`)::

    data/train/{DESCRIPTION.md, train.csv (id,label), images/<id>.png}
    data/test/{DESCRIPTION.md, test.csv (id), images/<id>.png}
    hidden/labels.csv (id,label,split)     mode 0700, never mounted
    hidden/secret                          the organizer's key (32 random bytes), mode 0600
    .prepared                              JSON marker, written last
    data/phases/<phase>/test/{...}         with phases: each phase's test set, carved from data/test
    hidden/phases/<phase>/labels.csv       its labels (a final phase's ids are all private)

The ids are opaque: an HMAC-SHA256 of scikit-learn's row index keyed by the secret, so nothing
public maps an id back to a row of ``load_digits`` (a submission that bundles scikit-learn's copy
cannot look its answers up). The rows of each table are in a keyed-random order, and whether a
test id is on the public or the private leaderboard is a keyed hash of the id too: without the
secret, neither can be computed. Given the same secret the builder writes the same bytes.

With phases (``phases=``: each ``{name, test_start, test_fraction, final}``, see
``harness.competition.phases``) the test set above is the pool, never mounted: a test id belongs to
the phase whose slice holds a keyed hash of the id (its own label again), so the phases' test sets
are disjoint and no one can tell which phase an id is in without the secret. A phase's set is
carved once, the first time it is asked for; an opened phase later takes an unused slice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path

SEED = 20240601
TEST_SIZE = 0.3
MARKER = ".prepared"
SECRET = "secret"  # under hidden/, beside the labels
SECRET_BYTES = 32
ID_CHARS = 12  # hex characters of an id: 48 bits, checked unique

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


def is_prepared(root: Path) -> bool:
    return (Path(root) / MARKER).is_file()


def _keyed(secret: bytes, label: str, value: object) -> bytes:
    return hmac.new(secret, f"{label}:{value}".encode(), hashlib.sha256).digest()


def opaque_id(secret: bytes, row: int) -> str:
    """The id of scikit-learn's row ``row``: a keyed hash, meaningless without the secret."""
    return _keyed(secret, "id", row).hex()[:ID_CHARS]


def split_of(secret: bytes, image_id: str, public_fraction: float = 0.5) -> str:
    """``public`` or ``private``, fixed by a keyed hash of the id (its own label, not the id's)."""
    h = _keyed(secret, "split", image_id)
    return "public" if int.from_bytes(h[:8], "big") / 2**64 < public_fraction else "private"


def read_secret(root: Path) -> bytes | None:
    path = Path(root) / "hidden" / SECRET
    return path.read_bytes() if path.is_file() else None


def phase_point(secret: bytes, image_id: str) -> float:
    """Where a test id falls in [0, 1): the phase whose slice holds it owns it."""
    return int.from_bytes(_keyed(secret, "phase", image_id)[:8], "big") / 2**64


def prepare(root: Path, public_fraction: float = 0.5, secret: bytes | None = None, phases: list[dict] | None = None) -> None:
    """Write the competition under ``root``, then each of ``phases``' test sets; a no-op for what is
    already prepared.

    The secret is ``secret`` if given, else the one a previous (interrupted) build left in
    ``hidden/``, else 32 fresh random bytes.
    """
    root = Path(root)
    if not is_prepared(root):
        _prepare_pool(root, public_fraction, secret)
    for phase in phases or []:
        _prepare_phase(root, phase, public_fraction)


def _prepare_phase(root: Path, phase: dict, public_fraction: float) -> None:
    """Carve one phase's test set and labels out of the pool; renamed into place, labels last."""
    name = phase["name"]
    data, hidden = root / "data" / "phases" / name, root / "hidden" / "phases" / name
    if (hidden / "labels.csv").is_file():
        return
    secret = read_secret(root)
    assert secret is not None  # the pool was written with it
    low, high = phase["test_start"], phase["test_start"] + phase["test_fraction"]
    pool_ids = (root / "data" / "test" / "test.csv").read_text().split()[1:]
    labels = dict(line.split(",")[:2] for line in (root / "hidden" / "labels.csv").read_text().split()[1:])
    chosen = [i for i in pool_ids if low <= phase_point(secret, i) < high]
    tmp = Path(tempfile.mkdtemp(prefix=f".phase-{name}-", dir=root))
    try:
        test = tmp / "data" / "test"
        (test / "images").mkdir(parents=True)
        for i in chosen:
            shutil.copyfile(root / "data" / "test" / "images" / f"{i}.png", test / "images" / f"{i}.png")
        (test / "test.csv").write_text("\n".join(["id", *chosen]) + "\n")
        (test / "DESCRIPTION.md").write_text(DESCRIPTION)
        (tmp / "hidden").mkdir(mode=0o700)
        split = (lambda i: "private") if phase.get("final") else (lambda i: split_of(secret, i, public_fraction))
        lines = [f"{i},{labels[i]},{split(i)}" for i in chosen]
        (tmp / "hidden" / "labels.csv").write_text("\n".join(["id,label,split", *lines]) + "\n")
        _readable(tmp / "data")
        for part, target in ((tmp / "data", data), (tmp / "hidden", hidden)):
            target.parent.mkdir(mode=0o755 if part.name == "data" else 0o700, parents=True, exist_ok=True)
            if target.exists():  # a crash between the renames
                shutil.rmtree(target)
            os.rename(part, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _readable(directory: Path) -> None:
    """Containers run as another uid: the data must be world-readable whatever the umask."""
    for dirpath, _dirnames, filenames in os.walk(directory):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)


def _prepare_pool(root: Path, public_fraction: float, secret: bytes | None) -> None:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    root.mkdir(parents=True, exist_ok=True)
    secret = secret or read_secret(root) or secrets.token_bytes(SECRET_BYTES)
    digits = load_digits()
    rows = np.arange(len(digits.target))
    train_rows, test_rows = train_test_split(rows, test_size=TEST_SIZE, stratify=digits.target, random_state=SEED)
    ids = {int(i): opaque_id(secret, int(i)) for i in rows}
    if len(set(ids.values())) != len(ids):
        raise RuntimeError("two digits ids collide: build again with another secret")

    def shuffled(split_rows: np.ndarray) -> list[int]:  # a keyed-random order, not the id's
        return sorted((int(i) for i in split_rows), key=lambda i: _keyed(secret, "order", ids[i]))

    # Build everything in a temporary directory beside the final one, then rename into place.
    tmp = Path(tempfile.mkdtemp(prefix=".prepare-", dir=root))
    try:
        count = 0
        test_order = shuffled(test_rows)
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
            count += len(split_rows) + 2
        hidden = tmp / "hidden"
        hidden.mkdir(mode=0o700)
        hidden.chmod(0o700)
        key = hidden / SECRET
        key.touch(mode=0o600)
        key.chmod(0o600)
        key.write_bytes(secret)
        lines = [f"{ids[i]},{digits.target[i]},{split_of(secret, ids[i], public_fraction)}" for i in test_order]
        (hidden / "labels.csv").write_text("\n".join(["id,label,split", *lines]) + "\n")
        count += 2
        _readable(tmp / "data")
        for name in ("data", "hidden"):  # leftovers of a crash between the renames
            if (root / name).exists():
                shutil.rmtree(root / name)
            os.rename(tmp / name, root / name)
        marker = tmp / MARKER
        marker.write_text(json.dumps({"competition": "digits", "files": count}) + "\n")
        os.replace(marker, root / MARKER)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
