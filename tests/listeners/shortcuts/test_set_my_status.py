from __future__ import annotations

from datetime import UTC, datetime

from listeners.modals import SET_MY_STATUS_MODAL
from listeners.shortcuts.set_my_status import set_my_status_ack, set_my_status_callback
from stores.errors import NeedsReauth, TokenRevoked

from ..fakes import ALL_SCOPES, TEAM, assert_bot_never_acted, buttons, slack_error, text_of, world

BODY = {"type": "shortcut", "callback_id": "set_my_status", "trigger_id": "9.9.9", "user": {"id": "U1"}}


def test_acks_then_opens_the_status_form() -> None:
    w = world()
    set_my_status_ack(ack=w.ack)
    set_my_status_callback(body=BODY, context=w.context)
    assert w.ack.calls == [{}]
    opened = w.bot.last("views_open")
    assert opened["trigger_id"] == "9.9.9" and opened["view"]["callback_id"] == SET_MY_STATUS_MODAL
    assert {block.get("block_id") for block in opened["view"]["blocks"]} >= {"emoji", "text", "expiry", "clear_at"}
    assert w.user.calls == []  # type: ignore[union-attr]
    assert_bot_never_acted(w)


def test_not_connected_opens_a_modal_with_the_connect_button_instead_of_the_form() -> None:
    w = world(connected=False, error=NeedsReauth("refused"))
    set_my_status_callback(body=BODY, context=w.context)
    view = w.bot.last("views_open")["view"]
    assert "callback_id" not in view and "submit" not in view
    (button,) = buttons(view)
    assert button["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=None)


def test_missing_the_profile_scope_asks_for_it_alone() -> None:
    w = world(scopes=[scope for scope in ALL_SCOPES if scope != "users.profile:write"])
    set_my_status_callback(body=BODY, context=w.context)
    (button,) = buttons(w.bot.last("views_open")["view"])
    assert button["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=["users.profile:write"])


def test_a_form_that_cannot_open_in_time_is_said_privately_not_silently() -> None:
    w = world()
    w.bot.errors["views_open"] = slack_error("expired_trigger_id")
    set_my_status_callback(body=BODY, context=w.context)
    told = w.bot.last("chat_postMessage")  # a global shortcut has no response_url: the person's DM with Delegate
    assert told["channel"] == "U1" and "try the shortcut again" in told["text"]


def test_a_revoked_person_is_told_in_the_modal_it_was_revoked_in_slack_and_when() -> None:
    when = datetime(2026, 12, 2, 17, 5, tzinfo=UTC)
    w = world(connected=False, error=TokenRevoked("revoked", reason="tokens_revoked", since=when))
    set_my_status_callback(body=BODY, context=w.context)
    view = w.bot.last("views_open")["view"]
    said = text_of(view)
    assert "revoked in Slack on <!date^" in said and "`tokens_revoked`" in said and "first" not in said
    (button,) = buttons(view)
    assert button["text"]["text"] == "Connect again"
