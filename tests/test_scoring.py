"""Scoring: the predictions validator's messages, the metrics, and public/private scoring."""

from __future__ import annotations

import math
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from harness.scoring import (
    METRICS,
    Metric,
    MetricError,
    Predictions,
    PredictionsError,
    PredictionsSpec,
    PredictionsSpecError,
    ScoreNotFinite,
    get_metric,
    load_labels,
    register_metric,
    score_predictions,
    validate_predictions,
)

ROOT = Path(__file__).resolve().parents[1]
IDS = [str(i) for i in range(1, 11)]
LABEL = PredictionsSpec(kind="label", classes=("a", "b", "c"))
VALUE = PredictionsSpec(kind="value", target_column="y")
PROBA = PredictionsSpec(kind="probabilities", classes=("a", "b", "c"))


def write(tmp_path: Path, content: str | bytes, name: str = "predictions.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def label_csv(rows: list[tuple[str, str]], header: str = "id,label") -> str:
    return header + "\n" + "".join(f"{i},{v}\n" for i, v in rows)


def valid_labels() -> list[tuple[str, str]]:
    return [(i, "abc"[int(i) % 3]) for i in IDS]


def verdict(path: Path, spec: PredictionsSpec = LABEL, ids: list[str] = IDS) -> str:
    with pytest.raises(PredictionsError) as caught:
        validate_predictions(path, ids, spec)
    return caught.value.message


# -- spec ----------------------------------------------------------------------------------------


def test_spec_from_the_digits_config() -> None:
    config = yaml.safe_load((ROOT / "configs/competition/digits.yaml").read_text())
    spec = PredictionsSpec.from_mapping(config["predictions"])
    assert spec.kind == "label" and spec.classes == tuple(str(d) for d in range(10))
    assert spec.max_bytes == 10 * 1024**2 and spec.columns == ("id", "label")


def test_spec_names_the_bad_key() -> None:
    with pytest.raises(PredictionsSpecError, match=r"^competition\.predictions\.kind: must be one of label, probabilities, value$"):
        PredictionsSpec.from_mapping({"kind": "ranking"})
    with pytest.raises(ValueError, match=r"^competition\.predictions\.max_bytes: 'lots' is not a size"):
        PredictionsSpec.from_mapping({"max_bytes": "lots"})
    with pytest.raises(ValueError, match=r"^competition\.predictions\.classes: kind probabilities needs at least two"):
        PredictionsSpec.from_mapping({"kind": "probabilities", "classes": ["x"]})


def test_spec_probability_columns_are_the_classes() -> None:
    spec = PredictionsSpec.from_mapping({"kind": "probabilities", "classes": [0, 1]})
    assert spec.columns == ("id", "0", "1")


# -- valid files ---------------------------------------------------------------------------------


def test_valid_label_file_round_trips_in_any_row_order(tmp_path: Path) -> None:
    rows = list(reversed(valid_labels()))
    text = "\ufeffid,label\r\n" + "".join(f" {i} ,{v}\r\n" for i, v in rows) + "\r\n"
    predictions = validate_predictions(write(tmp_path, text), IDS, LABEL)
    assert predictions.ids == tuple(IDS)
    assert predictions.labels == [v for _, v in valid_labels()]


def test_valid_probabilities_round_trip_with_columns_in_any_order(tmp_path: Path) -> None:
    text = "c,id,a,b\n" + "".join(f"0.2,{i},0.5,0.3\n" for i in reversed(IDS))
    predictions = validate_predictions(write(tmp_path, text), IDS, PROBA)
    assert predictions.probabilities.shape == (10, 3)
    np.testing.assert_allclose(predictions.probabilities[0], [0.5, 0.3, 0.2])  # spec.classes order


def test_valid_value_file_round_trips(tmp_path: Path) -> None:
    text = "id,y\n" + "".join(f"{i},{int(i) / 2}\n" for i in IDS)
    predictions = validate_predictions(write(tmp_path, text), IDS, VALUE)
    np.testing.assert_allclose(predictions.values, [int(i) / 2 for i in IDS])


def test_label_file_without_classes_accepts_any_label(tmp_path: Path) -> None:
    spec = PredictionsSpec(kind="label")
    path = write(tmp_path, label_csv([(i, f"cat{i}") for i in IDS]))
    assert validate_predictions(path, IDS, spec).labels[2] == "cat3"


# -- the file itself -----------------------------------------------------------------------------


def test_missing_file_names_the_container_path(tmp_path: Path) -> None:
    assert verdict(tmp_path / "predictions.csv") == (
        "/output/predictions.csv was not written: the infer phase must write its predictions there"
    )


def test_symlink_to_a_valid_file_is_refused(tmp_path: Path) -> None:
    real = write(tmp_path, label_csv(valid_labels()), name="real.csv")
    (tmp_path / "predictions.csv").symlink_to(real)
    message = verdict(tmp_path / "predictions.csv")
    assert message.startswith(f"/output/predictions.csv is a symbolic link (to '{real}'), not a regular file")


def test_symlink_to_dev_null_is_refused(tmp_path: Path) -> None:
    (tmp_path / "predictions.csv").symlink_to("/dev/null")
    assert "is a symbolic link (to '/dev/null'), not a regular file" in verdict(tmp_path / "predictions.csv")


@pytest.mark.timeout(10)
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "predictions.csv")
    assert verdict(tmp_path / "predictions.csv") == (
        "/output/predictions.csv is a named pipe (FIFO), not a regular file; write the predictions into a plain file"
    )


def test_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "predictions.csv").mkdir()
    assert "/output/predictions.csv is a directory, not a regular file" in verdict(tmp_path / "predictions.csv")


def test_device_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "predictions.csv"
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD; the /dev/null symlink case still covers devices reached by a link")
    assert "/output/predictions.csv is a device, not a regular file" in verdict(path)


# Swapped in between lstat and open: the open/fstat checks must catch it too.


def _pretend_regular(monkeypatch: pytest.MonkeyPatch) -> None:
    real_lstat = os.lstat
    monkeypatch.setattr(os, "lstat", lambda p: os.stat_result((stat.S_IFREG | 0o644,) + tuple(real_lstat(p))[1:]))


@pytest.mark.timeout(10)
def test_fifo_swapped_in_after_lstat_is_refused_without_blocking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    os.mkfifo(tmp_path / "predictions.csv")
    _pretend_regular(monkeypatch)
    assert "is a named pipe (FIFO), not a regular file" in verdict(tmp_path / "predictions.csv")


def test_symlink_swapped_in_after_lstat_is_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = write(tmp_path, label_csv(valid_labels()), name="real.csv")
    (tmp_path / "predictions.csv").symlink_to(real)
    _pretend_regular(monkeypatch)
    assert verdict(tmp_path / "predictions.csv").startswith("/output/predictions.csv is a symbolic link, not a regular file")


def test_file_over_max_bytes_is_refused_before_parsing(tmp_path: Path) -> None:
    spec = PredictionsSpec(kind="label", classes=("a", "b", "c"), max_bytes=100)
    path = write(tmp_path, b"\xff" * 200)  # would fail UTF-8 if it were parsed
    assert verdict(path, spec) == ("/output/predictions.csv is 200 B, over the limit of 100 B; it was not read")


def test_empty_file(tmp_path: Path) -> None:
    assert verdict(write(tmp_path, "")) == ("predictions.csv is empty; expected the header id,label and one row per test id")
    assert verdict(write(tmp_path, " \n\n")).startswith("predictions.csv is empty")


def test_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,label\n1,\xe9\n")
    assert verdict(path) == ("predictions.csv is not valid UTF-8: byte 0xe9 at offset 11 (line 2); write it as UTF-8 text")


# -- structure -----------------------------------------------------------------------------------


def test_wrong_header_says_expected_and_found(tmp_path: Path) -> None:
    path = write(tmp_path, label_csv(valid_labels(), header="id,prediction"))
    assert verdict(path) == (
        "predictions.csv has the header 'id,prediction', expected 'id,label' (columns in any order): "
        "missing column label; unexpected column prediction"
    )


def test_probability_header_lists_missing_class_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "id,a,b\n1,0.5,0.5\n")
    assert "expected 'id,a,b,c' (columns in any order): missing column c" in verdict(path, PROBA)


def test_rows_with_wrong_number_of_fields_give_line_numbers(tmp_path: Path) -> None:
    lines = ["id,label"] + [f"{i},a" for i in IDS]
    for k in (2, 3, 5, 6, 8, 10):
        lines[k] = lines[k] + ",extra" if k != 3 else "3"
    message = verdict(write(tmp_path, "\n".join(lines) + "\n"))
    assert message == (
        "predictions.csv: 6 rows have the wrong number of fields (expected 2, as in the header): "
        "line 3 has 3, line 4 has 1, line 6 has 3, line 7 has 3, line 9 has 3 (and 1 more)"
    )


def test_wrong_row_count_lists_missing_ids(tmp_path: Path) -> None:
    rows = [r for r in valid_labels() if r[0] not in ("4", "7")]
    assert verdict(write(tmp_path, label_csv(rows))) == ("predictions.csv has 8 rows, expected 10 (one per test id); 2 missing ids: 4, 7")


def test_many_missing_ids_show_five_and_the_total(tmp_path: Path) -> None:
    rows = valid_labels()[7:]
    assert verdict(write(tmp_path, label_csv(rows))) == (
        "predictions.csv has 3 rows, expected 10 (one per test id); 7 missing ids: 1, 2, 3, 4, 5 (and 2 more)"
    )


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    rows = valid_labels() + [("3", "a")]
    assert verdict(write(tmp_path, label_csv(rows))) == (
        "predictions.csv has 11 rows, expected 10 (one per test id); 1 duplicate id: 3 (lines 4 and 12)"
    )


def test_unknown_ids_with_the_right_row_count(tmp_path: Path) -> None:
    rows = valid_labels()[:-1] + [("99", "a")]
    assert verdict(write(tmp_path, label_csv(rows))) == (
        "predictions.csv has the right number of rows (10) but not the test ids; 1 missing id: 10; 1 unknown id: 99 (line 11)"
    )


def test_empty_id(tmp_path: Path) -> None:
    rows = valid_labels()
    rows[4] = ("  ", "a")
    assert verdict(write(tmp_path, label_csv(rows))) == "predictions.csv: 1 row has an empty id: line 6"


# -- values --------------------------------------------------------------------------------------


def test_empty_label(tmp_path: Path) -> None:
    rows = valid_labels()
    rows[1] = ("2", "")
    rows[8] = ("9", " ")
    assert verdict(write(tmp_path, label_csv(rows))) == ("predictions.csv: 2 rows have an empty label: line 3 (id 2), line 10 (id 9)")


def test_label_not_among_classes_lists_the_classes(tmp_path: Path) -> None:
    rows = valid_labels()
    rows[1] = ("2", "d")
    rows[5] = ("6", "A")
    assert verdict(write(tmp_path, label_csv(rows))) == (
        "predictions.csv: 2 labels are not among the classes (a, b, c): line 3 (id 2): 'd', line 7 (id 6): 'A'"
    )


def test_value_not_a_number(tmp_path: Path) -> None:
    text = "id,y\n" + "".join(f"{i},{'1.5' if i != '4' else 'abc'}\n" for i in IDS)
    assert verdict(write(tmp_path, text), VALUE) == ("predictions.csv: 1 y value is not a number: line 5 (id 4): 'abc'")


def test_value_nan_or_infinite(tmp_path: Path) -> None:
    special = {"2": "nan", "5": "-inf", "6": "Infinity"}
    text = "id,y\n" + "".join(f"{i},{special.get(i, '0')}\n" for i in IDS)
    assert verdict(write(tmp_path, text), VALUE) == (
        "predictions.csv: 3 y values are NaN or infinite: line 3 (id 2): 'nan', line 6 (id 5): '-inf', line 7 (id 6): 'Infinity'"
    )


def proba_csv(override: dict[str, str]) -> str:
    return "id,a,b,c\n" + "".join(f"{i},{override.get(i, '0.2,0.3,0.5')}\n" for i in IDS)


def test_probability_not_a_number(tmp_path: Path) -> None:
    assert verdict(write(tmp_path, proba_csv({"3": "0.2,high,0.5"})), PROBA) == (
        "predictions.csv: 1 probability for class b is not a number: line 4 (id 3): 'high'"
    )


def test_probability_outside_unit_interval(tmp_path: Path) -> None:
    message = verdict(write(tmp_path, proba_csv({"3": "-0.5,1.5,0", "8": "0,0,1.01"})), PROBA)
    assert message == (
        "predictions.csv: 3 probabilities are outside [0, 1]: line 4 (id 3): a='-0.5', line 4 (id 3): b='1.5', line 9 (id 8): c='1.01'"
    )


def test_probabilities_must_sum_to_one(tmp_path: Path) -> None:
    message = verdict(write(tmp_path, proba_csv({"2": "0.2,0.3,0.4", "7": "0.5,0.5,0.5"})), PROBA)
    assert message == (
        "predictions.csv: 2 rows have probabilities that do not sum to 1 (tolerance 0.001): "
        "id 2 (line 3) sums to 0.9, id 7 (line 8) sums to 1.5"
    )


def test_probability_sum_within_tolerance_is_accepted(tmp_path: Path) -> None:
    predictions = validate_predictions(write(tmp_path, proba_csv({"2": "0.2,0.3,0.4995"})), IDS, PROBA)
    assert predictions.probabilities[1].sum() == pytest.approx(0.9995)


# -- metrics -------------------------------------------------------------------------------------


def labels_of(values: list[str], classes: tuple[str, ...] = ("a", "b", "c")) -> Predictions:
    return Predictions(tuple(map(str, range(len(values)))), "label", classes, labels=values)


def proba_of(rows: list[list[float]], classes: tuple[str, ...]) -> Predictions:
    return Predictions(tuple(map(str, range(len(rows)))), "probabilities", classes, probabilities=np.array(rows))


def values_of(values: list[float]) -> Predictions:
    return Predictions(tuple(map(str, range(len(values)))), "value", values=np.array(values))


def test_accuracy() -> None:
    assert get_metric("accuracy").compute(["a", "b", "c", "a"], labels_of(["a", "b", "a", "a"])) == 0.75


def test_macro_f1() -> None:
    # a: P=2/3, R=1 -> F1=0.8; b: 1; c: 0  -> (0.8 + 1 + 0) / 3
    assert get_metric("macro_f1").compute(["a", "b", "c", "a"], labels_of(["a", "b", "a", "a"])) == pytest.approx(0.6)


def test_label_metric_on_probabilities_takes_the_argmax() -> None:
    predictions = proba_of([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.1, 0.4], [0.2, 0.3, 0.5]], ("a", "b", "c"))
    assert get_metric("accuracy").compute(["a", "b", "c", "c"], predictions) == 0.75


def test_log_loss_uses_the_spec_column_order() -> None:
    predictions = proba_of([[0.5, 0.5], [0.75, 0.25]], ("b", "a"))  # columns b, a: not sorted
    expected = -(math.log(0.5) + math.log(0.25)) / 2
    assert get_metric("log_loss").compute(["a", "a"], predictions) == pytest.approx(expected)


def test_roc_auc_binary_uses_the_last_class_as_positive() -> None:
    predictions = proba_of([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]], ("neg", "pos"))
    # positive scores 0.35, 0.8 vs negative 0.1, 0.4: 3 of 4 pairs ranked right
    assert get_metric("roc_auc").compute(["neg", "neg", "pos", "pos"], predictions) == 0.75


def test_roc_auc_multiclass_is_one_vs_rest_macro() -> None:
    rows = [[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4], [0.4, 0.4, 0.2], [0.1, 0.2, 0.7], [0.5, 0.1, 0.4]]
    y = ["a", "b", "c", "b", "c", "a"]
    # a: positives 0.6, 0.5 vs 0.2, 0.3, 0.4, 0.1 -> 8/8; b: 0.5, 0.4 vs 0.3, 0.3, 0.2, 0.1 -> 8/8;
    # c: 0.4, 0.7 vs 0.1, 0.3, 0.2, 0.4 -> (3.5 + 4) / 8
    value = get_metric("roc_auc").compute(y, proba_of(rows, ("a", "b", "c")))
    assert value == pytest.approx((1 + 1 + 7.5 / 8) / 3)
    assert value == pytest.approx(roc_auc_score(y, np.array(rows), multi_class="ovr", labels=["a", "b", "c"]))


def test_rmse_and_mae() -> None:
    predictions = values_of([1.0, 2.0, 5.0])
    assert get_metric("rmse").compute([1, 2, 3], predictions) == pytest.approx(math.sqrt(4 / 3))
    assert get_metric("mae").compute([1, 2, 3], predictions) == pytest.approx(2 / 3)


def test_unknown_metric_lists_the_known_ones() -> None:
    with pytest.raises(
        MetricError,
        match=r"unknown metric 'auc' \(known: accuracy, average_precision, balanced_accuracy, log_loss, macro_f1, mae, mape, r2, rmse, roc_auc\)",
    ):
        get_metric("auc")


def test_metric_refuses_the_wrong_kind() -> None:
    with pytest.raises(MetricError, match="metric rmse needs value predictions, got label"):
        get_metric("rmse").compute(["a"], labels_of(["a"]))
    with pytest.raises(MetricError, match="metric log_loss needs probabilities predictions, got label"):
        get_metric("log_loss").compute(["a"], labels_of(["a"]))


def test_register_metric() -> None:
    @register_metric("test_error_rate", higher_is_better=False, needs="label")
    def error_rate(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> float:
        return float(np.mean(y_true != y_pred))

    try:
        metric = get_metric("test_error_rate")
        assert isinstance(metric, Metric) and not metric.higher_is_better
        assert metric.compute(["a", "b"], labels_of(["a", "a"])) == 0.5
        with pytest.raises(ValueError, match="already registered"):
            register_metric("test_error_rate", higher_is_better=False, needs="label")(error_rate)
    finally:
        METRICS.pop("test_error_rate")


# -- scoring -------------------------------------------------------------------------------------


def test_load_labels(tmp_path: Path) -> None:
    path = write(tmp_path, "id,label,split\n1,a,public\n2,b,private\n", name="labels.csv")
    assert load_labels(path, "id", "label") == (["1", "2"], {"1": "a", "2": "b"}, {"1": "public", "2": "private"})


def test_load_labels_refuses_a_bad_split(tmp_path: Path) -> None:
    path = write(tmp_path, "id,label,split\n1,a,test\n", name="labels.csv")
    with pytest.raises(ValueError, match=r"line 2: split must be public or private, got 'test'"):
        load_labels(path, "id", "label")


def test_scores_public_and_private_separately(tmp_path: Path) -> None:
    labels_path = write(
        tmp_path,
        "id,label,split\n" + "".join(f"{i},{'abc'[int(i) % 3]},{'public' if int(i) <= 4 else 'private'}\n" for i in IDS),
        name="labels.csv",
    )
    ids, labels, split = load_labels(labels_path, "id", "label")
    rows = valid_labels()
    rows[0] = ("1", "c")  # public: 3 of 4 right
    rows[6] = ("7", "c")  # private: 5 of 6 right
    predictions = validate_predictions(write(tmp_path, label_csv(rows)), ids, LABEL)
    scores = score_predictions(predictions, labels, split, ["accuracy", "macro_f1"], LABEL)
    assert scores["public"]["accuracy"] == 0.75
    assert scores["private"]["accuracy"] == pytest.approx(5 / 6)
    assert set(scores["public"]) == {"accuracy", "macro_f1"}


def test_a_part_without_ids_is_left_out(tmp_path: Path) -> None:
    labels = {i: "1.0" for i in IDS}
    split = {i: "private" for i in IDS}
    text = "id,y\n" + "".join(f"{i},3\n" for i in IDS)
    predictions = validate_predictions(write(tmp_path, text), IDS, VALUE)
    assert score_predictions(predictions, labels, split, ["rmse", "mae"], VALUE) == {"private": {"rmse": 2.0, "mae": 2.0}}


def test_scoring_refuses_a_metric_that_does_not_fit_the_kind(tmp_path: Path) -> None:
    predictions = validate_predictions(write(tmp_path, label_csv(valid_labels())), IDS, LABEL)
    with pytest.raises(MetricError, match="metric log_loss needs probabilities predictions; this competition's are label"):
        score_predictions(predictions, {i: "a" for i in IDS}, {i: "public" for i in IDS}, ["log_loss"], LABEL)


# --- non-finite scores: a defined verdict, never a crash in signing or in the round -----------


def test_predictions_of_1e200_make_rmse_overflow_into_a_message_naming_the_metric(tmp_path: Path) -> None:
    """1e200 is a finite number, so the validator accepts it; its square is not. The score is never
    inf: scoring refuses it with the reason (an INVALID_PREDICTIONS verdict), without a warning."""
    labels, split = {i: "1.5" for i in IDS}, {i: "public" if int(i) <= 5 else "private" for i in IDS}
    text = "id,y\n" + "".join(f"{i},{'1e200' if i == '3' else '2'}\n" for i in IDS)
    predictions = validate_predictions(write(tmp_path, text), IDS, VALUE)
    with _no_warnings():
        with pytest.raises(PredictionsError) as refused:
            score_predictions(predictions, labels, split, ["mae", "rmse"], VALUE)
    assert isinstance(refused.value, ScoreNotFinite)
    assert str(refused.value) == "rmse is infinite: predictions as large as 1e+200 overflow; predict finite values of a sensible size"
    # mae stays finite on the same predictions: only a metric that overflows is refused
    assert math.isfinite(score_predictions(predictions, labels, split, ["mae"], VALUE)["public"]["mae"])


def test_a_metric_that_comes_out_nan_is_refused_naming_it(tmp_path: Path) -> None:
    @register_metric("test_nan_metric", higher_is_better=False, needs="value")
    def _nan(y_true, y_pred, classes):
        return float(np.mean(y_pred * np.inf - y_pred * np.inf))  # inf - inf: NaN

    try:
        predictions = validate_predictions(write(tmp_path, "id,y\n" + "".join(f"{i},2\n" for i in IDS)), IDS, VALUE)
        with (
            _no_warnings(),
            pytest.raises(ScoreNotFinite, match=r"^test_nan_metric is not a number \(NaN\) on these predictions; it cannot rank them$"),
        ):
            score_predictions(predictions, {i: "1" for i in IDS}, {i: "public" for i in IDS}, ["test_nan_metric"], VALUE)
    finally:
        METRICS.pop("test_nan_metric")


def test_a_non_finite_score_never_reaches_a_record_or_its_signature(tmp_path: Path) -> None:
    """What scoring would have handed on before: a record with rmse=inf fails its schema, and the
    signature's canonical JSON refuses it (allow_nan=False). Scoring now stops it first."""
    import json

    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        json.dumps({"rmse": math.inf}, allow_nan=False)
    text = "id,y\n" + "".join(f"{i},-1e200\n" for i in IDS)
    predictions = validate_predictions(write(tmp_path, text), IDS, VALUE)
    with pytest.raises(ScoreNotFinite, match="rmse is infinite"):
        score_predictions(predictions, {i: "1e200" for i in IDS}, {i: "public" for i in IDS}, ["rmse"], VALUE)


class _no_warnings:
    """Scoring an overflow prints no RuntimeWarning on the organizer's terminal."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("error")
        return self

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)


def test_millions_of_rows_under_the_size_cap_are_counted_not_kept(tmp_path):
    """A file just under the 10 MB cap of 2.4 million `1,a` rows (one unknown id, repeated): the
    verdict counts every row and names the fault, and validating it raises the process's peak
    memory by less than a small multiple of the file (the rows are checked as a stream; before,
    every row was kept: about 480 MiB more for this file). Measured in a fresh process."""
    rows = 2_400_000
    path = write(tmp_path, "id,label\n" + "1,a\n" * rows)
    size = path.stat().st_size
    assert size < LABEL.max_bytes
    probe = (
        "import resource, sys\n"
        "from harness.scoring import PredictionsError, PredictionsSpec, validate_predictions\n"
        "spec = PredictionsSpec(kind='label', classes=('a', 'b', 'c'))\n"
        "ids = [f'x{i}' for i in range(1797)]\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    validate_predictions(sys.argv[1], ids, spec)\n"
        "except PredictionsError as exc:\n"
        "    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)\n"
        "    print(exc.message)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    grown, message = proc.stdout.split("\n", 1)
    assert message.startswith(
        f"predictions.csv has {rows} rows, expected 1797 (one per test id); 1797 missing ids: x0, x1, x2, x3, x4 (and 1792 more)"
    )
    assert f"; {rows - 1} duplicate ids: 1 (lines 2 and 3), 1 (lines 2 and 4)" in message and message.strip().endswith(
        "; 1 unknown id: 1 (line 2)"
    )
    assert int(grown) < 4 * size, f"validating a {size}-byte file raised the peak memory by {int(grown)} bytes"


def test_unknown_ids_past_the_bound_still_count_and_never_grow_memory(tmp_path, monkeypatch):
    """Distinct unknown ids are remembered (to tell their repeats as duplicates) only up to a bound;
    past it they are still counted as unknown."""
    import harness.scoring.validate as validate

    monkeypatch.setattr(validate, "UNKNOWN_IDS_TRACKED", 2)
    path = write(tmp_path, label_csv([(f"u{i}", "a") for i in range(12)] + [("u0", "a"), ("u11", "a")]))
    message = verdict(path, ids=IDS[:1])
    assert message.startswith("predictions.csv has 14 rows, expected 1 (one per test id); 1 missing id: 1")
    assert "; 1 duplicate id: u0 (lines 2 and 14); 13 unknown ids: u0 (line 2), u1 (line 3)" in message
