from __future__ import annotations

from listeners.commands.snooze_me import snooze_me_ack, snooze_me_callback

from ..fakes import assert_bot_never_acted, command, slack_error, world


def run(text: str, w) -> None:  # type: ignore[no-untyped-def]
    body = command("/snooze-me", text)
    snooze_me_ack(ack=w.ack, command=body, context=w.context)
    snooze_me_callback(command=body, context=w.context, respond=w.respond)


def test_snoozes_for_the_duration() -> None:
    w = world()
    w.user.answers["dnd_setSnooze"] = {"snooze_endtime": 1_800_000_000}  # type: ignore[union-attr]
    run("1h30m", w)
    assert w.user.last("dnd_setSnooze") == {"num_minutes": 90}  # type: ignore[union-attr]
    assert "snoozed for 1 h 30 min until <!date^1800000000^" in w.respond.last["text"]
    assert_bot_never_acted(w)


def test_off_ends_the_snooze() -> None:
    w = world()
    run("off", w)
    assert w.user.methods() == ["dnd_endSnooze"]  # type: ignore[union-attr]
    assert "Snooze ended" in w.respond.last["text"]


def test_ending_no_snooze_says_so() -> None:
    w = world()
    w.user.errors["dnd_endSnooze"] = slack_error("snooze_not_active")  # type: ignore[union-attr]
    run("off", w)
    assert "you are not snoozing" in w.respond.last["text"]


def test_bad_duration_gets_the_usage() -> None:
    w = world()
    run("a while", w)
    assert "/snooze-me 45m" in w.ack.last["text"]
    assert w.user.calls == []  # type: ignore[union-attr]
