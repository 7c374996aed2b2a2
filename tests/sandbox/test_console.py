"""The console and consent page in headless Chromium (the root conftest's `chromium`): trying an app without a workspace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import Ack
from slack_sdk import WebClient

from sandbox.server import SandboxServer
from tests.sandbox.conftest import ALICE, BOB, BOT_SCOPES, USER_SCOPES, BoltHarness

pytestmark = pytest.mark.browser


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(5000)
    try:
        yield page
    finally:
        context.close()


def test_consent_page_allow_and_cancel(sandbox: SandboxServer, page: Any) -> None:
    # The app's redirect URL is answered here, so the test does not depend on what listens on port 3000.
    page.route("http://127.0.0.1:3000/**", lambda route: route.fulfill(body="ok"))
    query = f"client_id={sandbox.config.client_id}&scope={BOT_SCOPES}&user_scope={USER_SCOPES}&state=s1"
    page.goto(f"{sandbox.authorize_url}?{query}")
    assert page.text_content("#app-name") == "Delegate"
    assert "search:read" in page.text_content("#user-scopes")
    page.check(f"input[value='{BOB}']")
    page.click("#allow")
    page.wait_for_url("http://127.0.0.1:3000/**")
    assert "code=" in page.url and "state=s1" in page.url
    page.goto(f"{sandbox.authorize_url}?{query}")
    page.click("#cancel")
    page.wait_for_url("http://127.0.0.1:3000/**error=access_denied**")
    assert page.url.endswith("error=access_denied&state=s1")


def test_console_runs_a_command_fills_a_modal_and_manages_tokens(
    sandbox: SandboxServer, bolt_app: Any, page: Any, installed: dict[str, Any]
) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.command("/delegate")
        def delegate_callback(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
            ack()
            client.views_open(
                trigger_id=command["trigger_id"],
                view={
                    "type": "modal",
                    "callback_id": "status",
                    "title": {"type": "plain_text", "text": "Set your status"},
                    "submit": {"type": "plain_text", "text": "Save"},
                    "private_metadata": command["channel_id"],
                    "blocks": [
                        {
                            "type": "input",
                            "block_id": "text",
                            "label": {"type": "plain_text", "text": "Status"},
                            "element": {"type": "plain_text_input", "action_id": "value"},
                        }
                    ],
                },
            )

        @harness.app.view("status")
        def status_callback(ack: Ack, view: dict[str, Any], body: dict[str, Any], client: WebClient) -> None:
            text = view["state"]["values"]["text"]["value"]["value"]
            if len(text) < 3:
                ack(response_action="errors", errors={"text": "Too short"})
                return
            ack()
            client.chat_postMessage(channel=view["private_metadata"], text=f"<@{body['user']['id']}> is now: {text}")

    bolt_app(setup)
    sandbox.install(BOB, user_scope="chat:write")
    page.goto(sandbox.url)
    page.select_option("#user-select", BOB)
    page.fill("#composer-input", "/delegate status")
    page.press("#composer-input", "Enter")
    page.wait_for_selector("#modal-backdrop:not([hidden])")
    assert page.text_content("#modal-title") == "Set your status"
    page.fill("#text--value", "no")
    page.click("#modal-submit")
    page.wait_for_selector("#modal-blocks .error")
    assert page.text_content("#modal-blocks .error") == "Too short"
    page.fill("#text--value", "In a meeting")
    page.click("#modal-submit")
    page.wait_for_selector("#modal-backdrop", state="hidden")
    message = page.wait_for_selector("#messages li.message:has-text('is now: In a meeting')")
    assert "Delegate (app)" in message.text_content()

    page.fill("#composer-input", "hello from bob")
    page.press("#composer-input", "Enter")
    mine = page.wait_for_selector("#messages li.message:has-text('hello from bob')")
    assert "Bob Builder" in mine.text_content()

    page.wait_for_selector(f"#tokens tr[data-user='{ALICE}'][data-kind='user'][data-status='active']")
    page.click(f"#people button[data-action='expire'][data-user='{ALICE}']")
    page.wait_for_selector(f"#tokens tr[data-user='{ALICE}'][data-kind='user'][data-status='expired']")
    page.click(f"#people button[data-action='revoke'][data-user='{BOB}']")
    page.wait_for_selector(f"#tokens tr[data-user='{BOB}'][data-status='revoked']")
    assert [token["status"] for token in sandbox.tokens(BOB)] == ["revoked"]


def test_console_renders_mrkdwn_as_text_never_as_html(sandbox: SandboxServer, page: Any) -> None:
    sandbox.say(BOB, "C0GENERAL1", "<img src=x onerror=alert(1)> *bold* and `code` for <@U0ALICE001>")
    page.goto(sandbox.url)
    item = page.wait_for_selector("#messages li.message:has-text('bold')")
    assert item.query_selector("img") is None
    assert item.query_selector("b").text_content() == "bold" and item.query_selector("code").text_content() == "code"
    assert "@Alice Admin" in item.text_content() and "Bob Builder" in item.text_content()


def test_console_runs_shortcuts_and_selects(sandbox: SandboxServer, bolt_app: Any, page: Any) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.shortcut("set_status")
        def set_status_callback(ack: Ack, shortcut: dict[str, Any], client: WebClient) -> None:
            ack()
            options = [
                {"text": {"type": "plain_text", "text": label}, "value": label.lower()} for label in ("Lunch", "Away")
            ]
            client.views_open(
                trigger_id=shortcut["trigger_id"],
                view={
                    "type": "modal",
                    "callback_id": "pick",
                    "title": {"type": "plain_text", "text": "Pick"},
                    "submit": {"type": "plain_text", "text": "Go"},
                    "blocks": [
                        {
                            "type": "input",
                            "block_id": "kind",
                            "label": {"type": "plain_text", "text": "Kind"},
                            "element": {"type": "static_select", "action_id": "choice", "options": options},
                        }
                    ],
                },
            )

        @harness.app.view("pick")
        def pick_callback(ack: Ack, view: dict[str, Any], body: dict[str, Any]) -> None:
            harness.record({"picked": view["state"]["values"]["kind"]["choice"]["selected_option"]["value"]})
            ack()

        @harness.app.shortcut("reply_as_me")
        def reply_as_me_callback(ack: Ack, shortcut: dict[str, Any], client: WebClient) -> None:
            ack()
            client.chat_postMessage(
                channel=shortcut["channel"]["id"],
                thread_ts=shortcut["message_ts"],
                text=f"replying to {shortcut['message']['text']}",
            )

    harness = bolt_app(setup)
    sandbox.config.global_shortcuts = ["set_status"]
    sandbox.config.message_shortcuts = ["reply_as_me"]
    page.goto(sandbox.url)
    page.select_option("#user-select", BOB)
    page.fill("#shortcut-input", "set_status")
    page.click("#run-shortcut")
    page.wait_for_selector("#modal-backdrop:not([hidden])")
    page.select_option("#kind--choice", label="Away")
    page.click("#modal-submit")
    page.wait_for_selector("#modal-backdrop", state="hidden")
    assert harness.seen == [{"picked": "away"}]

    page.fill("#composer-input", "the original")
    page.press("#composer-input", "Enter")
    original = page.wait_for_selector("#messages li.message:has-text('the original')")
    original.query_selector("button.message-shortcut").click()
    reply = page.wait_for_selector("#messages li.message:has-text('replying to the original')")
    assert "in thread" in reply.text_content()
