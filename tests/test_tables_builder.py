"""The built-in data builders `tables` and `files` (no Docker): what they write from an organizer's own
files, that the same secret writes the same bytes, the three ways of carving the test rows, and the
data they refuse, one line each."""

from __future__ import annotations

import hashlib
import random
import re
import stat
from pathlib import Path

import pytest

from harness.competition.builders import keyed
from harness.competition.builders.sources import SourceError, read_table
from harness.competition.builders.tables import Options, build, infer_task, plan, prepare_files, prepare_tables
from harness.competition.config import load_settings
from harness.competition.core import Competition
from harness.competition.datacheck import ERROR, WARNING, check_data
from harness.competition.paths import CompetitionPaths
from tests.organizer_files import rows_of, write_csv

SECRET = b"s" * 32


def houses(path: Path, n: int = 60) -> Path:
    rng = random.Random(3)
    rows = [[f"h{i}", f"s{i % 6}", rng.randint(1, 6), round(rng.uniform(30, 200), 1), 2020 + i % 5, rng.randint(50, 900)] for i in range(n)]
    return write_csv(path, ["house", "site", "rooms", "area", "year", "price"], rows)


def competition(tmp_path: Path, builder: str = "tables", **source) -> dict:
    split = {k: source.pop(k) for k in ("group_column", "time_column") if k in source}
    predictions = source.pop("predictions", {"kind": "value", "target_column": "price"})
    return {
        "name": "houses",
        "title": "Houses",
        "prepare": builder,
        "source": {"table": str(tmp_path / "houses.csv"), **source},
        "predictions": {"id_column": "id", **predictions},
        "split": {"public_fraction": 0.5, **split},
        "data": {"train_table": "train.csv", "test_table": "test.csv"},
    }


def built(tmp_path: Path, name: str = "out", builder: str = "tables", secret: bytes = SECRET, **source) -> CompetitionPaths:
    paths = CompetitionPaths(tmp_path / name)
    (prepare_files if builder == "files" else prepare_tables)(
        paths.root, competition=competition(tmp_path, builder, **source), secret=secret
    )
    return paths


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


# --- what the tables builder writes ---------------------------------------------------------------------


def test_a_table_becomes_a_competition_with_opaque_ids_a_keyed_order_and_hidden_labels(tmp_path):
    houses(tmp_path / "houses.csv")
    paths = built(tmp_path, id_column="house")
    train, test, labels = rows_of(paths.train / "train.csv"), rows_of(paths.test / "test.csv"), rows_of(paths.labels)
    assert list(train[0]) == ["id", "site", "rooms", "area", "year", "price"]  # the id first, the target last, the organizer's id gone
    assert list(test[0]) == ["id", "site", "rooms", "area", "year"] and list(labels[0]) == ["id", "price", "split"]
    assert len(train) + len(test) == 60 and len(test) == 18  # 0.3 of the rows, keyed at random
    ids = [r["id"] for r in train + test]
    assert ids == [keyed.opaque_id(SECRET, f"house:h{n}") for n in _source_rows(paths, ids)]
    assert [r["id"] for r in test] == [r["id"] for r in labels]
    assert [r["id"] for r in train] == keyed.keyed_order(SECRET, [r["id"] for r in train])  # keyed, not the source's order
    assert [r["split"] for r in labels].count("public") == 9  # exactly public_fraction, by the keyed hash
    assert {r["id"] for r in labels if r["split"] == "public"} == keyed.public_ids(SECRET, [r["id"] for r in labels], 0.5)
    source = {f"h{n}": row for n, row in enumerate(rows_of(tmp_path / "houses.csv"))}
    hidden_sources = {r["id"]: r["house"] for r in rows_of(paths.hidden / "sources.csv")}
    assert all(r["price"] == source[hidden_sources[r["id"]]]["price"] for r in labels)
    assert "h1" not in (paths.train / "train.csv").read_text() + (paths.test / "test.csv").read_text()
    assert stat.S_IMODE(paths.hidden.stat().st_mode) == 0o700 and stat.S_IMODE((paths.hidden / "secret").stat().st_mode) == 0o600
    description = (paths.train / "DESCRIPTION.md").read_text()
    assert description.startswith("# Houses\n") and "`id,price`" in description and "drawn at random" in description
    assert keyed.read_marker(paths.root)["builder"] == "tables"


def _source_rows(paths: CompetitionPaths, ids: list[str]) -> list[int]:
    house = {r["id"]: int(r["house"][1:]) for r in rows_of(paths.hidden / "sources.csv")}
    return [house[i] for i in ids]


def test_the_same_secret_writes_the_same_bytes_and_another_secret_other_ids(tmp_path):
    houses(tmp_path / "houses.csv")
    first, second = built(tmp_path, "first", group_column="site"), built(tmp_path, "second", group_column="site")
    assert tree(first.root) == tree(second.root)
    other = built(tmp_path, "other", group_column="site", secret=b"o" * 32)
    assert not {r["id"] for r in rows_of(other.train / "train.csv")} & {r["id"] for r in rows_of(first.train / "train.csv")}


def test_a_parquet_table_builds_the_same_bytes_as_its_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    houses(tmp_path / "houses.csv")
    rows = rows_of(tmp_path / "houses.csv")
    columns = {c: [int(r[c]) if c in ("rooms", "year", "price") else float(r[c]) if c == "area" else r[c] for r in rows] for c in rows[0]}
    pq.write_table(pa.table(columns), tmp_path / "houses.parquet")
    csv_built = built(tmp_path, "csv")
    parquet = CompetitionPaths(tmp_path / "parquet")
    comp = competition(tmp_path)
    comp["source"]["table"] = str(tmp_path / "houses.parquet")
    prepare_tables(parquet.root, competition=comp, secret=SECRET)
    for rel in ("data/train/train.csv", "data/test/test.csv", "hidden/labels.csv"):
        assert (parquet.root / rel).read_bytes() == (csv_built.root / rel).read_bytes()


@pytest.mark.parametrize("by", ["group", "time"])
def test_the_test_rows_are_whole_groups_or_the_latest_rows(tmp_path, monkeypatch, by):
    houses(tmp_path / "houses.csv")
    column = {"group": "site", "time": "year"}[by]
    paths = built(tmp_path, **{f"{by}_column": column})
    train, test = rows_of(paths.train / "train.csv"), rows_of(paths.test / "test.csv")
    if by == "group":
        assert not {r["site"] for r in train} & {r["site"] for r in test}
        assert len({r["site"] for r in test}) == 2  # 2 of 6 sites of 10 rows: 20 rows, the nearest to 0.3 of 60
    else:
        assert max(int(r["year"]) for r in train) < min(int(r["year"]) for r in test)
        assert {r["year"] for r in test} == {"2024"}  # 12 rows or 24 (from 2023): as near to 0.3 of 60, the fewer
    checks = {f.check for f in _clean(tmp_path, paths, monkeypatch, **{f"{by}_column": column})}
    assert f"{by} split" in checks


def _clean(tmp_path: Path, paths: CompetitionPaths, monkeypatch, kind: str = "value", **split) -> list:
    """The data check's findings on a built competition: none an error or a warning."""
    config = tmp_path / "config" / "competition"
    config.mkdir(parents=True, exist_ok=True)
    metric = "rmse" if kind == "value" else "accuracy"
    lines = ["name: houses", "prepare: tables", f"predictions: {{kind: {kind}, target_column: price}}", f"metrics: {{primary: {metric}}}"]
    lines += [f"split: {{{', '.join(f'{k}: {v}' for k, v in split.items())}}}"] if split else []
    (config / "houses.yaml").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("HARNESS_CONFIG_PATH", str(config.parent))
    findings = check_data(Competition(load_settings("houses"), paths, tmp_path))
    assert [f for f in findings if f.level in (ERROR, WARNING)] == []
    return findings


def test_rows_that_repeat_each_other_stay_on_one_side_of_a_random_split(tmp_path, monkeypatch):
    rows = [[f"r{i}", i % 4, i % 3, i % 2] for i in range(40)]  # 12 distinct (a, b) pairs, each on 3 or 4 rows
    write_csv(tmp_path / "houses.csv", ["house", "a", "b", "price"], rows)
    paths = built(tmp_path, id_column="house", predictions={"kind": "label", "target_column": "price"})
    train = {(r["a"], r["b"]) for r in rows_of(paths.train / "train.csv")}
    test = {(r["a"], r["b"]) for r in rows_of(paths.test / "test.csv")}
    assert train and test and not train & test
    _clean(tmp_path, paths, monkeypatch, kind="label")


def test_a_labelled_test_table_is_the_test_set_and_its_labels_are_hidden(tmp_path):
    houses(tmp_path / "houses.csv", 40)
    test_rows = [[f"t{i}", "s9", 3, 50.5 + i, 2030, 100 + i] for i in range(8)]
    write_csv(tmp_path / "later.csv", ["house", "site", "rooms", "area", "year", "price"], test_rows)
    paths = built(tmp_path, id_column="house", test_table=str(tmp_path / "later.csv"), group_column="site", time_column="year")
    assert len(rows_of(paths.train / "train.csv")) == 40 and len(rows_of(paths.test / "test.csv")) == 8
    assert "price" not in rows_of(paths.test / "test.csv")[0]
    assert sorted(r["price"] for r in rows_of(paths.labels)) == [str(100 + i) for i in range(8)]
    assert "The organizer chose the test rows." in (paths.test / "DESCRIPTION.md").read_text()


# --- the files builder ------------------------------------------------------------------------------------


def shapes(tmp_path: Path, n: int = 20, same: tuple[int, int] | None = None) -> Path:
    folder = tmp_path / "shapes"
    (folder / "img").mkdir(parents=True)
    rows = []
    for i in range(n):
        (folder / "img" / f"shape_{i:02}.PNG").write_bytes(b"\x89PNG fake " + str(same[0] if same and i in same else i).encode())
        rows.append([f"img/shape_{i:02}.PNG", ["circle", "square"][i % 2], ["left", "right"][i % 3 == 0]])
    write_csv(folder / "labels.csv", ["file", "label", "camera"], rows)
    return folder


def test_a_folder_of_files_is_copied_under_opaque_names_and_its_table_other_columns_are_features(tmp_path):
    folder = shapes(tmp_path, same=(3, 4))  # two rows with one file's bytes: they must stay on one side
    comp = competition(tmp_path, "files", folder=str(folder), file_column="file", predictions={"kind": "label", "target_column": "label"})
    comp["source"]["table"] = str(folder / "labels.csv")
    paths = CompetitionPaths(tmp_path / "out")
    prepare_files(paths.root, competition=comp, secret=SECRET)
    train, test = rows_of(paths.train / "train.csv"), rows_of(paths.test / "test.csv")
    assert list(train[0]) == ["id", "camera", "label"] and list(test[0]) == ["id", "camera"]
    for part, rows in (("train", train), ("test", test)):
        assert sorted(p.name for p in (paths.data / part / "files").iterdir()) == sorted(f"{r['id']}.png" for r in rows)
    sources = {r["id"]: r["file"] for r in rows_of(paths.hidden / "sources.csv")}
    for r in test:
        assert (paths.test / "files" / f"{r['id']}.png").read_bytes() == (folder / sources[r["id"]]).read_bytes()
    twins = [i for i, f in sources.items() if f in ("img/shape_03.PNG", "img/shape_04.PNG")]
    assert len({("train" if any(r["id"] == i for r in train) else "test") for i in twins}) == 1
    assert "`/data/train/files/<id><suffix>`" in (paths.train / "DESCRIPTION.md").read_text()


# --- refused, one line each -------------------------------------------------------------------------------


def _refusal(tmp_path: Path, case: str) -> str:
    houses(tmp_path / "houses.csv", 30)
    header = ["house", "site", "rooms", "area", "year", "price"]
    rows = [list(r.values()) for r in rows_of(tmp_path / "houses.csv")]
    source: dict = {}
    builder = "tables"
    if case == "target absent":
        source["predictions"] = {"kind": "value", "target_column": "cost"}
    elif case == "a copy of the target":
        write_csv(tmp_path / "houses.csv", [*header, "price_again"], [[*r, r[-1]] for r in rows])
    elif case == "test table without its labels":
        write_csv(tmp_path / "test.csv", header[:-1], [["t1", "s9", 1, 2.0, 2030]])
        source["test_table"] = str(tmp_path / "test.csv")
    elif case == "a row in both tables":
        write_csv(tmp_path / "test.csv", header, [["t1", *rows[4][1:]]])
        source.update(test_table=str(tmp_path / "test.csv"), id_column="house")
    elif case == "an id in both tables":
        write_csv(tmp_path / "test.csv", header, [["h3", "s9", 1, 2.0, 2030, 5]])
        source.update(test_table=str(tmp_path / "test.csv"), id_column="house")
    elif case == "a group in both tables":
        write_csv(tmp_path / "test.csv", header, [["t1", "s1", 1, 2.0, 2030, 5]])
        source.update(test_table=str(tmp_path / "test.csv"), group_column="site")
    elif case == "test rows not after train":
        write_csv(tmp_path / "test.csv", header, [["t1", "s9", 1, 2.0, 2021, 5]])
        source.update(test_table=str(tmp_path / "test.csv"), time_column="year")
    elif case == "an empty table":
        write_csv(tmp_path / "houses.csv", header, [])
    elif case == "rows without a target":
        rows[7][-1] = ""
        write_csv(tmp_path / "houses.csv", header, rows)
    elif case == "words for a value":
        rows[2][-1] = "cheap"
        write_csv(tmp_path / "houses.csv", header, rows)
    elif case == "a label outside the classes":
        source["predictions"] = {"kind": "label", "target_column": "site", "classes": ["s0", "s1"]}
    elif case == "an id column the harness writes":
        write_csv(tmp_path / "houses.csv", ["id", *header[1:]], rows)
    elif case == "one target value":
        write_csv(tmp_path / "houses.csv", header, [[*r[:-1], 7] for r in rows])
    elif case == "a repeated id":
        rows[5][0] = "h1"
        write_csv(tmp_path / "houses.csv", header, rows)
        source["id_column"] = "house"
    elif case == "a time that is no time":
        rows[5][4] = "soon"
        write_csv(tmp_path / "houses.csv", header, rows)
        source["time_column"] = "year"
    elif case in ("a missing file", "a file outside the folder", "one file for two rows"):
        folder = shapes(tmp_path, 6)
        table = rows_of(folder / "labels.csv")
        name = {"a missing file": "img/nope.png", "a file outside the folder": "../houses.csv", "one file for two rows": table[0]["file"]}[
            case
        ]
        table[1]["file"] = name
        write_csv(tmp_path / "houses.csv", ["file", "label", "camera"], [list(r.values()) for r in table])
        builder = "files"
        source.update(folder=str(folder), file_column="file", predictions={"kind": "label", "target_column": "label"})
    with pytest.raises(SourceError) as caught:
        built(tmp_path, builder=builder, **source)
    message = str(caught.value)
    assert "\n" not in message and not (tmp_path / "out").exists()
    return message


REFUSALS = {
    "target absent": r"^houses\.csv has no column 'cost' \(competition\.predictions\.target_column\); its columns: house, site",
    "a copy of the target": r"^column 'price_again' repeats the target 'price' on every row: it would give the test answers away; "
    r"leave it out \(source\.drop_columns: \[price_again\]\)$",
    "test table without its labels": r"^the test table test\.csv lacks price: both tables need the same columns \(the test one with its labels\)$",
    "a row in both tables": r"^1 test row\(s\) repeat a training row across the two tables \(test\.csv line 2 = houses\.csv line 6\)",
    "an id in both tables": r"^house 'h3' is in both tables \(houses\.csv line 5, test\.csv line 2\): an id belongs to train or test, not both$",
    "a group in both tables": r"^1 site value\(s\) are in both tables \(s1; e\.g\. test\.csv line 2\): split\.group_column says",
    "test rows not after train": r"^1 test row\(s\) are not after the last training row by year \(test\.csv line 2\)",
    "an empty table": r"houses\.csv: no rows \(the table is empty\)$",
    "rows without a target": r"^1 row\(s\) have no price \(the target\): houses\.csv line 9; every row, test rows too, needs its label$",
    "words for a value": r"^competition\.predictions\.kind is value but 1 price value\(s\) are not numbers: houses\.csv line 4 'cheap'$",
    "a label outside the classes": r"^20 site value\(s\) are not among competition\.predictions\.classes \(s0, s1\): houses\.csv line 4 's2'",
    "an id column the harness writes": r"^houses\.csv: its column 'id' would clash with the opaque ids the harness writes under that name",
    "one target value": r"^the target 'price' has one value on every row \('7'\): there is nothing to predict$",
    "a repeated id": r"^house 'h1' is on two rows \(houses\.csv line 3, houses\.csv line 7\): the id column must be unique$",
    "a time that is no time": r"^houses\.csv line 7: year 'soon' is neither a number nor an ISO date",
    "a missing file": r"^houses\.csv line 3: file 'img/nope\.png' is not a file in .*shapes$",
    "a file outside the folder": r"^houses\.csv line 3: file '\.\./houses\.csv' is outside the folder .*shapes; name files relative to it$",
    "one file for two rows": r"^houses\.csv line 2 and houses\.csv line 3 name the same file 'img/shape_00\.PNG': each row needs its own file$",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_data_that_would_break_or_leak_is_refused_in_one_line(tmp_path, case):
    message = _refusal(tmp_path, case)
    assert re.search(REFUSALS[case], message), message


def test_the_task_follows_from_the_target():
    assert infer_task(["1.5", "2", "3"])[0] == "value"
    assert infer_task([str(i) for i in range(30)])[0] == "value"  # many whole numbers: a count or an amount
    assert infer_task(["0", "1", "1", "0"])[:2] == ("label", ("0", "1"))
    assert infer_task(["2", "10", "1"])[:2] == ("label", ("1", "2", "10"))
    assert infer_task(["cat", "dog", "cat"])[:2] == ("label", ("cat", "dog"))
    with pytest.raises(SourceError, match="looks like a name or an id"):
        infer_task([f"person {i}" for i in range(12)])


def test_a_competition_built_from_other_settings_asks_for_a_rebuild(tmp_path):
    houses(tmp_path / "houses.csv")
    paths = built(tmp_path, group_column="site")
    before = tree(paths.root)
    prepare_tables(paths.root, competition=competition(tmp_path, group_column="site"))  # the same settings: nothing to do
    assert tree(paths.root) == before
    with pytest.raises(SourceError, match=r"built from other settings .*: build it again with `harness data prepare houses --rebuild`$"):
        prepare_tables(paths.root, competition=competition(tmp_path, time_column="year"))


def test_the_plan_refuses_before_anything_is_written_and_reads_no_secret_file(tmp_path):
    houses(tmp_path / "houses.csv")
    options = Options.of(competition(tmp_path, group_column="site"), "tables")
    result = plan(options, [read_table(tmp_path / "houses.csv")], SECRET)
    assert {item.part for item in result.items} == {"train", "test"} and result.rule == "group"
    assert list(tmp_path.iterdir()) == [tmp_path / "houses.csv"]
    paths = CompetitionPaths(tmp_path / "out")
    build(paths.root, options, [read_table(tmp_path / "houses.csv")], secret=SECRET)
    assert keyed.read_secret(paths.root) == SECRET


def test_a_time_column_reads_numbers_dates_times_and_months():
    from harness.competition.builders.sources import parse_moment

    assert parse_moment("2024-03") < parse_moment("2024-03-02") < parse_moment("2024-03-02T10:00") < parse_moment("2024-04")
    assert parse_moment("17.5") == 17.5 and parse_moment("soon") is None and parse_moment("nan") is None
