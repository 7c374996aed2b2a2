"""Through a real Bolt App: signed requests, the acknowledgement first, then the lazy listener acting as the person."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import urlencode

from slack_bolt import App, BoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request import BoltRequest

from listeners import register_listeners
from stores.errors import NotConnected
from tests.support.slack_requests import command_request, sign

from .fakes import ALL_SCOPES, FakeDelegate, Recorder, buttons

SECRET = "listener-test-secret"


class Gated(Recorder):
    """A user client whose calls wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__("user client", user_id="UA")
        self.gate = threading.Event()
        self.done = threading.Event()

    def __getattr__(self, method: str) -> Any:
        inner = super().__getattr__(method)

        def call(**kwargs: Any) -> Any:
            self.gate.wait(5)
            try:
                return inner(**kwargs)
            finally:
                self.done.set()

        return call


def delegate_app(connected: set[str], user: Recorder, bot: Recorder, delegate: FakeDelegate) -> App:
    def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None, context: BoltContext) -> Any:
        context["user_client"] = user if user_id in connected else None
        context["user_token_error"] = None if user_id in connected else NotConnected("nothing stored")
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token="xoxb-bot",
            user_id=user_id,
            user_token="xoxp-a" if user_id in connected else None,
            user_scopes=list(ALL_SCOPES) if user_id in connected else None,
        )

    app = App(signing_secret=SECRET, authorize=authorize, process_before_response=True)

    @app.middleware
    def provide(context: BoltContext, next: Any) -> None:
        context["client"] = bot
        context["delegate"] = delegate
        next()

    register_listeners(app)
    return app


def wait_for(condition: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def interactive_request(payload: dict[str, Any]) -> BoltRequest:
    body = urlencode({"payload": json.dumps(payload)})
    return BoltRequest(body=body, headers={k: [v] for k, v in sign(SECRET, body).items()})


def test_the_ack_leaves_before_the_slack_call_and_the_lazy_listener_posts_as_the_person() -> None:
    user, bot = Gated(), Recorder("bot client")
    app = delegate_app({"UA"}, user, bot, FakeDelegate())
    started = time.monotonic()
    response = app.dispatch(command_request(SECRET, "/post-as-me", "Hello all", user_id="UA", channel_id="C7"))
    assert response.status == 200 and response.body == ""
    assert time.monotonic() - started < 1.0 and user.calls == []  # acknowledged while the post still waits
    user.gate.set()
    assert user.done.wait(3)
    assert user.calls == [("chat_postMessage", {"channel": "C7", "text": "Hello all"})]
    assert bot.calls == []


def test_usage_errors_are_the_acknowledgement_itself() -> None:
    user, bot = Recorder("user client", user_id="UA"), Recorder("bot client")
    app = delegate_app({"UA"}, user, bot, FakeDelegate())
    response = app.dispatch(command_request(SECRET, "/snooze-me", "a while", user_id="UA"))
    body = json.loads(response.body)
    assert response.status == 200 and body["response_type"] == "ephemeral" and "/snooze-me 45m" in body["text"]
    time.sleep(0.05)
    assert user.calls == [] and bot.calls == []


def test_someone_not_connected_gets_a_connect_button_and_nobody_posts() -> None:
    user, bot, delegate = Recorder("user client", user_id="UA"), Recorder("bot client"), FakeDelegate()
    app = delegate_app({"UA"}, user, bot, delegate)
    response = app.dispatch(command_request(SECRET, "/post-as-me", "Hello", user_id="UB"))
    (button,) = buttons(json.loads(response.body))
    assert button["url"] == delegate.connect_url(team_id="T1", user_scopes=None)
    time.sleep(0.05)
    assert user.calls == [] and bot.calls == []  # not A's token, and not the bot's name either


def test_a_global_shortcut_opens_its_modal_after_the_ack() -> None:
    user, bot = Recorder("user client", user_id="UA"), Recorder("bot client")
    app = delegate_app({"UA"}, user, bot, FakeDelegate())
    payload = {
        "type": "shortcut",
        "callback_id": "set_my_status",
        "trigger_id": "7.7.7",
        "team": {"id": "T1", "domain": "acme"},
        "user": {"id": "UA", "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy",
    }
    response = app.dispatch(interactive_request(payload))
    assert response.status == 200
    wait_for(lambda: bot.calls)
    assert bot.last("views_open")["view"]["callback_id"] == "set_my_status_modal"


def reply_submission(text: str) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": "T1", "domain": "acme"},
        "user": {"id": "UA", "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy",
        "trigger_id": "6.6.6",
        "view": {
            "id": "V9",
            "type": "modal",
            "callback_id": "reply_as_me_modal",
            "private_metadata": json.dumps({"channel": "C5", "thread_ts": "100.1"}),
            "state": {"values": {"message": {"value": {"type": "plain_text_input", "value": text}}}},
        },
    }


def test_a_modal_submission_answers_errors_or_an_update_in_the_ack_then_replies_as_the_person() -> None:
    user, bot = Recorder("user client", user_id="UA"), Recorder("bot client")
    app = delegate_app({"UA"}, user, bot, FakeDelegate())
    bad = app.dispatch(interactive_request(reply_submission("  ")))
    assert json.loads(bad.body) == {"response_action": "errors", "errors": {"message": "Write a reply."}}
    good = app.dispatch(interactive_request(reply_submission("On my way")))
    assert json.loads(good.body)["response_action"] == "update"
    wait_for(lambda: bot.calls)
    assert user.calls == [("chat_postMessage", {"channel": "C5", "thread_ts": "100.1", "text": "On my way"})]
    assert bot.last("views_update")["view_id"] == "V9"
