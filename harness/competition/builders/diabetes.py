"""The second example competition: scikit-learn's bundled diabetes table (442 patients, no download),
built by the ``tables`` builder as an organizer's own CSV file would be.

The table is scikit-learn's ``load_diabetes(scaled=False)``: ten baseline measurements (age, sex,
body mass index, blood pressure, six blood serum measurements) and the target ``progression``, a
quantitative measure of disease progression one year after baseline. The data set has no group or
time column of its own; this builder adds ``age_band``, the patient's age in five-year bands
(``45-49``), derived from the age alone, and the competition splits by it: the test patients are
whole age bands that the training data does not have, so a model must carry over to ages it has
not seen. Everything else (opaque keyed ids, keyed row order, the split, the hidden labels, the
public/private assignment, the leak checks) is the tables builder's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.competition.builders.sources import SourceError, Table
from harness.competition.builders.tables import Options, build, up_to_date

SOURCE = "scikit-learn's load_diabetes"  # what source.table reads as for this builder
BAND_YEARS = 5


def age_band(age: float) -> str:
    low = int(age) // BAND_YEARS * BAND_YEARS
    return f"{low}-{low + BAND_YEARS - 1}"


def table(target: str = "progression") -> Table:
    """scikit-learn's diabetes data as an organizer's table: the features, ``age_band``, the target."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(scaled=False)
    header = [*data.feature_names, "age_band", target]
    rows = [[*(f"{v:g}" for v in values), age_band(values[0]), f"{y:g}"] for values, y in zip(data.data, data.target, strict=True)]
    return Table(SOURCE, header, rows)


def prepare(root: Path, public_fraction: float = 0.5, competition: Mapping[str, Any] | None = None, secret: bytes | None = None) -> None:
    """Write the competition under ``root`` (a no-op when it is already written from these settings)."""
    if competition is None:
        raise SourceError("the diabetes builder reads its options from the competition file (competition.source)")
    competition = {**competition, "source": {**(competition.get("source") or {}), "table": SOURCE}}
    options = Options.of(competition, "tables", public_fraction)
    if up_to_date(root, options):
        return  # before scikit-learn's import, which takes seconds
    build(root, options, [table(options.target)], secret=secret)
