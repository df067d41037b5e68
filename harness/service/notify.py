"""The webhooks' delivery worker: a thread of ``harness serve`` that sends the outbox's due rows.

Rounds only queue notifications (``harness.records.outbox``); this thread POSTs each due row's
JSON body to its URL, signed with the secret from the service's environment variable the webhook
names (``secret_env``):

    X-Harness-Event: verdict
    X-Harness-Delivery: dlv-…            (the row's id: a receiver de-duplicates on it)
    X-Harness-Timestamp: 1735689600      (seconds since 1970, when this attempt was sent)
    X-Harness-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>

A 2xx answer is delivered. Anything else (no connection, no answer within ``timeout_s``, another
status, a redirect: redirects are not followed) is retried after ``first_retry_s`` doubling up to
``max_retry_s``, at most ``max_attempts`` times, then the row is failed with the last error
(``harness webhooks list`` shows it, ``harness webhooks retry`` sends it again). One attempt at a
time: a receiver that hangs holds the others back by ``timeout_s`` at most, and never a round,
which runs in the evaluator process and only writes rows.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import threading
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager

import anyio
import requests

from harness.client.text import shown
from harness.records.outbox import Delivery, Outbox, webhooks
from harness.service.context import ServiceContext
from harness.util.errors import HarnessError

RESPONSE_PREVIEW = 200  # characters of a failed answer's body kept in the row's last error


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` with ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class Notifier:
    """Sends the due deliveries of ``outbox`` until stopped; ``settings`` is ``service.notify``."""

    def __init__(self, outbox: Outbox, settings, environ: Mapping[str, str] = os.environ) -> None:
        self.outbox, self.settings, self.environ = outbox, settings, environ
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="harness-notify", daemon=True)
        self._session = requests.Session()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the attempt under way (at most ``timeout_s``); what is pending stays in the outbox."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._session.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.deliver_due()
            except HarnessError as exc:  # the database locked or damaged: say so, look again
                print(f"harness serve: webhooks: {exc}", file=sys.stderr, flush=True)
                sent = 0
            if not sent:
                self._stop.wait(self.settings.poll_s)

    def deliver_due(self) -> int:
        """One attempt for each due delivery (until stopped); how many were attempted."""
        due = self.outbox.due()
        for delivery in due:
            if self._stop.is_set():
                break
            error = self.attempt(delivery)
            if error is None:
                self.outbox.delivered(delivery.id)
                continue
            attempts = delivery.attempts + 1
            if attempts >= self.settings.max_attempts:
                self.outbox.attempt_failed(delivery.id, error, None)
                print(
                    f"harness serve: webhook delivery {delivery.id} to {delivery.url} failed after {attempts} attempt(s): {shown(error)}; "
                    f"`harness webhooks retry {delivery.competition} {delivery.id}` sends it again",
                    file=sys.stderr,
                    flush=True,
                )
            else:
                delay = min(self.settings.max_retry_s, self.settings.first_retry_s * 2 ** (attempts - 1))
                self.outbox.attempt_failed(delivery.id, error, time.time() + delay)
        return len(due)

    def attempt(self, delivery: Delivery) -> str | None:
        """POST ``delivery`` once: None when delivered (2xx), else what went wrong, in one line."""
        secret = self.environ.get(delivery.secret_env)
        if not secret:
            return f"the environment variable {delivery.secret_env} (the webhook's secret_env) is not set in the service's environment"
        body, stamp = delivery.body.encode(), str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "harness-webhooks",
            "X-Harness-Event": delivery.event,
            "X-Harness-Delivery": delivery.id,
            "X-Harness-Timestamp": stamp,
            "X-Harness-Signature": signature(secret, stamp, body),
        }
        timeout = self.settings.timeout_s
        try:
            with self._session.post(
                delivery.url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
            ) as answer:
                if 200 <= answer.status_code < 300:
                    return None
                if 300 <= answer.status_code < 400:
                    return f"HTTP {answer.status_code} redirect to {answer.headers.get('location')!r} (redirects are not followed: configure the final URL)"
                text = next(answer.iter_content(RESPONSE_PREVIEW, decode_unicode=False), b"").decode("utf-8", "replace")
                return f"HTTP {answer.status_code}" + (f": {' '.join(text.split())[:RESPONSE_PREVIEW]}" if text.strip() else "")
        except requests.Timeout:
            return f"no answer within {timeout:g} s"
        except requests.RequestException as exc:
            return f"cannot reach {delivery.url} ({type(exc).__name__}: {' '.join(str(exc).split())[:RESPONSE_PREVIEW]})"


def beside(ctx: ServiceContext, inner=None):
    """A lifespan that runs the delivery worker beside the API, around ``inner`` (the service's own
    lifespan, or None): started before it, stopped after it."""

    @asynccontextmanager
    async def lifespan(app):
        notifier = Notifier(Outbox.of(ctx.competition), ctx.settings.notify)
        for name in sorted({hook.secret_env for hook in webhooks(ctx.competition)} - set(os.environ)):
            print(f"harness serve: webhooks: the environment variable {name} is not set; deliveries that need it fail", file=sys.stderr)
        notifier.start()
        try:
            if inner is None:
                yield
            else:
                async with inner(app):
                    yield
        finally:
            await anyio.to_thread.run_sync(notifier.stop)

    return lifespan
