"""Each ranked row's evidence: its score's bootstrap interval over the board's scored ids, and how
often it beats the next row on the same resampled ids (``harness.scoring.bootstrap``).

The scores are computed again from the predictions each ranked evaluation left (kept for every
scored submission) and the hidden labels of the board's part. A row gets no interval, and its pairs
no share, when its predictions are gone or differ from the ones its record hashed, or when they no
longer give the recorded score (the labels changed since): the board never shows evidence that is
not about the score it ranks. The seed comes from the competition's name and the board's part, so
a board is the same, byte for byte, each time it is built from the same results.

Every submission is scored on the same resamples (one seed per board), so an evaluation's resampled
scores depend on nothing else: they are kept by evaluation, predictions hash and board, in memory
and beside the run (``harness.results.resampled``), and a board that gains a submission computes
only that one's (the service rebuilds its board every few seconds; a command starts afresh).
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.competition.core import Competition
from harness.leaderboard.board import Entry, latest_per_submission
from harness.records.artifacts import stored_predictions
from harness.results import resampled
from harness.scoring import Metric, PredictionsError, validate_predictions
from harness.scoring.bootstrap import PER_ID, Spread, per_id_scores, seed_of, spread, whole_scores
from harness.util.errors import HarnessError
from harness.util.hashing import regular_file_sha256

KEPT = 8192  # evaluations' resampled scores kept in memory (8 KB each at 1,000 resamples)
_scores: OrderedDict[tuple, np.ndarray | None] = OrderedDict()


def with_uncertainty(
    competition: Competition, entries: list[Entry], records: list[dict[str, Any]], part: str, metric: Metric
) -> list[Entry]:
    """``entries`` with ``low``, ``high``, ``beats_next`` and ``tied_with_next`` on the ranked rows
    where the evidence can be computed (``leaderboard.resamples`` 0: none)."""
    rules = competition.settings.competition.rules
    ranked = [e for e in entries if e.rank is not None]
    if rules.resamples == 0 or not ranked:
        return entries
    latest = {r["submission"]["id"]: r for r in latest_per_submission(records)}
    hashed = [
        (latest[e.submission]["evaluation_id"], (latest[e.submission].get("manifest") or {}).get("predictions_sha256")) for e in ranked
    ]
    labels = regular_file_sha256(competition.paths.labels)  # evidence about other labels is not about these scores
    keys = [
        (competition.name, part, metric.name, rules.resamples, labels, repr(e.score), evaluation, sha)
        for e, (evaluation, sha) in zip(ranked, hashed)
    ]
    for key in keys:
        if key not in _scores and key[-1] and (kept := resampled.load(_file(competition, key), rules.resamples)) is not None:
            _remember(_scores, key, kept, KEPT)
    missing = [k for k, key in enumerate(keys) if key not in _scores and key[-1] and ranked[k].score is not None]
    if missing and not _resample(competition, part, metric, rules.resamples, [ranked[k] for k in missing], [keys[k] for k in missing]):
        return entries
    found = [_scores.get(key) for key in keys]
    for key in keys:
        if key in _scores:
            _scores.move_to_end(key)
    have = [k for k, f in enumerate(found) if f is not None]
    if not have:
        return entries
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a metric undefined on every resample: NaN, shown as no interval
        result = spread(np.column_stack([found[k] for k in have]), metric.higher_is_better, rules.confidence)
    return _annotated(entries, ranked, have, result, rules.confidence)


def _resample(competition: Competition, part: str, metric: Metric, resamples: int, entries: list[Entry], keys: list[tuple]) -> bool:
    """Each evaluation's scores on the board's resamples, kept under its key (None: its predictions
    cannot back its score); all at once, so the resamples are drawn once. False: no labels to score on."""
    try:
        ids, labels, split = competition.labels
    except HarnessError:
        return False
    rows = [k for k, i in enumerate(ids) if split[i] == part]
    if not rows:
        return False
    truth = [labels[ids[k]] for k in rows]
    read = [_read(competition, metric, key[-2], key[-1], ids, rows, truth, e.score) for e, key in zip(entries, keys)]
    usable = [k for k, r in enumerate(read) if r is not None]
    seed = seed_of(competition.name, part)
    scores = np.empty((resamples, 0))
    if usable and (form := PER_ID.get(metric.name)) is not None:
        scores = per_id_scores(np.vstack([read[k] for k in usable]), form, resamples, seed)
    elif usable:
        classes = competition.settings.competition.predictions.classes
        scores = whole_scores(_truth(metric, truth), [read[k] for k in usable], metric, classes, resamples, seed)
    for key in keys:
        _remember(_scores, key, None, KEPT)
    for column, k in enumerate(usable):
        _remember(_scores, keys[k], scores[:, column].copy(), KEPT)
        resampled.save(_file(competition, keys[k]), scores[:, column])
    return True


def _file(competition: Competition, key: tuple) -> Path:
    return resampled.path(competition, key[-2], key)


def _truth(metric: Metric, truth: list[str]) -> np.ndarray:
    return np.asarray(truth, dtype=float) if metric.needs == "value" else np.asarray(truth, dtype=object)


def _read(
    competition: Competition,
    metric: Metric,
    evaluation: str,
    sha: str,
    ids: list[str],
    rows: list[int],
    truth: list[str],
    score: float | None,
) -> np.ndarray | None:
    """The evaluation's per-id values (the per-id path) or predictions (the whole path) on the board's
    ids; None when its predictions are gone, differ from the hashed ones or no longer give ``score``."""
    path = stored_predictions(competition, evaluation)
    if regular_file_sha256(path) != sha:
        return None
    spec = competition.settings.competition.predictions
    try:
        predictions = validate_predictions(path, ids, spec).subset(rows)
        y_true, y_pred = metric.inputs(truth, predictions)
        form = PER_ID.get(metric.name)
        with np.errstate(all="ignore"):
            if form is not None:
                values = np.asarray(form.values(y_true, y_pred, spec.classes), dtype=float)
                again = float(form.finish(np.mean(values)))
            else:
                values, again = y_pred, float(metric.fn(y_true, y_pred, spec.classes))
    except (PredictionsError, ValueError):
        return None
    return values if score is not None and math.isclose(again, score, rel_tol=1e-9, abs_tol=1e-12) else None


def _annotated(entries: list[Entry], ranked: list[Entry], have: list[int], result: Spread, confidence: float) -> list[Entry]:
    changed: dict[str, Entry] = {}
    for j, k in enumerate(have):
        entry = ranked[k]
        low, high = result.low[j], result.high[j]
        fields: dict[str, Any] = {"low": _number(low), "high": _number(high)}
        if j + 1 < len(have) and have[j + 1] == k + 1 and not math.isnan(result.beats_next[j]):
            share = result.beats_next[j]
            fields.update(beats_next=share, tied_with_next=share < confidence)
        changed[entry.submission] = replace(entry, **fields)
    return [changed.get(e.submission, e) if e.rank is not None else e for e in entries]


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def _remember(cache: OrderedDict, key: tuple, value: Any, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)
