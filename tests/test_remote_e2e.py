"""The participant's command line against the real service: two teams push real images through
the real registry with ``harness push``, follow them with ``harness status --wait``, read their own
verdicts, messages and logs (and get 404 for the other team's), and see public scores only on the
remote leaderboard.

The service runs as ``harness serve`` in a subprocess on free loopback ports
(``tests/service_helpers.py``); teams are added with the real ``harness teams add digits NAME --json``.
"""

from __future__ import annotations

import json

import pytest

from harness.cli import main

pytestmark = pytest.mark.docker
WAIT_S = "600"


def harness(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def add_team(capsys, name: str) -> dict:
    code, out, err = harness(capsys, "teams", "add", "digits", name, "--json")
    assert code == 0, err
    team = json.loads(out)
    assert team["token"].startswith(f"hx_{team['id']}_")
    return team


class As:
    """Commands run as one team: HARNESS_SERVER and HARNESS_TOKEN in the environment."""

    def __init__(self, capsys, monkeypatch, url: str, token: str):
        self.capsys, self.monkeypatch, self.url, self.token = capsys, monkeypatch, url, token

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.monkeypatch.setenv("HARNESS_SERVER", self.url)
        self.monkeypatch.setenv("HARNESS_TOKEN", self.token)
        code, out, err = harness(self.capsys, *argv)
        assert self.token not in out + err
        return code, out, err


@pytest.fixture
def participant_env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("HARNESS_ALLOW_HTTP", raising=False)


@pytest.fixture
def service(shared_service, monkeypatch):
    """The worker's shared service; ``harness teams`` in this process works in its home."""
    monkeypatch.setenv("HARNESS_HOME", str(shared_service.home))
    return shared_service


def test_two_teams_push_and_each_sees_only_its_own(service, behave_image, participant_env, capsys, monkeypatch, tmp_path):
    # a scored image that trains in no time (the sample through the service is tests/test_demo.py's)
    scored, crash = behave_image("constant"), behave_image("crash")
    alpha, beta = add_team(capsys, "Team Alpha"), add_team(capsys, "Team Beta")
    as_alpha = As(capsys, monkeypatch, service.url, alpha["token"])
    as_beta = As(capsys, monkeypatch, service.url, beta["token"])

    # Alpha logs in the way a participant does (the file, not the environment) and pushes a scored image.
    monkeypatch.delenv("HARNESS_SERVER", raising=False)
    monkeypatch.delenv("HARNESS_TOKEN", raising=False)
    code, out, err = harness(capsys, "login", service.url, "--token", alpha["token"], "--json")
    assert code == 0, err
    assert json.loads(out)["team_id"] == alpha["id"] and alpha["token"] not in out + err
    code, out, err = harness(capsys, "push", "digits", scored, "-m", "the sample, as shipped", "--json")
    assert code == 0, err
    submitted_alpha = json.loads(out)
    a_id = submitted_alpha["id"]
    assert submitted_alpha["message"] == "the sample, as shipped" and submitted_alpha["state"] in ("queued", "running")
    assert submitted_alpha["image"].split("@")[0].endswith("/constant") and "/teams/" in submitted_alpha["image"]

    code, out, err = as_beta("push", "digits", crash, "-m", "it will crash")
    assert code == 0, err
    b_id = out.strip()
    assert b_id.startswith("sub-") and b_id != a_id

    # Each follows its own to the end: exit 0 for the scored one, 1 for the crash.
    code, out, err = as_alpha("status", "digits", a_id, "--wait", "--timeout", WAIT_S, "--json")
    assert code == 0, err
    scored = json.loads(out)
    assert scored["state"] == "evaluated" and scored["verdict"] == "SCORED", scored
    assert set(scored["public_scores"]) and "private_scores" not in scored and "scores" not in scored
    assert f"{a_id}: " in err and err.splitlines()[-1].endswith("evaluated SCORED")  # "queued 1 -> ..." unless it was over already

    code, out, err = as_beta("status", "digits", b_id, "--wait", "--timeout", WAIT_S)
    assert code == 1, err
    assert "verdict       RUNTIME_ERROR" in out and "failed phase  train" in out and "it will crash" in out

    # Their logs: beta's traceback is in its train stderr, after stdout.
    code, out, err = as_beta("logs", "digits", b_id, "--phase", "train")
    assert code == 0, err
    assert out.index("==> train stdout <==") < out.index("loading data...") < out.index("==> train stderr <==")
    assert out.index("==> train stderr <==") < out.index("model exploded at epoch 3")
    code, out, err = as_beta("logs", "digits", b_id, "--phase", "infer")
    assert code == 2 and "(404)" in err  # infer never ran
    code, out, err = as_alpha("logs", "digits", a_id, "--phase", "infer", "--json")
    assert code == 0 and json.loads(out)["phase"] == "infer"

    # Neither sees the other's: 404, the same as an id that does not exist.
    for who, other in ((as_alpha, b_id), (as_beta, a_id)):
        for argv in (("status", "digits", other), ("logs", "digits", other), ("status", "digits", "sub-000000000000")):
            code, out, err = who(*argv)
            assert code == 2 and out == "" and "(404)" in err, (argv, err)
    code, out, err = as_alpha("submissions", "digits", "--json")
    assert [s["id"] for s in json.loads(out)["submissions"]] == [a_id]
    code, out, err = as_beta("submissions", "digits")
    assert code == 0 and b_id in out and a_id not in out and "RUNTIME_ERROR" in out

    # The board: public scores only, each team's own submission id only to itself.
    code, out, err = as_alpha("leaderboard", "digits", "--remote", "--json")
    assert code == 0, err
    board = json.loads(out)
    assert board["final"] is False and "private" not in json.dumps(board)
    rows = {row["team"]: row for row in board["rows"]}
    assert rows["Team Alpha"]["score"] == scored["public_scores"][board["metric"]]
    assert rows["Team Alpha"]["submission_id"] == a_id
    assert rows["Team Beta"]["score"] is None and "submission_id" not in rows["Team Beta"]  # listed after, without a score
    monkeypatch.delenv("HARNESS_TOKEN")  # and no stored login: anyone's view
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nobody"))
    monkeypatch.setenv("HARNESS_SERVER", service.url)
    code, out, err = harness(capsys, "leaderboard", "digits", "--remote")
    assert code == 0 and "Team Alpha" in out and a_id not in out

    # The kit comes from the service and checks against its own manifest.
    code, out, err = as_alpha("kit", "pull", "digits", "--output", str(tmp_path / "kit"), "--json")
    assert code == 0, err
    assert (tmp_path / "kit" / "kit.json").is_file() and json.loads(out)["output"] == str(tmp_path / "kit")


def test_refused_tokens_and_foreign_namespaces(service, participant_env, docker_client, capsys, monkeypatch, tmp_path):
    from harness.client import PushError, ServiceClient, ServiceError, push_image

    context = tmp_path / "tiny"
    context.mkdir()
    (context / "f.txt").write_text("tiny\n")
    (context / "Dockerfile").write_text('FROM scratch\nCOPY f.txt /f.txt\nENTRYPOINT ["/f"]\n')
    tiny = "harness-e2e/tiny:1"
    docker_client.images.build(path=str(context), tag=tiny, network_mode="none", rm=True)
    alpha, beta = add_team(capsys, "Team Gamma"), add_team(capsys, "Team Delta")
    me_beta = ServiceClient(service.url, beta["token"]).whoami()

    # A wrong token and a revoked one: one line with the service's detail, nothing else.
    for token in ("hx_" + alpha["id"] + "_" + "x" * 43, "not-a-token"):
        code, out, err = As(capsys, monkeypatch, service.url, token)("submissions", "digits")
        assert code == 2 and out == "" and "a valid team token is required" in err and token not in err
    code, out, err = harness(capsys, "teams", "revoke", "digits", "Team Gamma")
    assert code == 0, err
    code, out, err = As(capsys, monkeypatch, service.url, alpha["token"])("push", "digits", tiny)
    assert code == 2 and "a valid team token is required" in err

    # Beta's token cannot push into another namespace: the registry refuses the push itself.
    with pytest.raises(PushError, match="refused the push"):
        push_image(
            docker_client,
            tiny,
            registry=me_beta["registry"],
            namespace="teams/team-gamma",
            username=beta["id"],
            token=beta["token"],
        )
    # A submission naming another team's repository is refused (403), whatever the digest.
    with pytest.raises(ServiceError, match=r"\(403\)"):
        ServiceClient(service.url, beta["token"]).submit("digits", f"{me_beta['registry']}/teams/team-gamma/tiny", "sha256:" + "0" * 64)
    as_beta = As(capsys, monkeypatch, service.url, beta["token"])
    code, out, err = as_beta("push", "digits", tiny, "-m", "x" * 501)
    assert code == 2 and "(422)" in err  # the message is over 500 characters: nothing stored
    code, out, err = as_beta("submissions", "digits", "--json")
    assert json.loads(out)["submissions"] == []
    docker_client.images.remove(tiny, force=True)
