"""The participant's commands against a competition service: ``login``, ``push``, ``submissions``,
``status``, ``logs``, ``kit pull``, and (their organizer's twins route here) ``select`` without
``--team`` and ``leaderboard --remote``.

Every string the service sends (messages, logs, names) is printed as data: control characters are
written out (``\\x1b``), never sent to the terminal. The token is never printed, ``--json`` included.
``status`` exits 0 for a scored submission or one still in progress, 1 for one with a failing
verdict, withdrawn or disqualified; ``status --wait`` past ``--timeout`` is an error (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from harness.cli.common import add_json, docker_client, print_json, progress
from harness.client import (
    Credentials,
    ServiceClient,
    ServiceError,
    load_credentials,
    pull_kit,
    push_image,
    save_credentials,
    shown,
    shown_log,
)
from harness.client.wire import ENDED_STATES, FINAL_STATES, SubmissionView
from harness.leaderboard.columns import legend, real, served_columns
from harness.limits import PhaseVerdict, Verdict
from harness.util.errors import HarnessError
from harness.util.files import write_text_atomic
from harness.util.sizes import format_size

POLL_FIRST_S, POLL_MAX_S = 0.25, 2.0
WAIT_DEFAULT_S = 3600.0
MESSAGE_WIDTH = 40
FOLLOW_POLL_S = 0.5
# ``fetch(since)``: a phase's logs answer (docs/service-api.md) after the cursor ``since`` (None: the
# last of each stream), or None while the phase has not started but may still.
LogSource = Callable[[str | None], dict | None]


def register(commands) -> None:
    login = _command(commands, "login", _login, "store the service's address and your team token (checked against the service)", False)
    login.add_argument("url", help="the service's address, e.g. https://competition.example.org")
    login.add_argument("--token", required=True, help="your team token (hx_...), as the organizer gave it")
    login.add_argument("--allow-http", action="store_true", help="accept plain http to another machine (the token travels unencrypted)")
    add_json(login, "who you are logged in as (never the token)")

    push = _command(commands, "push", _push, "push a local image to the competition's registry and submit it")
    push.add_argument("image", help="the local image: NAME[:TAG] or an image id")
    push.add_argument("-m", "--message", default="", help="a note for your submission (at most 500 characters)")
    add_json(push, "the submission")

    add_json(_command(commands, "submissions", _submissions, "list your team's submissions, newest first"), "the submissions")

    status = _command(commands, "status", _status, "show one submission; exit 1 if it has a failing verdict")
    status.add_argument("id", help="the submission's id (sub-...)")
    status.add_argument("--wait", action="store_true", help="follow it until it is evaluated, withdrawn or disqualified")
    status.add_argument(
        "--timeout", type=float, default=WAIT_DEFAULT_S, metavar="S", help=f"give up waiting after S seconds (default {WAIT_DEFAULT_S:g})"
    )
    add_json(status, "the submission")

    cancel = _command(commands, "cancel", _cancel, "withdraw one of your team's queued submissions; its quota is given back")
    cancel.add_argument("id", help="the submission's id (sub-...)")
    add_json(cancel, "the submission")

    logs = _command(commands, "logs", _logs, "print a phase's logs of one of your submissions: stdout, then stderr")
    logs.add_argument("id", help="the submission's id (sub-...)")
    logs.add_argument("--phase", choices=("train", "infer"), default="train", help="the phase (default train)")
    logs.add_argument(
        "--follow",
        action="store_true",
        help="print its lines as they arrive (its stdout on standard output, its stderr on standard error) until the phase ends, "
        "then its verdict; exit 1 if that is not OK",
    )
    logs.add_argument(
        "--local",
        action="store_true",
        help="the organizer's view: read this machine's work directory ($HARNESS_HOME), any team's, no token",
    )
    add_json(logs, "the logs (with --follow: each answer as one JSON line)")

    # `harness kit pull COMPETITION` (harness.cli routes it here): hidden from the command list, `kit` names it.
    pull = commands.add_parser("kit-pull", prog="harness kit pull", description="download the participant kit from the service")
    pull.add_argument("competition", help="the competition's name on the service")
    pull.add_argument("--output", metavar="DIR", help="where to unpack the kit (absent or empty; default ./COMPETITION-kit)")
    pull.set_defaults(handler=_kit_pull)
    add_json(pull, "where the kit is and its kit.json")


def _command(commands, name: str, handler, help: str, competition: bool = True) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help, description=help)
    if competition:
        sub.add_argument("competition", help="the competition's name on the service")
    sub.set_defaults(handler=handler)
    return sub


def connect(*, need_token: bool = True) -> tuple[ServiceClient, Credentials]:
    credentials = load_credentials(need_token=need_token)
    return ServiceClient(credentials.server, credentials.token, allow_http=credentials.allow_http), credentials


def _login(args: argparse.Namespace) -> int:
    client = ServiceClient(args.url, args.token, allow_http=args.allow_http)
    me = client.whoami()
    path = save_credentials(client.server, args.token, allow_http=args.allow_http)
    if args.json:
        print_json({"server": client.server, **me, "credentials": str(path)})
    else:
        print(f"logged in to {client.server} as team {shown(me.get('team'))} ({shown(me.get('team_id'))}); credentials in {path}")
    return 0


def _push(args: argparse.Namespace) -> int:
    client, credentials = connect()
    me = client.whoami()
    _check_registry_budget(client, args.competition)
    pushed = push_image(
        docker_client(),
        args.image,
        registry=me["registry"],
        namespace=me["namespace"],
        username=me["team_id"],
        token=credentials.token,
        log=progress,
    )
    progress(f"pushed {pushed.repository}:{pushed.tag} ({pushed.digest})")
    submission = client.submit(args.competition, pushed.repository, pushed.digest, args.message)
    if args.json:
        print_json(submission.wire())
    else:
        progress(f"submitted as {_state(submission)}; `harness status {args.competition} {shown(submission.id)} --wait` follows it")
        print(shown(submission.id))
    return 0


def _check_registry_budget(client: ServiceClient, competition: str) -> None:
    """Refuse, saying why, a push the registry would refuse: the team's images take its budget. A
    service that does not say (one from before the budget) is left to answer the push itself."""
    try:
        quota = client.quota(competition)
    except ServiceError as exc:
        if exc.status == 404:
            return
        raise
    used, budget = quota.get("registry_bytes"), quota.get("registry_budget_bytes")
    if isinstance(used, int) and isinstance(budget, int) and used >= budget:
        raise HarnessError(
            f"your team's images take {format_size(used)} in the registry of {competition}, its whole budget of "
            f"{format_size(budget)}: the registry takes no more pushes from your team; ask the organizer to free room "
            "(`harness gc`) or raise competition.intake.team_registry_size"
        )


def _submissions(args: argparse.Namespace) -> int:
    client, _ = connect()
    submissions = client.submissions(args.competition)
    if args.json:
        print_json({"submissions": [s.wire() for s in submissions]})
        return 0
    if not submissions:
        print(f"no submissions yet in {args.competition}: `harness push {args.competition} IMAGE` submits one")
        return 0
    rows = [[s.id, s.submitted_at, _state(s), s.verdict or "", _scores(s), _clip(s.message)] for s in submissions]
    print(table(["ID", "SUBMITTED", "STATE", "VERDICT", "PUBLIC SCORES", "MESSAGE"], rows))
    return 0


def _status(args: argparse.Namespace) -> int:
    client, _ = connect()
    submission = (
        wait_for_verdict(client, args.competition, args.id, args.timeout) if args.wait else client.submission(args.competition, args.id)
    )
    if args.json:
        print_json(submission.wire())
    else:
        print(describe(submission))
    return exit_status(submission)


def _cancel(args: argparse.Namespace) -> int:
    client, _ = connect()
    submission = client.cancel(args.competition, args.id)
    if args.json:
        print_json(submission.wire())
    else:
        print(f"{shown(submission.id)}: {_state(submission)}; it will not be evaluated and does not count against your quota")
    return 0


def wait_for_verdict(client: ServiceClient, competition: str, submission_id: str, timeout: float) -> SubmissionView:
    """Poll (0.25 s, doubling up to 2 s) until the submission is final, printing each change of state;
    a service that stops answering is waited for too, until the timeout."""
    deadline, delay, last = time.monotonic() + timeout, POLL_FIRST_S, None
    while True:
        try:
            submission = client.submission(competition, submission_id)
            state = _state(submission)
        except ServiceError as exc:
            if exc.status is not None:
                raise
            submission, state = None, f"waiting for the service ({exc})"
        if state != last:
            progress(f"{shown(submission_id)}: {state}" if last is None else f"{shown(submission_id)}: {last} -> {state}")
            last = state
        if submission is not None and submission.state in FINAL_STATES:
            return submission
        left = deadline - time.monotonic()
        if left <= 0:
            raise HarnessError(
                f"{shown(submission_id)} is still {state} after {timeout:g} s; `harness status {competition} {shown(submission_id)} --wait` waits again"
            )
        time.sleep(min(delay, left))
        delay = min(delay * 2, POLL_MAX_S)


def exit_status(submission: SubmissionView) -> int:
    """0: scored, or not final yet; 1: a failing verdict, withdrawn, disqualified or cancelled."""
    if submission.state in ENDED_STATES:
        return 1
    return 1 if submission.state == "evaluated" and submission.verdict != Verdict.SCORED else 0


def _logs(args: argparse.Namespace) -> int:
    fetch = _local_logs(args.competition, args.id, args.phase) if args.local else _remote_logs(args.competition, args.id, args.phase)
    if args.follow:
        return follow_logs(fetch, args.phase, as_json=args.json)
    logs = fetch(None)
    if logs is None:
        raise HarnessError(f"the {args.phase} phase of {shown(args.id)} has not run yet; --follow waits for it")
    if args.json:
        print_json(logs)
        return 0
    for stream in ("stdout", "stderr"):
        text = shown_log(logs.get(stream) or "")
        print(f"==> {args.phase} {stream} <==")
        print(text, end="" if text.endswith("\n") or not text else "\n")
    if logs.get("truncated"):
        print(f"(the {args.phase} logs are cut: each stream shows its last 64 KiB)")
    if logs.get("running"):
        print(f"(the {args.phase} phase is still running: `--follow` prints its lines as they arrive)")
    return 0


def follow_logs(fetch: LogSource, phase: str, *, as_json: bool = False, poll_s: float = FOLLOW_POLL_S) -> int:
    """Print what a phase's logs gain until it ends (every line once, in order; the harness's "not
    kept" line where its bounded window dropped some), then its verdict; 1 if that is not OK.
    Before the phase starts (queued, or an earlier phase running) it waits."""
    since, waiting = "0:0", False
    while True:
        logs = fetch(since)
        if logs is None:
            if not waiting:
                progress(f"waiting for the {phase} phase to start")
                waiting = True
            time.sleep(poll_s)
            continue
        if as_json:
            print(json.dumps(logs), flush=True)
        else:
            for stream, out in (("stdout", sys.stdout), ("stderr", sys.stderr)):
                if logs.get(stream):
                    out.write(shown_log(logs[stream]))
                    out.flush()
        since = logs["next"]
        if not logs["running"] and not (logs.get("stdout") or logs.get("stderr")):
            break
        if logs["running"]:
            time.sleep(poll_s)
    verdict = logs.get("verdict")
    if not as_json:
        progress(
            f"{phase} ended: {shown(verdict)}"
            if verdict
            else f"{phase} ended; its verdict is not known yet (`harness status` shows it once evaluated)"
        )
    return 0 if verdict in (None, PhaseVerdict.OK) else 1


def _remote_logs(competition: str, submission_id: str, phase: str) -> LogSource:
    client, _ = connect()

    def fetch(since: str | None) -> dict | None:
        try:
            return client.logs(competition, submission_id, phase, since)
        except ServiceError as exc:
            # not run yet: wait, while the submission may still run it (another team's id stays a 404)
            if exc.status != 404 or client.submission(competition, submission_id).state in FINAL_STATES:
                raise
            return None

    return fetch


def _local_logs(competition: str, submission_id: str, phase: str) -> LogSource:
    """The organizer's view, straight from the work directory: the ledger and the run directories."""
    from harness.cli.common import load_competition
    from harness.submissions.ledger import UNFINISHED, Ledger
    from harness.submissions.logs import parse_cursor, submission_logs

    loaded = load_competition(competition, [])
    ledger = Ledger.of(loaded)

    def fetch(since: str | None) -> dict | None:
        submission = ledger.get(submission_id)
        found = submission_logs(loaded.paths, submission, phase, sys.maxsize, None if since is None else parse_cursor(since))
        if found is None:
            if submission.state in UNFINISHED:
                return None
            raise HarnessError(f"the {phase} phase of {submission_id} did not run ({submission.describe()}); no logs to show")
        return {"id": submission_id, "phase": phase, "evaluation": found[0], **found[1].answer()}

    return fetch


def remote_select(args: argparse.Namespace) -> int:
    """``harness select COMPETITION ID...`` without ``--team``: the team's selection on the service."""
    if args.overrides:
        raise HarnessError(f"{args.overrides[0]}: configuration overrides are for the organizer's `harness select --team`")
    client, _ = connect()
    selection = client.select(args.competition, args.ids)
    if args.json:
        print_json(selection)
    else:
        chosen = ", ".join(shown(i) for i in selection.get("selected", [])) or "none"
        limit = selection.get("limit")
        print(f"selected for the final board of {args.competition}: {chosen}" + (f" (at most {limit})" if limit is not None else ""))
    return 0


def _kit_pull(args: argparse.Namespace) -> int:
    from harness.competition.kit import read_kit, verify_kit

    client, _ = connect()
    output = pull_kit(client, args.competition, Path(args.output or f"{args.competition}-kit"))
    kit = read_kit(output)
    verify_kit(output)
    if args.json:
        print_json({"output": str(output), **kit})
    else:
        print(f"{output}: the participant kit of {args.competition}; `harness check --kit {output} --image IMAGE` tries an image on it")
    return 0


def remote_leaderboard(args: argparse.Namespace) -> int:
    """``harness leaderboard COMPETITION --remote``: the service's board (public scores until finalize)."""
    refused = [
        flag
        for flag, given in (("--private/--public", args.private is not None), ("--team", args.team), ("--organizer", args.organizer))
        if given
    ]
    if refused or args.overrides or args.format not in ("table", "json"):
        what = refused[0] if refused else "KEY=VALUE overrides" if args.overrides else f"--format {args.format}"
        raise HarnessError(f"{what} is for the organizer's own board; --remote prints the service's board as a table or JSON")
    client, _ = connect(need_token=False)
    board = client.leaderboard(args.competition)
    if args.format == "json":
        import json

        text = json.dumps(board, indent=2)
    else:
        text = render_board(board)
    if args.output is None:
        print(text)
    else:
        write_text_atomic(args.output, text + "\n", what="the leaderboard")
        progress(f"wrote {args.output}")
    return 0


def render_board(board: dict) -> str:
    kind = "final" if board.get("final") else "public"
    better = "higher" if board.get("higher_is_better") else "lower"
    title = f"{shown(board.get('competition'))}: {kind} leaderboard ({shown(board.get('metric'))}, {better} is better)"
    columns = served_columns(board)  # secondary metrics (shown, not ranked on), interval, beats next, used
    rows = [
        [
            r.get("rank"),
            r.get("team"),
            _number(r.get("score")),
            *(c.text(r) for c in columns),
            r.get("submitted_at"),
            "yours: " + r["submission_id"] if r.get("submission_id") else "",
        ]
        for r in board.get("rows", [])
    ]
    if not rows:
        return title + "\n(no scored submission yet)"
    confidence, resamples = real(board.get("confidence")), board.get("resamples")
    note = legend(confidence, resamples) if confidence is not None and isinstance(resamples, int) else ""
    text = table(["RANK", "TEAM", "SCORE", *(shown(c.header).upper() for c in columns), "SUBMITTED", ""], rows)
    return title + "\n" + text + (f"\n{note}" if note else "")


def describe(submission: SubmissionView) -> str:
    """A submission as ``key  value`` lines for the terminal."""
    fields = [
        ("state", _state(submission)),
        ("team", submission.team),
        ("image", _image_reference(submission)),
        ("message", submission.message),
        ("submitted", submission.submitted_at),
        ("verdict", submission.verdict),
        ("failed phase", submission.failed_phase),
        ("why", submission.verdict_message),
        ("public scores", _scores(submission)),
        ("phases", ", ".join(f"{p} {v.verdict} {_number(v.wall_s)} s" for p, v in submission.phases.items())),
        ("evaluated", submission.evaluated_at),
    ]
    lines = [shown(submission.id)] + [f"  {key:<14}{shown(value)}" for key, value in fields if value not in (None, "")]
    return "\n".join(lines)


def _image_reference(submission: SubmissionView) -> str:
    """The pushed image by its registry digest, once: the service's ``image`` may carry it already."""
    image, digest = submission.image, submission.registry_digest
    if digest and not image.endswith(f"@{digest}"):
        return f"{image}@{digest}"
    return image


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[shown("" if value is None else value) for value in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [headers, *cells])


def _state(submission: SubmissionView) -> str:
    state = submission.state
    if state == "queued" and submission.queue_position is not None:
        return f"queued {submission.queue_position}"
    if state == "running" and submission.phase:
        return f"running {shown(submission.phase)}"
    if state == "evaluated" and submission.verdict:
        failed = f" ({shown(submission.failed_phase)})" if submission.failed_phase else ""
        return f"evaluated {shown(submission.verdict)}{failed}"
    return shown(state)


def _scores(submission: SubmissionView) -> str:
    return ", ".join(f"{name}={_number(value)}" for name, value in submission.public_scores.items())


def _number(value) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if isinstance(value, float) else "" if value is None else str(value)


def _clip(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= MESSAGE_WIDTH else line[: MESSAGE_WIDTH - 1] + "…"
