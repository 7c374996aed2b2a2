"""The console and consent page in headless Chromium (the root conftest's `chromium`): trying an app without a workspace."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from slack_bolt import Ack
from slack_sdk import WebClient

from sandbox.server import SandboxServer
from tests.sandbox.conftest import ALICE, BOB, BOT_SCOPES, GENERAL, RANDOM, USER_SCOPES, BoltHarness, wait_until

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
    # A console action is not a delivery: it says what it did, never "delivered over undefined".
    assert page.text_content("#last-result") == "Expire Alice Admin: done"
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
    sandbox.config.shortcut_names = {"set_status": "Set my status", "reply_as_me": "Reply as me"}
    page.goto(sandbox.url)
    page.select_option("#user-select", BOB)
    assert page.locator("#shortcut-select option").all_text_contents() == ["Set my status"]
    page.select_option("#shortcut-select", label="Set my status")
    page.click("#run-shortcut")
    page.wait_for_selector("#modal-backdrop:not([hidden])")
    page.select_option("#kind--choice", label="Away")
    page.click("#modal-submit")
    page.wait_for_selector("#modal-backdrop", state="hidden")
    assert harness.seen == [{"picked": "away"}]

    page.fill("#composer-input", "the original")
    page.press("#composer-input", "Enter")
    original = page.locator("#messages li.message", has_text="the original")
    original.locator("summary", has_text="More actions…").click()
    original.get_by_role("button", name="Reply as me").click()
    reply = page.wait_for_selector("#messages li.message:has-text('replying to the original')")
    assert "in thread" in reply.text_content()


def test_a_link_button_opens_its_page_and_sends_the_click(
    sandbox: SandboxServer, bolt_app: Any, page: Any, client: WebClient, bot_token: str
) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.action("connect")
        def connect_callback(ack: Ack, body: dict[str, Any]) -> None:
            ack()
            harness.record(body)

    harness = bolt_app(setup)
    consent = f"{sandbox.authorize_url}?client_id={sandbox.config.client_id}&user_scope=chat:write&state=s1"
    button = {"type": "button", "action_id": "connect", "text": {"type": "plain_text", "text": "Connect"}, "url": consent}
    client.chat_postMessage(
        token=bot_token, channel=GENERAL, text="Connect first", blocks=[{"type": "actions", "elements": [button]}]
    )
    page.goto(sandbox.url)
    with page.context.expect_page() as opened:
        page.click("#messages li.message button[data-action-id='connect']")
    new_page = opened.value
    new_page.wait_for_selector("#allow")
    assert new_page.url == consent and new_page.text_content("#app-name") == "Delegate"
    assert harness.event.wait(5)
    [action] = harness.seen[0]["actions"]
    assert action["url"] == consent and action["text"]["text"] == "Connect" and action["type"] == "button"
    assert harness.seen[0]["container"]["type"] == "message"
    page.wait_for_selector("#last-result:has-text('block_actions sent to the app over HTTP')")
    assert [d["status"] for d in sandbox.deliveries() if d["kind"] == "block_actions"] == [200]


def test_a_permalink_opens_the_console_on_the_highlighted_message(
    sandbox: SandboxServer, page: Any, client: WebClient, user_token: str, bot_token: str
) -> None:
    for text in ("first words", "the needle in the haystack", "last words"):
        sandbox.say(ALICE, RANDOM, text)
    [match] = client.search_messages(token=user_token, query="needle")["messages"]["matches"]
    client.chat_postMessage(token=bot_token, channel=GENERAL, text=f"Found it: <{match['permalink']}|open>")
    page.goto(sandbox.url)
    with page.context.expect_page() as opened:
        page.click("#messages li.message a:text('open')")
    console = opened.value
    highlighted = console.wait_for_selector("#messages li.highlight")
    assert "the needle in the haystack" in highlighted.text_content()
    assert highlighted.get_attribute("data-ts") == match["ts"]
    assert console.eval_on_selector("#channel-select", "select => select.value") == RANDOM
    assert parse_qs(urlsplit(console.url).query) == {"channel": [RANDOM], "message": [match["ts"]]}
    assert console.locator("#messages li.highlight").count() == 1


def test_slack_links_move_the_console(
    sandbox: SandboxServer, bolt_app: Any, page: Any, client: WebClient, bot_token: str
) -> None:
    def setup(harness: BoltHarness) -> None:
        @harness.app.event("app_home_opened")
        def app_home_opened_callback(event: dict[str, Any]) -> None:
            harness.record(event)

    harness = bolt_app(setup)
    team = sandbox.config.default_team.id
    text = (
        f"See <slack://channel?team={team}&id={RANDOM}|the random channel>, "
        f"<slack://user?team={team}&id={BOB}|Bob> and "
        f"<slack://app?team={team}&id={sandbox.config.app_id}&tab=home|your home>"
    )
    client.chat_postMessage(token=bot_token, channel=GENERAL, text=text)
    sandbox.say(BOB, RANDOM, "over in random")
    page.goto(sandbox.url)
    page.click("#messages a:text('the random channel')")
    page.wait_for_selector("#messages li.message:has-text('over in random')")
    assert page.eval_on_selector("#channel-select", "select => select.value") == RANDOM
    assert page.url == sandbox.url  # the console moved itself; no page was opened or left

    page.select_option("#channel-select", GENERAL)
    page.click("#messages a:text('Bob')")
    page.wait_for_selector(f"#people tr.highlight[data-user='{BOB}']")

    page.click("#messages a:text('your home')")
    page.wait_for_selector("#home-section.highlight")
    assert harness.event.wait(5) and harness.seen[0]["user"] == sandbox.config.users[0].id


def test_the_console_polls_without_an_access_line_each_time(
    sandbox: SandboxServer, page: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sandbox.access")

    def polls() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "sandbox.access" and "/sandbox/admin/state" in r.getMessage()]

    page.goto(sandbox.url)
    assert wait_until(lambda: len(polls()) >= 3, timeout=10)
    assert {record.levelno for record in polls()} == {logging.DEBUG}
    page_line = [r for r in caplog.records if r.name == "sandbox.access" and r.getMessage().startswith("GET / 200")]
    assert [record.levelno for record in page_line] == [logging.INFO]
