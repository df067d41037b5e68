"""``harness init``: a participant's starting folder, copied from the sample submission."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.participant.images import IMAGES_DIR
from harness.util.errors import HarnessError

SAMPLE_DIR = IMAGES_DIR / "sample-submission"
SAMPLE_FILES = ("Dockerfile", "main.py")

README = """\
# {name}

A submission for the `digits` competition, started from the harness sample: a small PyTorch
network trained with 5-fold cross-validation.

- `main.py train` reads `/data/train` and saves the model in `/model`;
- `main.py infer` reads `/data/test` and `/model` and writes `/output/predictions.csv`.

Change the model in `make_model()` and the training in `fit()`; keep the input/output code.

    harness images build                       # once: the base image harness/python:3.11
    docker build --network none -t {name} .
    harness check digits --image {name}        # the official contract, limits and verdicts, locally
    harness submit digits --team YOUR_TEAM --image {name}

The contract, the limits and what each verdict means: docs/participant-guide.md in the harness
repository.
"""


def write_starter(target: Path) -> list[Path]:
    """Write the starter files into ``target`` (new or empty); returns them."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise HarnessError(f"{target} already exists and is not an empty folder; choose a new one")
    target.mkdir(parents=True, exist_ok=True)
    written = [Path(shutil.copyfile(SAMPLE_DIR / name, target / name)) for name in SAMPLE_FILES]
    readme = target / "README.md"
    readme.write_text(README.format(name=_image_name(target)), encoding="utf-8")
    return [*written, readme]


def _image_name(target: Path) -> str:
    """A valid image name from the folder name: lowercase, [a-z0-9._-] only."""
    name = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in target.resolve().name.lower()).strip(".-_")
    return name or "my-submission"
