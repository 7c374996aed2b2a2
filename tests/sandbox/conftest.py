"""Sandbox fixtures: a fresh sandbox per test, a real WebClient on it, and a real Bolt app it delivers to."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from sandbox.server import SandboxServer
from sandbox.testing import sandbox_fixture

BOT_SCOPES = "commands,chat:write,users:read,channels:read,channels:history"
USER_SCOPES = "chat:write,users:read,users.profile:read,users.profile:write,dnd:read,dnd:write,search:read,channels:read"
ALICE, BOB, CAROL, DAVE = "U0ALICE001", "U0BOB00002", "U0CAROL003", "U0DAVE0004"
GENERAL, RANDOM = "C0GENERAL1", "C0RANDOM02"

sandbox = sandbox_fixture()


@pytest.fixture
def client(sandbox: SandboxServer) -> WebClient:
    """slack_sdk's own WebClient, unchanged, pointed at the sandbox."""
    return WebClient(base_url=sandbox.api_url)


@pytest.fixture
def installed(sandbox: SandboxServer) -> dict[str, Any]:
    """Alice installed the app with bot and user scopes; oauth.v2.access's answer."""
    return sandbox.install(ALICE, scope=BOT_SCOPES, user_scope=USER_SCOPES)


@pytest.fixture
def user_token(installed: dict[str, Any]) -> str:
    return str(installed["authed_user"]["access_token"])


@pytest.fixture
def bot_token(installed: dict[str, Any]) -> str:
    return str(installed["access_token"])


def wait_until(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll `condition` until it returns something truthy (listeners run after the ack), and return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.01)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@dataclass
class BoltHarness:
    """A real Bolt app served over HTTP (WSGI) in a thread, which records what its listeners saw."""

    app: App
    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)

    def record(self, body: dict[str, Any]) -> None:
        self.seen.append(body)
        self.event.set()


@pytest.fixture
def bolt_app(sandbox: SandboxServer, bot_token: str) -> Iterator[Callable[[Callable[[BoltHarness], None]], BoltHarness]]:
    """Start a Bolt app whose listeners `setup(harness)` registers, and point the sandbox's request URL at it."""
    servers: list[tuple[WSGIServer, threading.Thread]] = []

    def start(setup: Callable[[BoltHarness], None]) -> BoltHarness:
        app = App(
            signing_secret=sandbox.config.signing_secret,
            client=WebClient(base_url=sandbox.api_url, token=bot_token),
        )
        handler = SlackRequestHandler(app)
        server = make_server("127.0.0.1", 0, handler, handler_class=QuietHandler)
        harness = BoltHarness(app=app, url=f"http://127.0.0.1:{server.server_port}/slack/events")
        setup(harness)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((server, thread))
        sandbox.configure(request_url=harness.url)
        return harness

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(5)
        server.server_close()
