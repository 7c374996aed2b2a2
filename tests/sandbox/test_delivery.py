"""Delivery to a real Bolt app over HTTP: signed commands, shortcuts, view submissions and events."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import make_server

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from sandbox.delivery import sign
from sandbox.server import SandboxServer
from tests.sandbox.conftest import ALICE, BOB, GENERAL, BoltHarness, QuietHandler, wait_until

Start = Callable[[Callable[[BoltHarness], None]], BoltHarness]


def status_modal(callback_id: str = "status_modal") -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": {"type": "plain_text", "text": "Set status"},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [
            {
                "type": "input",
                "block_id": "text",
                "label": {"type": "plain_text", "text": "Status"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        ],
    }


def test_signature_matches_slack_sdk_verifier() -> None:
    body, timestamp = b"token=x&text=hello", str(int(time.time()))
    signature = sign("s3cret", timestamp, body)
    expected = "v0=" + hmac.new(b"s3cret", f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    assert signature == expected
    assert SignatureVerifier("s3cret").is_valid(body, timestamp, signature)


def test_slash_command_is_signed_and_its_ack_is_shown_ephemerally(sandbox: SandboxServer, bolt_app: Start) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.command("/delegate")
        def delegate_callback(ack: Ack, command: dict[str, Any]) -> None:
            harness.record(command)
            ack(f"You said {command['text']}")

    harness = bolt_app(setup)
    record = sandbox.send_slash_command(BOB, "/delegate", "hello", channel_id=GENERAL)
    assert record["status"] == 200 and record["transport"] == "http" and record["error"] is None
    command = harness.seen[0]
    assert command["user_id"] == BOB and command["channel_id"] == GENERAL and command["team_id"] == "T0SANDBOX1"
    assert command["response_url"].startswith(sandbox.url) and command["trigger_id"] and command["api_app_id"]
    assert [(m["to_user"], m["text"]) for m in sandbox.ephemerals()] == [(BOB, "You said hello")]


def test_response_url_posts_are_kept(sandbox: SandboxServer, bolt_app: Start) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.command("/delegate")
        def delegate_callback(ack: Ack, respond: Respond) -> None:
            ack()
            respond(text="Posted for everyone", response_type="in_channel")
            respond(text="Only you see this")
            harness.record({})

    harness = bolt_app(setup)
    sandbox.send_slash_command(ALICE, "/delegate", "", channel_id=GENERAL)
    assert harness.event.wait(5)
    shown = sandbox.messages(GENERAL)
    assert [(m["text"], m["via"], m["user"]) for m in shown] == [
        ("Posted for everyone", "response_url", sandbox.config.bot_user_id)
    ]
    assert [m["text"] for m in sandbox.ephemerals(ALICE)] == ["Only you see this"]


def test_wrong_signing_secret_is_refused_by_bolt(sandbox: SandboxServer, bolt_app: Start) -> None:
    bolt_app(lambda harness: None)
    sandbox.config.signing_secret = "not-the-apps-secret"
    record = sandbox.send_slash_command(ALICE, "/delegate", "x")
    assert record["status"] == 401 and record["error"] == "http_service_error"


def test_global_shortcut_opens_a_modal_and_the_submission_reaches_the_app(sandbox: SandboxServer, bolt_app: Start) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.shortcut("set_status")
        def set_status_callback(ack: Ack, shortcut: dict[str, Any], client: WebClient) -> None:
            ack()
            client.views_open(trigger_id=shortcut["trigger_id"], view=status_modal())

        @harness.app.view("status_modal")
        def status_modal_callback(ack: Ack, view: dict[str, Any], body: dict[str, Any]) -> None:
            text = view["state"]["values"]["text"]["value"]["value"]
            if not text:
                ack(response_action="errors", errors={"text": "Say something"})
                return
            harness.record({"text": text, "user": body["user"]["id"]})
            ack()

    harness = bolt_app(setup)
    record = sandbox.send_global_shortcut(BOB, "set_status")
    assert record["status"] == 200
    [view] = wait_until(lambda: sandbox.open_views(BOB))
    assert view["callback_id"] == "status_modal"
    refused = sandbox.send_view_submission(BOB, view["id"], {"text": {"value": ""}})
    assert refused["outcome"] == "errors" and sandbox.open_views(BOB)[0]["errors"] == {"text": "Say something"}
    accepted = sandbox.send_view_submission(BOB, view["id"], {"text": {"value": "In a meeting"}})
    assert accepted["outcome"] == "closed" and sandbox.open_views(BOB) == []
    assert harness.seen == [{"text": "In a meeting", "user": BOB}]


def test_view_submission_update_push_and_clear(sandbox: SandboxServer, bolt_app: Start) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.view("status_modal")
        def status_modal_callback(ack: Ack, view: dict[str, Any]) -> None:
            action = view["state"]["values"]["text"]["value"]["value"]
            if action == "clear":
                ack(response_action="clear")
            else:
                ack(response_action=action, view=status_modal())

    bolt_app(setup)
    trigger = sandbox.state.new_trigger("T0SANDBOX1", ALICE)
    WebClient(base_url=sandbox.api_url, token=sandbox.install(ALICE, scope="commands")["access_token"]).views_open(
        trigger_id=trigger, view=status_modal()
    )
    [view] = sandbox.open_views(ALICE)
    assert sandbox.send_view_submission(ALICE, view["id"], {"text": {"value": "update"}})["outcome"] == "updated"
    assert sandbox.send_view_submission(ALICE, view["id"], {"text": {"value": "push"}})["outcome"] == "pushed"
    assert len(sandbox.open_views(ALICE)) == 2
    top = sandbox.open_views(ALICE)[-1]
    assert top["root_view_id"] == view["id"] and top["previous_view_id"] == view["id"]
    assert sandbox.send_view_submission(ALICE, top["id"], {"text": {"value": "clear"}})["outcome"] == "cleared"
    assert sandbox.open_views(ALICE) == []


def test_message_shortcut_carries_the_message(sandbox: SandboxServer, bolt_app: Start, user_token: str) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.shortcut("reply_as_me")
        def reply_as_me_callback(ack: Ack, shortcut: dict[str, Any]) -> None:
            ack()
            harness.record(shortcut)

    harness = bolt_app(setup)
    posted = WebClient(base_url=sandbox.api_url).chat_postMessage(token=user_token, channel=GENERAL, text="original")
    record = sandbox.send_message_shortcut(BOB, "reply_as_me", channel_id=GENERAL, message_ts=posted["ts"])
    assert record["status"] == 200
    [shortcut] = wait_until(lambda: harness.seen)
    assert shortcut["type"] == "message_action" and shortcut["message"]["text"] == "original"
    assert shortcut["channel"]["id"] == GENERAL and shortcut["user"]["id"] == BOB and shortcut["response_url"]


def test_block_action_from_app_home(sandbox: SandboxServer, bolt_app: Start, bot_token: str) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.action("reconnect")
        def reconnect_callback(ack: Ack, body: dict[str, Any]) -> None:
            ack()
            harness.record(body)

    harness = bolt_app(setup)
    home = {
        "type": "home",
        "blocks": [
            {
                "type": "actions",
                "block_id": "b",
                "elements": [
                    {"type": "button", "action_id": "reconnect", "text": {"type": "plain_text", "text": "Reconnect"}}
                ],
            }
        ],
    }
    view = WebClient(base_url=sandbox.api_url, token=bot_token).views_publish(user_id=BOB, view=home)["view"]
    record = sandbox.send_block_action(BOB, "reconnect", block_id="b", view_id=view["id"])
    assert record["status"] == 200
    assert wait_until(lambda: harness.seen)[0]["container"] == {"type": "view", "view_id": view["id"]}


def test_a_link_button_click_carries_its_text_and_url(sandbox: SandboxServer, bolt_app: Start) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.action("connect")
        def connect_callback(ack: Ack, body: dict[str, Any]) -> None:
            ack()
            harness.record(body)

    harness = bolt_app(setup)
    message = sandbox.say(BOB, GENERAL, "a message with a button")
    url = "http://127.0.0.1:3000/slack/connect"
    record = sandbox.send_block_action(
        BOB, "connect", block_id="b", channel_id=GENERAL, message_ts=message["ts"], text="Connect", url=url
    )
    assert record["status"] == 200 and record["error"] is None
    [action] = wait_until(lambda: harness.seen)[0]["actions"]
    assert action["url"] == url and action["text"] == {"type": "plain_text", "text": "Connect", "emoji": True}
    plain = sandbox.send_block_action(BOB, "connect", channel_id=GENERAL, message_ts=message["ts"])
    assert plain["status"] == 200
    [_, second] = wait_until(lambda: harness.seen if len(harness.seen) == 2 else None)
    assert "url" not in second["actions"][0] and "text" not in second["actions"][0]


def test_events_are_wrapped_signed_and_delivered(sandbox: SandboxServer, bolt_app: Start) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.event("app_home_opened")
        def app_home_opened_callback(body: dict[str, Any]) -> None:
            harness.record(body)

    harness = bolt_app(setup)
    record = sandbox.send_event({"type": "app_home_opened", "user": BOB, "channel": "D0BOB00002", "tab": "home"})
    assert record["status"] == 200
    assert harness.event.wait(5)
    body = harness.seen[0]
    assert body["type"] == "event_callback" and body["team_id"] == "T0SANDBOX1" and body["api_app_id"]
    assert body["event"]["user"] == BOB and body["event_id"].startswith("Ev") and body["authorizations"][0]["is_bot"]


def test_uninstall_sends_tokens_revoked_then_app_uninstalled(sandbox: SandboxServer, bolt_app: Start) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.event("tokens_revoked")
        def tokens_revoked_callback(event: dict[str, Any]) -> None:
            harness.record(event)

        @harness.app.event("app_uninstalled")
        def app_uninstalled_callback(event: dict[str, Any]) -> None:
            harness.record(event)

    harness = bolt_app(setup)
    sandbox.install(BOB, user_scope="chat:write")
    tokens = sandbox.uninstall()
    sandbox.wait_for_events()
    wait_until(lambda: len(harness.seen) >= 2)
    assert sorted(tokens["oauth"]) == sorted([ALICE, BOB]) and tokens["bot"] == [sandbox.config.bot_user_id]
    assert sorted(event["type"] for event in harness.seen) == ["app_uninstalled", "tokens_revoked"]
    assert all(token["status"] == "revoked" for token in sandbox.tokens())


def test_revoke_and_deactivate_send_events(sandbox: SandboxServer, bolt_app: Start) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.event("tokens_revoked")
        def tokens_revoked_callback(event: dict[str, Any]) -> None:
            harness.record(event)

        @harness.app.event("user_change")
        def user_change_callback(event: dict[str, Any]) -> None:
            harness.record(event)

    harness = bolt_app(setup)
    sandbox.install(BOB, user_scope="chat:write")
    assert sandbox.revoke_tokens(BOB) == {"oauth": [BOB], "bot": []}
    sandbox.deactivate_user(BOB)
    sandbox.wait_for_events()
    wait_until(lambda: len(harness.seen) >= 2)
    by_type = {event["type"]: event for event in harness.seen}
    assert by_type["tokens_revoked"]["tokens"] == {"oauth": [BOB], "bot": []}
    assert by_type["user_change"]["user"]["id"] == BOB and by_type["user_change"]["user"]["deleted"] is True


def test_no_app_listening_is_recorded_not_raised(sandbox: SandboxServer) -> None:
    sandbox.configure(request_url="http://127.0.0.1:9/slack/events")
    record = sandbox.send_slash_command(ALICE, "/delegate", "x")
    assert record["error"] == "dispatch_failed" and record["detail"] == "ClientConnectorError"
    assert sandbox.deliveries()[-1]["kind"] == "slash_command"


def test_an_app_slower_than_the_deadline_gets_operation_timeout(sandbox: SandboxServer, bolt_app: Start) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.command("/delegate")
        def delegate_callback(ack: Ack) -> None:
            time.sleep(0.4)
            ack()

    bolt_app(setup)
    sandbox.configure(delivery_timeout_seconds=0.1)
    record = sandbox.send_slash_command(ALICE, "/delegate", "slow")
    assert record["error"] == "operation_timeout" and sandbox.ephemerals() == []


def test_failed_events_are_retried_with_slacks_headers(sandbox: SandboxServer) -> None:
    seen: list[tuple[str | None, str | None, str]] = []

    def flaky_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        seen.append((environ.get("HTTP_X_SLACK_RETRY_NUM"), environ.get("HTTP_X_SLACK_RETRY_REASON"), body["event_id"]))
        start_response("500 Internal Server Error" if len(seen) == 1 else "200 OK", [("Content-Type", "text/plain")])
        return [b""]

    server = make_server("127.0.0.1", 0, flaky_app, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        sandbox.configure(request_url=f"http://127.0.0.1:{server.server_port}/slack/events", event_retry_delays=[0.05, 0.05])
        record = sandbox.send_event({"type": "app_home_opened", "user": BOB})
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
    assert record["status"] == 200 and record["retry_attempt"] == 1
    assert [(num, reason) for num, reason, _ in seen] == [(None, None), ("1", "http_error")]
    assert seen[0][2] == seen[1][2]


def test_app_home_opened_carries_the_published_view(sandbox: SandboxServer, bolt_app: Start, bot_token: str) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.event("app_home_opened")
        def app_home_opened_callback(event: dict[str, Any]) -> None:
            harness.record(event)

    harness = bolt_app(setup)
    home = {"type": "home", "blocks": []}
    view = WebClient(base_url=sandbox.api_url, token=bot_token).views_publish(user_id=BOB, view=home)["view"]
    assert sandbox.send_app_home_opened(BOB)["status"] == 200
    [event] = wait_until(lambda: harness.seen)
    assert event["user"] == BOB and event["tab"] == "home" and event["view"]["id"] == view["id"]
    assert event["channel"].startswith("D")


def test_unsubscribed_events_are_not_sent(sandbox: SandboxServer, bolt_app: Start) -> None:
    harness = bolt_app(lambda harness: None)
    sandbox.config.bot_events = ["app_uninstalled"]
    record = sandbox.send_event({"type": "app_home_opened", "user": BOB})
    assert record["error"] == "not_subscribed" and record["transport"] == "none"
    assert harness.seen == []


def test_signatures_use_real_time_even_after_the_clock_moves(sandbox: SandboxServer, bolt_app: Start) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.command("/delegate")
        def delegate_callback(ack: Ack) -> None:
            ack("still accepted")

    bolt_app(setup)
    sandbox.advance_clock(86400 * 3)
    record = sandbox.send_slash_command(ALICE, "/delegate", "")
    assert record["status"] == 200 and record["message"]["text"] == "still accepted"
