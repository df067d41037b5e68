"""`harness competition new` (no Docker): the competition file it writes, the data it builds through the
same code path as every command, the same bytes from the same secret, and one line for each bad input."""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.competition.config import load_settings
from tests.organizer_files import write_csv

pytestmark = pytest.mark.usefixtures("fresh_home")


@pytest.fixture
def fresh_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("HARNESS_HOME", str(home))
    monkeypatch.delenv("HARNESS_CONFIG_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


def sales(path: Path) -> Path:
    rows = [[f"shop{i % 7}", i % 5, (i * 37) % 101, f"2024-01-{1 + i % 28:02}", 10 + (i * 13) % 97] for i in range(70)]
    return write_csv(path, ["shop", "promo", "traffic", "day", "sold"], rows)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(*roots: Path) -> dict[str, str]:
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name != "data-manifest.json" and "manifests" not in path.parts:
                found[f"{root.name}/{path.relative_to(root).as_posix()}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_a_table_becomes_a_competition_file_with_every_choice_written_and_the_data_checked(capsys, fresh_home, tmp_path):
    sales(tmp_path / "sales.csv")
    code, out, err = run(capsys, "competition", "new", "sales", "--from", "sales.csv", "--target", "sold", "--group-column", "shop")
    assert code == 0, err
    config = fresh_home / "config" / "competition" / "sales.yaml"
    assert f"sales: wrote {config}" in out
    assert "sales: target sold: 70 numbers, 70 distinct: a number to predict; kind value, scored by rmse, mae" in out
    assert re.search(
        r"sales: data built under .*: \d+ training rows, \d+ test rows \(\d+ public, \d+ private\), test = whole groups of shop", out
    )
    assert "0 error(s), 0 warning(s)" in out and "OK       group split: no shop value is in both train and test" in out
    assert "\nNext:\n  harness kit sales --output sales-kit " in out and "  harness serve sales " in out
    text = config.read_text()
    written = yaml.safe_load(text)
    assert written["prepare"] == "tables" and written["source"]["table"] == str(tmp_path / "sales.csv")
    assert written["predictions"] == {"file": "predictions.csv", "id_column": "id", "kind": "value", "target_column": "sold", "classes": []}
    assert written["metrics"] == {"primary": "rmse", "others": ["mae"]}
    assert written["split"] == {"public_fraction": 0.5, "group_column": "shop", "time_column": None}
    assert written["kit"] == {"sample": "sample-tables"} and written["source"]["test_fraction"] == 0.3
    assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 20  # each choice says what it does
    # The file composes like any organizer's (it is on the config path: the work directory's own config directory).
    settings = load_settings("sales")
    assert settings.competition.primary_metric == "rmse" and settings.competition.rules.group_column == "shop"
    code, out, err = run(capsys, "data", "check", "sales")
    assert code == 0 and "0 error(s), 0 warning(s)" in out


def test_running_it_again_with_the_same_secret_writes_the_same_bytes(capsys, fresh_home, tmp_path, monkeypatch):
    sales(tmp_path / "sales.csv")
    argv = ("competition", "new", "sales", "--from", "sales.csv", "--target", "sold", "--time-column", "day", "--id-column", "promo")
    code, out, err = run(capsys, *argv)
    assert code == 2 and "promo '0' is on two rows (sales.csv line 2, sales.csv line 7): the id column must be unique" in err
    argv = ("competition", "new", "sales", "--from", "sales.csv", "--target", "sold", "--time-column", "day")
    assert run(capsys, *argv)[0] == 0
    competition = fresh_home / "competitions" / "sales"
    first = snapshot(fresh_home / "config", competition)
    assert run(capsys, *argv)[0] == 0
    assert snapshot(fresh_home / "config", competition) == first
    # Another work directory given the same secret (hidden/secret) writes the same bytes too.
    other = tmp_path / "other"
    (other / "competitions" / "sales" / "hidden").mkdir(parents=True)
    shutil.copyfile(competition / "hidden" / "secret", other / "competitions" / "sales" / "hidden" / "secret")
    monkeypatch.setenv("HARNESS_HOME", str(other))
    assert run(capsys, *argv)[0] == 0
    assert snapshot(other / "config", other / "competitions" / "sales") == first


def test_a_folder_of_files_finds_its_table_and_file_column(capsys, fresh_home, tmp_path):
    folder = tmp_path / "pets"
    for i in range(24):
        (folder / "pics").mkdir(parents=True, exist_ok=True)
        (folder / "pics" / f"{i}.jpg").write_bytes(f"jpeg {i}".encode())
    write_csv(
        folder / "pets.csv", ["picture", "kind", "owner"], [[f"pics/{i}.jpg", ["cat", "dog", "eel"][i % 3], f"o{i % 4}"] for i in range(24)]
    )
    code, out, err = run(capsys, "competition", "new", "pets", "--from", str(folder), "--target", "kind", "--group-column", "owner")
    assert code == 0, err
    assert "sales" not in out and "kind label, scored by accuracy, macro_f1" in out
    written = yaml.safe_load((fresh_home / "config" / "competition" / "pets.yaml").read_text())
    assert written["prepare"] == "files" and written["source"]["folder"] == str(folder)
    assert written["source"]["table"] == str(folder / "pets.csv") and written["source"]["file_column"] == "picture"
    assert written["predictions"]["classes"] == ["cat", "dog", "eel"]
    train = fresh_home / "competitions" / "pets" / "data" / "train"
    assert len(list((train / "files").glob("*.jpg"))) == len((train / "train.csv").read_text().splitlines()) - 1


def test_a_config_dir_given_is_where_the_file_goes_and_the_next_commands_say_so(capsys, fresh_home, tmp_path):
    sales(tmp_path / "sales.csv")
    mine = tmp_path / "my configs"
    mine.mkdir()
    code, out, err = run(capsys, "--config-dir", str(mine), "competition", "new", "sales", "--from", "sales.csv", "--target", "sold")
    assert code == 0, err
    assert (mine / "competition" / "sales.yaml").is_file() and not (fresh_home / "config").exists()
    assert f"harness --config-dir '{mine}' serve sales" in out


def test_the_data_is_built_again_only_when_asked_and_never_under_records(capsys, fresh_home, tmp_path):
    sales(tmp_path / "sales.csv")
    assert run(capsys, "competition", "new", "sales", "--from", "sales.csv", "--target", "sold")[0] == 0
    config = fresh_home / "config" / "competition" / "sales.yaml"
    config.write_text(config.read_text().replace("test_fraction: 0.3", "test_fraction: 0.5"))
    code, out, err = run(capsys, "data", "check", "sales")
    assert code == 2 and "built from other settings" in err and "harness data prepare sales --rebuild" in err and err.count("\n") == 1
    code, out, err = run(capsys, "data", "prepare", "sales", "--rebuild")
    assert code == 0, err
    assert len((fresh_home / "competitions/sales/data/test/test.csv").read_text().splitlines()) - 1 == 35
    records = fresh_home / "competitions" / "sales" / "records"
    records.mkdir()
    (records / "ev-1.json").write_text("{}")
    code, out, err = run(capsys, "data", "prepare", "sales", "--rebuild")
    assert code == 2 and "already has evaluation records" in err
    code, out, err = run(capsys, "competition", "new", "sales", "--from", "sales.csv", "--target", "sold")
    assert code == 2 and "already has evaluation records" in err


BAD = [
    (["--from", "nothing.csv", "--target", "sold"], "--from nothing.csv: no such file or folder"),
    (
        ["--from", "sales.csv", "--target", "price"],
        "sales.csv has no column 'price' (--target); its columns: shop, promo, traffic, day, sold",
    ),
    (
        ["--from", "sales.csv", "--target", "sold", "--group-column", "store"],
        "sales.csv has no column 'store' (competition.split.group_column)",
    ),
    (["--from", "empty.csv", "--target", "sold"], "empty.csv: no rows (the table is empty)"),
    (["--from", "notes.txt", "--target", "sold"], "--from notes.txt: not a table (give a .csv, .tsv or .parquet file)"),
    (["--from", "sales.csv", "--target", "sold", "--metric", "accuracy"], "--metric: metric accuracy needs label predictions"),
    (["--from", "sales.csv", "--target", "sold", "--drop-column", "sold"], "column 'sold' is competition.predictions.target_column and in"),
    (["--from", "leaky.csv", "--target", "sold"], "column 'sold_copy' repeats the target 'sold' on every row"),
    (["--from", "folder", "--target", "sold"], "the folder's top level should hold one table"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD, ids=[expected.split(":")[0][:40] for _, expected in BAD])
def test_bad_input_is_one_line_and_writes_nothing(capsys, fresh_home, tmp_path, argv, expected):
    sales(tmp_path / "sales.csv")
    write_csv(tmp_path / "empty.csv", ["shop", "sold"], [])
    (tmp_path / "notes.txt").write_text("not a table\n")
    rows = list(csv.reader((tmp_path / "sales.csv").open()))
    write_csv(tmp_path / "leaky.csv", [*rows[0], "sold_copy"], [[*r, r[-1]] for r in rows[1:]])
    (tmp_path / "folder").mkdir()
    code, out, err = run(capsys, "competition", "new", "sales", *argv)
    assert code == 2 and out == ""
    assert err.startswith("harness: ") and err.count("\n") == 1 and "Traceback" not in err
    assert expected in err, err
    assert not fresh_home.exists() or not list(fresh_home.rglob("*.yaml"))


@pytest.mark.parametrize(
    ("name", "expected"), [("digits", "digits is a bundled competition's name"), ("no/way", "competition name 'no/way'")]
)
def test_a_name_taken_or_malformed_is_refused(capsys, tmp_path, name, expected):
    sales(tmp_path / "sales.csv")
    code, out, err = run(capsys, "competition", "new", name, "--from", "sales.csv", "--target", "sold")
    assert code == 2 and expected in err
