from __future__ import annotations

import pytest

from listeners import manifest
from listeners.commands.delegate import delegate_ack, delegate_callback
from stores.errors import NeedsReauth

from ..fakes import ALL_SCOPES, TEAM, buttons, command, connection, text_of, world


def run(text: str, w) -> None:  # type: ignore[no-untyped-def]
    body = command("/delegate", text)
    delegate_ack(ack=w.ack, command=body, context=w.context)
    delegate_callback(command=body, context=w.context, respond=w.respond)


@pytest.mark.parametrize("text", ["", "help", "HELP"])
def test_help_lists_every_command_and_shortcut(text: str) -> None:
    w = world(connected=False)
    run(text, w)
    shown = text_of(w.ack.last)
    assert all(name in shown for name in manifest.slash_commands())
    assert "Set my status" in shown and "Reply as me" in shown
    assert w.respond.calls == [] and w.bot.calls == []


def test_unknown_subcommand_gets_the_usage() -> None:
    w = world()
    run("frobnicate", w)
    assert "/delegate connection" in w.ack.last["text"] and w.respond.calls == []


def test_connection_shows_who_scopes_expiry_last_refresh_and_state() -> None:
    w = world(info=connection())
    run("connection", w)
    assert w.ack.calls == [{}]
    reply = w.respond.last
    shown = text_of(reply)
    assert reply["response_type"] == "ephemeral"
    assert "<@U1>" in shown and "Connected" in shown and "renewed" in shown
    assert all(f"`{scope}`" in shown for scope in ALL_SCOPES)
    assert "<!date^1795968000^" in shown  # expires_at, 2026-11-29 16:00 UTC, shown in the reader's time zone
    assert [b["action_id"] for b in buttons(reply)] == ["disconnect"]
    assert w.delegate.manager.asked == [{"enterprise_id": None, "team_id": TEAM, "user_id": "U1"}]


def test_connection_needing_reauth_offers_reconnect_and_works_without_a_token() -> None:
    w = world(connected=False, error=NeedsReauth("refused"), info=connection("needs_reauth"))
    run("connection", w)
    shown = text_of(w.respond.last)
    assert "Needs reconnecting" in shown and "invalid_refresh_token" in shown
    reconnect, disconnect = buttons(w.respond.last)
    assert reconnect["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=None)
    assert disconnect["action_id"] == "disconnect"


def test_connection_missing_scopes_offers_exactly_those() -> None:
    granted = [scope for scope in ALL_SCOPES if scope != "search:read"]
    w = world(info=connection(scopes=granted, needed_scopes=("dnd:write",)))
    run("connection", w)
    reconnect = buttons(w.respond.last)[0]
    assert reconnect["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=["search:read"])


def test_not_connected() -> None:
    w = world(connected=False)
    run("connection", w)
    (connect,) = buttons(w.respond.last)
    assert connect["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=None)


def test_connect_answers_in_the_ack_with_the_usual_scopes() -> None:
    w = world(connected=False)
    run("connect", w)
    (connect,) = buttons(w.ack.last)
    assert connect["url"] == w.delegate.connect_url(team_id=TEAM) and connect["text"]["text"] == "Connect Delegate"
    assert w.respond.calls == []


def test_disconnect_asks_for_confirmation_first() -> None:
    w = world(info=connection())
    run("disconnect", w)
    (button,) = buttons(w.respond.last)
    assert button["action_id"] == "disconnect" and button["style"] == "danger" and "confirm" in button
    assert w.delegate.manager.disconnected == []


def test_disconnect_when_not_connected() -> None:
    w = world(connected=False)
    run("disconnect", w)
    assert "nothing to disconnect" in w.respond.last["text"] and buttons(w.respond.last) == []


def test_a_store_failure_is_logged_and_told_plainly(caplog: pytest.LogCaptureFixture) -> None:
    w = world()

    def broken(**_: object) -> None:
        raise RuntimeError("database is down")

    w.delegate.manager.connection_info = broken  # type: ignore[method-assign,assignment]
    run("connection", w)
    assert "something went wrong" in w.respond.last["text"] and "database" not in w.respond.last["text"]
    assert any(record.exc_info for record in caplog.records)
