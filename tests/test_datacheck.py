"""`harness data check`: planted leaks are found, and a split unlike the config's is flagged."""

from __future__ import annotations

import hashlib
import shutil

from homes import own_copy

from harness.cli import main
from harness.competition.datacheck import ERROR, OK, WARNING, check_data


def _ids(path) -> list[str]:
    return [line.split(",")[0] for line in path.read_text().splitlines()[1:]]


def test_clean_digits_then_a_planted_duplicate(home, capsys):
    assert main(["data", "check", "digits"]) == 0
    out = capsys.readouterr().out
    assert out.count("OK ") == 6 and "0 error(s), 0 warning(s)" in out
    assert "OK       sequential ids" in out and "OK       public split rule" in out
    data = home / "competitions" / "digits" / "data"
    train_id, test_id = _ids(data / "train" / "train.csv")[10], _ids(data / "test" / "test.csv")[20]
    shutil.copyfile(data / "train" / "images" / f"{train_id}.png", own_copy(data / "test" / "images" / f"{test_id}.png"))
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
    # The same f but another image: two inputs, not one (a row with files of its own is its features and its files).
    assert {f.check: f for f in check_data(competition())}["duplicate rows"].level == OK
    images = data / "test" / "images"
    shutil.copyfile(data / "train" / "images" / f"{train_ids[0]}.png", own_copy(images / f"{test_ids[0]}.png"))
    findings = {f.check: f for f in check_data(competition())}
    assert findings["duplicate rows"].level == ERROR
    assert findings["duplicate rows"].message == f"1 test row(s) repeat a train row on f: test {test_ids[0]} = train {train_ids[0]}"
    assert findings["shared ids"].message == f"1 id(s) are in both train and test: {train_ids[5]}"
    assert findings["label-free test"].message == "test.csv has the target column 'label': the test inputs carry their labels"
    (data / "test" / "test.csv").write_text("id,f\n" + "".join(f"{i},{f}\n" for i, f in rows))
    label_free = {f.check: f for f in check_data(competition())}["label-free test"]
    assert label_free.level == ERROR
    assert label_free.message == f"2 test input(s) have no hidden label (99999, {train_ids[5]}) and 0 hidden label(s) no test input ()"


def test_a_random_split_is_flagged_where_the_config_declares_groups_or_time(home, competition):
    data = home / "competitions" / "digits" / "data"
    train_ids, test_ids = _ids(data / "train" / "train.csv"), _ids(data / "test" / "test.csv")
    for path, ids, label in ((data / "train" / "train.csv", train_ids, ",0"), (data / "test" / "test.csv", test_ids, "")):
        header = "id,label,writer" if label else "id,writer"
        # writers mixed and times interleaved: a random split
        header += ",t"
        path.write_text(header + "\n" + "".join(f"{i}{label},w{n % 40},{2 * n + bool(label)}\n" for n, i in enumerate(ids)))
    findings = {f.check: f for f in check_data(competition("competition.split.group_column=writer", "competition.split.time_column=t"))}
    assert findings["group split"].level == WARNING and "40 of 40 test writer value(s) are in train too" in findings["group split"].message
    assert findings["time split"].level == WARNING and "the split looks random, not by t" in findings["time split"].message
    (data / "test" / "test.csv").write_text("id,writer\n" + "".join(f"{i},test-{i}\n" for i in test_ids))  # writers never straddle
    findings = {f.check: f for f in check_data(competition("competition.split.group_column=writer"))}
    assert findings["group split"].level == OK and "time split" not in findings


def _rewrite(data, hidden, rename=lambda i: i, split=None):
    """The digits tables and hidden labels with each id renamed and (optionally) the split redone."""
    for path in (data / "train" / "train.csv", data / "test" / "test.csv", hidden / "labels.csv"):
        lines = path.read_text().splitlines()
        rows = [line.split(",") for line in lines[1:]]
        for n, row in enumerate(rows):
            row[0] = rename(row[0])
            if split and path.name == "labels.csv":
                row[-1] = split(n, row[0])
        path.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")


def test_sequential_ids_are_flagged(home, competition):
    comp = competition()
    data, hidden = comp.paths.data, comp.paths.hidden
    train, test = _ids(data / "train" / "train.csv"), _ids(data / "test" / "test.csv")
    number = {i: str(n) for n, i in enumerate(train + test)}  # row numbers: 0..1796
    _rewrite(data, hidden, number.__getitem__)
    finding = {f.check: f for f in check_data(competition())}["sequential ids"]
    assert finding.level == WARNING
    assert finding.message.startswith("the 1797 ids are the numbers 0 to 1796, one each")
    assert "give opaque ids (a keyed hash of the row with an organizer secret)" in finding.message

    # numbers with gaps, each table in id order (like scikit-learn's row indices after a split)
    _rewrite(data, hidden, lambda i: f"img_{3 * int(i):05d}")
    finding = {f.check: f for f in check_data(competition())}["sequential ids"]
    assert finding.level == WARNING and "the rows of train.csv and test.csv are in id order" in finding.message

    # opaque ids but the rows sorted by id
    for path in (data / "train" / "train.csv", data / "test" / "test.csv"):
        lines = path.read_text().splitlines()
        path.write_text("\n".join([lines[0], *sorted(lines[1:], key=lambda line: hashlib.sha256(line.encode()).hexdigest())]) + "\n")
    assert {f.check: f for f in check_data(competition())}["sequential ids"].level == OK
    _rewrite(data, hidden, lambda i: hashlib.sha256(i.encode()).hexdigest()[:10])  # opaque, but...
    for path in (data / "train" / "train.csv", data / "test" / "test.csv"):
        lines = path.read_text().splitlines()
        path.write_text("\n".join([lines[0], *sorted(lines[1:])]) + "\n")
    finding = {f.check: f for f in check_data(competition())}["sequential ids"]
    assert finding.level == WARNING and "sorted by id" in finding.message and "shuffle the rows" in finding.message


def _old_rule(i):  # the example competition's split before its secret: sha256 of "digits:<id>"
    return "public" if int.from_bytes(hashlib.sha256(f"digits:{i}".encode()).digest()[:8], "big") / 2**64 < 0.5 else "private"


def test_a_split_computable_from_public_information_is_flagged(home, competition):
    comp = competition()
    data, hidden = comp.paths.data, comp.paths.hidden
    for split, rule in (
        (lambda n, i: _old_rule(i), "an unkeyed hash, sha256('digits:{id}')"),
        (lambda n, i: "public" if n < 270 else "private", "the row order of the test table"),
        (lambda n, i: "private" if n < 200 else "public", "the row order of the test table"),
    ):
        _rewrite(data, hidden, split=split)
        finding = {f.check: f for f in check_data(competition())}["public split rule"]
        assert finding.level == WARNING, rule
        assert finding.message.startswith(f"the public/private split of the test ids follows {rule}")
        assert "keyed hash of the id with an organizer secret (HMAC)" in finding.message
    number = {i: str(1000 + n) for n, i in enumerate(_ids(data / "test" / "test.csv"))}
    _rewrite(data, hidden, lambda i: number.get(i, i))
    _rewrite(data, hidden, split=lambda n, i: "public" if int(i) % 2 else "private")  # odd ids public
    finding = {f.check: f for f in check_data(competition())}["public split rule"]
    assert finding.level == WARNING and "follows the id modulo 2" in finding.message
    # a split by a hash none of the rules knows (as a keyed one is): no warning
    _rewrite(data, hidden, split=lambda n, i: ("public", "private")[hashlib.sha256(f"k3y:{i}".encode()).digest()[0] % 2])
    assert {f.check: f for f in check_data(competition())}["public split rule"].level == OK
