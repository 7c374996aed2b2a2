"""Every command that acts as the person: no usable token or a missing scope gets a connect button, never an action."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from listeners.commands import COMMANDS
from stores.errors import MissingScope, NeedsReauth, NotConnected, RefreshTimeout, SlackUnavailable, TokenRevoked

from .fakes import ALL_SCOPES, TEAM, assert_bot_never_acted, buttons, command, slack_error, text_of, world

# command, text, the scopes it needs, the user-client method it calls
ACTING = [
    ("/post-as-me", "Hello all", ("chat:write",), "chat_postMessage"),
    ("/set-my-status", ":coffee: Break for 15m", ("users.profile:write",), "users_profile_set"),
    ("/set-my-status", ":coffee: Break until 17:00", ("users.profile:write", "users:read"), "users_info"),
    ("/set-my-status", "clear", ("users.profile:write",), "users_profile_set"),
    ("/snooze-me", "45m", ("dnd:write",), "dnd_setSnooze"),
    ("/snooze-me", "off", ("dnd:write",), "dnd_endSnooze"),
    ("/search-mine", "report", ("search:read",), "search_messages"),
]


def run(name: str, text: str, w: Any) -> None:
    ack, (callback,) = COMMANDS[name]
    body = command(name, text)
    ack(ack=w.ack, command=body, context=w.context)
    callback(command=body, context=w.context, respond=w.respond)


@pytest.mark.parametrize(("name", "text", "needed", "method"), ACTING)
def test_acts_with_the_person_client_only(name: str, text: str, needed: tuple[str, ...], method: str) -> None:
    w = world()
    w.user.answers["users_info"] = {"user": {"id": "U1", "tz": "Europe/Paris"}}  # type: ignore[union-attr]
    run(name, text, w)
    assert w.ack.calls == [{}]
    assert method in w.user.methods()  # type: ignore[union-attr]
    assert_bot_never_acted(w)
    assert w.bot.calls == []


TOKEN_PROBLEMS: list[tuple[str, Callable[[], Any], str]] = [
    ("not connected", lambda: NotConnected("nothing stored"), "Connect Delegate"),
    ("never authorized", lambda: None, "Connect Delegate"),
    ("needs reauth", lambda: NeedsReauth("refused", reason="invalid_refresh_token"), "Reconnect"),
    ("revoked", lambda: TokenRevoked("revoked", reason="token_revoked"), "Connect again"),
]


@pytest.mark.parametrize(("name", "text", "needed", "method"), ACTING)
@pytest.mark.parametrize(("case", "error", "label"), TOKEN_PROBLEMS, ids=[p[0] for p in TOKEN_PROBLEMS])
def test_no_usable_token_answers_in_the_ack_with_a_connect_button(
    name: str, text: str, needed: tuple[str, ...], method: str, case: str, error: Callable[[], Any], label: str
) -> None:
    w = world(connected=False, error=error())
    run(name, text, w)
    reply = w.ack.last
    assert reply["response_type"] == "ephemeral"
    (button,) = buttons(reply)
    assert button["text"]["text"] == label
    assert button["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=None)
    assert w.respond.calls == []  # the ack said it all; the lazy listener did nothing
    assert w.bot.calls == []  # and nothing went out under the bot's name


@pytest.mark.parametrize(("name", "text", "needed", "method"), ACTING)
def test_missing_scope_asks_for_exactly_the_missing_ones(name: str, text: str, needed: tuple[str, ...], method: str) -> None:
    granted = [scope for scope in ALL_SCOPES if scope not in needed]
    w = world(scopes=granted)
    run(name, text, w)
    (button,) = buttons(w.ack.last)
    assert button["text"]["text"] == "Reconnect"
    assert button["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=list(needed))
    assert all(f"`{scope}`" in text_of(w.ack.last) for scope in needed)
    assert w.user.calls == [] and w.bot.calls == []  # type: ignore[union-attr]


@pytest.mark.parametrize(("name", "text", "needed", "method"), ACTING)
def test_missing_scope_from_slack_gets_a_reconnect_button_for_what_slack_said(
    name: str, text: str, needed: tuple[str, ...], method: str
) -> None:
    w = world()
    w.user.errors[method] = MissingScope("lacks", needed=["search:read"], provided=["chat:write"])  # type: ignore[union-attr]
    run(name, text, w)
    assert w.ack.calls == [{}]
    reply = w.respond.last
    assert reply["response_type"] == "ephemeral"
    (button,) = buttons(reply)
    assert button["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=["search:read"])
    assert_bot_never_acted(w)


@pytest.mark.parametrize(("name", "text", "needed", "method"), ACTING)
@pytest.mark.parametrize("error", [NeedsReauth("refused"), TokenRevoked("revoked")], ids=["needs_reauth", "revoked"])
def test_token_rejected_during_the_call_gets_a_reconnect_button(
    name: str, text: str, needed: tuple[str, ...], method: str, error: Exception
) -> None:
    w = world()
    w.user.errors[method] = error  # type: ignore[union-attr]
    run(name, text, w)
    (button,) = buttons(w.respond.last)
    assert button["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=None)
    assert_bot_never_acted(w)


@pytest.mark.parametrize("error", [SlackUnavailable("down"), RefreshTimeout("slow")], ids=["unavailable", "timeout"])
def test_transient_token_trouble_says_try_again_without_a_button(error: Exception, caplog: pytest.LogCaptureFixture) -> None:
    w = world()
    w.user.errors["chat_postMessage"] = error  # type: ignore[union-attr]
    run("/post-as-me", "Hello", w)
    assert "Try again" in w.respond.last["text"] and buttons(w.respond.last) == []
    assert any(record.exc_info for record in caplog.records)


def test_transient_trouble_before_the_call_says_try_again_in_the_ack() -> None:
    w = world(connected=False, error=SlackUnavailable("down"))
    run("/snooze-me", "10m", w)
    assert "Try again" in w.ack.last["text"] and buttons(w.ack.last) == []


def test_slack_errors_are_named_plainly_and_never_show_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    w = world()
    w.user.errors["chat_postMessage"] = slack_error("not_in_channel")  # type: ignore[union-attr]
    run("/post-as-me", "<#C9|random> Hello", w)
    reply = w.respond.last
    assert "you are not a member of that channel" in reply["text"] and "`not_in_channel`" in reply["text"]
    assert "Traceback" not in reply["text"] and "xox" not in str(reply)


def test_an_unexpected_failure_is_logged_with_its_traceback_and_told_plainly(caplog: pytest.LogCaptureFixture) -> None:
    w = world()
    w.user.errors["dnd_setSnooze"] = RuntimeError("boom xoxp-secret")  # type: ignore[union-attr]
    run("/snooze-me", "10m", w)
    assert "something went wrong" in w.respond.last["text"]
    assert "boom" not in str(w.respond.last) and "xoxp" not in str(w.respond.last)
    assert any(record.exc_info and record.levelname == "ERROR" for record in caplog.records)


def test_an_unreachable_response_url_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    w = world()

    def unreachable(**_: Any) -> None:
        raise OSError("connection refused")

    _, (callback,) = COMMANDS["/snooze-me"]
    callback(command=command("/snooze-me", "10m"), context=w.context, respond=unreachable)
    assert w.user.methods() == ["dnd_setSnooze"]  # type: ignore[union-attr]
    assert any(record.exc_info for record in caplog.records)



@pytest.mark.parametrize(
    ("reason", "said"),
    [("team_added_to_org", "`team_added_to_org`"), ("refresh_answer_lost", "lost Slack's answer"), (None, "no longer")],
)
def test_a_reconnect_prompt_says_why_and_names_an_unusual_refresh_error(reason: str | None, said: str) -> None:
    w = world()
    w.user.errors["chat_postMessage"] = NeedsReauth("refused", reason=reason)  # type: ignore[union-attr]
    run("/post-as-me", "Hello", w)
    assert said in text_of(w.respond.last) and buttons(w.respond.last)


WHEN = datetime(2026, 12, 2, 17, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (TokenRevoked("x", reason="tokens_revoked", since=WHEN), "Your Delegate connection was revoked in Slack on"),
        (TokenRevoked("x", reason="token_revoked", since=WHEN), "Slack says your Delegate connection was revoked on"),
        (TokenRevoked("x", reason="user_deactivated", since=WHEN), "when your Slack account was deactivated on"),
        (NeedsReauth("x", reason="invalid_refresh_token", since=WHEN), "no longer accepts your Delegate connection ("),
    ],
)
def test_a_person_whose_connection_was_lost_is_told_what_happened_and_when(error: Any, said: str) -> None:
    w = world(connected=False, error=error)
    run("/post-as-me", "Hello", w)
    reply = text_of(w.ack.last)
    assert said in reply and f"`{error.reason}`" in reply
    assert f"<!date^{int(WHEN.timestamp())}^" in reply
    assert "first" not in reply  # not the prompt of someone who never connected
    (button,) = buttons(w.ack.last)
    assert button["text"]["text"] in ("Connect again", "Reconnect")


def test_someone_who_never_connected_is_asked_to_connect_first_and_hears_of_no_revocation() -> None:
    w = world(connected=False, error=NotConnected("nothing stored"))
    run("/post-as-me", "Hello", w)
    reply = text_of(w.ack.last)
    assert "connect your Slack account to Delegate first" in reply and "revoked" not in reply
