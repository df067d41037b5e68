"""Score validated predictions against the hidden labels, per leaderboard part."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from harness.scoring.metrics import Metric, check_metrics
from harness.scoring.spec import PredictionsSpec
from harness.scoring.validate import Predictions, PredictionsError

PARTS = ("public", "private")
OVERFLOW_HINT = 1e100  # predictions beyond this size are named as the cause of a metric's overflow


class LabelsError(ValueError):
    """The hidden labels file is malformed (the organizer's problem, never the participant's)."""


class ScoreNotFinite(PredictionsError):
    """A metric came out infinite or NaN on valid, finite predictions (values so large that the
    arithmetic overflows): the verdict is INVALID_PREDICTIONS, the message names the metric and the
    cause. A record never holds a non-finite score (its schema and the signature's JSON refuse one)."""


def load_labels(path: Path, id_column: str, target_column: str) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Read ``id,<target>,split`` into (ids in file order, id -> label, id -> "public"|"private")."""
    ids: list[str] = []
    labels: dict[str, str] = {}
    split: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in (id_column, target_column, "split") if c not in header]
        if missing:
            raise LabelsError(f"{path}: missing column{'s' * (len(missing) > 1)} {', '.join(missing)} (header: {','.join(header)})")
        reader.fieldnames = header
        for row in reader:
            id_, label, part = (str(row.get(c) or "").strip() for c in (id_column, target_column, "split"))
            where = f"{path}, line {reader.line_num}"
            if not id_ or not label:
                raise LabelsError(f"{where}: empty {id_column if not id_ else target_column}")
            if id_ in labels:
                raise LabelsError(f"{where}: repeated {id_column} {id_}")
            if part not in PARTS:
                raise LabelsError(f"{where}: split must be public or private, got {part!r}")
            ids.append(id_)
            labels[id_] = label
            split[id_] = part
    return ids, labels, split


def score_predictions(
    predictions: Predictions,
    labels: dict[str, str],
    split: dict[str, str],
    metric_names: list[str],
    spec: PredictionsSpec,
) -> dict[str, dict[str, float]]:
    """``{"public": {metric: value}, "private": {...}}``; a part without ids is left out."""
    metrics = check_metrics(metric_names, spec.kind)
    absent = [i for i in predictions.ids if i not in labels or i not in split]
    if absent:
        raise LabelsError(f"no hidden label or split for {len(absent)} ids, e.g. {', '.join(absent[:5])}")
    if spec.classes:
        outside = sorted({labels[i] for i in predictions.ids} - set(spec.classes))
        if outside:
            raise LabelsError(f"hidden labels {', '.join(outside[:5])} are not among the classes {', '.join(spec.classes)}")
    scores: dict[str, dict[str, float]] = {}
    for part in PARTS:
        rows = [k for k, i in enumerate(predictions.ids) if split[i] == part]
        if not rows:
            continue
        subset = predictions.subset(rows)
        truth: list[str] | list[float] = [labels[i] for i in subset.ids]
        if spec.kind == "value":
            try:
                truth = [float(y) for y in truth]
            except ValueError as exc:
                raise LabelsError(f"a hidden {spec.target_column} is not a number: {exc}") from None
        scores[part] = {m.name: _finite(m, m.compute(truth, subset), subset) for m in metrics}
    return scores


def _finite(metric: Metric, value: float, predictions: Predictions) -> float:
    if math.isfinite(value):
        return value
    what = "infinite" if math.isinf(value) else "not a number (NaN)"
    largest = float(np.max(np.abs(predictions.values))) if predictions.values is not None and len(predictions.values) else 0.0
    if largest > OVERFLOW_HINT:
        raise ScoreNotFinite(
            f"{metric.name} is {what}: predictions as large as {largest:.3g} overflow; predict finite values of a sensible size"
        )
    raise ScoreNotFinite(f"{metric.name} is {what} on these predictions; it cannot rank them")
