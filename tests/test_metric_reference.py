"""The bundled metrics against scikit-learn's on seeded random data of several shapes, their
direction and the predictions they need, what they say where they are undefined (a ``MetricError``,
never a warning or a NaN), and the config check that refuses a metric at load time. In process."""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn import metrics as sk
from sklearn.preprocessing import label_binarize

from harness.competition.config import compose_config, load_settings, settings_from_config
from harness.scoring import METRICS, MetricError, Predictions, get_metric
from harness.util.errors import ConfigError

# name: (higher_is_better, needs)
EXPECTED = {
    "accuracy": (True, "label"),
    "balanced_accuracy": (True, "label"),
    "macro_f1": (True, "label"),
    "log_loss": (False, "probabilities"),
    "roc_auc": (True, "probabilities"),
    "average_precision": (True, "probabilities"),
    "rmse": (False, "value"),
    "mae": (False, "value"),
    "r2": (True, "value"),
    "mape": (False, "value"),
}
# (rows, classes): the smallest has one row per class; 2 classes is the binary case.
SHAPES = [(2, 2), (9, 2), (40, 3), (300, 5), (2000, 10)]
VALUE_SIZES = [2, 17, 300, 5000]


def classes_of(k: int) -> tuple[str, ...]:
    return tuple(f"c{i}" for i in range(k))


def truth(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Class indices with every class present (the first k rows), shuffled."""
    return rng.permutation(np.r_[np.arange(k), rng.integers(0, k, n - k)])


def probabilities(rng: np.random.Generator, n: int, k: int, style: str) -> np.ndarray:
    if style == "smooth":  # no ties
        return rng.dirichlet(np.ones(k), size=n)
    if style == "ties":  # small whole counts: many equal scores
        counts = rng.integers(1, 4, size=(n, k)).astype(float)
        return counts / counts.sum(axis=1, keepdims=True)
    return np.eye(k)[rng.integers(0, k, n)]  # "certain": exact 0s and 1s, clipped by log_loss


def ours(name: str, y_true, predictions: Predictions) -> float:
    """The metric's value; any warning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return get_metric(name).compute(list(y_true), predictions)


def reference(fn, *args, **kwargs) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. balanced_accuracy's "y_pred contains classes not in y_true"
        return float(fn(*args, **kwargs))


def as_labels(names: tuple[str, ...], index: np.ndarray) -> list[str]:
    return [names[i] for i in index]


@pytest.mark.parametrize(("n", "k"), SHAPES)
def test_label_metrics_match_scikit_learn(n, k):
    rng = np.random.default_rng(1000 * n + k)
    names = classes_of(k)
    y = truth(rng, n, k)
    for guess in (rng.integers(0, k, n), np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))):  # random; mostly right
        predictions = Predictions(tuple(map(str, range(n))), "label", names, labels=as_labels(names, guess))
        y_true, y_pred = as_labels(names, y), as_labels(names, guess)
        assert ours("accuracy", y_true, predictions) == pytest.approx(sk.accuracy_score(y_true, y_pred), abs=1e-12)
        assert ours("balanced_accuracy", y_true, predictions) == pytest.approx(
            reference(sk.balanced_accuracy_score, y_true, y_pred), abs=1e-12
        )
        assert ours("macro_f1", y_true, predictions) == pytest.approx(reference(sk.f1_score, y_true, y_pred, average="macro"), abs=1e-12)


def test_label_metrics_where_the_predictions_name_classes_absent_from_the_truth():
    """balanced_accuracy averages over the true classes only; macro_f1 over both (a class only
    predicted scores 0): scikit-learn's choices, with its warning left out."""
    rng = np.random.default_rng(7)
    names = classes_of(6)
    y, guess = rng.integers(0, 3, 200), rng.integers(0, 6, 200)
    predictions = Predictions(tuple(map(str, range(200))), "label", names, labels=as_labels(names, guess))
    y_true, y_pred = as_labels(names, y), as_labels(names, guess)
    assert ours("balanced_accuracy", y_true, predictions) == pytest.approx(reference(sk.balanced_accuracy_score, y_true, y_pred), abs=1e-12)
    assert ours("macro_f1", y_true, predictions) == pytest.approx(reference(sk.f1_score, y_true, y_pred, average="macro"), abs=1e-12)


@pytest.mark.parametrize("style", ["smooth", "ties", "certain"])
@pytest.mark.parametrize(("n", "k"), SHAPES)
def test_probability_metrics_match_scikit_learn(n, k, style):
    rng = np.random.default_rng(10 * n + k)
    names = classes_of(k)
    y, proba = truth(rng, n, k), probabilities(rng, n, k, style)
    predictions = Predictions(tuple(map(str, range(n))), "probabilities", names, probabilities=proba)
    y_true = as_labels(names, y)
    assert ours("log_loss", y_true, predictions) == pytest.approx(reference(sk.log_loss, y, proba, labels=list(range(k))), rel=1e-9)
    if k == 2:  # binary: the last class is the positive one, its column the score
        auc = reference(sk.roc_auc_score, y == 1, proba[:, 1])
        ap = reference(sk.average_precision_score, y == 1, proba[:, 1])
    else:
        auc = reference(sk.roc_auc_score, y, proba, multi_class="ovr", average="macro", labels=list(range(k)))
        ap = reference(sk.average_precision_score, label_binarize(y, classes=list(range(k))), proba, average="macro")
    assert ours("roc_auc", y_true, predictions) == pytest.approx(auc, rel=1e-9)
    assert ours("average_precision", y_true, predictions) == pytest.approx(ap, rel=1e-9)


def test_label_metrics_on_probabilities_score_the_most_probable_class():
    rng = np.random.default_rng(3)
    names = classes_of(4)
    y, proba = truth(rng, 100, 4), probabilities(rng, 100, 4, "smooth")
    predictions = Predictions(tuple(map(str, range(100))), "probabilities", names, probabilities=proba)
    y_pred = as_labels(names, np.argmax(proba, axis=1))
    assert ours("balanced_accuracy", as_labels(names, y), predictions) == pytest.approx(
        sk.balanced_accuracy_score(as_labels(names, y), y_pred), abs=1e-12
    )


def test_multiclass_ranking_metrics_average_over_the_classes_present():
    """A class absent from the true labels has no ROC or precision-recall curve: the macro mean is
    over the classes present (scikit-learn refuses, or warns and counts it as 0)."""
    rng = np.random.default_rng(11)
    names = classes_of(5)
    y, proba = rng.choice([0, 2, 3], 120), probabilities(rng, 120, 5, "smooth")
    predictions = Predictions(tuple(map(str, range(120))), "probabilities", names, probabilities=proba)
    for name, fn in (("roc_auc", sk.roc_auc_score), ("average_precision", sk.average_precision_score)):
        expected = np.mean([fn(y == c, proba[:, c]) for c in (0, 2, 3)])
        assert ours(name, as_labels(names, y), predictions) == pytest.approx(expected, rel=1e-9), name


@pytest.mark.parametrize("n", VALUE_SIZES)
def test_value_metrics_match_scikit_learn(n):
    rng = np.random.default_rng(n)
    for scale, offset in ((1.0, 0.0), (1e3, 5e3), (1e-3, -2.0)):
        y = rng.normal(offset, scale, n)
        guess = y + rng.normal(0, scale / 2, n)
        predictions = Predictions(tuple(map(str, range(n))), "value", values=guess)
        assert ours("rmse", y, predictions) == pytest.approx(sk.root_mean_squared_error(y, guess), rel=1e-9)
        assert ours("mae", y, predictions) == pytest.approx(sk.mean_absolute_error(y, guess), rel=1e-9)
        assert ours("r2", y, predictions) == pytest.approx(sk.r2_score(y, guess), rel=1e-9)
        assert ours("mape", y, predictions) == pytest.approx(sk.mean_absolute_percentage_error(y, guess), rel=1e-9)


def test_each_metric_has_its_direction_and_the_predictions_it_needs():
    assert set(EXPECTED) <= set(METRICS)
    accepted = {"label": {"label", "probabilities"}, "probabilities": {"probabilities"}, "value": {"value"}}
    for name, (higher, needs) in EXPECTED.items():
        metric = get_metric(name)
        assert (metric.higher_is_better, metric.needs) == (higher, needs), name
        assert {kind for kind in ("label", "probabilities", "value") if metric.accepts(kind)} == accepted[needs], name


def test_a_metric_refuses_predictions_of_a_kind_it_cannot_score():
    labels = Predictions(("1", "2"), "label", ("a", "b"), labels=["a", "b"])
    for name in ("log_loss", "roc_auc", "average_precision"):
        with pytest.raises(MetricError, match=f"^metric {name} needs probabilities predictions, got label$"):
            get_metric(name).compute(["a", "b"], labels)
    values = Predictions(("1", "2"), "value", values=np.array([1.0, 2.0]))
    with pytest.raises(MetricError, match="^metric accuracy needs label predictions, got value$"):
        get_metric("accuracy").compute(["1", "2"], values)


def binary(rows: list[float]) -> Predictions:
    return Predictions(
        tuple(map(str, range(len(rows)))), "probabilities", ("no", "yes"), probabilities=np.array([[1 - p, p] for p in rows])
    )


@pytest.mark.parametrize(
    ("name", "y_true", "predictions", "message"),
    [
        ("roc_auc", ["yes", "yes"], binary([0.2, 0.9]), r"^roc_auc is undefined when the true labels hold a single class \(yes\)$"),
        (
            "roc_auc",
            ["b", "b", "b"],
            Predictions(("1", "2", "3"), "probabilities", ("a", "b", "c"), probabilities=np.full((3, 3), 1 / 3)),
            r"^roc_auc is undefined when the true labels hold a single class \(b\)$",
        ),
        (
            "average_precision",
            ["no", "no", "no"],
            binary([0.1, 0.5, 0.7]),
            r"^average_precision is undefined when no true label is the positive class 'yes' \(the last one\)$",
        ),
        (
            "mape",
            [3.0, 0.0, 0.0],
            Predictions(("1", "2", "3"), "value", values=np.array([3.0, 1.0, 0.0])),
            r"^mape is undefined when a true value is 0 \(2 of 3 are\); choose rmse or mae$",
        ),
        (
            "r2",
            [4.0, 4.0],
            Predictions(("1", "2"), "value", values=np.array([4.0, 5.0])),
            r"^r2 is undefined when the true values are all equal \(4, 2 of them\)$",
        ),
        ("accuracy", [], Predictions((), "label", ("a",), labels=[]), r"^metric accuracy: no predictions to score$"),
        ("log_loss", ["a"], binary([0.5]), r"^true labels a are not among the classes no, yes$"),
    ],
)
def test_undefined_cases_are_a_metric_error_without_a_warning(name, y_true, predictions, message):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(MetricError, match=message):
            get_metric(name).compute(y_true, predictions)


def test_ranking_metrics_are_defined_at_their_edges():
    """Only positives: average precision 1. A certain wrong answer: log loss log(1/eps), not infinity."""
    assert ours("average_precision", ["yes", "yes"], binary([0.2, 0.9])) == 1.0
    assert ours("roc_auc", ["no", "yes"], binary([0.4, 0.4])) == 0.5  # a tie counts one half
    value = ours("log_loss", ["yes"], binary([0.0]))
    assert math.isfinite(value) and value == pytest.approx(-math.log(np.finfo(float).eps))


@pytest.fixture(scope="module")
def digits_config():
    """The bundled digits competition, composed once (``load_settings`` is compose, then this check)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("HARNESS_CONFIG_PATH", raising=False)
        return OmegaConf.to_container(compose_config("digits"))


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"others": ["macro_f1", "auc"]}, r"^competition\.metrics\.others: unknown metric 'auc' \(known: accuracy, average_precision, "),
        ({"others": ["r2"]}, r"^competition\.metrics\.others: metric r2 needs value predictions; this competition's are label$"),
        (
            {"primary": "roc_auc"},
            r"^competition\.metrics\.primary: metric roc_auc needs probabilities predictions; this competition's are label$",
        ),
        (
            {"others": ["macro_f1", "accuracy"]},
            r"^competition\.metrics\.others: accuracy is named twice \(primary and others name each metric once\)$",
        ),
    ],
)
def test_the_config_refuses_a_metric_that_is_unknown_or_does_not_fit_the_predictions(digits_config, metrics, message):
    config = copy.deepcopy(digits_config)
    config["competition"]["metrics"].update(metrics)
    with pytest.raises(ConfigError, match=message):
        settings_from_config(OmegaConf.create(config))


def test_the_config_takes_secondary_metrics_that_fit_the_predictions(digits_config):
    config = copy.deepcopy(digits_config)
    config["competition"]["metrics"]["others"] = ["balanced_accuracy", "macro_f1"]
    assert settings_from_config(OmegaConf.create(config)).competition.other_metrics == ("balanced_accuracy", "macro_f1")
    config["competition"]["predictions"].update(kind="probabilities")
    config["competition"]["metrics"].update(primary="log_loss", others=["roc_auc", "average_precision", "accuracy"])
    assert settings_from_config(OmegaConf.create(config)).competition.metrics == ("log_loss", "roc_auc", "average_precision", "accuracy")


def test_an_unknown_metric_is_refused_when_the_competition_loads(monkeypatch):
    monkeypatch.delenv("HARNESS_CONFIG_PATH", raising=False)
    with pytest.raises(ConfigError, match=r"^competition\.metrics\.others: unknown metric 'f1' "):
        load_settings("digits", ["competition.metrics.others=[f1]"])
