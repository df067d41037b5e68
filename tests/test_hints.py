"""Messages that name the fix: the hint for each mistake the contract explains.

The table rows feed ``runtime_hint`` and ``found_files_hint`` the lines real programs print (Python,
coreutils, sh, pip, curl, requests, Hugging Face); the container tests make each mistake in a real
submission and check the end of the message it gets.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_check import check

from harness.limits.hints import NO_NETWORK, found_files_hint, runtime_hint
from harness.scoring import PredictionsError, PredictionsSpec, validate_predictions

TRAIN_RO = "train may write only to /model (kept for infer) and /tmp (emptied when train ends)"
INFER_RO = "infer may write only to /output and /tmp"


def kept(path: str) -> str:
    return f"only /model survives between phases: if train wrote {path}, write it to /model in train and read it from there in infer"


TRACEBACK = 'Traceback (most recent call last):\n  File "/app/main.py", line 9, in <module>\n    save(model)\n'

RUNTIME = {
    "Python writes beside its code": (
        "train",
        TRACEBACK + "OSError: [Errno 30] Read-only file system: '/app/model.pkl'",
        f"/app/model.pkl is on a read-only file system: {TRAIN_RO}",
    ),
    "coreutils writes to /model in infer": (
        "infer",
        "touch: cannot touch '/model/cache': Read-only file system",
        f"/model/cache is on a read-only file system: {INFER_RO}",
    ),
    "sh redirects into /data": (
        "train",
        "sh: 1: cannot create /data/train/x: Read-only file system",
        f"/data/train/x is on a read-only file system: {TRAIN_RO}",
    ),
    "a read-only error naming no path": ("infer", "E: Read-only file system", f"the file system is read-only there: {INFER_RO}"),
    "a path with a space is quoted": (
        "train",
        "PermissionError: [Errno 30] Read-only file system: '/root/my model.pt'",
        f"'/root/my model.pt' is on a read-only file system: {TRAIN_RO}",
    ),
    "control characters in a path are escaped": (
        "train",
        "OSError: [Errno 30] Read-only file system: '/app/\x1b[31mred'",
        f"'/app/\\x1b[31mred' is on a read-only file system: {TRAIN_RO}",
    ),
    "infer opens what train left in /tmp": (
        "infer",
        TRACEBACK + "FileNotFoundError: [Errno 2] No such file or directory: '/tmp/model.pkl'",
        kept("/tmp/model.pkl"),
    ),
    "infer opens a relative path": (
        "infer",
        "FileNotFoundError: [Errno 2] No such file or directory: 'model.joblib'",
        kept("model.joblib"),
    ),
    "cat in infer": ("infer", "cat: /root/.cache/vocab.txt: No such file or directory", kept("/root/.cache/vocab.txt")),
    "a file train never wrote to /model is another story": (
        "infer",
        "FileNotFoundError: [Errno 2] No such file or directory: '/model/model.pkl'",
        None,
    ),
    "a file missing from the image's system": (
        "infer",
        "OSError: libfoo.so: cannot open: No such file or directory: '/usr/lib/libfoo.so'",
        None,
    ),
    "a missing file in train": ("train", "FileNotFoundError: [Errno 2] No such file or directory: '/tmp/cache.npy'", None),
    "a missing script names no path": ("infer", "python3: can't open file '/app/main.py': [Errno 2] No such file or directory", None),
    "DNS from Python": ("train", TRACEBACK + "socket.gaierror: [Errno -3] Temporary failure in name resolution", NO_NETWORK),
    "urllib": ("infer", "urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>", NO_NETWORK),
    "requests": (
        "train",
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='example.org', port=443): Max retries exceeded with url: /",
        NO_NETWORK,
    ),
    "pip retrying": (
        "train",
        "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by "
        "'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: "
        "[Errno -3] Temporary failure in name resolution')': /simple/numpy/\n"
        "ERROR: Could not find a version that satisfies the requirement numpy (from versions: none)\n"
        "ERROR: No matching distribution found for numpy",
        NO_NETWORK,
    ),
    "curl": ("train", "curl: (6) Could not resolve host: example.org", NO_NETWORK),
    "wget": ("infer", "wget: unable to resolve host address 'example.org'", NO_NETWORK),
    "Hugging Face": (
        "infer",
        "OSError: We couldn't connect to 'https://huggingface.co' to load this file, couldn't find it in the cached files",
        NO_NETWORK,
    ),
    "the last known failure decides": (
        "infer",
        "OSError: [Errno 30] Read-only file system: '/app/x'\nFileNotFoundError: [Errno 2] No such file or directory: '/tmp/m.pkl'",
        kept("/tmp/m.pkl"),
    ),
    "an error the contract does not explain": ("train", TRACEBACK + "ValueError: bad shape", None),
    "nothing printed": ("train", "", None),
}


@pytest.mark.parametrize("case", RUNTIME)
def test_runtime_hint(case):
    phase, tail, expected = RUNTIME[case]
    assert runtime_hint(phase, tail) == expected


@pytest.mark.timeout(60, method="thread")  # a hang catcher: quadratic over this line takes hours, the window milliseconds
def test_a_long_hostile_line_is_read_around_its_phrase_only():
    """A megabyte line without a space would make a path regex run over it quadratic: only a window
    around the phrase is searched, and a path longer than the window is not quoted at all."""
    path = "/d" * (1 << 19)
    assert runtime_hint("train", f"cat: {path}: Read-only file system: '{path}") == f"the file system is read-only there: {TRAIN_RO}"
    assert runtime_hint("infer", f"cat: {path}: No such file or directory: '{path}") is None


def test_a_long_path_is_cut():
    line = "OSError: [Errno 30] Read-only file system: '/app/" + "p" * 300 + "'"
    assert runtime_hint("train", line) == f"/app/{'p' * 72}... is on a read-only file system: {TRAIN_RO}"


OUT = "/output/predictions.csv"
FOUND = {
    "one file": ([("preds.csv", False)], "found /output/preds.csv: write the predictions to /output/predictions.csv"),
    "the likeliest first": (
        [("notes.txt", False), ("preds.csv", False), ("Predictions.CSV", False)],
        "found /output/Predictions.CSV, /output/preds.csv, /output/notes.txt: write the predictions to /output/predictions.csv",
    ),
    "a directory": ([("results", True)], "found /output/results/: write the predictions to /output/predictions.csv"),
    "many files": (
        [(f"part-{i}.csv", False) for i in range(8)],
        "found /output/part-0.csv, /output/part-1.csv, /output/part-2.csv, /output/part-3.csv, /output/part-4.csv and 3 more: "
        "write the predictions to /output/predictions.csv",
    ),
    "a newline cannot forge a line": (
        [("a\nhint: all is well", False)],
        "found '/output/a\\nhint: all is well': write the predictions to /output/predictions.csv",
    ),
    "a long name is cut": ([("p" * 300, False)], f"found /output/{'p' * 69}...: write the predictions to /output/predictions.csv"),
    "an undecodable name": (
        [("pr\udcffeds.csv", False)],
        "found '/output/pr\\udcffeds.csv': write the predictions to /output/predictions.csv",
    ),
    "nothing there": ([], None),
}


@pytest.mark.parametrize("case", FOUND)
def test_found_files_hint(case):
    names, expected = FOUND[case]
    assert found_files_hint(OUT, names) == expected


def test_the_validator_lists_output_without_following_links(tmp_path: Path):
    (tmp_path / "preds.csv").write_text("id,label\n1,a\n")
    (tmp_path / "link.csv").symlink_to("/etc/passwd")
    (tmp_path / "up").symlink_to("/")  # a link to a directory is listed as the link it is
    (tmp_path / "cache").mkdir()
    (tmp_path / "x\x1b]0;owned\x07").write_text("")
    with pytest.raises(PredictionsError) as caught:
        validate_predictions(tmp_path / "predictions.csv", ["1"], PredictionsSpec(kind="label", classes=("a",)))
    assert caught.value.message == (
        f"{OUT} was not written: the infer phase must write its predictions there\n"
        "hint: found /output/link.csv, /output/preds.csv, /output/cache/, /output/up, '/output/x\\x1b]0;owned\\x07': "
        f"write the predictions to {OUT}"
    )


def test_an_empty_output_gets_no_hint(tmp_path: Path):
    with pytest.raises(PredictionsError) as caught:
        validate_predictions(tmp_path / "predictions.csv", ["1"], PredictionsSpec(kind="label", classes=("a",)))
    assert caught.value.message == f"{OUT} was not written: the infer phase must write its predictions there"


# -- real submissions making each mistake ---------------------------------------------------------


def failed(record, phase: str, first: str, end: str) -> None:
    assert record.verdict == "RUNTIME_ERROR" and record.failed_phase == phase, record.message
    assert record.message.startswith(f"{phase} exited with code 1: {first}\nlast lines of its output:\n"), record.message
    assert record.message.endswith(f"\n{first}\nhint: {end}"), record.message


@pytest.mark.docker
def test_writing_beside_the_code_names_the_writable_paths(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("readonly"))
    failed(
        record,
        "train",
        "OSError: [Errno 30] Read-only file system: '/app/model.pkl'",
        f"/app/model.pkl is on a read-only file system: {TRAIN_RO}",
    )


@pytest.mark.docker
def test_a_model_left_in_tmp_names_model(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("tmpmodel"))
    assert record.phases.train.verdict == "OK"
    failed(record, "infer", "FileNotFoundError: [Errno 2] No such file or directory: '/tmp/model.pkl'", kept("/tmp/model.pkl"))


@pytest.mark.docker
def test_predictions_under_another_name_are_named(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("wrongname"))
    assert record.verdict == "INVALID_PREDICTIONS" and record.failed_phase == "score"
    assert record.message == (
        f"{OUT} was not written: the infer phase must write its predictions there\n"
        f"hint: found /output/preds.csv: write the predictions to {OUT}"
    )


@pytest.mark.docker
def test_pip_install_in_a_phase_says_there_is_no_network(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("pipinstall"))
    failed(record, "train", "ERROR: No matching distribution found for numpy", NO_NETWORK)


@pytest.mark.docker
def test_a_download_in_infer_says_there_is_no_network(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("download"))
    failed(record, "infer", "urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>", NO_NETWORK)


@pytest.mark.docker
def test_a_memory_limit_is_shown_in_human_units(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("balloon"), "limits.train.memory=1g")
    assert record.verdict == "MEMORY_LIMIT", record.message
    assert re.fullmatch(
        r"train needed more than its memory limit of 1\.0 GiB and was killed by the kernel \(peak \d+\.\d (MiB|GiB)\)", record.message
    ), record.message
