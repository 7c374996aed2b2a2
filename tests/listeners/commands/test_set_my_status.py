from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from listeners.commands.set_my_status import set_my_status_ack, set_my_status_callback

from ..fakes import assert_bot_never_acted, command, world

NOW = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)



def run(text: str, w) -> None:  # type: ignore[no-untyped-def]
    body = command("/set-my-status", text)
    set_my_status_ack(ack=w.ack, command=body, context=w.context)
    set_my_status_callback(command=body, context=w.context, respond=w.respond)


def test_sets_emoji_text_and_expiry_after_a_duration() -> None:
    w = world(now=NOW)
    run(":coffee: Break for 15m", w)
    profile = w.user.last("users_profile_set")["profile"]  # type: ignore[union-attr]
    assert profile == {"status_text": "Break", "status_emoji": ":coffee:", "status_expiration": int(NOW.timestamp()) + 900}
    assert "Your status is now :coffee: Break, until <!date^" in w.respond.last["text"]
    assert_bot_never_acted(w)


def test_until_a_time_uses_the_person_time_zone_from_slack() -> None:
    w = world(now=NOW)
    w.user.answers["users_info"] = {"user": {"id": "U1", "tz": "America/New_York", "tz_offset": -18000}}  # type: ignore[union-attr]
    run("In a meeting until 5pm", w)
    assert w.user.last("users_info") == {"user": "U1"}  # type: ignore[union-attr]
    expected = datetime(2026, 11, 29, 17, 0, tzinfo=ZoneInfo("America/New_York"))
    profile = w.user.last("users_profile_set")["profile"]  # type: ignore[union-attr]
    assert profile["status_emoji"] == "" and profile["status_expiration"] == int(expected.timestamp())


def test_until_falls_back_to_the_offset_then_utc() -> None:
    w = world(now=NOW)
    w.user.answers["users_info"] = {"user": {"id": "U1", "tz": "Not/AZone", "tz_offset": 3600}}  # type: ignore[union-attr]
    run(":x: out until 17:00", w)
    assert w.user.last("users_profile_set")["profile"]["status_expiration"] == int(NOW.timestamp()) + 3600  # type: ignore[union-attr]


def test_no_expiry_means_zero() -> None:
    w = world(now=NOW)
    run(":palm_tree: On holiday", w)
    assert w.user.last("users_profile_set")["profile"]["status_expiration"] == 0  # type: ignore[union-attr]
    assert "stays until you change it" in w.respond.last["text"]


def test_clear() -> None:
    w = world(now=NOW)
    run("clear", w)
    profile = w.user.last("users_profile_set")["profile"]  # type: ignore[union-attr]
    assert profile == {"status_text": "", "status_emoji": "", "status_expiration": 0}
    assert w.respond.last["text"] == "Your status is cleared."


@pytest.mark.parametrize("text", ["", "help", "x" * 120])
def test_bad_arguments_get_the_usage_in_the_ack(text: str) -> None:
    w = world(now=NOW)
    run(text, w)
    assert w.ack.last["response_type"] == "ephemeral"
    assert "/set-my-status" in w.ack.last["text"] or "100 characters" in w.ack.last["text"]
    assert w.user.calls == [] and w.respond.calls == []  # type: ignore[union-attr]
