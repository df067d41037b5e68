"""`harness data check`: planted leaks are found, and a split unlike the config's is flagged."""

from __future__ import annotations

import shutil

from harness.cli import main
from harness.competition.datacheck import ERROR, OK, WARNING, check_data


def _ids(path) -> list[str]:
    return [line.split(",")[0] for line in path.read_text().splitlines()[1:]]


def test_clean_digits_then_a_planted_duplicate(home, capsys):
    assert main(["data", "check", "digits"]) == 0
    out = capsys.readouterr().out
    assert out.count("OK ") == 4 and "0 error(s), 0 warning(s)" in out
    data = home / "competitions" / "digits" / "data"
    train_id, test_id = _ids(data / "train" / "train.csv")[10], _ids(data / "test" / "test.csv")[20]
    shutil.copyfile(data / "train" / "images" / f"{train_id}.png", data / "test" / "images" / f"{test_id}.png")
    assert main(["data", "check", "digits"]) == 1
    out = capsys.readouterr().out
    assert (
        f"ERROR    duplicate inputs: 1 test input file(s) have the same content as a train input file: "
        f"test/images/{test_id}.png = train/images/{train_id}.png"
    ) in out
    assert "1 error(s), 0 warning(s)" in out


def test_leaks_in_the_tables(home, competition):
    data = home / "competitions" / "digits" / "data"
    train_ids, test_ids = _ids(data / "train" / "train.csv"), _ids(data / "test" / "test.csv")
    # a feature column; test row 0 repeats train row 0, test carries the label, one id is in both, one test id has no label
    (data / "train" / "train.csv").write_text("id,label,f\n" + "".join(f"{i},1,{n}\n" for n, i in enumerate(train_ids)))
    rows = [(i, f"t{n}") for n, i in enumerate(test_ids)] + [(train_ids[5], "x"), ("99999", "y")]
    rows[0] = (test_ids[0], "0")
    (data / "test" / "test.csv").write_text("id,f,label\n" + "".join(f"{i},{f},3\n" for i, f in rows))
    findings = {f.check: f for f in check_data(competition())}
    assert findings["duplicate rows"].level == ERROR
    assert findings["duplicate rows"].message == f"1 test row(s) repeat a train row on f: test {test_ids[0]} = train {train_ids[0]}"
    assert findings["shared ids"].message == f"1 id(s) are in both train and test: {train_ids[5]}"
    assert findings["label-free test"].message == "test.csv has the target column 'label': the test inputs carry their labels"
    (data / "test" / "test.csv").write_text("id,f\n" + "".join(f"{i},{f}\n" for i, f in rows))
    label_free = {f.check: f for f in check_data(competition())}["label-free test"]
    assert label_free.level == ERROR
    assert label_free.message == f"2 test input(s) have no hidden label ({train_ids[5]}, 99999) and 0 hidden label(s) no test input ()"


def test_a_random_split_is_flagged_where_the_config_declares_groups_or_time(home, competition):
    data = home / "competitions" / "digits" / "data"
    train_ids, test_ids = _ids(data / "train" / "train.csv"), _ids(data / "test" / "test.csv")
    for path, ids, label in ((data / "train" / "train.csv", train_ids, ",0"), (data / "test" / "test.csv", test_ids, "")):
        header = "id,label,writer" if label else "id,writer"
        path.write_text(header + "\n" + "".join(f"{i}{label},w{int(i) % 40}\n" for i in ids))  # writers mixed: a random split
    findings = {f.check: f for f in check_data(competition("competition.split.group_column=writer", "competition.split.time_column=id"))}
    assert findings["group split"].level == WARNING and "40 of 40 test writer value(s) are in train too" in findings["group split"].message
    assert findings["time split"].level == WARNING and "the split looks random, not by id" in findings["time split"].message
    (data / "test" / "test.csv").write_text("id,writer\n" + "".join(f"{i},test-{i}\n" for i in test_ids))  # writers never straddle
    findings = {f.check: f for f in check_data(competition("competition.split.group_column=writer"))}
    assert findings["group split"].level == OK and "time split" not in findings
