"""The service's JSON API (docs/service-api.md) over ``requests``: one method per endpoint.

Every failure is one line a participant can act on: the server's ``detail`` (with the status), a
server that does not answer (naming the address), an answer that is not the service's JSON, and
for ``429`` when to try again. Plain ``http`` is refused for any host but this machine unless the
participant allows it (``harness login --allow-http``): the token would cross the network in clear.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import pydantic
import requests

from harness.client.text import shown
from harness.client.wire import SubmissionList, SubmissionView
from harness.util.errors import HarnessError

API = "/api/v1"
TIMEOUT_S = (10, 60)  # connect, read
KIT_CHUNK = 1 << 16
Answer = TypeVar("Answer", bound=pydantic.BaseModel)


class ServiceError(HarnessError):
    """The service refused a call (``status`` is its HTTP status) or could not be reached (``status`` None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def service_url(url: str, *, allow_http: bool = False) -> str:
    """``url`` checked and normalised (no trailing slash): http or https, a host, no user, query or fragment."""
    text = (url or "").strip()
    parts = urlsplit(text if "://" in text else f"//{text}")
    if parts.scheme not in ("http", "https"):
        raise HarnessError(f"service address {shown(url)!r}: give an http:// or https:// URL, e.g. https://competition.example.org")
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise HarnessError(f"service address {shown(url)!r}: give only scheme, host, port and path, e.g. https://competition.example.org")
    try:
        valid_port = parts.port is None or parts.port > 0
    except ValueError:
        valid_port = False
    if not valid_port:
        raise HarnessError(f"service address {shown(url)!r}: the port is not a number from 1 to 65535")
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise HarnessError(
            f"service address {shown(url)!r} is plain http to another machine: the team token would travel unencrypted; "
            "use https, or accept the risk with `harness login URL --token T --allow-http`"
        )
    return text.rstrip("/")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServiceClient:
    """Calls to one competition service as one team (``token``; None for the public endpoints)."""

    def __init__(self, server: str, token: str | None = None, *, allow_http: bool = False, timeout: tuple[float, float] = TIMEOUT_S):
        self.server = service_url(server, allow_http=allow_http)
        self._token = token
        self._timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy or .netrc from the environment gets the token

    def __repr__(self) -> str:
        return f"ServiceClient({self.server!r})"

    # -- endpoints ---------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health", auth=False)

    def whoami(self) -> dict[str, Any]:
        return self._json("GET", "/whoami")

    def submit(self, competition: str, image: str, digest: str, message: str = "") -> SubmissionView:
        body = {"image": image, "digest": digest, "message": message}
        return self._model(SubmissionView, "POST", f"{_c(competition)}/submissions", body=body)

    def submissions(self, competition: str) -> list[SubmissionView]:
        return self._model(SubmissionList, "GET", f"{_c(competition)}/submissions").submissions

    def submission(self, competition: str, submission_id: str) -> SubmissionView:
        return self._model(SubmissionView, "GET", f"{_c(competition)}/submissions/{_segment(submission_id)}")

    def cancel(self, competition: str, submission_id: str) -> SubmissionView:
        """Withdraw the team's own queued submission (its quota back); the submission as it is now."""
        return self._model(SubmissionView, "POST", f"{_c(competition)}/submissions/{_segment(submission_id)}/cancel")

    def logs(self, competition: str, submission_id: str, phase: str, since: str | None = None) -> dict[str, Any]:
        """A phase's logs; with ``since`` (an earlier answer's ``next``) only what came after it."""
        params = {"phase": phase} if since is None else {"phase": phase, "since": since}
        return self._json("GET", f"{_c(competition)}/submissions/{_segment(submission_id)}/logs", params=params)

    def leaderboard(self, competition: str) -> dict[str, Any]:
        return self._json("GET", f"{_c(competition)}/leaderboard", auth=self._token is not None)

    def selection(self, competition: str) -> dict[str, Any]:
        return self._json("GET", f"{_c(competition)}/selection")

    def select(self, competition: str, submission_ids: list[str]) -> dict[str, Any]:
        return self._json("PUT", f"{_c(competition)}/selection", body={"submissions": submission_ids})

    def quota(self, competition: str) -> dict[str, Any]:
        return self._json("GET", f"{_c(competition)}/quota")

    def kit(self, competition: str) -> Iterator[bytes]:
        """The participant kit, a gzip'd tar, in chunks."""
        response = self._send("GET", f"{_c(competition)}/kit", stream=True)
        try:
            yield from response.iter_content(KIT_CHUNK)
        except requests.RequestException as exc:
            raise ServiceError(f"the kit from {self.server} stopped arriving ({type(exc).__name__}); try again") from None
        finally:
            response.close()

    # -- transport ---------------------------------------------------------------------------------
    def _json(self, method: str, path: str, *, body: Any = None, params: dict | None = None, auth: bool = True) -> Any:
        response = self._send(method, path, body=body, params=params, auth=auth)
        data = _parse(response)
        if data is None:
            raise ServiceError(f"{self.server} answered {method} {API}{path} with something that is not JSON: is it a harness service?")
        return data

    def _model(self, model: type[Answer], method: str, path: str, *, body: Any = None) -> Answer:
        """An answer read into its wire model; one line naming what does not fit when it does not."""
        try:
            return model.model_validate(self._json(method, path, body=body))
        except pydantic.ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "the answer"
            raise ServiceError(f"{self.server} answered {method} {API}{path} with no {model.__name__} ({where}: {first['msg']})") from None

    def _send(self, method, path, *, body=None, params=None, auth=True, stream=False) -> requests.Response:
        url = f"{self.server}{API}{path}"
        headers = {"Accept": "application/json"}
        if auth:
            if not self._token:
                raise HarnessError("this call needs your team token: run `harness login URL --token T` (or set HARNESS_TOKEN)")
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self._session.request(
                method, url, json=body, params=params, headers=headers, timeout=self._timeout, stream=stream, allow_redirects=False
            )
        except requests.Timeout:
            raise ServiceError(f"the service at {self.server} did not answer in time; try again later") from None
        except requests.RequestException as exc:
            reason = type(exc).__name__.replace("Error", " error").strip().lower()
            raise ServiceError(
                f"the service at {self.server} does not answer ({reason}); check the address and that it is running"
            ) from None
        if response.status_code >= 400:
            raise self._refusal(response)
        if 300 <= response.status_code < 400:
            raise ServiceError(f"{self.server} redirects to {shown(response.headers.get('Location'))}; log in with that address instead")
        return response

    def _refusal(self, response: requests.Response) -> ServiceError:
        status, data = response.status_code, _parse(response)
        detail = _detail(data)
        if detail is None:
            return ServiceError(
                f"{self.server} answered {status} {shown(response.reason)} with something that is not the service's JSON", status
            )
        if status == 429 and (after := response.headers.get("Retry-After")):
            seconds = after.strip()
            detail = f"{detail} (try again in {seconds} s)" if seconds.isdigit() else f"{detail} (try again after {shown(seconds)})"
        if status == 401:
            detail = f"{detail}: {self.server} did not accept the token; log in again with your team's current token"
        return ServiceError(f"{detail} ({status})", status)


def _c(competition: str) -> str:
    return f"/competitions/{_segment(competition)}"


def _segment(text: str) -> str:
    return quote(str(text), safe="")


def _parse(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, requests.RequestException):
        return None


def _detail(data: Any) -> str | None:
    """The server's ``detail`` as one printable line (FastAPI's validation errors are a list of them)."""
    if not isinstance(data, dict) or "detail" not in data:
        return None
    detail = data["detail"]
    if isinstance(detail, list):
        detail = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
    return shown(" ".join(str(detail).split()))
