"""Tamper evidence: records signed with the organizer's key on every write, checked by ``harness verify``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from test_record import VALID

from harness.cli import main
from harness.limits.docker_options import contract_environment
from harness.records.record import EvaluationRecord, RecordError, load_record, save_record
from harness.records.signing import KEY_ENV, KEY_FILE_ENV, Check, check, sign
from harness.util.errors import HarnessError

KEY = "organizer-key-4c1e0f"


def verify(capsys, monkeypatch, *args: str, key: str | None = KEY) -> tuple[int, str, str]:
    """``harness verify digits ARGS`` through the command line's entry point, with this key."""
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    if key is None:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, key)
    capsys.readouterr()
    status = main(["verify", "digits", *args])
    out, err = capsys.readouterr()
    return status, out, err


def save(directory: Path, evaluation_id: str) -> Path:
    data = copy.deepcopy(VALID)
    data["evaluation_id"] = evaluation_id
    data.pop("schema")
    return save_record(EvaluationRecord.from_dict(data), directory)


def test_check_tells_valid_tampered_other_key_and_unsigned():
    data = copy.deepcopy(VALID)
    data["signature"] = sign(data, b"k1")
    assert check(data, b"k1") is Check.VALID
    assert check(data, b"k2") is Check.OTHER_KEY
    data["scores"]["public"]["accuracy"] = 0.99
    assert check(data, b"k1") is Check.TAMPERED
    assert check(VALID, b"k1") is Check.UNSIGNED


def test_tampered_record_fails_verify(home, monkeypatch, capsys):
    records = home / "competitions" / "digits" / "records"
    monkeypatch.setenv(KEY_ENV, KEY)
    first, second = save(records, "ev-1"), save(records, "ev-2")
    assert KEY not in first.read_text()  # the key signs; it is never written
    assert json.loads(first.read_text())["signature"]["algorithm"] == "hmac-sha256"

    status, out, err = verify(capsys, monkeypatch)
    assert status == 0, out + err
    assert "2 of 2 record(s) verify" in out

    tampered = json.loads(second.read_text())
    tampered["scores"]["public"]["accuracy"] = 1.0
    second.write_text(json.dumps(tampered, indent=2))
    status, out, _ = verify(capsys, monkeypatch)
    assert status == 1
    assert "ev-2: tampered" in out and "ev-1: valid" in out
    assert verify(capsys, monkeypatch, "ev-1")[0] == 0
    assert "ev-1: signed with another key" in verify(capsys, monkeypatch, "ev-1", key="another-key")[1]
    status, _, err = verify(capsys, monkeypatch, key=None)
    assert status == 2 and "no organizer key" in err
    monkeypatch.setenv(KEY_ENV, KEY)

    with pytest.raises(RecordError, match="tampered"):  # rescore, sync and re-infer never re-sign it
        load_record(second)


def test_key_from_a_file_and_never_in_a_container(home, tmp_path, monkeypatch):
    key_file = tmp_path / "organizer.key"
    key_file.write_text(KEY + "\n")
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))
    path = save(home / "records", "ev-3")
    assert check(json.loads(path.read_text()), KEY.encode()) is Check.VALID
    from harness.competition.config import load_settings

    environment = contract_environment("train", load_settings("digits").limits.train, 42)
    assert not any(KEY in value or "SIGNING" in name for name, value in environment.items())
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "missing.key"))
    with pytest.raises(HarnessError, match="cannot be read"):
        save(home / "records", "ev-4")
