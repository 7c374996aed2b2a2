from __future__ import annotations

import json

from listeners.views.reply_as_me_modal import reply_as_me_modal_ack, reply_as_me_modal_callback
from stores.errors import MissingScope

from ..fakes import TEAM, assert_bot_never_acted, buttons, slack_error, text_of, world


def view(text: str | None, metadata: dict | None = None) -> dict:  # type: ignore[type-arg]
    return {
        "id": "V2",
        "callback_id": "reply_as_me_modal",
        "private_metadata": json.dumps(metadata if metadata is not None else {"channel": "C5", "thread_ts": "100.1"}),
        "state": {"values": {"message": {"value": {"type": "plain_text_input", "value": text}}}},
    }


def submit(v: dict, w) -> None:  # type: ignore[no-untyped-def,type-arg]
    reply_as_me_modal_ack(ack=w.ack, view=v, context=w.context)
    reply_as_me_modal_callback(view=v, context=w.context)


def test_replies_in_the_thread_as_the_person() -> None:
    w = world()
    submit(view("On my way"), w)
    assert w.ack.last["response_action"] == "update"
    assert w.user.last("chat_postMessage") == {"channel": "C5", "thread_ts": "100.1", "text": "On my way"}  # type: ignore[union-attr]
    assert "Replied as you" in text_of(w.bot.last("views_update")["view"])
    assert_bot_never_acted(w)


def test_blank_reply_is_an_error_in_the_form() -> None:
    w = world()
    submit(view("   "), w)
    assert w.ack.last == {"response_action": "errors", "errors": {"message": "Write a reply."}}
    assert w.user.calls == []  # type: ignore[union-attr]


def test_lost_metadata_is_an_error_not_a_post_elsewhere() -> None:
    w = world()
    submit(view("hi", metadata={}), w)
    assert w.ack.last["response_action"] == "errors" and w.user.calls == []  # type: ignore[union-attr]


def test_slack_error_is_shown_in_the_modal() -> None:
    w = world()
    w.user.errors["chat_postMessage"] = slack_error("not_in_channel")  # type: ignore[union-attr]
    submit(view("hi"), w)
    assert "not a member" in text_of(w.bot.last("views_update")["view"])


def test_missing_scope_from_slack_asks_for_it() -> None:
    w = world()
    w.user.errors["chat_postMessage"] = MissingScope("lacks", needed=["chat:write"], provided=[])  # type: ignore[union-attr]
    submit(view("hi"), w)
    (button,) = buttons(w.bot.last("views_update")["view"])
    assert button["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=["chat:write"])
