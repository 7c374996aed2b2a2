"""Socket Mode: WebSocket URLs from apps.connections.open, hello, envelopes, acks and disconnect requests."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from sandbox.errors import SlackError
from sandbox.state import SandboxState

logger = logging.getLogger(__name__)

TICKET_TTL_SECONDS = 30.0


class NoAck(Exception):
    """The app did not acknowledge an envelope in time (or the connection closed first)."""


class SocketHub:
    """The app's open Socket Mode connections and the envelopes waiting for their acks."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.tickets: dict[str, float] = {}
        self.connections: list[web.WebSocketResponse] = []
        self.waiters: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self._round_robin = itertools.count()
        self.opened = 0

    @property
    def connected(self) -> bool:
        """Whether at least one Socket Mode connection is open."""
        return any(not ws.closed for ws in self.connections)

    def open_connection_url(self, ws_base: str) -> str:
        """A single-use `ws://` URL like the one apps.connections.open returns."""
        ticket = str(uuid.uuid4())
        self.tickets[ticket] = self.state.now()
        return f"{ws_base.rstrip('/')}/link/?ticket={ticket}&app_id={self.state.config.app_id}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """GET /link/?ticket=...: upgrade to a WebSocket and speak Slack's Socket Mode protocol."""
        ticket = request.query.get("ticket", "")
        issued = self.tickets.pop(ticket, None)
        if issued is None or self.state.now() - issued > TICKET_TTL_SECONDS:
            return web.Response(status=401, text="invalid or expired ticket")
        ws = web.WebSocketResponse(autoping=True, timeout=2.0)
        await ws.prepare(request)
        self.connections.append(ws)
        self.opened += 1
        hello = {
            "type": "hello",
            "num_connections": len([conn for conn in self.connections if not conn.closed]),
            "debug_info": {"host": "sandbox-1", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.state.config.app_id},
        }
        await ws.send_str(json.dumps(hello))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_text(message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            if ws in self.connections:
                self.connections.remove(ws)
        return ws

    def _on_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except json.JSONDecodeError:
            logger.warning("ignored a Socket Mode message that is not JSON")
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        waiter = self.waiters.pop(envelope_id, None) if envelope_id else None
        if waiter is not None and not waiter.done():
            payload = message.get("payload")
            waiter.set_result(payload if isinstance(payload, dict) else None)

    async def send_envelope(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool,
        timeout: float,
        retry: tuple[int, str] = (0, ""),
    ) -> dict[str, Any] | None:
        """Send an envelope to one open connection and wait for its ack; returns the ack's payload."""
        live = [ws for ws in self.connections if not ws.closed]
        if not live:
            raise SlackError("no_socket_mode_connection")
        ws = live[next(self._round_robin) % len(live)]
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            envelope.update({"retry_attempt": retry[0], "retry_reason": retry[1]})
        waiter: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self.waiters[envelope_id] = waiter
        try:
            await ws.send_str(json.dumps(envelope))
            return await asyncio.wait_for(waiter, timeout)
        except (TimeoutError, ConnectionError) as error:
            raise NoAck(f"no ack for {kind} envelope") from error
        finally:
            self.waiters.pop(envelope_id, None)

    async def request_disconnect(self, reason: str = "refresh_requested") -> int:
        """Ask every connection to reconnect, as Slack does before it recycles a server."""
        count = 0
        for ws in list(self.connections):
            if not ws.closed:
                await ws.send_str(json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "sandbox-1"}}))
                count += 1
        return count

    async def close_all(self) -> None:
        """Close every connection (the server is stopping)."""
        for ws in list(self.connections):
            await ws.close()
        for waiter in self.waiters.values():
            if not waiter.done():
                waiter.cancel()
        self.waiters.clear()
