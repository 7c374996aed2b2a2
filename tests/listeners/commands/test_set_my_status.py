from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from listeners.commands.set_my_status import set_my_status_ack, set_my_status_callback

from ..fakes import assert_bot_never_acted, command, slack_error, world

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


def test_words_that_are_not_an_expiry_stay_text_and_the_reply_says_no_expiry_was_set() -> None:
    w = world()
    run("hi for banana", w)
    profile = w.user.last("users_profile_set")["profile"]  # type: ignore[union-attr]
    assert (profile["status_text"], profile["status_expiration"]) == ("hi for banana", 0)
    assert "No expiry was set: `for banana` is not a duration or a time of day" in w.respond.last["text"]


def test_an_expiry_that_does_not_parse_is_refused_in_the_ack() -> None:
    w = world()
    run("x until 25:99", w)
    assert "`25:99` is not a time of day" in w.ack.last["text"]
    assert w.user.calls == [] and w.respond.calls == []  # type: ignore[union-attr]


def test_an_emoji_slack_does_not_know_gets_a_sentence_naming_it() -> None:
    w = world()
    w.user.errors["users_profile_set"] = slack_error("profile_status_set_failed_not_valid_emoji")  # type: ignore[union-attr]
    run(":notanemoji: x", w)
    text = w.respond.last["text"]
    assert "Slack has no emoji `:notanemoji:`" in text and "status was not changed" in text


def test_entities_slack_sends_are_the_characters_typed() -> None:
    w = world()
    run("Tom &amp; Jerry &lt;3", w)
    assert w.user.last("users_profile_set")["profile"]["status_text"] == "Tom & Jerry <3"  # type: ignore[union-attr]
    assert "Tom &amp; Jerry &lt;3" in w.respond.last["text"]
