"""Phases without containers: their declaration, the open phase, opening one after a leak, the
builder's carving of the test pool, the ledger's phase and per-phase quota, the record's field.
The rounds over phases are tests/test_phases_round.py's."""

from __future__ import annotations

import csv
import json
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
from test_round import in_process

from harness.competition.builders.keyed import read_secret
from harness.competition.builders.phased import phase_point
from harness.competition.config import load_settings
from harness.competition.core import Competition
from harness.competition.phases import intake_phase, open_phase
from harness.records.record import EvaluationRecord, InvalidRecord, validate_record
from harness.submissions.ledger import Ledger
from harness.submissions.quota import QuotaExceeded
from harness.util.errors import ConfigError, HarnessError

TWO = "competition.phases=[{name:development,test_fraction:0.4,per_day:1},{name:final,test_fraction:0.4,final:true}]"


def bare(tmp_path, *overrides: str) -> Competition:
    """digits with ``overrides`` in an empty work directory: its settings and phases, no data."""
    return Competition.load(load_settings("digits", list(overrides)), tmp_path)


def ids(path) -> list[str]:
    with open(path, newline="") as fh:
        return [row["id"] for row in csv.DictReader(fh)]


def labels(path) -> dict[str, tuple[str, str]]:
    with open(path, newline="") as fh:
        return {row["id"]: (row["label"], row["split"]) for row in csv.DictReader(fh)}


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        ("[{name:a,test_fraction:0.7},{name:b,test_fraction:0.5}]", "add up to 1.2"),
        ("[{name:a,test_fraction:0.3},{name:a,test_fraction:0.3}]", "two phases are named 'a'"),
        ("[{name:a,test_fraction:0.3,final:true}]", "every phase is final"),
        ("[{name:a,test_fraction:0.3,opens:'2027-02-01',closes:'2027-01-01'}]", "closes: must come after opens"),
        ("[{name:a,test_fraction:0.3,closes:soon}]", "must be an ISO 8601 time"),
        ("[{name:A B,test_fraction:0.3}]", "phase name"),
        ("[{name:a,test_fraction:0}]", "test_fraction"),
    ],
)
def test_bad_phases_are_refused_in_one_line(phases, message):
    with pytest.raises(ConfigError) as caught:
        load_settings("digits", [f"competition.phases={phases}"])
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_without_phases_nothing_changes(tmp_path):
    digits = bare(tmp_path)
    assert digits.phases == [] and digits.phase is None
    assert digits.intake() == (None, 5)  # quota.per_day of digits.yaml
    assert digits.paths.test.name == "test" and digits.paths.labels == digits.paths.root / "hidden" / "labels.csv"


def test_the_builder_carves_disjoint_phase_test_sets_from_the_pool(competition):
    digits = competition(TWO)
    digits.ensure_data()
    pool = ids(digits.paths.test / "test.csv")
    dev, final = digits.for_phase("development"), digits.for_phase("final")
    dev_ids, final_ids = ids(dev.paths.test / "test.csv"), ids(final.paths.test / "test.csv")
    secret = read_secret(digits.paths.root)
    # each phase holds exactly the pool's ids whose keyed point falls in its slice, in the pool's order
    assert dev_ids == [i for i in pool if phase_point(secret, i) < 0.4]
    assert final_ids == [i for i in pool if 0.4 <= phase_point(secret, i) < 0.8]
    assert not set(dev_ids) & set(final_ids) and 150 < len(dev_ids) < 290 and 150 < len(final_ids) < 290
    assert sorted(p.name for p in (dev.paths.test / "images").iterdir()) == sorted(f"{i}.png" for i in dev_ids)
    # the labels are the pool's; the final phase's ids are all private, the development's split
    pool_labels = labels(digits.paths.labels)
    assert {i: v[0] for i, v in labels(dev.paths.labels).items()} == {i: pool_labels[i][0] for i in dev_ids}
    assert {v[1] for v in labels(final.paths.labels).values()} == {"private"}
    assert {v[1] for v in labels(dev.paths.labels).values()} == {"public", "private"}
    assert dev.test_ids == dev_ids and final.test_ids == final_ids
    # the labels stay hidden: not under data/, and not readable by others
    assert dev.paths.labels.is_relative_to(digits.paths.root / "hidden")
    assert not stat.S_IMODE(os.stat(digits.paths.root / "hidden" / "phases").st_mode) & 0o077
    # each phase has its own data hash; building again changes nothing
    assert dev.data_sha256 != final.data_sha256 != digits.data_sha256
    before = dev.data_sha256
    competition(TWO).ensure_data()
    assert competition(TWO).for_phase("development").data_sha256 == before


def test_submissions_go_to_the_open_phase_with_its_quota(tmp_path):
    digits = bare(tmp_path, TWO)
    assert digits.intake() == ("development", 1)
    ledger = Ledger.of(digits)
    ledger.add("a", "img", "sha256:" + "0" * 64, per_day=1, competition_phase="development")
    with pytest.raises(QuotaExceeded):
        ledger.add("a", "img", "sha256:" + "0" * 64, per_day=1, competition_phase="development")
    # the quota counts within a phase: another phase's submissions do not use it
    ledger.add("a", "img", "sha256:" + "0" * 64, per_day=1, competition_phase="other")
    assert [s.competition_phase for s in ledger.of_team("a")] == ["other", "development"]  # newest first, in one millisecond too
    assert Ledger.of(digits).of_team("a")[1].competition_phase == "development"  # kept across opening the ledger


def test_dates_close_a_phase_and_none_open_is_refused_naming_each(tmp_path):
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    digits = bare(
        tmp_path, f"competition.phases=[{{name:development,test_fraction:0.5,closes:'{past}'}},{{name:final,test_fraction:0.5,final:true}}]"
    )
    with pytest.raises(HarnessError, match=r"no phase takes submissions now \(development: closed .*; final: final"):
        digits.intake()
    assert intake_phase([]) is None


def test_opening_a_phase_after_a_leak_supersedes_the_open_one(competition, home):
    digits = competition(TWO)
    digits.ensure_data()
    declared = digits.settings.competition.phases
    with pytest.raises(HarnessError, match="may take at most 0.2"):
        open_phase(declared, digits.paths.root, "development2", 0.3, reason="leak")
    with pytest.raises(HarnessError, match="there is a phase 'final' already"):
        open_phase(declared, digits.paths.root, "final", 0.1, reason="leak")
    opened = open_phase(declared, digits.paths.root, "development2", 0.2, reason="labels leaked")
    assert (opened.test_start, opened.test_fraction) == (pytest.approx(0.8), 0.2)
    phases = {p.name: p for p in digits.phases}
    assert list(phases) == ["development", "development2", "final"]  # the final phase stays last
    assert phases["development"].superseded["by"] == "development2" and phases["development"].superseded["reason"] == "labels leaked"
    assert digits.intake() == ("development2", 5)  # its quota: the competition's
    digits.ensure_data()
    new = digits.for_phase("development2")
    assert not set(new.test_ids) & (set(digits.for_phase("development").test_ids) | set(digits.for_phase("final").test_ids))
    with pytest.raises(HarnessError, match="no phase 'nope'"):
        digits.for_phase("nope")
    listed = in_process(home, "phase", "list", "digits", TWO, "--json")
    assert listed.returncode == 0, listed.stderr
    states = {p["name"]: (p["open"], p["superseded"] and p["superseded"]["by"]) for p in json.loads(listed.stdout)}
    assert states == {"development": (False, "development2"), "development2": (True, None), "final": (False, None)}


def test_a_builder_without_phases_is_refused_in_one_line(tmp_path, monkeypatch):
    (tmp_path / "competition").mkdir()
    (tmp_path / "oldbuilder.py").write_text("def prepare(root, public_fraction=0.5):\n    pass\n")
    (tmp_path / "competition" / "old.yaml").write_text(
        "name: old\nprepare: oldbuilder:prepare\nmetrics: {primary: accuracy}\nphases: [{name: a, test_fraction: 0.5}]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HARNESS_CONFIG_PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="does not build phases' test sets"):
        Competition.load(load_settings("old"), tmp_path / "home").ensure_data()


def test_the_record_keeps_its_phase_and_leaves_it_out_without_one():
    from test_record import VALID

    plain = EvaluationRecord.from_dict(VALID).to_dict()
    assert "phase" not in plain
    validate_record(plain)
    phased = EvaluationRecord.from_dict({**VALID, "phase": "final"}).to_dict()
    validate_record(phased)
    assert phased["phase"] == "final" and EvaluationRecord.from_dict(phased).phase == "final"
    for bad in ("", None, 3):
        with pytest.raises(InvalidRecord, match="phase"):
            validate_record({**phased, "phase": bad})


def test_the_service_board_page_names_its_phase_and_marks_it_superseded():
    from harness.service.pages import environment

    template = environment().get_template("leaderboard.html")
    board = {"competition": "digits", "metric": "accuracy", "higher_is_better": True, "final": False, "others": []}
    board |= {"confidence": 0.95, "resamples": 1000, "rows": []}
    context = {"title": "T", "page": "leaderboard", "poll": 1, "team": None, "csrf": "", "nonce": ""}
    marked = template.render(board={**board, "phase": "development", "superseded": {"by": "dev2", "at": "t", "reason": "leak"}}, **context)
    assert '<span id="board-phase">phase development (superseded by dev2)</span>' in marked
    assert "board-phase" not in template.render(board=board, **context)  # without phases: as it was
