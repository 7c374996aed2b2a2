from __future__ import annotations

import json

from listeners.modals import REPLY_AS_ME_MODAL
from listeners.shortcuts.reply_as_me import reply_as_me_ack, reply_as_me_callback

from ..fakes import TEAM, assert_bot_never_acted, buttons, world


def body(message: dict) -> dict:  # type: ignore[type-arg]
    return {
        "type": "message_action",
        "callback_id": "reply_as_me",
        "trigger_id": "8.8.8",
        "user": {"id": "U1"},
        "channel": {"id": "C5", "name": "general"},
        "message": message,
        "response_url": "https://hooks.example/r",
    }


def test_opens_the_reply_form_keeping_channel_and_thread_in_private_metadata() -> None:
    w = world()
    reply_as_me_ack(ack=w.ack)
    reply_as_me_callback(body=body({"ts": "100.1", "user": "U2", "text": "Lunch <at> noon?"}), context=w.context)
    view = w.bot.last("views_open")["view"]
    assert view["callback_id"] == REPLY_AS_ME_MODAL
    assert json.loads(view["private_metadata"]) == {"channel": "C5", "thread_ts": "100.1"}
    assert "<@U2>" in view["blocks"][0]["elements"][0]["text"] and "&lt;at&gt;" in view["blocks"][0]["elements"][0]["text"]
    assert w.ack.calls == [{}] and w.user.calls == []  # type: ignore[union-attr]
    assert_bot_never_acted(w)


def test_a_reply_to_a_thread_reply_stays_in_that_thread() -> None:
    w = world()
    reply_as_me_callback(body=body({"ts": "100.5", "thread_ts": "100.1", "user": "U2", "text": "x"}), context=w.context)
    assert json.loads(w.bot.last("views_open")["view"]["private_metadata"])["thread_ts"] == "100.1"


def test_not_connected_gets_the_connect_modal() -> None:
    w = world(connected=False)
    reply_as_me_callback(body=body({"ts": "1.1", "text": "x"}), context=w.context)
    (button,) = buttons(w.bot.last("views_open")["view"])
    assert button["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=None)
