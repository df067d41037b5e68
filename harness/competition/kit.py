"""The participant kit: everything a participant may have, and nothing else.

``harness kit COMPETITION --output DIR`` (organizer) writes::

    kit.json                  contract version, competition, the participant's config, the dev split rule
    kit-manifest.json         every other file's SHA-256
    README.md                 for the participant
    data/train/               the kit's training part: the train table's other rows, their per-id files
    data/dev/                 the dev inputs: the test table's shape (no target), their per-id files
    dev-labels/labels.csv     id,<target>,split of the dev rows (all public), what the scorer reads
    sample-submission/        the sample submission's source (competition.kit.sample)
    base-image/               the base image's build inputs (Dockerfile, the images config)

The dev split is carved from the training data only, by the competition's own split rule
(``split.group_column``/``split.time_column``) and ``kit.dev_fraction``, seeded by ``seed``.
Nothing is read from the test inputs or the hidden labels.

``KitCompetition.load(DIR)`` is a :class:`Competition` whose settings come from ``kit.json`` and
whose paths point into the kit: ``train`` is ``data/train``, ``test`` is ``data/dev``, the labels
are ``dev-labels/labels.csv``; its runs and check records go under ``$HARNESS_HOME/kits/<name>``.
An evaluation of it is the same code as an official one.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import random
import shutil
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from harness import __version__
from harness.competition.config import BUNDLED_DIR, Settings, settings_from_config
from harness.competition.core import Competition
from harness.competition.data_manifest import DataManifest
from harness.competition.paths import CompetitionPaths, harness_home
from harness.util.errors import HarnessError
from harness.util.files import write_json_atomic
from harness.util.hashing import scan_tree
from harness.util.redact import redact_config

CONTRACT_VERSION = 1  # the container contract: /data/train, /data/test, /model, /output, the phases' commands and limits
KIT_SCHEMA = "harness.kit/1"
MANIFEST_SCHEMA = "harness.kit-manifest/1"
KIT_FILE = "kit.json"
MANIFEST_FILE = "kit-manifest.json"
ORGANIZER_ONLY = ("runner", "tracking")  # config groups a participant has no use for
# Competition keys that name the organizer's machinery: its data builder and the files it reads, its receivers.
ORGANIZER_KEYS = ("prepare", "source", "webhooks")
KIT_PREPARE = "kit"  # what a kit's competition.prepare reads as: its data is already written
VERIFIED = ("data/", "dev-labels/", KIT_FILE)  # what check --kit refuses to run on when changed


# --- building (organizer) ------------------------------------------------------------------------


def participant_config(settings: Settings) -> dict[str, Any]:
    """The resolved configuration minus what only the organizer uses (runner, tracking, the data
    builder), with its credentials redacted as a record's are (a mirror's password, a key named like
    a token): the kit goes to every team."""
    config = settings.as_dict()
    for group in ORGANIZER_ONLY:
        config.pop(group, None)
    for key in ORGANIZER_KEYS:
        config["competition"].pop(key, None)
    return redact_config(config)


def dev_split(rows: list[dict[str, str]], settings: Settings) -> tuple[set[str], dict[str, Any]]:
    """The ids held out as dev, and the rule that chose them (the competition's own split logic)."""
    fraction = settings.competition_config.kit.dev_fraction
    dev, rule = held_out(rows, settings, math.ceil(len(rows) * fraction), "harness-kit")
    return dev, {**rule, "dev_fraction": fraction, "seed": settings.seed, "dev_rows": len(dev), "train_rows": len(rows) - len(dev)}


def held_out(rows: list[dict[str, str]], settings: Settings, want: int, salt: str) -> tuple[set[str], dict[str, Any]]:
    """About ``want`` ids (at least one, never all) held out of ``rows`` as the real test set is: the
    latest by ``split.time_column``, whole groups of ``split.group_column``, or at random; seeded by
    ``salt`` and the seed. The kit's dev split and the smoke stage's data are carved with it."""
    split = settings.competition_config.split
    id_column = settings.competition.predictions.id_column
    group, time = split.group_column, split.time_column
    want = max(1, min(len(rows) - 1, want))
    rng = random.Random(f"{salt}:{settings.seed}")
    if time:
        order = sorted(rows, key=lambda r: (_sortable(r[time]), r[id_column]))
        cutoff = _sortable(order[len(order) - want][time])
        return {r[id_column] for r in rows if _sortable(r[time]) >= cutoff}, {
            "by": "time",
            "column": time,
            "from": order[len(order) - want][time],
        }
    if group:
        groups = sorted({r[group] for r in rows})
        rng.shuffle(groups)
        chosen: set[str] = set()
        sizes: dict[str, int] = {}
        for r in rows:
            sizes[r[group]] = sizes.get(r[group], 0) + 1
        taken = 0
        for g in groups:
            if taken >= want:
                break
            chosen.add(g)
            taken += sizes[g]
        return {r[id_column] for r in rows if r[group] in chosen}, {"by": "group", "column": group}
    ids = sorted(r[id_column] for r in rows)
    rng.shuffle(ids)
    return set(ids[:want]), {"by": "random"}


def _sortable(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def build_kit(competition: Competition, output: Path) -> dict[str, Any]:
    """Write ``competition``'s participant kit into ``output`` (absent or empty); returns kit.json's content."""
    settings = competition.settings
    spec = settings.competition.predictions
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise HarnessError(f"--output {output}: exists and is not an empty directory")
    header, rows = read_train_table(competition)  # the organizer's training directory is the only one read
    dev, rule = dev_split(rows, settings)
    ids = {r[spec.id_column] for r in rows}
    output.mkdir(parents=True, exist_ok=True)
    write_split(competition, header, rows, (ids - dev, dev), (output / "data" / "train", output / "data" / "dev", output / "dev-labels"))

    images = Path(str(files("harness.images")))
    sample = images / settings.competition_config.kit.sample
    if not (sample / "Dockerfile").is_file():
        raise HarnessError(f"competition.kit.sample: {sample.name} is not a sample submission of the package (a folder of {images})")
    shutil.copytree(sample, output / "sample-submission", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(images / "base", output / "base-image", ignore=shutil.ignore_patterns("__pycache__"))
    if (BUNDLED_DIR / "images").is_dir():
        shutil.copytree(BUNDLED_DIR / "images", output / "base-image" / "configs" / "images")
    images_config = redact_config(dataclasses.asdict(settings.images))
    (output / "base-image" / "images.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(images_config)), encoding="utf-8")

    kit = {
        "schema": KIT_SCHEMA,
        "contract_version": CONTRACT_VERSION,
        "harness_version": __version__,
        "competition": competition.name,
        "config": participant_config(settings),
        "dev_split": rule,
    }
    write_json_atomic(output / KIT_FILE, kit)
    (output / "README.md").write_text(_readme(competition, rule), encoding="utf-8")
    world_readable(output)
    manifest = {p: e.digest for p, e in scan_tree(output).items() if p != MANIFEST_FILE}
    write_json_atomic(output / MANIFEST_FILE, {"schema": MANIFEST_SCHEMA, "files": manifest})
    (output / MANIFEST_FILE).chmod(0o644)
    return kit


def read_train_table(competition: Competition) -> tuple[list[str], list[dict[str, str]]]:
    """The training table's header and rows; refused without the id or target column, or with under two rows."""
    spec = competition.settings.competition.predictions
    table = competition.paths.train / competition.settings.competition_config.data.train_table
    try:
        with table.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except OSError as exc:
        raise HarnessError(f"the training table cannot be read: {exc}") from None
    for column in (spec.id_column, spec.target_column):
        if column not in header:
            raise HarnessError(f"{table}: no column {column!r}")
    if len(rows) < 2:
        raise HarnessError(f"{table}: too few rows ({len(rows)}) to carve a dev split")
    return header, rows


def write_split(
    competition: Competition, header: list[str], rows: list[dict[str, str]], ids: tuple[set[str], set[str]], to: tuple[Path, Path, Path]
) -> None:
    """Write the training rows whose ids are in ``ids[0]`` as a training directory (``to[0]``), those
    in ``ids[1]`` as test inputs without the target (``to[1]``), and their labels (``to[2]/labels.csv``,
    all public). A per-id file of the training directory (its name's stem an id) follows its row;
    any other file (a description) goes to both parts, as the organizer's test directory has its own."""
    spec, data = competition.settings.competition.predictions, competition.settings.competition_config.data
    train_dir = competition.paths.train
    table = train_dir / data.train_table
    (train_ids, test_ids), (train_out, test_out, labels_dir) = ids, to
    for d in to:
        d.mkdir(parents=True, exist_ok=True)
    _write_csv(train_out / data.train_table, header, [r for r in rows if r[spec.id_column] in train_ids])
    test_rows = [r for r in rows if r[spec.id_column] in test_ids]
    _write_csv(test_out / data.test_table, [c for c in header if c != spec.target_column], test_rows)
    _write_csv(
        labels_dir / "labels.csv",
        [spec.id_column, spec.target_column, "split"],
        [{spec.id_column: r[spec.id_column], spec.target_column: r[spec.target_column], "split": "public"} for r in test_rows],
    )
    every = {r[spec.id_column] for r in rows}
    for path in sorted(train_dir.rglob("*")):
        if not path.is_file() or path.is_symlink() or path == table:
            continue
        rel = path.relative_to(train_dir)
        if path.stem in every and len(rel.parts) > 1:
            targets = [train_out] if path.stem in train_ids else [test_out] if path.stem in test_ids else []
        else:
            targets = [train_out, test_out]
        for target in targets:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / rel)


def _write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def world_readable(root: Path) -> None:
    """Containers run as another uid: the kit must be readable whatever the umask."""
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)


def _readme(competition: Competition, rule: dict[str, Any]) -> str:
    settings = competition.settings
    name = competition.name
    same = " (`harness init` writes the same)" if settings.competition_config.kit.sample == "sample-submission" else ""
    by = {"time": f"the latest rows by `{rule.get('column')}`", "group": f"whole groups of `{rule.get('column')}`"}.get(
        rule["by"], "rows drawn at random"
    )
    return f"""\
# Participant kit: {settings.competition.title}

Everything you may have for the competition `{name}` (container contract version {CONTRACT_VERSION}).
The real test inputs and labels stay with the organizer; this kit holds out a **dev split** of the
training data instead, so that you can run your image exactly as an official evaluation does.

- `kit.json`: the contract version, the limits, the predictions format, the metrics, the seed, and
  how the dev split was chosen.
- `data/train/`: what your container sees as `/data/train` here ({rule["train_rows"]} rows).
- `data/dev/`: what it sees as `/data/test` here ({rule["dev_rows"]} rows, {by}); no target column.
- `dev-labels/labels.csv`: the dev labels, read by `harness check --kit` to score you (never mounted).
- `sample-submission/`: a working submission to start from{same}.
- `base-image/`: the base image's build inputs (`harness images build` builds it).
- `kit-manifest.json`: every file's SHA-256.

## Use

    pip install harness
    harness init my-submission && cd my-submission
    harness images build                  # once: the base image
    docker build -t my-team/model:1 .
    harness check --kit {"<this directory>"} --image my-team/model:1

`check --kit` runs the same code as the official evaluation: the same limits, container options,
predictions validator, verdicts and messages; it prints your dev scores. Dev scores are not
leaderboard scores: the official test set is other data, split by the same rule.
"""


# --- using (participant) -------------------------------------------------------------------------


@dataclass(frozen=True)
class KitPaths(CompetitionPaths):
    """A kit's data in place of the competition's: ``root`` holds the runs and check records
    (``$HARNESS_HOME/kits/<name>``), ``kit`` the kit's files."""

    kit: Path = Path()

    @property
    def train(self) -> Path:
        return self.kit / "data" / "train"

    @property
    def test(self) -> Path:
        return self.kit / "data" / "dev"

    @property
    def hidden(self) -> Path:
        return self.kit / "dev-labels"

    @property
    def labels(self) -> Path:
        return self.hidden / "labels.csv"


@dataclass
class KitCompetition(Competition):
    """A competition as a kit describes it: evaluated by the same code, on the kit's dev split."""

    kit: dict[str, Any] | None = None

    @classmethod
    def from_kit(cls, directory: Path, home: Path | None = None) -> KitCompetition:
        directory = Path(directory).resolve()
        kit = read_kit(directory)
        config = OmegaConf.create(kit["config"])
        config.competition.prepare = KIT_PREPARE
        settings = settings_from_config(config)
        home = home or harness_home()
        paths = KitPaths(home / "kits" / settings.competition.name, kit=directory)
        return cls(settings, paths, home, kit)

    def ensure_data(self) -> None:
        """The kit's data as its manifest says (no builder runs: a kit is already written)."""
        verify_kit(self.paths.kit)  # type: ignore[attr-defined]

    @cached_property
    def data_manifest(self) -> DataManifest:
        files: dict[str, str] = {}
        for prefix, directory in (("data/train/", self.paths.train), ("data/dev/", self.paths.test), ("dev-labels/", self.paths.hidden)):
            files.update({p: e.digest for p, e in scan_tree(directory, prefix).items()})
        return DataManifest(files)


def read_kit(directory: Path) -> dict[str, Any]:
    try:
        kit = json.loads((directory / KIT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{directory} is not a participant kit (its {KIT_FILE} cannot be read: {exc})") from None
    if not isinstance(kit, dict) or kit.get("schema") != KIT_SCHEMA:
        raise HarnessError(f"{directory / KIT_FILE}: not a {KIT_SCHEMA} file")
    if kit.get("contract_version") != CONTRACT_VERSION:
        raise HarnessError(
            f"{directory}: the kit is for contract version {kit.get('contract_version')}, this harness runs {CONTRACT_VERSION}; "
            "get the kit again or install the matching harness"
        )
    return kit


def verify_kit(directory: Path) -> None:
    """Refuse a kit whose data, dev labels or kit.json differ from its manifest."""
    try:
        recorded = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"{directory / MANIFEST_FILE} cannot be read: {exc}") from None
    current = {p: e.digest for p, e in scan_tree(directory).items()}
    problems = []
    for path in sorted(set(recorded) | set(current)):
        if not path.startswith(VERIFIED):
            continue
        if recorded.get(path) != current.get(path):
            problems.append(f"{path} {'missing' if path not in current else 'added' if path not in recorded else 'changed'}")
    if problems:
        raise HarnessError(f"{directory}: the kit differs from its manifest ({', '.join(problems[:5])}); get the kit again")
