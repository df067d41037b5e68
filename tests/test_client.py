"""The participant's command line (harness.client, harness.cli.remote) on its own.

The service's end-to-end test is tests/test_remote_e2e.py; here the client meets the test's own
HTTP server (a stdlib ``http.server`` on loopback, answering what each test scripts, hostile
answers included), a real registry (Debian's ``docker-registry``, no auth) and the real Docker
engine for pushes.
"""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import subprocess
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.cli import main
from harness.client import Credentials, ServiceClient, load_credentials, save_credentials, service_url, target_name
from harness.client.credentials import NotLoggedIn
from harness.client.wire import SubmissionView

TOKEN = "hx_team-0123456789ab_" + "S" * 43
ESC = "\x1b"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScriptedServer:
    """The test's own stand-in service on loopback: ``routes[(method, path)]`` is a function of the
    request giving ``(status, body, headers)``; every request is kept in ``requests``."""

    def __init__(self):
        self.routes: dict = {}
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                request = {"method": self.command, "path": path, "query": query, "headers": dict(self.headers), "body": body}
                server.requests.append(request)
                route = server.routes.get((self.command, path))
                status, payload, headers = route(request) if route else (404, {"detail": "Not Found"}, {})
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def route(self, method: str, path: str, answer) -> None:
        self.routes[(method, f"/api/v1{path}")] = answer if callable(answer) else (lambda request: answer)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def config_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("HARNESS_SERVER", raising=False)
    monkeypatch.delenv("HARNESS_TOKEN", raising=False)
    monkeypatch.delenv("HARNESS_ALLOW_HTTP", raising=False)
    return tmp_path / "config"


@pytest.fixture
def service(config_home, monkeypatch):
    server = ScriptedServer()
    monkeypatch.setenv("HARNESS_SERVER", server.url)
    monkeypatch.setenv("HARNESS_TOKEN", TOKEN)
    yield server
    server.close()


WHOAMI = {"team": "Team A", "team_id": "team-0123456789ab", "namespace": "teams/team-a", "competition": "digits", "registry": "127.0.0.1:1"}


def submission(**fields) -> dict:
    """A submission as the service answers it: built with the model the service builds it with."""
    base = {
        "id": "sub-aaaaaaaaaaaa",
        "team": "Team A",
        "image": "127.0.0.1:1/teams/team-a/model",
        "image_digest": "sha256:" + "1" * 64,
        "registry_digest": "sha256:" + "2" * 64,
        "message": "first try",
        "submitted_at": "2026-01-01T00:00:00Z",
        "state": "queued",
        "queue_position": 1,
    }
    return SubmissionView(**{**base, **fields}).wire()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- credentials -----------------------------------------------------------------------------------
def test_credentials_are_written_600_in_a_700_folder_whatever_the_umask(config_home):
    old = os.umask(0)
    try:
        path = save_credentials("https://competition.example.org", TOKEN)
    finally:
        os.umask(old)
    assert path == config_home / "harness" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"server": "https://competition.example.org", "token": TOKEN}
    assert load_credentials() == Credentials("https://competition.example.org", TOKEN, False, str(path))


def test_credentials_replace_the_old_file_whole_and_a_failed_write_leaves_it(config_home, monkeypatch):
    path = save_credentials("https://one.example.org", TOKEN)
    before = path.stat().st_ino
    save_credentials("https://two.example.org", TOKEN)
    assert path.stat().st_ino != before  # a new file renamed into place, never rewritten in place
    monkeypatch.setattr(json, "dump", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(Exception, match="No space left"):
        save_credentials("https://three.example.org", TOKEN)
    assert json.loads(path.read_text())["server"] == "https://two.example.org"
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temporary file left behind


def test_a_loose_folder_is_closed_to_700(config_home):
    (config_home / "harness").mkdir(parents=True, mode=0o755)
    os.chmod(config_home / "harness", 0o755)
    save_credentials("https://competition.example.org", TOKEN)
    assert stat.S_IMODE((config_home / "harness").stat().st_mode) == 0o700


def test_the_environment_overrides_the_file(config_home, monkeypatch):
    save_credentials("https://file.example.org", TOKEN)
    monkeypatch.setenv("HARNESS_SERVER", "https://env.example.org")
    assert load_credentials().server == "https://env.example.org"
    assert load_credentials().token == TOKEN  # the token still from the file
    monkeypatch.setenv("HARNESS_TOKEN", "hx_other")
    assert load_credentials() == Credentials("https://env.example.org", "hx_other", False, "environment")


def test_no_login_is_one_line_saying_how(config_home, capsys):
    with pytest.raises(NotLoggedIn, match=r"harness login URL --token T"):
        load_credentials()
    code, out, err = run(capsys, "submissions", "digits")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "harness login URL --token T" in err


def test_a_broken_credentials_file_is_named_without_its_content(config_home, capsys):
    path = config_home / "harness" / "credentials.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"server": "https://x.example.org", "token": "' + TOKEN)  # truncated
    code, out, err = run(capsys, "submissions", "digits")
    assert code == 2 and str(path) in err and "log in again" in err and TOKEN not in err


def test_the_token_is_in_no_repr():
    credentials = Credentials("https://x.example.org", TOKEN)
    client = ServiceClient("https://x.example.org", TOKEN)
    assert TOKEN not in repr(credentials) and TOKEN not in repr(client) and TOKEN not in str(vars(credentials).get("server"))


# -- addresses -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://competition.example.org/", "https://competition.example.org"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("http://localhost:8123/harness/", "http://localhost:8123/harness"),
        ("http://[::1]:8123", "http://[::1]:8123"),
    ],
)
def test_service_addresses(url, expected):
    assert service_url(url) == expected


@pytest.mark.parametrize(
    "url, problem",
    [
        ("ftp://competition.example.org", "http:// or https://"),
        ("competition.example.org", "http:// or https://"),
        ("https://user:pw@competition.example.org", "only scheme, host"),
        ("https://competition.example.org/?x=1", "only scheme, host"),
        ("https://competition.example.org:99999", "port"),
        ("http://competition.example.org", "unencrypted"),
        ("http://10.0.0.5:8000", "unencrypted"),
    ],
)
def test_bad_service_addresses(url, problem):
    with pytest.raises(Exception, match=problem):
        service_url(url)


def test_plain_http_to_another_machine_when_the_participant_allows_it():
    assert service_url("http://10.0.0.5:8000", allow_http=True) == "http://10.0.0.5:8000"


# -- login -----------------------------------------------------------------------------------------
def test_login_checks_the_token_and_stores_it_without_printing_it(config_home, capsys):
    server = ScriptedServer()
    try:
        server.route(
            "GET",
            "/whoami",
            lambda r: (
                (200, WHOAMI, {})
                if r["headers"].get("Authorization") == f"Bearer {TOKEN}"
                else (401, {"detail": "a valid team token is required"}, {})
            ),
        )
        code, out, err = run(capsys, "login", server.url + "/", "--token", TOKEN)
        assert code == 0, err
        assert "Team A" in out and TOKEN not in out + err
        stored = json.loads((config_home / "harness" / "credentials.json").read_text())
        assert stored == {"server": server.url, "token": TOKEN}
        code, out, err = run(capsys, "login", server.url, "--token", TOKEN, "--json")
        shown = json.loads(out)
        assert shown["team_id"] == "team-0123456789ab" and shown["server"] == server.url and TOKEN not in out + err

        code, out, err = run(capsys, "login", server.url, "--token", "hx_wrong")
        assert code == 2 and out == ""
        assert "a valid team token is required" in err and "(401)" in err and "hx_wrong" not in err
        assert json.loads((config_home / "harness" / "credentials.json").read_text())["token"] == TOKEN  # a refused login keeps the old one
    finally:
        server.close()


def test_a_service_that_does_not_answer_is_one_line_naming_it(config_home, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run(capsys, "login", url, "--token", TOKEN)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and url in err and "does not answer" in err and TOKEN not in err


# -- the service's refusals ------------------------------------------------------------------------
def test_the_servers_detail_with_its_status(service, capsys):
    service.route(
        "GET", "/competitions/digits/submissions/sub-bbbbbbbbbbbb", (404, {"detail": "no submission sub-bbbbbbbbbbbb of yours"}, {})
    )
    code, out, err = run(capsys, "status", "digits", "sub-bbbbbbbbbbbb")
    assert (code, out) == (2, "")
    assert err == "harness: no submission sub-bbbbbbbbbbbb of yours (404)\n"
    assert service.requests[-1]["headers"]["Authorization"] == f"Bearer {TOKEN}"


def test_too_many_attempts_says_when_to_retry(service, capsys):
    service.route("GET", "/competitions/digits/submissions", (429, {"detail": "too many failed attempts"}, {"Retry-After": "42"}))
    code, out, err = run(capsys, "submissions", "digits")
    assert code == 2 and "too many failed attempts (try again in 42 s) (429)" in err


def test_an_answer_that_is_not_json(service, capsys):
    service.route("GET", "/competitions/digits/submissions", (200, b"<html>a captive portal</html>", {"Content-Type": "text/html"}))
    code, out, err = run(capsys, "submissions", "digits")
    assert code == 2 and err.count("\n") == 1 and "not JSON" in err and service.url in err
    service.route("GET", "/competitions/digits/submissions", (502, b"<html>bad gateway</html>", {"Content-Type": "text/html"}))
    code, out, err = run(capsys, "submissions", "digits")
    assert code == 2 and err.count("\n") == 1 and "502" in err and "not the service's JSON" in err


def test_validation_errors_and_hostile_details_are_one_printable_line(service, capsys):
    service.route("PUT", "/competitions/digits/selection", (422, {"detail": [{"msg": "too many"}, {"msg": f"bad {ESC}[2J\nid"}]}, {}))
    code, out, err = run(capsys, "select", "digits", "sub-1", "sub-2")
    assert code == 2 and ESC not in err and err.count("\n") == 1
    assert "too many; bad \\x1b[2J id (422)" in err
    assert json.loads(service.requests[-1]["body"]) == {"submissions": ["sub-1", "sub-2"]}


def test_ids_and_competitions_stay_one_path_segment(service, capsys):
    code, out, err = run(capsys, "status", "digits", "../../whoami")
    assert code == 2
    assert service.requests[-1]["path"] == "/api/v1/competitions/digits/submissions/..%2F..%2Fwhoami"


# -- listings and statuses -------------------------------------------------------------------------
def test_submissions_table_and_json(service, capsys):
    rows = [
        submission(
            id="sub-bbbbbbbbbbbb",
            state="evaluated",
            verdict="SCORED",
            public_scores={"accuracy": 0.912345},
            message=f"{ESC}]0;pwned{ESC}\\ tuned",
        ),
        submission(),
    ]
    service.route("GET", "/competitions/digits/submissions", (200, {"submissions": rows}, {}))
    code, out, err = run(capsys, "submissions", "digits")
    assert code == 0 and ESC not in out
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "SUBMITTED", "STATE", "VERDICT", "PUBLIC", "SCORES", "MESSAGE"]
    assert (
        "sub-bbbbbbbbbbbb" in lines[1] and "evaluated SCORED" in lines[1] and "accuracy=0.9123" in lines[1] and "\\x1b]0;pwned" in lines[1]
    )
    assert "queued 1" in lines[2] and "first try" in lines[2]
    code, out, err = run(capsys, "submissions", "digits", "--json")
    assert json.loads(out) == {"submissions": rows}  # data as the service sent it


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"state": "queued"}, 0),
        ({"state": "evaluated", "verdict": "SCORED", "public_scores": {"accuracy": 0.9}}, 0),
        ({"state": "evaluated", "verdict": "RUNTIME_ERROR", "failed_phase": "train", "verdict_message": "train exited with 1"}, 1),
        ({"state": "withdrawn"}, 1),
        ({"state": "disqualified"}, 1),
    ],
)
def test_status_exit_codes(service, capsys, fields, code):
    service.route("GET", "/competitions/digits/submissions/sub-aaaaaaaaaaaa", (200, submission(**fields), {}))
    got, out, err = run(capsys, "status", "digits", "sub-aaaaaaaaaaaa")
    assert got == code, err
    assert out.startswith("sub-aaaaaaaaaaaa\n") and f"state         {fields['state']}" in out
    got, out, err = run(capsys, "status", "digits", "sub-aaaaaaaaaaaa", "--json")
    assert got == code and json.loads(out)["state"] == fields["state"]


@pytest.mark.parametrize("image", ["127.0.0.1:1/teams/team-a/model", "127.0.0.1:1/teams/team-a/model@sha256:" + "2" * 64])
def test_status_names_the_pushed_image_by_its_digest_once(service, capsys, image):
    """The service's ``image`` carries the registry digest already (a push by tag): it is not appended twice."""
    service.route("GET", "/competitions/digits/submissions/sub-aaaaaaaaaaaa", (200, submission(image=image), {}))
    code, out, err = run(capsys, "status", "digits", "sub-aaaaaaaaaaaa")
    assert code == 0, err
    assert "  image         127.0.0.1:1/teams/team-a/model@sha256:" + "2" * 64 + "\n" in out


def sleeps(monkeypatch, real: bool) -> list[float]:
    """The pauses ``harness status --wait`` takes between its polls, recorded (and taken only if ``real``)."""
    from types import SimpleNamespace

    import harness.cli.remote as remote

    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if real:
            time.sleep(seconds)

    monkeypatch.setattr(remote, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    return slept


def test_status_wait_follows_the_states_until_final(service, capsys, monkeypatch):
    slept = sleeps(monkeypatch, real=False)
    states = iter(
        [
            submission(queue_position=2),
            submission(queue_position=1),
            submission(queue_position=1),
            submission(state="running", phase="train", queue_position=None),
        ]
        + [submission(state="running", phase="infer", queue_position=None)] * 2
        + [submission(state="evaluated", verdict="TIMEOUT", failed_phase="infer", queue_position=None)]
    )
    service.route("GET", "/competitions/digits/submissions/sub-aaaaaaaaaaaa", lambda r: (200, next(states), {}))
    code, out, err = run(capsys, "status", "digits", "sub-aaaaaaaaaaaa", "--wait")
    assert code == 1, err
    assert err.splitlines() == [
        "sub-aaaaaaaaaaaa: queued 2",
        "sub-aaaaaaaaaaaa: queued 2 -> queued 1",
        "sub-aaaaaaaaaaaa: queued 1 -> running train",
        "sub-aaaaaaaaaaaa: running train -> running infer",
        "sub-aaaaaaaaaaaa: running infer -> evaluated TIMEOUT (infer)",
    ]
    assert "verdict       TIMEOUT" in out
    # Backoff 0.25, 0.5, 1, 2, 2, 2 s between the seven polls, not a busy loop.
    assert slept == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    times = [r for r in service.requests if r["path"].endswith("sub-aaaaaaaaaaaa")]
    assert len(times) == 7


def test_status_wait_gives_up_at_the_timeout(service, capsys, monkeypatch):
    slept = sleeps(monkeypatch, real=True)
    service.route("GET", "/competitions/digits/submissions/sub-aaaaaaaaaaaa", (200, submission(state="running", phase="train"), {}))
    code, out, err = run(capsys, "status", "digits", "sub-aaaaaaaaaaaa", "--wait", "--timeout", "1")
    assert code == 2 and out == ""
    assert slept and sum(slept) <= 1.0 + 1e-9  # it never waits past the timeout (the last pause is cut to what is left)
    assert "still running train after 1 s" in err and "--wait` waits again" in err


def test_logs_print_stdout_then_stderr_as_data(service, capsys):
    logs = {
        "id": "sub-aaaaaaaaaaaa",
        "phase": "infer",
        "stdout": f"epoch 1\n{ESC}[31mred{ESC}[0m\tdone\n",
        "stderr": "warning",
        "truncated": True,
    }
    service.route("GET", "/competitions/digits/submissions/sub-aaaaaaaaaaaa/logs", (200, logs, {}))
    code, out, err = run(capsys, "logs", "digits", "sub-aaaaaaaaaaaa", "--phase", "infer")
    assert code == 0 and ESC not in out
    assert out == (
        "==> infer stdout <==\nepoch 1\n\\x1b[31mred\\x1b[0m\tdone\n==> infer stderr <==\nwarning\n"
        "(the infer logs are cut: each stream shows its last 64 KiB)\n"
    )
    assert service.requests[-1]["query"] == "phase=infer"
    code, out, err = run(capsys, "logs", "digits", "sub-aaaaaaaaaaaa", "--json")
    assert json.loads(out) == logs and service.requests[-1]["query"] == "phase=train"


def test_select_prints_the_selection(service, capsys):
    service.route(
        "PUT", "/competitions/digits/selection", lambda r: (200, {"selected": json.loads(r["body"])["submissions"], "limit": 2}, {})
    )
    code, out, err = run(capsys, "select", "digits", "sub-1", "--json", "sub-2")
    assert code == 0 and json.loads(out) == {"selected": ["sub-1", "sub-2"], "limit": 2}
    code, out, err = run(capsys, "select", "digits", "sub-1")
    assert out == "selected for the final board of digits: sub-1 (at most 2)\n"


def test_remote_leaderboard_needs_no_token(service, capsys, monkeypatch):
    monkeypatch.delenv("HARNESS_TOKEN")
    board = {
        "competition": "digits",
        "metric": "accuracy",
        "higher_is_better": True,
        "final": False,
        "others": [{"name": "macro_f1", "higher_is_better": True}, {"name": "log_loss", "higher_is_better": False}],
        "rows": [
            {
                "rank": 1,
                "team": f"B{ESC}[8m",
                "score": 0.95,
                "low": 0.93,
                "high": 0.97,
                "beats_next": 0.8125,
                "tied_with_next": True,
                "resources": {"train_wall_s": 12.25, "cpu_s": 3.0, "peak_memory_bytes": 2**30},
                "submitted_at": "2026-01-02T00:00:00Z",
                "others": {"macro_f1": 0.5, "log_loss": 0.25},
            },
            {
                "rank": 2,
                "team": "A",
                "score": 0.9,
                "low": "0.8",
                "resources": ["not", "a", "mapping"],  # from an old or odd service: shown blank
                "submission_id": "sub-aaaaaaaaaaaa",
                "submitted_at": "2026-01-01T00:00:00Z",
                "others": {},
            },
        ],
        "confidence": 0.95,
        "resamples": 1000,
    }
    service.route("GET", "/competitions/digits/leaderboard", (200, board, {}))
    code, out, err = run(capsys, "leaderboard", "digits", "--remote")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "digits: public leaderboard (accuracy, higher is better)"
    assert lines[1].split() == ["RANK", "TEAM", "SCORE", "MACRO_F1", "LOG_LOSS", "INTERVAL", "BEATS", "NEXT", "USED", "SUBMITTED"]
    assert lines[2].split()[:5] == ["1", "B\\x1b[8m", "0.95", "0.50000", "0.25000"] and lines[3].endswith("yours: sub-aaaaaaaaaaaa")
    assert lines[3].split()[:4] == ["2", "A", "0.9", "2026-01-01T00:00:00Z"]  # no secondary scores, interval, resources: blank cells
    assert all(cell in lines[2] for cell in ("[0.93000, 0.97000]", "81% tied", "train 12.3 s · CPU 3.0 s · memory 1.0 GiB"))
    assert "0.8" not in lines[3]  # a string where a number belongs is not shown
    assert "95% bootstrap interval" in lines[-1]
    assert "Authorization" not in service.requests[-1]["headers"]
    code, out, err = run(capsys, "leaderboard", "digits", "--remote", "--json")
    assert json.loads(out) == board
    code, out, err = run(capsys, "leaderboard", "digits", "--remote", "--private")
    assert code == 2 and "--remote prints the service's board" in err


# -- the kit ---------------------------------------------------------------------------------------
def test_kit_pull_unpacks_and_verifies_the_kit(service, competition, tmp_path, capsys, monkeypatch):
    from harness.competition.kit import build_kit

    source = tmp_path / "built"
    build_kit(competition(), source)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in sorted(source.iterdir()):
            tar.add(path, arcname=path.name)
    service.route("GET", "/competitions/digits/kit", (200, archive.getvalue(), {"Content-Type": "application/gzip"}))
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "kit", "pull", "digits", "--json")
    assert code == 0, err
    pulled = json.loads(out)
    assert pulled["output"] == str(tmp_path / "digits-kit") and pulled["schema"]
    assert (tmp_path / "digits-kit" / "kit.json").read_bytes() == (source / "kit.json").read_bytes()
    code, out, err = run(capsys, "kit", "pull", "digits")
    assert code == 2 and "not an empty folder" in err
    # The organizer's own `harness kit COMPETITION --output DIR` is unchanged.
    assert main(["kit", "--help"]) == 0 and "harness kit pull" in capsys.readouterr().out


def test_kit_pull_refuses_an_archive_that_escapes_its_folder(service, tmp_path, capsys):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    service.route("GET", "/competitions/digits/kit", (200, archive.getvalue(), {"Content-Type": "application/gzip"}))
    code, out, err = run(capsys, "kit", "pull", "digits", "--output", str(tmp_path / "kit"))
    assert code == 2 and "not a readable archive" in err
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "kit").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".kit")] == []


def test_help_lists_the_participant_commands_but_not_the_route(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("login", "push", "submissions", "status", "logs", "select", "kit"):
        assert f"    {command} " in out
    assert "kit-pull" not in out
    assert main(["kit", "pull", "--help"]) == 0 and "usage: harness kit pull" in capsys.readouterr().out


# -- names and pushes ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reference, tags, expected",
    [
        ("my-team/model:1", ["my-team/model:1"], ("model", "1")),
        ("localhost:5000/a/b/Model_X", ["localhost:5000/a/b/Model_X:latest"], ("model_x", "latest")),
        ("weird..name__x", ["weird..name__x:latest"], ("weird-name-x", "latest")),
        ("model:v1+build", ["model:v1+build"], ("model", "v1-build")),
        ("abc123", ["abc123:latest"], ("abc123", "latest")),
        ("sha256:" + "f" * 64, [], ("image-" + "f" * 12, "latest")),
        ("fffff", [], ("image-" + "f" * 12, "latest")),
        ("...", ["...:latest"], ("image-" + "f" * 12, "latest")),
    ],
)
def test_target_names(reference, tags, expected):
    assert target_name(reference, "sha256:" + "f" * 64, tags) == expected


REGISTRY_START_S = 20  # an upper bound for a registry's start on a loaded machine: past it, the fixture fails


def start_registry(root: Path, port: int) -> subprocess.Popen:
    """Debian's registry without auth on 127.0.0.1:``port``, once ``GET /v2/`` answers as a registry
    (status 200 and its API version header: something else listening there does not count). Fails
    the test with the registry's log when it exits, or does not answer within REGISTRY_START_S."""
    import requests

    (root / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    log_path = root / "registry.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + REGISTRY_START_S
    problem = "it did not answer"
    while process.poll() is None and time.monotonic() < deadline:
        try:
            answer = requests.get(f"http://127.0.0.1:{port}/v2/", timeout=2)
            if answer.status_code == 200 and answer.headers.get("Docker-Distribution-Api-Version") == "registry/2.0":
                return process
            problem = f"GET /v2/ answered {answer.status_code} {answer.headers.get('Docker-Distribution-Api-Version')!r}"
        except requests.RequestException as exc:
            problem = f"GET /v2/ failed: {exc}"
        time.sleep(0.1)
    if process.poll() is None:
        process.kill()
        process.wait()
        problem = f"{problem} within {REGISTRY_START_S} s"
    else:
        problem = f"it exited with status {process.returncode}"
    pytest.fail(f"the registry on 127.0.0.1:{port} is not serving ({problem}); its log:\n{log_path.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A real registry on loopback, without auth (the service's token auth is the e2e test's)."""
    port = free_port()
    process = start_registry(tmp_path_factory.mktemp("registry"), port)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def test_the_registry_fixture_fails_with_the_registrys_log_when_the_registry_does_not_serve(tmp_path):
    """Something else listens on the port (a TCP connect succeeds): the registry cannot bind it and
    exits, and the fixture fails saying so, with the registry's own words, instead of yielding."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # the premise: the port takes connections
        with pytest.raises(pytest.fail.Exception) as failed:
            start_registry(tmp_path, port)
    message = str(failed.value)
    assert f"the registry on 127.0.0.1:{port} is not serving (it exited with status " in message
    assert "address already in use" in message.split("its log:\n", 1)[1]


@pytest.fixture(scope="module")
def tiny_image(docker_client, tmp_path_factory):
    context = tmp_path_factory.mktemp("tiny")
    (context / "hello.txt").write_text(f"hello {time.time_ns()}\n")
    (context / "Dockerfile").write_text('FROM scratch\nCOPY hello.txt /hello.txt\nENTRYPOINT ["/hello"]\n')
    tag = f"harness-client-test/tiny-{os.getpid()}:v1"
    docker_client.images.build(path=str(context), tag=tag, network_mode="none", rm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


def test_push_tags_pushes_submits_and_removes_the_extra_tag(service, registry, tiny_image, docker_client, capsys):
    service.route("GET", "/whoami", (200, {**WHOAMI, "registry": registry}, {}))
    service.route(
        "POST",
        "/competitions/digits/submissions",
        lambda r: (201, submission(**{k: v for k, v in json.loads(r["body"]).items() if k == "message"}), {}),
    )
    code, out, err = run(capsys, "push", "digits", tiny_image, "-m", "tiny one")
    assert code == 0, err
    assert out == "sub-aaaaaaaaaaaa\n" and TOKEN not in out + err
    body = json.loads(service.requests[-1]["body"])
    repository = f"{registry}/teams/team-a/tiny-{os.getpid()}"
    assert body["image"] == repository and body["message"] == "tiny one"
    # The digest is the registry's: the manifest it serves for the tag.
    import requests

    manifest = requests.head(
        f"http://{registry}/v2/teams/team-a/tiny-{os.getpid()}/manifests/v1",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        timeout=10,
    )
    assert manifest.headers["Docker-Content-Digest"] == body["digest"]
    layer_lines = [line for line in err.splitlines() if ": Pushed" in line or "already exists" in line]
    assert 1 <= len(layer_lines) <= 3  # one line per layer state, not a progress flood
    assert len(err.splitlines()) < 15
    assert f"{repository}:v1" not in docker_client.images.get(tiny_image).tags


def test_push_of_a_missing_image_says_build_it_first(service, capsys):
    service.route("GET", "/whoami", (200, WHOAMI, {}))
    code, out, err = run(capsys, "push", "digits", "harness-client-test/absent:nope")
    assert code == 2 and "docker build -t harness-client-test/absent:nope ." in err
    assert not [r for r in service.requests if r["method"] == "POST"]


def test_push_to_a_registry_that_is_down_is_refused_and_nothing_submitted(service, tiny_image, docker_client, capsys):
    down = f"127.0.0.1:{free_port()}"
    service.route("GET", "/whoami", (200, {**WHOAMI, "registry": down}, {}))
    code, out, err = run(capsys, "push", "digits", tiny_image)
    assert code == 2 and out == ""
    assert f"the registry {down} does not answer" in err.splitlines()[-1]
    assert not [r for r in service.requests if r["method"] == "POST"]
    assert not [t for t in docker_client.images.get(tiny_image).tags if t.startswith(down)]
