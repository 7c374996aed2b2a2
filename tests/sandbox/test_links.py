"""Slack's links in the sandbox over HTTP: message permalinks lead into the console, and its polling stays out of the log."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from slack_sdk import WebClient

from sandbox.links import permalink, ts_from_permalink
from sandbox.server import SandboxServer
from tests.sandbox.conftest import ALICE, GENERAL, RANDOM, wait_until
from tests.sandbox.httputil import admin, request


def test_a_search_permalink_redirects_to_the_console_on_that_message(
    sandbox: SandboxServer, client: WebClient, user_token: str
) -> None:
    message = sandbox.say(ALICE, RANDOM, "where is the needle")
    [match] = client.search_messages(token=user_token, query="needle")["messages"]["matches"]
    assert match["permalink"] == f"{sandbox.url}archives/{RANDOM}/p{message['ts'].replace('.', '')}"
    reply = request("GET", match["permalink"])
    assert reply.status == 302
    target = urlsplit(reply.headers["Location"])
    assert target.path == "/" and parse_qs(target.query) == {"channel": [RANDOM], "message": [message["ts"]]}
    console = request("GET", sandbox.url.rstrip("/") + reply.headers["Location"])
    assert console.status == 200 and "sandbox-admin-token" in console.text


@pytest.mark.parametrize(
    ("path", "says"),
    [
        (f"archives/{GENERAL}/p1700000000000001", "#general has no message with this timestamp."),
        ("archives/C0NOSUCH99/p1700000000000001", "No channel in the sandbox has this id."),
        (f"archives/{GENERAL}/latest", "not a message timestamp"),
    ],
)
def test_a_permalink_to_nothing_is_a_404_page_that_says_so(sandbox: SandboxServer, path: str, says: str) -> None:
    reply = request("GET", sandbox.url + path)
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "Message not found" in reply.text and says in reply.text and "Traceback" not in reply.text


def test_a_permalink_answers_only_at_a_loopback_host(sandbox: SandboxServer) -> None:
    message = sandbox.say(ALICE, GENERAL, "hello")
    url = permalink(sandbox.url, GENERAL, message["ts"])
    reply = request("GET", url, headers={"Host": f"rebound.example:{sandbox.port}"})
    assert reply.status == 421 and "Location" not in reply.headers


def test_permalink_timestamps_round_trip() -> None:
    assert permalink("http://h/", "C1", "1700000000.000123") == "http://h/archives/C1/p1700000000000123"
    assert ts_from_permalink("p1700000000000123") == "1700000000.000123"
    assert ts_from_permalink("p12") is None and ts_from_permalink("1700000000000123") is None


def _access(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "sandbox.access"]


def test_console_polls_log_at_debug_and_api_calls_and_failures_at_info(
    sandbox: SandboxServer, client: WebClient, user_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sandbox.access")
    for _ in range(3):
        assert admin(sandbox, "GET", "state").status == 200
    assert request("GET", f"{sandbox.url}sandbox/static/console.js").status == 200
    client.api_call("auth.test", headers={"Authorization": f"Bearer {user_token}"})
    assert request("GET", f"{sandbox.url}sandbox/admin/state").status == 401  # no admin token: worth a line
    assert admin(sandbox, "POST", "clock/advance", {"seconds": 1}).status == 200

    def logged() -> list[tuple[int, str]]:
        lines = _access(caplog)
        return lines if len(lines) >= 7 else []

    lines: list[Any] = wait_until(logged)
    info = [message.split(" ")[:3] for level, message in lines if level == logging.INFO]
    debug = [message.split(" ")[:3] for level, message in lines if level == logging.DEBUG]
    assert sorted(info) == sorted(
        [
            ["POST", "/api/auth.test", "200"],
            ["GET", "/sandbox/admin/state", "401"],
            ["POST", "/sandbox/admin/clock/advance", "200"],
        ]
    )
    assert sorted(debug) == [["GET", "/sandbox/admin/state", "200"]] * 3 + [["GET", "/sandbox/static/console.js", "200"]]
