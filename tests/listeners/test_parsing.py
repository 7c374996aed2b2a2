"""Durations, clock times, channel mentions and status lines as people type them."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from listeners.parsing import (
    ClearStatus,
    SetStatus,
    StatusExpiry,
    UsageError,
    parse_channel_mention,
    parse_clock,
    parse_duration,
    parse_emoji,
    parse_post,
    parse_search,
    parse_snooze,
    parse_status,
    readable,
    unescape,
)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("30m", 30), ("2h", 120), ("1h30m", 90), ("1h 30m", 90), ("90", 90), ("1d", 1440), ("2 hours", 120), ("45 min", 45)],
)
def test_durations(text: str, minutes: int) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "soon", "0m", "2x", "h", "-5m", "1.5h"])
def test_bad_durations_say_what_works(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("17:00", time(17)), ("9:30", time(9, 30)), ("5pm", time(17)), ("5:15 pm", time(17, 15)), ("12am", time(0)),
     ("noon", time(12))],
)  # fmt: skip
def test_clock_times(text: str, expected: time) -> None:
    assert parse_clock(text) == expected


@pytest.mark.parametrize("text", ["25:00", "17", "13pm", "later"])
def test_bad_clock_times(text: str) -> None:
    with pytest.raises(UsageError):
        parse_clock(text)


def test_channel_mentions() -> None:
    assert parse_channel_mention("<#C123ABC|general>") == "C123ABC"
    assert parse_channel_mention("<#G42>") == "G42"
    assert parse_channel_mention("#general") is None


def test_post_defaults_to_the_current_channel_unless_one_is_named() -> None:
    here = parse_post("Hello <@U2|bob>", current_channel="C1")
    assert (here.channel_id, here.text, here.named_channel) == ("C1", "Hello <@U2|bob>", False)
    there = parse_post("<#C9|random>   Hello all", current_channel="C1")
    assert (there.channel_id, there.text, there.named_channel) == ("C9", "Hello all", True)
    for empty in ("", "   ", "<#C9|random>"):
        with pytest.raises(UsageError, match="/post-as-me"):
            parse_post(empty, current_channel="C1")


def test_status_lines() -> None:
    half_hour = StatusExpiry(after=timedelta(minutes=30))
    assert parse_status(":coffee: Break for 30m") == SetStatus(":coffee:", "Break", half_hour)
    assert parse_status("In a meeting until 5pm") == SetStatus("", "In a meeting", StatusExpiry(at=time(17)))
    assert parse_status(":palm_tree:") == SetStatus(":palm_tree:", "", None)
    assert parse_status(":coffee: waiting for Godot") == SetStatus(":coffee:", "waiting for Godot", None, "for Godot")
    assert parse_status("hi for banana") == SetStatus("", "hi for banana", None, "for banana")
    assert parse_status("Out until Friday").not_expiry == "until Friday"  # type: ignore[union-attr]
    assert parse_status(":x: waiting for Godot for 2h").expiry == StatusExpiry(after=timedelta(hours=2))  # type: ignore[union-attr]
    assert parse_status(":+1::skin-tone-3: ok").emoji == ":+1::skin-tone-3:"  # type: ignore[union-attr]
    assert parse_status("clear") == ClearStatus()
    assert parse_status(" CLEAR ") == ClearStatus()


@pytest.mark.parametrize("text", ["", "help", "for 2h", ":bad!emoji: x", "x" * 101])
def test_bad_status_lines_show_the_usage_or_the_limit(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_status(text)
    assert "/set-my-status" in str(caught.value) or "100 characters" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "named"),
    [("x until 25:99", "25:99"), ("Lunch for 2 weeks", "2 weeks"), ("Away until 5", "5"), ("x for 3x", "3x")],
)
def test_an_expiry_that_looks_like_one_but_does_not_parse_is_an_error_naming_it(text: str, named: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_status(text)
    assert f"`{named}`" in str(caught.value) and "/set-my-status" in str(caught.value)


def test_post_names_a_channel_only_by_an_escaped_mention() -> None:
    for typo in ("#rnadom hi", "#random hi", "  #secret  hi there"):
        with pytest.raises(UsageError) as caught:
            parse_post(typo, current_channel="C1")
        message = str(caught.value)
        assert f"`{typo.split()[0]}`" in message and "nothing was posted" in message and "\\#" in message
    literal = parse_post("\\#1 is done &amp; dusted", current_channel="C1")
    assert (literal.channel_id, literal.text, literal.named_channel) == ("C1", "#1 is done &amp; dusted", False)
    assert parse_post("Ship it #1", current_channel="C1").text == "Ship it #1"  # not the first word: text
    mention = parse_post("<#C9|random> thanks <@U2|bob> <!here>", current_channel="C1")
    assert (mention.channel_id, mention.text) == ("C9", "thanks <@U2|bob> <!here>")


def test_search_turns_escaped_channels_into_search_syntax_and_refuses_unknown_ones() -> None:
    assert parse_search("budget in:<#C9|random>").query == "budget in:#random"
    assert parse_search("budget in:<#C9>").query == "budget in:<#C9>"
    assert parse_search("budget from:<@U2|bob> in:<@U3|carol>").query == "budget from:<@U2> in:<@U3>"
    assert parse_search("a &amp; b").query == "a &amp; b"
    for unknown, named in (("budget in:#rnadom", "#rnadom"), ("budget in:general", "#general")):
        with pytest.raises(UsageError) as caught:
            parse_search(unknown)
        assert f"`{named}`" in str(caught.value) and "nothing was searched" in str(caught.value)


def test_slack_text_made_readable_for_plain_text() -> None:
    assert unescape("a &lt;b&gt; &amp;amp;") == "a <b> &amp;"
    assert readable("x in:<#C9|random> from:<@U2|bob> <!here> &lt;3") == "x in:#random from:@bob @here <3"


def test_emoji_codes() -> None:
    assert parse_emoji("palm_tree") == ":palm_tree:"
    assert parse_emoji(":Palm_Tree:") == ":palm_tree:"
    assert parse_emoji(":no spaces:") is None


def test_until_resolves_in_the_person_time_zone_and_rolls_to_tomorrow() -> None:
    paris = ZoneInfo("Europe/Paris")
    now = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)  # 16:00 in Paris
    assert StatusExpiry(at=time(17)).resolve(now, paris) == datetime(2026, 11, 29, 17, 0, tzinfo=paris)
    assert StatusExpiry(at=time(9)).resolve(now, paris) == datetime(2026, 11, 30, 9, 0, tzinfo=paris)
    assert StatusExpiry(after=timedelta(hours=2)).resolve(now, paris) == now + timedelta(hours=2)


def test_snooze() -> None:
    assert parse_snooze("45m").minutes == 45
    assert parse_snooze("for 1h30m").minutes == 90
    assert parse_snooze("off").duration is None
    for bad in ("", "help", "forever", "8d"):
        with pytest.raises(UsageError, match="/snooze-me"):
            parse_snooze(bad)


def test_words_quoted_back_cannot_become_mentions() -> None:
    with pytest.raises(UsageError) as caught:
        parse_duration("<!channel>")
    assert "<!channel>" not in str(caught.value) and "&lt;!channel&gt;" in str(caught.value)
