"""Delegate and the sandbox running together on free local ports, driven the way Slack and a browser drive them."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from app import create_sandbox_wsgi_app, create_wsgi_app, serve_threaded
from listeners.manifest import MANIFEST_PATH
from ops.wiring import Stores
from sandbox.config import SandboxConfig
from sandbox.server import SandboxServer
from sandbox.testing import running_sandbox
from settings import Settings
from stores import generate_key
from stores.migrations import upgrade
from web.wsgi import DelegateWSGI

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    body: str
    header_list: list[tuple[str, str]] = field(default_factory=list)  # every header as sent, repeats included

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


def fetch(
    url: str, *, cookie: str | None = None, method: str = "GET", body: str | None = None, source: str | None = None
) -> Page:
    """One HTTP request, no redirects followed, as a browser would send it (from the loopback address `source`)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=30, source_address=(source, 0) if source else None
    )
    headers = {"Cookie": cookie} if cookie else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers)
        response = connection.getresponse()
        headers = response.getheaders()
        return Page(response.status, {k.lower(): v for k, v in headers}, response.read().decode(), headers)
    finally:
        connection.close()


@dataclass
class Delegate:
    """A running Delegate wired to a running sandbox."""

    base_url: str
    sandbox: SandboxServer
    settings: Settings
    stores: Stores
    cookies: dict[str, str] = field(default_factory=dict)
    wsgi: DelegateWSGI | None = None

    def start_oauth(self, path: str) -> tuple[Page, dict[str, str], str]:
        """Open an install or connect link; returns the redirect, the authorize parameters and the state cookie."""
        start = fetch(self.base_url + path)
        assert start.status == 302, start.body
        cookie = start.headers["set-cookie"].split(";", 1)[0]
        query = {k: v[0] for k, v in parse_qs(urlsplit(start.location).query, keep_blank_values=True).items()}
        return start, query, cookie

    def authorize(self, user_id: str, path: str = "/slack/install", **consent: Any) -> Page:
        """The whole browser flow: open the link, see Slack's consent page, press Allow, land on the callback.

        `consent` is what else the person picks there: on Grid, `team_id` (a workspace of theirs) or `org_wide=True`.
        """
        start, query, cookie = self.start_oauth(path)
        consent_page = fetch(start.location)
        assert consent_page.status == 200, consent_page.body
        redirect = self.sandbox.approve(
            user_id,
            scope=query.get("scope", ""),
            user_scope=query.get("user_scope", ""),
            redirect_uri=query.get("redirect_uri"),
            state=query["state"],
            **consent,
        )
        return fetch(redirect, cookie=cookie)

    def install(self, user_id: str) -> Page:
        return self.authorize(user_id, "/slack/install")

    def connect(self, user_id: str, scopes: str | None = None) -> Page:
        return self.authorize(user_id, "/slack/connect" + (f"?scopes={scopes}" if scopes else ""))

    def user_row(self, user_id: str) -> Any:
        from sqlalchemy import select

        table = self.stores.installation_store.installations
        with self.stores.engine.connect() as conn:
            return conn.execute(select(table).where(table.c.user_id == user_id)).first()


def wait_for(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll until check() returns something truthy (lazy listeners finish after the ack)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {getattr(check, '__name__', 'a condition')}")
        time.sleep(interval)


def delegate_env(config: SandboxConfig, sandbox: SandboxServer, base_url: str, database_url: str) -> dict[str, str]:
    """The environment that points Delegate at a sandbox, exactly as an operator would set it for slack.com."""
    return {
        "SLACK_CLIENT_ID": config.client_id,
        "SLACK_CLIENT_SECRET": config.client_secret,
        "SLACK_SIGNING_SECRET": config.signing_secret,
        "SLACK_API_URL": sandbox.api_url,
        "SLACK_AUTHORIZE_URL": sandbox.authorize_url,
        "SLACK_REDIRECT_URI": f"{base_url}/slack/oauth_redirect",
        "TOKEN_ENCRYPTION_KEYS": generate_key(),
        "DATABASE_URL": database_url,
        "PORT": base_url.rsplit(":", 1)[1],
    }


def _not_ready(environ: Any, start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("content-type", "text/plain")])
    return [b"starting"]


@contextmanager
def running_delegate(
    data_dir: Path,
    *,
    database_url: str | None = None,
    socket_mode: bool = False,
    env: dict[str, str] | None = None,
    sandbox_mode: bool = False,
    **sandbox_options: Any,
) -> Iterator[Delegate]:
    """Start a sandbox and Delegate (threaded HTTP server, our real WSGI app) pointed at each other.

    With socket_mode, Slack's requests reach Delegate over the sandbox's Socket Mode WebSocket only (the sandbox
    knows no request URL), and HTTP serves the OAuth pages, as `python app.py run` does with SLACK_APP_TOKEN.
    `env` adds to or overrides Delegate's environment (LOG_LEVEL, a key ring of several keys). With sandbox_mode,
    Delegate is wired as `python app.py run` wires it to its sandbox (app.create_sandbox_wsgi_app): on the sandbox's
    clock, with its refresher running and woken when that clock advances; else on real time and with no refresher.
    """
    # Bind Delegate's port before the sandbox picks one, so the two can never be handed the same port.
    server, thread = serve_threaded(_not_ready, "127.0.0.1", 0)
    port = server.server_address[1]
    base = f"http://127.0.0.1:{port}"
    request_url = None if socket_mode else f"{base}/slack/events"
    config = SandboxConfig.from_manifest(
        MANIFEST_PATH, redirect_urls=[f"{base}/slack/oauth_redirect"], request_url=request_url, **sandbox_options
    )
    with running_sandbox(config) as sandbox:
        environment = delegate_env(config, sandbox, base, database_url or f"sqlite:///{data_dir / 'e2e.sqlite3'}")
        environment["DELEGATE_DATA_DIR"] = str(data_dir)
        if socket_mode:
            environment["SLACK_APP_TOKEN"] = config.app_token
        environment.update(env or {})
        settings = Settings.from_env(environment).replace(slack_home_url=sandbox.url)  # as sandbox mode sets it
        upgrade(settings.database_url)
        wsgi = create_sandbox_wsgi_app(settings, sandbox) if sandbox_mode else create_wsgi_app(settings, refresher=False)
        server.set_app(wsgi)
        handler = None
        if socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            handler = SocketModeHandler(wsgi.app, app_token=settings.app_token)
            handler.connect()
            wait_for(lambda: sandbox.socket_mode_connected)
        try:
            yield Delegate(base_url=base, sandbox=sandbox, settings=settings, stores=wsgi.stores, wsgi=wsgi)
        finally:
            if handler is not None:
                handler.close()
            server.shutdown()
            server.server_close()
            thread.join(5)
            if wsgi.refresher is not None:
                wsgi.refresher.stop()
            wsgi.stores.close()
