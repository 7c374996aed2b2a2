from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from listeners.views.set_my_status_modal import set_my_status_modal_ack, set_my_status_modal_callback
from stores.errors import TokenRevoked

from ..fakes import TEAM, assert_bot_never_acted, buttons, text_of, world

NOW = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)



def view(emoji: str | None = None, text: str | None = None, expiry: str = "never", clear_at: int | None = None) -> dict:  # type: ignore[type-arg]
    values: dict[str, Any] = {
        "emoji": {"value": {"type": "plain_text_input", "value": emoji}},
        "text": {"value": {"type": "plain_text_input", "value": text}},
        "expiry": {"value": {"type": "static_select", "selected_option": {"value": expiry}}},
        "clear_at": {"value": {"type": "datetimepicker", "selected_date_time": clear_at}},
    }
    return {"id": "V1", "callback_id": "set_my_status_modal", "state": {"values": values}}


def submit(v: dict, w) -> None:  # type: ignore[no-untyped-def,type-arg]
    set_my_status_modal_ack(ack=w.ack, view=v, context=w.context)
    set_my_status_modal_callback(view=v, context=w.context)


def test_sets_the_status_as_the_person_and_shows_the_result_in_the_modal() -> None:
    w = world(now=NOW)
    submit(view(emoji="coffee", text="Break", expiry="30m"), w)
    assert w.ack.last["response_action"] == "update"
    profile = w.user.last("users_profile_set")["profile"]  # type: ignore[union-attr]
    assert profile == {"status_emoji": ":coffee:", "status_text": "Break", "status_expiration": int(NOW.timestamp()) + 1800}
    updated = w.bot.last("views_update")
    assert updated["view_id"] == "V1" and "Your status is now :coffee: Break" in text_of(updated["view"])
    assert_bot_never_acted(w)


def test_clear_at_a_chosen_moment() -> None:
    w = world(now=NOW)
    submit(view(text="Travelling", clear_at=int(NOW.timestamp()) + 86400), w)
    assert w.user.last("users_profile_set")["profile"]["status_expiration"] == int(NOW.timestamp()) + 86400  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({}, "text"),
        ({"emoji": "not an emoji", "text": "x"}, "emoji"),
        ({"text": "x" * 101}, "text"),
        ({"text": "x", "expiry": "1h", "clear_at": int(NOW.timestamp()) + 60}, "clear_at"),
        ({"text": "x", "clear_at": int(NOW.timestamp()) - 60}, "clear_at"),
    ],
)
def test_bad_input_is_answered_with_errors_next_to_the_field(form: dict, field: str) -> None:  # type: ignore[type-arg]
    w = world(now=NOW)
    submit(view(**form), w)
    assert w.ack.last["response_action"] == "errors" and field in w.ack.last["errors"]
    assert w.user.calls == [] and w.bot.calls == []  # type: ignore[union-attr]


def test_no_token_shows_the_connect_prompt_in_the_modal() -> None:
    w = world(now=NOW, connected=False, error=TokenRevoked("revoked"))
    submit(view(text="x"), w)
    assert w.ack.last["response_action"] == "update"
    (button,) = buttons(w.ack.last["view"])
    assert button["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=None)
    assert w.bot.calls == []


def test_token_revoked_during_the_call_shows_the_connect_prompt() -> None:
    w = world(now=NOW)
    w.user.errors["users_profile_set"] = TokenRevoked("revoked")  # type: ignore[union-attr]
    submit(view(text="x"), w)
    (button,) = buttons(w.bot.last("views_update")["view"])
    assert button["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=None)
