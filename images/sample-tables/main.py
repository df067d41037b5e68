"""Sample submission for table competitions (diabetes, and any made by `harness competition new`):
least squares on the table's numeric columns, with numpy alone.

The harness runs your image twice, with no network and a read-only root filesystem:

  python3 /app/main.py train   reads /data/train, saves the model in /model
  python3 /app/main.py infer   reads /data/test and /model, writes /output/predictions.csv

Only /tmp, /model (train phase) and /output (infer phase) are writable. The tables the harness
writes have the id first and, in the training table, the target last (DESCRIPTION.md in /data/train
says which columns there are). This sample uses every column whose values are all numbers (a missing
one counts as the column's mean): a target of numbers is fitted by ridge-regularised least squares,
a target of classes by least squares on one column per class (the largest score wins). Start from
here: change fit() and predict(), keep the input/output code.
"""

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

RIDGE = 1e-3  # a little regularisation keeps the solution stable when columns repeat each other
MAX_INTEGER_CLASSES = 20  # whole numbers with at most this many values are classes (as the harness reads them)


def read(split):
    """The one CSV table of /data/<split>: its header and rows."""
    folder = Path("/data") / split
    tables = sorted(folder.glob("*.csv"))
    if len(tables) != 1:
        sys.exit(f"expected one .csv table in {folder}, found {[t.name for t in tables]}")
    with open(tables[0], newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


def number(cell):
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def is_numeric(values):
    return all(v == "" or number(v) is not None for v in values) and any(v != "" for v in values)


def features(header, rows, columns, means):
    """The n x (k + 1) matrix of the chosen columns (missing cells: the training mean) and a column of ones."""
    index = [header.index(c) for c in columns]
    x = np.array([[_or(number(row[i]), means[c]) for i, c in zip(index, columns)] for row in rows], dtype=float)
    return np.hstack([x.reshape(len(rows), len(columns)), np.ones((len(rows), 1))])


def _or(value, default):
    return default if value is None else value


def fit(x, y):
    """Ridge least squares: the weights w minimising |x w - y|^2 + RIDGE |w|^2."""
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    xs = x / scale
    w = np.linalg.solve(xs.T @ xs + RIDGE * np.eye(xs.shape[1]), xs.T @ y)
    return (w.T / scale).T


def train():
    header, rows = read("train")
    id_column, target = header[0], header[-1]
    values = [row[-1] for row in rows]
    distinct = sorted(set(values))
    numbers = [number(v) for v in values]
    regression = all(n is not None for n in numbers) and not (all(n == int(n) for n in numbers) and len(distinct) <= MAX_INTEGER_CLASSES)
    columns = [c for i, c in enumerate(header[1:-1], 1) if is_numeric([row[i] for row in rows])]
    means = {c: float(np.mean([number(row[header.index(c)]) for row in rows if row[header.index(c)] != ""])) for c in columns}
    x = features(header, rows, columns, means)
    if regression:
        weights = fit(x, np.array(numbers, dtype=float))
        model = {"kind": "value", "columns": columns, "means": means, "weights": weights.tolist()}
    else:
        y = np.array([[1.0 if v == c else 0.0 for c in distinct] for v in values])
        model = {"kind": "label", "columns": columns, "means": means, "weights": fit(x, y).tolist(), "classes": distinct}
    model.update(id_column=id_column, target=target)
    Path("/model/model.json").write_text(json.dumps(model))
    print(f"trained on {len(rows)} rows, {len(columns)} numeric columns, target {target} ({model['kind']})")


def predict(model, x):
    weights = np.array(model["weights"])
    scores = x @ weights
    if model["kind"] == "value":
        return [repr(float(v)) for v in scores]
    return [model["classes"][k] for k in np.argmax(scores, axis=1)]


def infer():
    model = json.loads(Path("/model/model.json").read_text())
    header, rows = read("test")
    x = features(header, rows, model["columns"], model["means"])
    with open("/output/predictions.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([model["id_column"], model["target"]])
        writer.writerows(zip([row[0] for row in rows], predict(model, x)))
    print(f"predicted {len(rows)} rows")


if __name__ == "__main__":
    {"train": train, "infer": infer}[sys.argv[1]]()
