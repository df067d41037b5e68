"""Tamper evidence: records signed with the organizer's Ed25519 key on every write, checked by
``harness verify`` with the published public key alone; records signed before with an HMAC secret
keep verifying with that secret."""

from __future__ import annotations

import copy
import json
import os
import stat
from pathlib import Path

import pytest
from test_record import VALID

from harness.cli import main
from harness.records.record import EvaluationRecord, RecordError, load_record, save_record
from harness.records.signing import (
    HMAC_KEY_ENV,
    HMAC_KEY_FILE_ENV,
    KEY_ENV,
    KEY_FILE_ENV,
    VERIFY_KEY_ENV,
    Check,
    check,
    generate_key,
    sign,
    signing_key,
)
from harness.util.errors import HarnessError

KEY = "organizer-key-4c1e0f"  # a legacy HMAC secret
KEY_VARIABLES = (KEY_ENV, KEY_FILE_ENV, VERIFY_KEY_ENV, HMAC_KEY_ENV, HMAC_KEY_FILE_ENV)


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def key_pair(tmp_path, capsys) -> tuple[Path, Path]:
    """``harness keys generate``: (private key file, public key file)."""
    capsys.readouterr()
    assert main(["keys", "generate", str(tmp_path / "keys"), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    return Path(made["private_key"]), Path(made["public_key"])


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def save(directory: Path, evaluation_id: str) -> Path:
    data = copy.deepcopy(VALID)
    data["evaluation_id"] = evaluation_id
    data.pop("schema")
    return save_record(EvaluationRecord.from_dict(data), directory)


@pytest.mark.parametrize("kind", ["ed25519", "hmac-sha256"])
def test_check_tells_valid_tampered_other_key_and_unsigned(kind):
    k1, k2 = (generate_key(), generate_key()) if kind == "ed25519" else (b"k1", b"k2")
    data = copy.deepcopy(VALID)
    data["signature"] = sign(data, k1)
    assert data["signature"]["algorithm"] == kind
    assert check(data, k1) is Check.VALID
    assert check(data, k2) is Check.OTHER_KEY
    assert check(data, k2, k1) is Check.VALID  # any of the keys given
    data["scores"]["public"]["accuracy"] = 0.99
    assert check(data, k1) is Check.TAMPERED
    assert check(VALID, k1) is Check.UNSIGNED
    if kind == "ed25519":  # the public half alone checks it
        assert check(data, k1.public_key()) is Check.TAMPERED
        data["scores"]["public"]["accuracy"] = 0.9
        assert check(data, k1.public_key()) is Check.VALID


def test_tampered_record_fails_verify_with_the_public_key_alone(home, key_pair, monkeypatch, capsys):
    private, public = key_pair
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    records = home / "competitions" / "digits" / "records"
    monkeypatch.setenv(KEY_FILE_ENV, str(private))
    first, second = save(records, "ev-1"), save(records, "ev-2")
    secret = private.read_text().splitlines()[1]  # the key's base64 body
    assert secret not in first.read_text() and str(private) not in first.read_text()  # the key signs; it is never written
    assert json.loads(first.read_text())["signature"]["algorithm"] == "ed25519"

    monkeypatch.delenv(KEY_FILE_ENV)  # an auditor: the published public key, nothing else
    status, out, err = run(capsys, "verify", "digits", "--public-key", str(public))
    assert status == 0, out + err
    assert "2 of 2 record(s) verify" in out

    tampered = json.loads(second.read_text())
    tampered["scores"]["public"]["accuracy"] = 1.0
    second.write_text(json.dumps(tampered, indent=2))
    status, out, _ = run(capsys, "verify", "digits", "--public-key", str(public))
    assert status == 1
    assert "ev-2: tampered" in out and "ev-1: valid" in out
    monkeypatch.setenv(VERIFY_KEY_ENV, str(public))  # the same, from the environment
    assert run(capsys, "verify", "digits", "ev-1")[0] == 0
    monkeypatch.setenv(VERIFY_KEY_ENV, public.read_text())  # or the PEM text itself
    assert run(capsys, "verify", "digits", "ev-1")[0] == 0
    monkeypatch.delenv(VERIFY_KEY_ENV)
    other = Path(json.loads(run(capsys, "keys", "generate", str(home / "other"), "--json")[1])["public_key"])
    assert "ev-1: signed with another key" in run(capsys, "verify", "digits", "ev-1", "--public-key", str(other))[1]
    status, _, err = run(capsys, "verify", "digits")
    assert status == 2 and err.startswith("harness: no key to verify with") and err.count("\n") == 1
    status, _, err = run(capsys, "verify", "digits", "--public-key", str(private))
    assert status == 2 and "not a PEM public key" in err

    monkeypatch.setenv(KEY_FILE_ENV, str(private))
    with pytest.raises(RecordError, match="tampered"):  # rescore, sync and re-infer never re-sign it
        load_record(second)


def test_records_signed_with_hmac_keep_verifying_and_are_signed_anew_with_ed25519(home, key_pair, monkeypatch, capsys):
    private, public = key_pair
    records = home / "competitions" / "digits" / "records"
    monkeypatch.setenv(KEY_ENV, KEY)  # the legacy setup: an HMAC secret
    old = save(records, "ev-old")
    assert json.loads(old.read_text())["signature"]["algorithm"] == "hmac-sha256" and KEY not in old.read_text()
    assert run(capsys, "verify", "digits")[1].endswith("1 of 1 record(s) verify\n")

    monkeypatch.delenv(KEY_ENV)  # migrated: an Ed25519 key signs, the old secret only verifies
    monkeypatch.setenv(KEY_FILE_ENV, str(private))
    monkeypatch.setenv(HMAC_KEY_ENV, KEY)
    save(records, "ev-new")
    status, out, _ = run(capsys, "verify", "digits")
    assert status == 0 and "ev-old: valid" in out and "ev-new: valid" in out
    record = load_record(old)  # a rewrite (rescore) of the old record signs it with the new key
    save_record(record, records)
    assert json.loads(old.read_text())["signature"]["algorithm"] == "ed25519"
    for name in (KEY_FILE_ENV, HMAC_KEY_ENV):
        monkeypatch.delenv(name)
    assert run(capsys, "verify", "digits", "--public-key", str(public))[0] == 0

    key_file = home / "hmac.key"
    key_file.write_text(KEY + "\n")
    monkeypatch.setenv(HMAC_KEY_FILE_ENV, str(key_file))
    assert check(json.loads(records.joinpath("ev-new.json").read_text()), b"another") is Check.OTHER_KEY


def test_bad_keys_are_one_line(home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "missing.key"))
    with pytest.raises(HarnessError, match="cannot be read"):
        save(home / "records", "ev-4")
    (tmp_path / "rsa.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "rsa.pem"))
    with pytest.raises(HarnessError, match="not a usable private key"):
        signing_key()
    monkeypatch.delenv(KEY_FILE_ENV)
    assert main(["keys", "generate", str(tmp_path / "k")]) == 0
    status, _, err = run(capsys, "keys", "generate", str(tmp_path / "k"))
    assert status == 2 and "a signing key is never overwritten" in err and err.count("\n") == 1


@pytest.mark.docker
def test_key_material_is_never_in_a_container(home, competition, key_pair, docker_client, behave_image, monkeypatch):
    """A real container (the probe, through ``harness check``'s code path) runs while the organizer's
    keys are configured: neither key, nor the key file's path, is anywhere in what it saw (its
    environment, its mounts, a scan of every file it can read for the HMAC secret's marker)."""
    from harness.evaluation.check import check_image

    private, public = key_pair
    hmac_secret = "HARNESS-ORGANIZER-" + "SECRET-hmac-5f1d"  # the probe scans every readable file for the marker
    monkeypatch.setenv(KEY_FILE_ENV, str(private))
    monkeypatch.setenv(HMAC_KEY_ENV, hmac_secret)
    monkeypatch.setenv(VERIFY_KEY_ENV, str(public))
    digits = competition("limits.train.tmp=8388608", "limits.infer.tmp=8388608")
    with open(os.devnull, "w") as quiet:
        record = check_image(digits, behave_image("probe"), out=quiet)
    assert record.verdict == "SCORED", record.message
    saved = json.loads((digits.paths.root / "checks" / f"{record.evaluation_id}.json").read_text())
    assert check(saved, signing_key()) is Check.VALID  # the key was in use while the container ran

    run_dir = digits.paths.runs / record.evaluation_id
    reports = {
        "train": (run_dir / "model" / "probe-train.json").read_text(),
        "infer": (run_dir / "output" / "probe-infer.json").read_text(),
    }
    body = "".join(private.read_text().splitlines()[1:-1])
    for phase, text in reports.items():
        seen = json.loads(text)
        assert seen["env"] and seen["mountinfo"], phase  # the probe did report
        assert seen["secrets"] == [], phase
        for material in (body, hmac_secret, str(private), str(private.parent), KEY_FILE_ENV, HMAC_KEY_ENV, VERIFY_KEY_ENV):
            assert material not in text, (phase, material)
        assert not any("SIGNING" in name or "HMAC" in name for name in seen["env"]), phase
