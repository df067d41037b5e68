"""The client address the failure limiter counts by: the connection's, or from a trusted proxy the
last address in X-Forwarded-For that no trusted proxy added. A client that is not a trusted proxy
cannot choose its address with a forged header."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.requests import Request

from harness.service.auth import client_address


def request_from(peer: str, forwarded: list[str], trusted: set[str]) -> Request:
    app = SimpleNamespace(state=SimpleNamespace(ctx=SimpleNamespace(trusted_proxies=frozenset(trusted))))
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "client": (peer, 40000), "headers": headers, "app": app})


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "address"),
    [
        ("198.51.100.7", [], set(), "198.51.100.7"),
        ("198.51.100.7", ["203.0.113.9"], set(), "198.51.100.7"),  # not a proxy: the header is ignored
        ("127.0.0.1", ["203.0.113.9"], {"127.0.0.1"}, "203.0.113.9"),
        ("127.0.0.1", ["1.1.1.1, 203.0.113.9"], {"127.0.0.1"}, "203.0.113.9"),  # the client's own entries come first: forgeable
        ("127.0.0.1", ["1.1.1.1", "203.0.113.9, 10.0.0.2"], {"127.0.0.1", "10.0.0.2"}, "203.0.113.9"),  # two proxies, two headers
        ("127.0.0.1", [], {"127.0.0.1"}, "127.0.0.1"),  # a trusted proxy that forwards nothing: its own
        ("127.0.0.1", ["10.0.0.2"], {"127.0.0.1", "10.0.0.2"}, "127.0.0.1"),  # only proxies in the chain
    ],
)
def test_the_client_address(peer, forwarded, trusted, address):
    assert client_address(request_from(peer, forwarded, trusted)) == address
