"""Socket Mode: slack_sdk's builtin SocketModeClient (through Bolt's handler) connects to the sandbox unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import Ack, App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from sandbox.server import SandboxServer
from tests.sandbox.conftest import ALICE, BOB, GENERAL, wait_until


def test_connections_open_needs_the_app_token(sandbox: SandboxServer, client: WebClient, bot_token: str) -> None:
    with pytest.raises(SlackApiError) as wrong:
        client.apps_connections_open(app_token="xapp-1-A0SANDBOXAP-1-wrong")
    assert wrong.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as bot:
        client.apps_connections_open(app_token=bot_token)
    assert bot.value.response["error"] == "not_allowed_token_type"
    url = client.apps_connections_open(app_token=sandbox.config.app_token)["url"]
    assert url.startswith(f"ws://127.0.0.1:{sandbox.port}/link/?ticket=") and f"app_id={sandbox.config.app_id}" in url


@pytest.fixture
def raw_client(sandbox: SandboxServer) -> Iterator[SocketModeClient]:
    """slack_sdk's builtin SocketModeClient that acks every envelope with a payload naming its type."""
    socket_client = SocketModeClient(app_token=sandbox.config.app_token, web_client=WebClient(base_url=sandbox.api_url))
    messages: list[dict[str, Any]] = []
    socket_client.message_listeners.append(lambda _client, message, _raw: messages.append(message))

    def on_request(client: SocketModeClient, req: SocketModeRequest) -> None:
        client.send_socket_mode_response(
            SocketModeResponse(envelope_id=req.envelope_id, payload={"text": f"got {req.type}"})
        )

    socket_client.socket_mode_request_listeners.append(on_request)
    socket_client.messages = messages  # type: ignore[attr-defined]
    socket_client.connect()
    try:
        yield socket_client
    finally:
        socket_client.close()


def test_hello_envelopes_and_acks(sandbox: SandboxServer, raw_client: SocketModeClient, installed: dict[str, Any]) -> None:
    messages: list[dict[str, Any]] = raw_client.messages  # type: ignore[attr-defined]
    hello = wait_until(lambda: [m for m in messages if m.get("type") == "hello"])
    assert hello[0]["connection_info"] == {"app_id": sandbox.config.app_id} and hello[0]["num_connections"] == 1
    assert wait_until(lambda: sandbox.socket_mode_connected)
    record = sandbox.send_slash_command(BOB, "/delegate", "hi", channel_id=GENERAL)
    assert record["transport"] == "socket_mode" and record["body"] == {"text": "got slash_commands"}
    assert [m["text"] for m in sandbox.ephemerals(BOB)] == ["got slash_commands"]
    envelope = next(m for m in messages if m.get("type") == "slash_commands")
    assert envelope["accepts_response_payload"] is True and envelope["payload"]["command"] == "/delegate"
    assert sandbox.send_event({"type": "app_home_opened", "user": BOB})["transport"] == "socket_mode"
    events = [m for m in messages if m.get("type") == "events_api"]
    assert events[0]["payload"]["type"] == "event_callback" and events[0]["retry_attempt"] == 0
    assert events[0]["accepts_response_payload"] is False


def test_disconnect_makes_the_client_reconnect(sandbox: SandboxServer, raw_client: SocketModeClient) -> None:
    assert wait_until(lambda: sandbox.socket_mode_connected)
    assert sandbox.request_socket_disconnect() == 1
    assert wait_until(lambda: sandbox.runtime.hub.opened >= 2)
    assert wait_until(lambda: sandbox.socket_mode_connected)
    assert sandbox.send_global_shortcut(ALICE, "anything")["body"] == {"text": "got interactive"}


def test_bolt_socket_mode_handler_runs_commands_and_modals(sandbox: SandboxServer, bot_token: str) -> None:
    app = App(client=WebClient(base_url=sandbox.api_url, token=bot_token))
    submitted: list[str] = []

    @app.command("/delegate")
    def delegate_callback(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        ack(text=f"Working on {command['text']}")
        client.views_open(
            trigger_id=command["trigger_id"],
            view={
                "type": "modal",
                "callback_id": "confirm",
                "title": {"type": "plain_text", "text": "Confirm"},
                "submit": {"type": "plain_text", "text": "OK"},
                "blocks": [],
            },
        )

    @app.view("confirm")
    def confirm_callback(ack: Ack, body: dict[str, Any]) -> None:
        submitted.append(body["user"]["id"])
        ack()

    handler = SocketModeHandler(app, sandbox.config.app_token)
    handler.connect()
    try:
        assert wait_until(lambda: sandbox.socket_mode_connected)
        record = sandbox.send_slash_command(BOB, "/delegate", "it")
        assert record["transport"] == "socket_mode" and record["body"] == {"text": "Working on it"}
        [view] = wait_until(lambda: sandbox.open_views(BOB))
        outcome = sandbox.send_view_submission(BOB, view["id"])
        assert outcome["outcome"] == "closed" and submitted == [BOB]
    finally:
        handler.close()
    assert wait_until(lambda: not sandbox.socket_mode_connected)
    assert json.dumps(sandbox.deliveries())  # records stay JSON-safe


def test_an_envelope_without_ack_times_out(sandbox: SandboxServer) -> None:
    silent = SocketModeClient(app_token=sandbox.config.app_token, web_client=WebClient(base_url=sandbox.api_url))
    silent.connect()
    try:
        assert wait_until(lambda: sandbox.socket_mode_connected)
        sandbox.configure(delivery_timeout_seconds=0.2)
        record = sandbox.send_global_shortcut(ALICE, "nobody_listens")
        assert record["transport"] == "socket_mode" and record["error"] == "operation_timeout"
    finally:
        silent.close()
