"""The example competition: scikit-learn's bundled 8x8 digits (1797 images, no download).

Layout under ``root`` (see :class:`harness.paths.CompetitionPaths`)::

    data/train/{DESCRIPTION.md, train.csv (id,label), images/<id>.png}
    data/test/{DESCRIPTION.md, test.csv (id), images/<id>.png}
    hidden/labels.csv (id,label,split)     mode 0700, never mounted
    .prepared                              JSON marker, written last
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

SEED = 20240601
TEST_SIZE = 0.3
MARKER = ".prepared"

DESCRIPTION = """\
# Handwritten digits (8x8)

Classify small grayscale images of handwritten digits into the classes 0-9.

## Data
- `/data/train/train.csv`: columns `id,label` (label is the digit, 0-9), one row per image.
- `/data/train/images/<id>.png`: 8x8 grayscale PNG, pixel values 0 (white) to 255 (ink).
- `/data/test/test.csv`: column `id` only; the test labels are never given to your container.
- `/data/test/images/<id>.png`: the test images, same format.

Ids are integers. The data is scikit-learn's `load_digits` (UCI optical digits), split 70/30
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


def split_of(image_id: int, public_fraction: float = 0.5) -> str:
    """``public`` or ``private``, fixed by a hash of the id (independent of any RNG)."""
    h = hashlib.sha256(f"digits:{image_id}".encode()).digest()
    return "public" if int.from_bytes(h[:8], "big") / 2**64 < public_fraction else "private"


def prepare(root: Path, public_fraction: float = 0.5) -> None:
    """Write the competition under ``root``; a no-op when it is already prepared."""
    root = Path(root)
    if is_prepared(root):
        return  # before the imports: scikit-learn alone takes seconds to import
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    root.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    ids = np.arange(len(digits.target))
    train_ids, test_ids = train_test_split(ids, test_size=TEST_SIZE, stratify=digits.target, random_state=SEED)
    # Build everything in a temporary directory beside the final one, then rename into place.
    tmp = Path(tempfile.mkdtemp(prefix=".prepare-", dir=root))
    try:
        count = 0
        for split, split_ids in (("train", sorted(train_ids)), ("test", sorted(test_ids))):
            d = tmp / "data" / split
            (d / "images").mkdir(parents=True)
            for i in split_ids:
                pixels = np.rint(digits.images[i] * (255 / 16)).astype(np.uint8)
                Image.fromarray(pixels).save(d / "images" / f"{i}.png")
            rows = [f"{i},{digits.target[i]}" if split == "train" else f"{i}" for i in split_ids]
            header = "id,label" if split == "train" else "id"
            (d / f"{split}.csv").write_text("\n".join([header, *rows]) + "\n")
            (d / "DESCRIPTION.md").write_text(DESCRIPTION)
            count += len(split_ids) + 2
        hidden = tmp / "hidden"
        hidden.mkdir(mode=0o700)
        hidden.chmod(0o700)
        rows = [f"{i},{digits.target[i]},{split_of(int(i), public_fraction)}" for i in sorted(test_ids)]
        (hidden / "labels.csv").write_text("\n".join(["id,label,split", *rows]) + "\n")
        count += 1
        # Containers run as another uid: the data must be world-readable whatever the umask.
        for dirpath, _dirnames, filenames in os.walk(tmp / "data"):
            os.chmod(dirpath, 0o755)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), 0o644)
        for name in ("data", "hidden"):  # leftovers of a crash between the renames
            if (root / name).exists():
                shutil.rmtree(root / name)
            os.rename(tmp / name, root / name)
        marker = tmp / MARKER
        marker.write_text(json.dumps({"competition": "digits", "files": count}) + "\n")
        os.replace(marker, root / MARKER)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
