"""The service's pages, from outside: the real `harness serve` on loopback (one for the module), its
registry, a tiny image pushed through the docker SDK; plain HTTP for headers, escaping and the
hostile requests; a real headless Chromium (Debian's, driven by Playwright) for the live pages.

The failure window is shortened to 4 s so the rate-limit test can see the 429 and then wait it out;
the competition shows two secondary metrics, each a column of the board."""

from __future__ import annotations

import io
import json
import platform
import re
import struct
import tarfile
import time
from html.parser import HTMLParser

import pytest
import requests

from harness.service.pages import CROSS_SITE, ENDED, WRONG_TOKEN
from tests.browser import launched_chromium
from tests.service_helpers import harness, push, running_service, tiny_image

WINDOW_S = 4
MAX_FAILURES = 10
ALPHA = 'Alpha <script>alert(3)</script> & "Co"'  # no "=": `harness teams add` would read it as an override
MESSAGE = "<script>alert(1)</script> & <img src=x onerror=alert(2)> \"quoted\" 'single'"
VERDICT_TIMEOUT_MS = 240_000
OTHERS = ["macro_f1", "balanced_accuracy"]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    overrides = (f"service.sign_in.window_s={WINDOW_S}", f"competition.metrics.others=[{','.join(OTHERS)}]")
    with running_service(tmp_path_factory.mktemp("pages"), *overrides) as running:
        yield running


@pytest.fixture(scope="module")
def teams(service):
    return {"Alpha": service.add_team(ALPHA), "Beta": service.add_team("Beta")}


@pytest.fixture(scope="module")
def alpha_submission(service, teams, docker_client):
    """A callable: Alpha's submission of the tiny image with the hostile message, made on the first
    call (the browser test calls it once it is signed in, to see the submission appear)."""
    made: dict[str, str] = {}

    def submission_id() -> str:
        if "id" not in made:
            alpha = teams["Alpha"]
            reference = f"{service.registry}/{alpha['namespace']}/tiny:1"
            tiny_image(docker_client, reference)
            digest = push(docker_client, reference, alpha)
            answer = service.call("POST", "c/submissions", alpha["token"], json={"image": reference, "digest": digest, "message": MESSAGE})
            assert answer.status_code == 201, answer.text
            made["id"] = answer.json()["id"]
        return made["id"]

    return submission_id


def talking_program(text: bytes) -> bytes:
    """A static x86-64 Linux program (a bare ELF, no libc) that writes ``text`` to stdout and to
    stderr and exits 3: something a FROM-scratch image can run that leaves logs."""
    base, code_at = 0x400000, 64 + 56
    code = b""
    for fd in (1, 2):  # write(fd, text, len): mov eax,1; mov edi,fd; lea rsi,[rip+text]; mov edx,len; syscall
        code += (
            b"\xb8\x01\x00\x00\x00"
            + b"\xbf"
            + struct.pack("<I", fd)
            + b"\x48\x8d\x35"
            + b"TEXT"
            + b"\xba"
            + struct.pack("<I", len(text))
            + b"\x0f\x05"
        )
    code += b"\xb8\x3c\x00\x00\x00\xbf\x03\x00\x00\x00\x0f\x05"  # exit(3)
    while b"TEXT" in code:  # each lea's displacement: from the end of the lea to the text after the code
        at = code.index(b"TEXT")
        code = code[:at] + struct.pack("<i", len(code) - (at + 4)) + code[at + 4 :]
    size = code_at + len(code) + len(text)
    header = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01", 2, 0x3E, 1, base + code_at, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return header + segment + code + text


def talking_image(docker_client, tag: str, text: bytes) -> None:
    """A FROM-scratch image whose entrypoint writes ``text`` to both streams and fails."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = b'FROM scratch\nCOPY talk /talk\nENTRYPOINT ["/talk"]\n'
        for name, data, mode in (("Dockerfile", dockerfile, 0o644), ("talk", talking_program(text), 0o755)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    docker_client.images.build(fileobj=context, custom_context=True, tag=tag, network_mode="none", rm=True)


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as launched:
        yield launched


class Document(HTMLParser):
    """Every element with its attributes, the text of the elements marked ``data-field``, and of the header cells."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.fields: dict[str, list[str]] = {}
        self.headers: list[str] = []
        self._open: list[str] = []
        self._header = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if tag == "th":
            self.headers.append("")
            self._header = True
        if attributes.get("data-field"):
            self.fields.setdefault(attributes["data-field"], []).append("")
            self._open.append(attributes["data-field"])
        elif self._open:
            self._open.append("")

    def handle_endtag(self, tag):
        self._header = self._header and tag != "th"
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._header:
            self.headers[-1] += data
        for field in self._open:
            if field:
                self.fields[field][-1] += data


def signed_in(service, team) -> requests.Session:
    """A session signed in through the form (the cookie the service set, nothing else)."""
    session = requests.Session()
    answer = session.post(
        f"{service.url}/team/sign-in", data={"token": team["token"]}, headers={"Origin": service.url}, allow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/team", answer.text
    return session


def assert_page_headers(answer: requests.Response, *, private: bool) -> None:
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert answer.headers["x-frame-options"] == "DENY" and answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-type"].startswith("text/html")
    assert ("no-store" in answer.headers["cache-control"]) == private


def assert_no_markup_from_participants(doc: Document) -> None:
    """Scripts only from /static, no inline style, no handler attribute, no image: nothing sent became markup."""
    for tag, attributes in doc.elements:
        assert tag not in ("img", "style", "iframe"), tag
        assert tag != "script" or attributes.get("src") == "/static/pages.js", attributes
        assert not any(name.startswith("on") or name == "style" for name in attributes), (tag, attributes)


def test_pages_escape_participant_strings_and_send_their_headers(service, teams, alpha_submission):
    sid, alpha = alpha_submission(), teams["Alpha"]
    public = requests.get(f"{service.url}/", timeout=30)
    assert public.status_code == 200
    assert_page_headers(public, private=False)
    assert_no_markup_from_participants(Document(public.text))

    form = requests.get(f"{service.url}/team", timeout=30)
    assert form.status_code == 200 and 'action="/team/sign-in"' in form.text
    assert_page_headers(form, private=True)

    session = signed_in(service, alpha)
    for path in ("/team", f"/team/submissions/{sid}"):
        page = session.get(service.url + path, timeout=30)
        assert page.status_code == 200, path
        assert_page_headers(page, private=True)
        doc = Document(page.text)
        assert_no_markup_from_participants(doc)
        assert doc.fields["message"] == [MESSAGE], path  # the message, as text, exactly
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
        assert alpha["token"] not in page.text
    assert ALPHA not in page.text and "Alpha &lt;script&gt;alert(3)&lt;/script&gt; &amp; &#34;Co&#34;" in page.text

    data = session.get(f"{service.url}/team/data/submissions", timeout=30)
    assert data.headers["cache-control"] == "no-store" and data.json()["submissions"][0]["message"] == MESSAGE
    assert requests.get(f"{service.url}/team/data/submissions", timeout=30).status_code == 401  # no cookie, no data

    script = requests.get(f"{service.url}/static/pages.js", timeout=30)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text and "textContent" in script.text and alpha["token"] not in script.text
    assert requests.get(f"{service.url}/static/pages.css", timeout=30).headers["content-type"].startswith("text/css")
    for name in ("secrets.txt", "..%2Fpages.py", "%2e%2e%2Fapp.py"):
        assert requests.get(f"{service.url}/static/{name}", timeout=30).status_code == 404, name


def test_sign_in_sets_a_strict_httponly_cookie_secure_behind_https(service, teams):
    token = teams["Beta"]["token"]
    plain = requests.post(f"{service.url}/team/sign-in", data={"token": token}, headers={"Origin": service.url}, allow_redirects=False)
    cookie = plain.headers["set-cookie"]
    assert plain.status_code == 303 and plain.headers["cache-control"] == "no-store"
    assert cookie.startswith(f"harness_token={token};") and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/team" in cookie
    assert "Secure" not in cookie
    # a TLS-terminating proxy on this machine (uvicorn trusts X-Forwarded-Proto from 127.0.0.1 only)
    https_origin = service.url.replace("http://", "https://")
    proxied = requests.post(
        f"{service.url}/team/sign-in",
        data={"token": token},
        headers={"Origin": https_origin, "X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    assert proxied.status_code == 303 and "Secure" in proxied.headers["set-cookie"]
    # the page behind https, sent with an http Origin: another origin
    mixed = requests.post(
        f"{service.url}/team/sign-in",
        data={"token": token},
        headers={"Origin": service.url, "X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    assert mixed.status_code == 403 and "set-cookie" not in mixed.headers


def test_cross_site_and_malformed_posts_are_refused(service, teams):
    token = teams["Beta"]["token"]
    url = f"{service.url}/team/sign-in"
    for headers in ({"Origin": "http://attacker.invalid"}, {"Origin": "null"}, {}, {"Referer": "http://attacker.invalid/page"}):
        answer = requests.post(url, data={"token": token}, headers=headers, allow_redirects=False)
        assert answer.status_code == 403 and "set-cookie" not in answer.headers, headers
        assert Document(answer.text).fields == {"error": [CROSS_SITE]}
        assert_page_headers(answer, private=True)
    referred = requests.post(url, data={"token": token}, headers={"Referer": f"{service.url}/team"}, allow_redirects=False)
    assert referred.status_code == 303  # a browser that sends no Origin: its Referer stands in
    out = requests.post(f"{service.url}/team/sign-out", headers={"Origin": "http://attacker.invalid"}, allow_redirects=False)
    assert out.status_code == 403 and "set-cookie" not in out.headers
    same = {"Origin": service.url}
    as_json = requests.post(url, json={"token": token}, headers=same, allow_redirects=False)
    assert as_json.status_code == 400 and "set-cookie" not in as_json.headers  # not a form: said, not counted
    too_big = requests.post(url, data={"token": "x" * 70_000}, headers=same, allow_redirects=False)
    assert too_big.status_code == 413
    bad_bytes = requests.post(url, data=b"token=\xff\xfe", headers={**same, "Content-Type": "application/x-www-form-urlencoded"})
    assert bad_bytes.status_code == 400


def test_another_teams_submission_is_a_404_page_and_a_revoked_cookie_ends(service, teams, alpha_submission):
    sid = alpha_submission()
    beta = signed_in(service, teams["Beta"])
    for path in (f"/team/submissions/{sid}", "/team/submissions/sub-000000000000"):
        page = beta.get(service.url + path, timeout=30)
        assert page.status_code == 404 and "your team has no submission" in page.text and MESSAGE not in page.text, path
        assert_page_headers(page, private=True)
    assert beta.get(f"{service.url}/team/data/submissions/{sid}", timeout=30).status_code == 404
    assert beta.get(f"{service.url}/team/data/submissions", timeout=30).json() == {"submissions": []}
    assert signed_in(service, teams["Alpha"]).get(f"{service.url}/team/submissions/{sid}", timeout=30).status_code == 200

    gone = service.add_team("Gone")
    session = signed_in(service, gone)
    harness(service.home, "teams", "revoke", "digits", "Gone")
    ended = session.get(f"{service.url}/team", timeout=30, allow_redirects=False)
    assert ended.status_code == 401 and Document(ended.text).fields == {"error": [ENDED]} and 'action="/team/sign-in"' in ended.text
    assert 'harness_token=""' in ended.headers["set-cookie"] and "Max-Age=0" in ended.headers["set-cookie"]
    assert session.get(f"{service.url}/team/data/submissions", timeout=30).status_code == 401


def wait_out_failures(service, team) -> None:
    """Until the address's failures have left the window (a valid call answers again)."""
    deadline = time.monotonic() + WINDOW_S + 30
    while service.call("GET", "/api/v1/whoami", team["token"]).status_code == 429:
        assert time.monotonic() < deadline, "the failure window never passed"
        time.sleep(0.5)


def test_browser_signs_in_sees_the_submission_appear_and_its_verdict_arrive(service, teams, alpha_submission, browser):
    alpha = teams["Alpha"]
    context = browser.new_context()
    dialogs: list[str] = []
    context.on("page", lambda page: page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss())))
    board = context.new_page()
    board.goto(f"{service.url}/")
    assert board.locator("#board-empty").is_visible()

    team_page = context.new_page()
    team_page.goto(f"{service.url}/team")
    team_page.fill("#token", alpha["token"])
    team_page.click("#sign-in")
    team_page.wait_for_url(f"{service.url}/team")
    assert team_page.text_content("#team-name") == ALPHA
    (cookie,) = [c for c in context.cookies() if c["name"] == "harness_token"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/team"
    assert team_page.evaluate("document.cookie") == ""  # no script can read it
    for page in (board, team_page):
        page.evaluate("window.notReloaded = true")

    sid = alpha_submission()  # submitted through the API while the page is open
    row = team_page.locator(f'tr[data-id="{sid}"]')
    row.wait_for(timeout=30_000)
    row.locator('[data-field="verdict"]', has_text="RUNTIME_ERROR").wait_for(timeout=VERDICT_TIMEOUT_MS)
    assert row.locator('[data-field="message"]').text_content() == MESSAGE
    assert row.locator('[data-field="state"]').text_content() == "evaluated"
    assert "no-such-program" in row.locator('[data-field="verdict_message"]').text_content()
    board.locator('#board-rows [data-field="team"]', has_text="Alpha").wait_for(timeout=30_000)  # the board updated too
    assert board.locator('#board-rows [data-field="team"]').all_text_contents() == [ALPHA]
    assert board.locator('#board-rows [data-field="score"]').all_text_contents() == ["–"]
    for name in OTHERS:  # the live row has a cell per secondary metric, blank (as on every board: columns.score_text)
        assert board.locator(f'#board-rows [data-field="others.{name}"]').all_text_contents() == [""], name
    for page in (board, team_page):
        assert page.evaluate("window.notReloaded") is True
        assert page.evaluate("document.body.dataset.pwned") is None and page.locator("main img, main script").count() == 0
        assert alpha["token"] not in page.content()

    team_page.click(f'tr[data-id="{sid}"] a')
    team_page.wait_for_url(f"{service.url}/team/submissions/{sid}")
    details = team_page.locator("#submission")
    assert details.locator('[data-field="message"]').text_content() == MESSAGE
    assert details.locator('[data-field="verdict"]').text_content() == "RUNTIME_ERROR"
    assert details.locator('[data-field="failed_phase"]').text_content() == "train"
    # the tiny image's program does not exist: train ran (and failed) without a line of output
    assert service.call("GET", f"c/submissions/{sid}/logs?phase=train", alpha["token"]).status_code == 404
    assert team_page.locator('[data-phase="train"] [data-field="note"]').text_content() == "The train phase left no logs."
    assert team_page.locator('[data-phase="infer"] [data-field="note"]').text_content() == "The infer phase has not run (yet)."
    assert alpha["token"] not in team_page.content() and dialogs == []

    # a page elsewhere posting to the service: refused, the cookie stays, the team stays signed in
    attacker = context.new_page()
    forms = (
        f'<form id="in" method="post" action="{service.url}/team/sign-in"><input name="token" value="{teams["Beta"]["token"]}">'
        f'<button id="send-in">in</button></form><form method="post" action="{service.url}/team/sign-out"><button id="send-out">out</button></form>'
    )
    attacker.route("http://attacker.invalid/**", lambda route: route.fulfill(status=200, content_type="text/html", body=forms))
    for button in ("#send-in", "#send-out"):
        attacker.goto("http://attacker.invalid/")
        with attacker.expect_navigation() as sent:
            attacker.click(button)
        assert sent.value.status == 403 and CROSS_SITE in attacker.text_content("#error"), button
    assert [c["value"] for c in context.cookies() if c["name"] == "harness_token"] == [alpha["token"]]
    team_page.goto(f"{service.url}/team")
    assert team_page.text_content("#team-name") == ALPHA

    team_page.click("#sign-out")
    team_page.wait_for_url(f"{service.url}/team")
    assert team_page.locator("#token").is_visible()
    assert not [c for c in context.cookies() if c["name"] == "harness_token"]
    context.close()


LOG = "<script>alert(4)</script> <img src=x onerror=alert(5)> </pre><b>bold</b> &amp; \u00e9\n"


def dom_text(page, selector: str) -> str:
    return page.locator(selector).text_content()


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the talking program is x86-64 machine code")
def test_logs_are_shown_as_text_and_arrive_on_the_open_page(service, teams, docker_client, browser):
    """The submission's page is opened while it waits (evaluation paused): nothing has run. The
    evaluation then runs server-side; the open page, never reloaded, shows the verdict and the
    logs as they arrive, as text."""
    beta = teams["Beta"]
    reference = f"{service.registry}/{beta['namespace']}/talk:1"
    talking_image(docker_client, reference, LOG.encode())
    digest = push(docker_client, reference, beta)
    context = browser.new_context()
    dialogs: list[str] = []
    tab = context.new_page()
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    tab.goto(f"{service.url}/team")
    tab.fill("#token", beta["token"])
    tab.click("#sign-in")
    tab.wait_for_url(f"{service.url}/team")
    train = '[data-phase="train"] '
    harness(service.home, "service", "pause", "digits", "evaluation")  # the page opens before anything has run
    try:
        answer = service.call("POST", "c/submissions", beta["token"], json={"image": reference, "digest": digest, "message": "talks"})
        assert answer.status_code == 201, answer.text
        sid = answer.json()["id"]
        tab.goto(f"{service.url}/team/submissions/{sid}")
        # the premise: the page the server rendered holds no verdict and no logs
        assert dom_text(tab, '#submission [data-field="state"]').startswith("queued")
        assert dom_text(tab, '#submission [data-field="verdict"]') == dom_text(tab, '#submission [data-field="failed_phase"]') == ""
        assert dom_text(tab, train + '[data-field="stdout"]') == dom_text(tab, train + '[data-field="stderr"]') == ""
        assert dom_text(tab, train + '[data-field="note"]') == "The train phase has not run (yet)."
        tab.evaluate("window.notReloaded = true")
    finally:
        harness(service.home, "service", "resume", "digits", "evaluation")
    deadline = time.monotonic() + VERDICT_TIMEOUT_MS / 1000
    while service.call("GET", f"c/submissions/{sid}", beta["token"]).json()["state"] != "evaluated":
        assert time.monotonic() < deadline, f"{sid} was not evaluated: {service.log.read_text()[-2000:]}"
        time.sleep(0.5)
    logs = service.call("GET", f"c/submissions/{sid}/logs?phase=train", beta["token"]).json()
    assert logs["stdout"] == LOG and logs["stderr"] == LOG  # the program ran and was heard

    # the open page catches up by itself (its script polls about every 2 s)
    tab.locator('#submission [data-field="verdict"]', has_text="RUNTIME_ERROR").wait_for(timeout=60_000)
    for stream in ("stdout", "stderr"):
        tab.wait_for_function(
            "([sel, text]) => document.querySelector(sel).textContent === text", arg=[train + f'[data-field="{stream}"]', LOG]
        )
    assert dom_text(tab, '#submission [data-field="state"]') == "evaluated"
    assert dom_text(tab, '#submission [data-field="failed_phase"]') == "train"
    assert dom_text(tab, train + '[data-field="note"]') == ""
    assert tab.evaluate("window.notReloaded") is True
    assert tab.locator("main b, main img, main script").count() == 0 and dialogs == []
    context.close()

    # and the page as the server renders it now: the same text, no markup
    page = signed_in(service, beta).get(f"{service.url}/team/submissions/{sid}", timeout=30)
    doc = Document(page.text)
    assert_no_markup_from_participants(doc)
    assert doc.fields["stdout"][0] == LOG and doc.fields["stderr"][0] == LOG  # train's, as text
    assert "</pre><b>" not in page.text


def test_browser_wrong_token_shows_the_form_then_429_but_the_right_one_signs_in(service, teams, browser):
    """Failures throttle the guesser, never a valid token: past the budget a wrong token gets the
    429 page, and the right one, from the same address, still signs in."""
    time.sleep(WINDOW_S)  # the earlier tests' failures leave the window: this one counts from zero
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{service.url}/team")
    wrong = teams["Beta"]["token"][:-4] + "AAAA"
    page.fill("#token", wrong)
    with page.expect_navigation() as sent:
        page.click("#sign-in")
    assert sent.value.status == 401 and page.text_content("#error") == WRONG_TOKEN and page.locator("#token").is_visible()
    for _ in range(MAX_FAILURES - 1):  # the rest of the budget, from the same address
        again = requests.post(f"{service.url}/team/sign-in", data={"token": wrong}, headers={"Origin": service.url})
        assert again.status_code == 401 and Document(again.text).fields == {"error": [WRONG_TOKEN]}
    page.fill("#token", wrong)  # again, over the budget
    with page.expect_navigation() as sent:
        page.click("#sign-in")
    assert sent.value.status == 429 and int(sent.value.headers["retry-after"]) <= WINDOW_S
    assert re.fullmatch(r"too many failed sign-ins from 127\.0\.0\.1; try again in \d+ s", page.text_content("#error"))
    assert not context.cookies()
    page.goto(f"{service.url}/team")
    page.fill("#token", teams["Beta"]["token"])  # the right one, from the same throttled address
    with page.expect_navigation() as sent:
        page.click("#sign-in")
    assert sent.value.status == 200 and page.url == f"{service.url}/team" and [c["name"] for c in context.cookies()]
    context.close()
    wait_out_failures(service, teams["Beta"])


def test_the_api_docs_load_nothing_from_outside_the_service(service, browser):
    """/docs is Swagger UI served by the service itself (an organizer's service may be offline): in
    Chromium the page renders the API's operations from /openapi.json, and every request it made
    went to the service's own origin."""
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(f"{service.url}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=60_000)
        paths = {text.strip() for text in page.locator(".opblock-summary-path").all_inner_texts()}
    finally:
        page.close()
    assert {"/api/v1/health", "/api/v1/competitions/{c}/leaderboard", "/api/v1/competitions/{c}/kit"} <= {
        p.replace("\u200b", "") for p in paths
    }, paths
    assert f"{service.url}/docs/assets/swagger-ui-bundle.js" in requested and f"{service.url}/openapi.json" in requested
    assert [url for url in requested if not url.startswith(service.url + "/")] == []


def test_the_public_board_has_a_column_per_secondary_metric(service):
    """A scored record (written as a round would: the file, then the ledger's listing): the board's
    JSON and its page show its secondary scores, public ones only, each under its own header."""
    from test_record import make_record

    from harness.submissions.ledger import EVALUATED, Ledger, Submission

    public = {"accuracy": 0.25, "macro_f1": 0.8125, "balanced_accuracy": 0.75}  # ranked below the evidence test's rows
    private = {"accuracy": 0.5, "macro_f1": 0.25, "balanced_accuracy": 0.125}
    record = make_record("ev-others", "sub-0123456789ab", "Gamma", "SCORED", {"public": public, "private": private})
    records = service.home / "competitions" / "digits" / "records"
    records.mkdir(parents=True, exist_ok=True)
    (records / "ev-others.json").write_text(json.dumps(record))
    Ledger(service.home, "digits").save(
        Submission("sub-0123456789ab", "digits", "Gamma", "img", "sha256:" + "0" * 64, "2026-01-01T00:00:00Z", EVALUATED, ["ev-others"])
    )
    deadline = time.monotonic() + 30  # the board is rebuilt at most every 2 s
    while True:
        board = service.call("GET", "c/leaderboard").json()
        if any(row["team"] == "Gamma" for row in board["rows"]) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert board["others"] == [{"name": "macro_f1", "higher_is_better": True}, {"name": "balanced_accuracy", "higher_is_better": True}]
    (gamma,) = [row for row in board["rows"] if row["team"] == "Gamma"]
    assert gamma["others"] == {"macro_f1": 0.8125, "balanced_accuracy": 0.75}

    page = Document(requests.get(f"{service.url}/", timeout=30).text)
    at = page.headers.index("Score")
    assert page.headers[at : at + 3] == ["Score", *OTHERS]
    (row,) = [n for n, team in enumerate(page.fields["team"]) if team == "Gamma"]
    assert [page.fields[f"others.{name}"][row] for name in OTHERS] == ["0.81250", "0.75000"]


def test_the_board_shows_each_scores_interval_its_tie_mark_and_what_it_used(service, browser):
    """Three scored submissions written into the running service's records (their predictions where a
    round leaves them): the API, the server's page and the live page in Chromium (pages.js) show the
    same intervals, the pair one test row apart tied, the wide one not, and what each used."""
    from test_board_evidence import add_scored, phases, public_ids, wrong_on

    from harness.competition.config import load_settings
    from harness.competition.core import Competition
    from harness.leaderboard.columns import beats_next_text, interval_text

    digits = Competition.load(load_settings("digits", []), service.home)
    public = public_ids(digits)
    add_scored(digits, "Near", wrong_on(set(public[:10])), phases=phases(12.0, gpu=True))
    add_scored(digits, "Nearer", wrong_on(set(public[:11])), phases=phases(3.0))
    add_scored(digits, "Far", wrong_on(set(public[:60])), phases=phases(3.0))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = service.call("GET", "c/leaderboard").json()["rows"]
        if len([r for r in rows if r["low"] is not None]) == 3:
            break
        time.sleep(0.5)
    ranked = [r for r in rows if r["rank"] is not None and r["team"] in ("Near", "Nearer", "Far")]  # the module's service has others
    assert [r["team"] for r in ranked] == ["Near", "Nearer", "Far"] and [r["rank"] for r in ranked] == [1, 2, 3]
    assert [r["tied_with_next"] for r in ranked] == [True, False, None]
    assert all(r["low"] <= r["score"] <= r["high"] for r in ranked)
    assert ranked[0]["resources"]["gpu_s"] == 1.0 and ranked[1]["resources"]["train_wall_s"] == 3.0

    served = Document(requests.get(f"{service.url}/", timeout=30).text).fields
    assert served["beats_next"][:3] == [beats_next_text(ranked[0]["beats_next"], True), beats_next_text(ranked[1]["beats_next"], False), ""]
    assert served["beats_next"][0].endswith("% tied") and served["interval"][0] == interval_text(ranked[0]["low"], ranked[0]["high"])
    assert served["used"][0] == "train 12.0 s · infer 0.5 s · CPU 2.3 s · memory 300.0 MiB · GPU 1.0 s · GPU memory 3.0 GiB"
    page = browser.new_page()
    try:
        page.goto(f"{service.url}/")
        page.evaluate("document.getElementById('board-rows').replaceChildren()")  # what follows is pages.js's own writing
        page.locator('#board-rows [data-field="team"]', has_text="Far").wait_for(timeout=30_000)
        for field in ("interval", "beats_next", "used", "score", *(f"others.{name}" for name in OTHERS)):
            assert page.locator(f'#board-rows [data-field="{field}"]').all_text_contents() == served[field], field
        assert page.locator("#board-rows td.tied").count() == 1
    finally:
        page.close()
