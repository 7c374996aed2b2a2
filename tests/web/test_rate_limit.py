"""Install and connect starts are limited per client address, in bounded memory, before any state is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Delegate, fetch, running_delegate
from tests.web.support import state_rows
from web.ratelimit import StartLimiter, client_address


@pytest.fixture
def delegate(tmp_path: Path) -> Iterator[Delegate]:
    with running_delegate(tmp_path) as running:
        yield running


def test_the_31st_start_in_a_minute_gets_429_and_no_state(delegate: Delegate) -> None:
    for i in range(30):
        path = "/slack/install" if i % 2 else "/slack/connect"  # both pages share one budget per address
        assert fetch(delegate.base_url + path).status == 302, i
    assert state_rows(delegate) == 30
    for path in ("/slack/install", "/slack/connect", "/slack/connect?team=T0SANDBOX1"):
        page = fetch(delegate.base_url + path)
        assert page.status == 429, path
        assert 1 <= int(page.headers["retry-after"]) <= 60
        assert "set-cookie" not in page.headers and "location" not in page.headers
        assert "Please wait a moment" in page.body
    assert state_rows(delegate) == 30


def test_another_address_has_its_own_budget_and_other_pages_are_not_limited(delegate: Delegate) -> None:
    for _ in range(30):
        fetch(delegate.base_url + "/slack/install")
    assert fetch(delegate.base_url + "/slack/install").status == 429
    assert fetch(delegate.base_url + "/slack/install", source="127.0.0.2").status == 302  # all of 127/8 is loopback
    assert fetch(delegate.base_url + "/").status == 200
    assert fetch(delegate.base_url + "/slack/oauth_redirect?error=access_denied").status == 200


def test_the_window_slides() -> None:
    now = [1000.0]
    limiter = StartLimiter(limit=3, window_seconds=60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.acquire("a") is None
        now[0] += 10
    assert limiter.acquire("a") == 30  # at 1030: the start at 1000 leaves the window at 1060
    now[0] = 1059.5
    assert limiter.acquire("a") == 1  # rounded up: never "retry after 0 seconds"
    now[0] = 1060.0
    assert limiter.acquire("a") is None  # the start at 1000 left the window
    assert limiter.acquire("a") == 10  # the one at 1010 has not


def test_memory_is_bounded_by_forgetting_the_least_recently_seen_address() -> None:
    limiter = StartLimiter(limit=2, window_seconds=60, max_clients=100, clock=lambda: 0.0)
    limiter.acquire("keep")
    for i in range(1000):
        limiter.acquire(f"10.0.{i // 256}.{i % 256}")
        limiter.acquire("keep")  # seen all the time, so never the one forgotten
    assert len(limiter) == 100
    assert limiter.acquire("keep") == 60


def test_the_client_address_is_remote_addr_unless_a_trusted_proxy_forwarded_it() -> None:
    environ = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
    assert client_address(environ) == "10.0.0.5"  # X-Forwarded-For from anyone else is just a header
    proxied = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.9"}
    assert client_address(proxied, {"10.0.0.1"}) == "203.0.113.9"  # the client can forge the left part, not the right
    two_proxies = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9, 10.0.0.2"}
    assert client_address(two_proxies, {"10.0.0.1", "10.0.0.2"}) == "203.0.113.9"
    assert client_address({"REMOTE_ADDR": "10.0.0.1"}, {"10.0.0.1"}) == "10.0.0.1"
    assert client_address({}) == "unknown"
