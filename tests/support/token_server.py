"""A small local stand-in for Slack's token endpoint, for token manager tests that need exact control.

It rotates like Slack with zero grace: a refresh token works once, then answers invalid_refresh_token. Faults can
be queued for the next refresh calls: "drop" (rotate, then close the connection without answering), "429", "500",
and "error:NAME" (answer ok=false with that error, rotating nothing). `ip_blocked` lists Web API methods that answer
invalid_auth for any token, as Slack does when an IP allow-list refuses the caller (auth.test still works).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

CLIENT_SECRET = "test-client-secret"


@dataclass
class TokenServerState:
    client_id: str
    expires_in: int = 43200
    latency: float = 0.0
    slow_users: dict[str, float] = field(default_factory=dict)  # user id -> seconds more before their refresh answers
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> user id
    access_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (user id, expires at)
    revoked_users: set[str] = field(default_factory=set)
    long_lived: dict[str, str] = field(default_factory=dict)  # xoxp- token -> user id
    exchanged: set[str] = field(default_factory=set)
    exchange_calls: int = 0
    faults: list[str] = field(default_factory=list)
    ip_blocked: set[str] = field(default_factory=set)
    refresh_calls: int = 0
    refresh_log: list[tuple[float, str | None]] = field(default_factory=list)  # (arrival, monotonic; user rotated)
    rejected_refreshes: int = 0
    api_calls: list[tuple[str, str]] = field(default_factory=list)  # (method, user id)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, user_id: str, *, expires_in: int | None = None) -> tuple[str, str]:
        """Mint an access token and a refresh token for a user, as a fresh install would."""
        with self.lock:
            return self._issue(user_id, expires_in)

    def _issue(self, user_id: str, expires_in: int | None = None) -> tuple[str, str]:
        access = f"xoxe.xoxp-1-{secrets.token_hex(12)}"
        refresh = f"xoxe-1-{secrets.token_hex(12)}"
        self.refresh_tokens[refresh] = user_id
        self.access_tokens[access] = (user_id, time.time() + (self.expires_in if expires_in is None else expires_in))
        return access, refresh


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        path, _, query = self.path.partition("?")
        form = {k: v[0] for k, v in parse_qs(query).items()}
        form.update({k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()})
        method = path.rsplit("/", 1)[-1]
        if method == "oauth.v2.access":
            self._refresh(state, form)
        elif method == "oauth.v2.exchange":
            self._exchange(state, form)
        else:
            self._api(state, method, form)

    def _send(self, status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _refresh(self, state: TokenServerState, form: dict[str, str]) -> None:
        arrived = time.monotonic()
        auth = self.headers.get("Authorization", "")
        client_id, _, secret = (
            base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":") if auth else ("", "", "")
        )
        with state.lock:
            delay = state.latency + state.slow_users.get(state.refresh_tokens.get(form.get("refresh_token", ""), ""), 0.0)
        if delay:
            time.sleep(delay)
        with state.lock:
            state.refresh_calls += 1
            fault = state.faults.pop(0) if state.faults else None
            if fault == "429":
                self._send(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
                return
            if fault == "500":
                self._send(500, {"ok": False, "error": "fatal_error"})
                return
            if fault is not None and fault.startswith("error:"):
                self._send(200, {"ok": False, "error": fault.removeprefix("error:")})
                return
            if client_id != state.client_id or secret != CLIENT_SECRET:
                self._send(200, {"ok": False, "error": "bad_client_secret"})
                return
            user_id = state.refresh_tokens.pop(form.get("refresh_token", ""), None)
            state.refresh_log.append((arrived, user_id))
            if user_id is None:
                state.rejected_refreshes += 1
                self._send(200, {"ok": False, "error": "invalid_refresh_token"})
                return
            access, refresh = state._issue(user_id)
        if fault == "drop":
            self.close_connection = True
            self.connection.close()  # Slack acted, the answer is lost
            return
        self._send(
            200,
            {
                "ok": True,
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": state.expires_in,
                "token_type": "user",
                "scope": "chat:write,users.profile:write",
                "user_id": user_id,
            },
        )

    def _exchange(self, state: TokenServerState, form: dict[str, str]) -> None:
        with state.lock:
            state.exchange_calls += 1
            token = form.get("token") or self.headers.get("Authorization", "").removeprefix("Bearer ")
            if form.get("client_secret") != CLIENT_SECRET:
                self._send(200, {"ok": False, "error": "bad_client_secret"})
            elif token in state.exchanged:
                self._send(200, {"ok": False, "error": "token_already_exchanged"})
            elif token not in state.long_lived:
                self._send(200, {"ok": False, "error": "invalid_auth"})
            else:
                state.exchanged.add(token)
                access, refresh = state._issue(state.long_lived[token])
                self._send(
                    200, {"ok": True, "access_token": access, "refresh_token": refresh, "expires_in": state.expires_in}
                )

    def _api(self, state: TokenServerState, method: str, form: dict[str, str]) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ") or form.get("token", "")
        with state.lock:
            entry = state.access_tokens.get(token)
        if not token:
            self._send(200, {"ok": False, "error": "not_authed"})
        elif entry is None or method in state.ip_blocked:
            self._send(200, {"ok": False, "error": "invalid_auth"})
        elif entry[0] in state.revoked_users:
            self._send(200, {"ok": False, "error": "token_revoked"})
        elif entry[1] < time.time():
            self._send(200, {"ok": False, "error": "token_expired"})
        elif method == "chat.delete":
            self._send(200, {"ok": False, "error": "channel_not_found"})
        elif method == "search.messages":
            self._send(200, {"ok": False, "error": "missing_scope", "needed": "search:read", "provided": "chat:write"})
        else:
            with state.lock:
                state.api_calls.append((method, entry[0]))
            self._send(200, {"ok": True, "user_id": entry[0], "method": method})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: TokenServerState


@contextmanager
def running_token_server(client_id: str) -> Iterator[tuple[str, TokenServerState]]:
    """Serve on a free local port; yields (api_url, state)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = TokenServerState(client_id=client_id)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/", server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
