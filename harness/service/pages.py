"""The service's pages: the live public leaderboard (``/``) and a team's own page (``/team``: its
submissions with verdict, message and logs), signed in with the team's token.

- Rendered by Jinja2 with autoescaping: every participant string is escaped by the template engine.
  The live parts (``static/pages.js``) poll JSON every ~2 s and write with ``textContent`` only.
- Signing in stores the token in the cookie ``harness_token``: HttpOnly (no script reads it), path
  ``/team``, SameSite=Strict, Secure when the request came over https. The scheme is uvicorn's: it
  honours ``X-Forwarded-Proto`` only from the proxies it trusts (``FORWARDED_ALLOW_IPS``, by
  default 127.0.0.1), so a reverse proxy on this machine that terminates TLS gets Secure cookies
  and a client cannot fake it. The token is never written into a page or a script: the team page
  reads its data from ``/team/data/...``, which takes the cookie.
- A wrong token counts toward the failure limit of the API (the form says so; past it, a 429 page).
- Cross-site requests: besides SameSite=Strict, every POST must come from this site's own page: its
  ``Origin`` (or, where a browser sends none, its ``Referer``) must be this service's own origin
  (scheme and ``Host``; a reverse proxy must pass ``Host`` through). Anything else is a 403.
- Headers: a Content-Security-Policy with no inline script or style (the script and the style come
  from ``/static``), no framing, and ``no-store`` on everything under ``/team``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from harness.leaderboard.columns import legend, served_columns
from harness.service import views
from harness.service.auth import check_token, client_address
from harness.service.context import ServiceContext
from harness.service.errors import ServiceError
from harness.submissions.teams import Team
from harness.util.templates import html_environment

router = APIRouter(include_in_schema=False)

COOKIE = "harness_token"
COOKIE_PATH = "/team"
FORM = "application/x-www-form-urlencoded"
STATIC = {"pages.js": "text/javascript; charset=utf-8", "pages.css": "text/css; charset=utf-8"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
NO_STORE = {"Cache-Control": "no-store"}
WRONG_TOKEN = "That is not a valid team token (a rotated or revoked one no longer works); check it and try again."
ENDED = "Your sign-in has ended (the team's token was rotated or revoked); sign in with the new token."
CROSS_SITE = "This form only works from this site's own page; open it here and send it again."


@cache
def environment() -> jinja2.Environment:
    env = html_environment("harness.service")
    env.filters.update(state=state_label, when=short_time, score=score_text, scores=scores_text, logs_note=logs_note)
    env.globals.update(served_columns=served_columns, legend=legend)
    return env


def state_label(view: dict[str, Any]) -> str:
    """``queued #2``, ``running train``, ``evaluated`` (``pages.js`` writes the same)."""
    if view.get("queue_position"):
        return f"{view['state']} #{view['queue_position']}"
    return f"{view['state']} {view['phase']}" if view.get("phase") else view["state"]


def logs_note(logs: dict[str, Any] | None, phase: str, view: dict[str, Any]) -> str:
    """The line above a phase's logs (``pages.js`` writes the same)."""
    if logs is None:
        return f"The {phase} phase " + ("left no logs." if phase in view["phases"] else "has not run (yet).")
    notes = ["Running: its logs grow as lines arrive."] if logs["running"] else []
    return " ".join(notes + (["Only the head and the tail of each stream are kept."] if logs["truncated"] else []))


def short_time(text: str | None) -> str:
    return (text or "")[:16].replace("T", " ")


def score_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.5f}"


def scores_text(scores: dict[str, float]) -> str:
    return ", ".join(f"{name} {score_text(value)}" for name, value in scores.items())


@router.get("/")
def leaderboard_page(request: Request) -> Response:
    ctx = _ctx(request)
    poll = f"/api/v1/competitions/{ctx.name}/leaderboard"
    return _render(request, "leaderboard.html", page="leaderboard", poll=poll, board=views.public_leaderboard(ctx))


@router.get("/team")
def team_page(request: Request) -> Response:
    team = _signed_in(request)
    if isinstance(team, Response):
        return team
    listing = views.team_submissions(_ctx(request), team).wire()
    return _render(request, "team.html", private=True, page="team", poll="/team/data/submissions", team=team, **listing)


@router.get("/team/submissions/{submission_id}")
def submission_page(request: Request, submission_id: str) -> Response:
    team = _signed_in(request)
    if isinstance(team, Response):
        return team
    try:
        data = _submission_data(_ctx(request), team, submission_id)
    except ServiceError as exc:
        return _error_page(request, exc, team=team)
    poll = f"/team/data/submissions/{submission_id}"
    return _render(request, "submission.html", private=True, page="submission", poll=poll, team=team, phases=views.PHASES, **data)


@router.get("/team/data/submissions")
def submissions_data(request: Request) -> JSONResponse:
    """The team page's live data: the API's listing, for the cookie's team."""
    ctx = _ctx(request)
    return JSONResponse(views.team_submissions(ctx, _cookie_team(request)).wire(), headers=NO_STORE)


@router.get("/team/data/submissions/{submission_id}")
def submission_data(request: Request, submission_id: str) -> JSONResponse:
    """A submission page's live data: ``{"submission": Submission, "logs": {phase: logs or null}}``."""
    ctx = _ctx(request)
    return JSONResponse(_submission_data(ctx, _cookie_team(request), submission_id), headers=NO_STORE)


@router.post("/team/sign-in")
async def sign_in(request: Request) -> Response:
    if not _same_origin(request):
        return _error_page(request, ServiceError(403, CROSS_SITE))
    token = await _form_token(request)
    if token is None:
        return _sign_in_form(request, 400, "The sign-in was not sent as the form on this page; use the form and send it again.")
    try:
        await run_in_threadpool(check_token, _ctx(request), token, client_address(request))
    except ServiceError as exc:
        return _refused(request, exc, WRONG_TOKEN)
    response = RedirectResponse("/team", status_code=303, headers=NO_STORE)
    response.set_cookie(COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_https(request))
    return response


@router.post("/team/sign-out")
def sign_out(request: Request) -> Response:
    if not _same_origin(request):
        return _error_page(request, ServiceError(403, CROSS_SITE))
    return _forget(RedirectResponse("/team", status_code=303, headers=NO_STORE), request)


@router.get("/static/{name}")
def static(request: Request, name: str) -> Response:
    """The pages' script and style sheet (nothing else is served from here)."""
    if name not in STATIC:
        return _error_page(request, ServiceError(404, f"there is no static file {name!r}"))
    body = files("harness.service").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


def _ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx


def _cookie_team(request: Request) -> Team:
    """The cookie's team; ``ServiceError`` (401, counted, or 429) otherwise."""
    return check_token(_ctx(request), request.cookies.get(COOKIE), client_address(request))


def _signed_in(request: Request) -> Team | Response:
    """The signed-in team, or the page to show instead: the sign-in form (no cookie; or a cookie
    whose token no longer works, which is said, counted and cleared) or the 429 page."""
    if not request.cookies.get(COOKIE):
        return _sign_in_form(request)
    try:
        return _cookie_team(request)
    except ServiceError as exc:
        return _forget(_refused(request, exc, ENDED), request)


def _submission_data(ctx: ServiceContext, team: Team, submission_id: str) -> dict[str, Any]:
    submission = views.team_submission(ctx, team, submission_id).wire()
    return {"submission": submission, "logs": {phase: _phase_logs(ctx, team, submission_id, phase) for phase in views.PHASES}}


def _phase_logs(ctx: ServiceContext, team: Team, submission_id: str, phase: str) -> dict[str, Any] | None:
    """The phase's logs, or None while it has not run."""
    try:
        return views.phase_logs(ctx, team, submission_id, phase)
    except ServiceError as exc:
        if exc.status == 404:
            return None
        raise


def _same_origin(request: Request) -> bool:
    """Whether a POST came from this site's own page (its Origin, else its Referer)."""
    source = request.headers.get("origin")
    if source is None:
        referer = urlsplit(request.headers.get("referer", ""))
        source = f"{referer.scheme}://{referer.netloc}" if referer.netloc else ""
    here = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return bool(source) and source.lower() == here.lower()


async def _form_token(request: Request) -> str | None:
    """The ``token`` field of an urlencoded form (the body is already capped), or None when the
    body is not such a form. A form without the field is an empty token: a failed sign-in."""
    if request.headers.get("content-type", "").partition(";")[0].strip().lower() != FORM:
        return None
    try:
        fields = parse_qs((await request.body()).decode("ascii"), max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return None
    return (fields.get("token") or [""])[0].strip()


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def _forget(response: Response, request: Request) -> Response:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_https(request))
    return response


def _refused(request: Request, exc: ServiceError, line: str) -> Response:
    """A 429 as its page; a 401 as the sign-in form saying ``line``."""
    if exc.status == 401:
        return _sign_in_form(request, 401, line)
    return _error_page(request, exc)


def _sign_in_form(request: Request, status: int = 200, error: str | None = None) -> Response:
    return _render(request, "sign_in.html", status, private=True, page="sign-in", error=error)


def _error_page(request: Request, exc: ServiceError, team: Team | None = None) -> Response:
    response = _render(request, "error.html", exc.status, private=True, page="error", code=exc.status, detail=exc.detail, team=team)
    response.headers.update(exc.headers)
    return response


def _render(request: Request, template: str, status: int = 200, *, private: bool = False, **values: Any) -> HTMLResponse:
    """The page, with the security headers; ``private`` (a team's) is never stored by any cache."""
    values.setdefault("team", None)
    html = environment().get_template(template).render(title=_ctx(request).competition.settings.competition.title, **values)
    headers = {**SECURITY, **(NO_STORE if private else {"Cache-Control": "no-cache"})}
    return HTMLResponse(html, status_code=status, headers=headers)
