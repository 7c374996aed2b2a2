from __future__ import annotations

from listeners.context import person_of
from listeners.events.app_home_opened import app_home_opened_ack, app_home_opened_callback
from listeners.home import home_view
from stores.errors import NeedsReauth

from ..fakes import ALL_SCOPES, TEAM, buttons, connection, text_of, world


def test_publishes_the_home_tab_with_the_bot_client() -> None:
    w = world(info=connection())
    app_home_opened_ack(ack=w.ack)
    app_home_opened_callback(event={"type": "app_home_opened", "user": "U1", "tab": "home"}, context=w.context)
    published = w.bot.last("views_publish")
    assert published["user_id"] == "U1" and published["view"]["type"] == "home"
    assert "/post-as-me" in text_of(published["view"]) and "Connected" in text_of(published["view"])
    assert w.user.calls == []  # type: ignore[union-attr]


def test_the_messages_tab_publishes_nothing() -> None:
    w = world()
    app_home_opened_callback(event={"type": "app_home_opened", "user": "U1", "tab": "messages"}, context=w.context)
    assert w.bot.calls == []


def test_home_controls_follow_the_connection_state() -> None:
    w = world(connected=False)
    (connect,) = buttons(home_view(w.delegate, _person(w)))
    assert connect["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=None)

    w.delegate.manager.info = connection("needs_reauth")
    reconnect, disconnect = buttons(home_view(w.delegate, _person(w)))
    assert reconnect["text"]["text"] == "Reconnect" and disconnect["action_id"] == "disconnect"

    w.delegate.manager.info = connection(scopes=[s for s in ALL_SCOPES if s != "dnd:write"])
    reconnect, _ = buttons(home_view(w.delegate, _person(w)))
    assert reconnect["url"] == w.delegate.connect_url(team_id=TEAM, user_scopes=["dnd:write"])

    w.delegate.manager.info = connection()
    (disconnect,) = buttons(home_view(w.delegate, _person(w)))
    assert disconnect["action_id"] == "disconnect" and "confirm" in disconnect


def test_a_failing_publish_is_logged_not_raised(caplog) -> None:  # type: ignore[no-untyped-def]
    w = world(connected=False, error=NeedsReauth("x"))
    w.bot.errors["views_publish"] = RuntimeError("network")
    app_home_opened_callback(event={"type": "app_home_opened", "user": "U1", "tab": "home"}, context=w.context)
    assert any(record.exc_info for record in caplog.records)


def _person(w):  # type: ignore[no-untyped-def]
    return person_of(w.context)


def test_a_revoked_connection_says_it_was_revoked_in_slack_when_and_offers_to_connect_again() -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 12, 2, 17, 5, tzinfo=UTC)
    w = world(info=connection("revoked", status_reason="tokens_revoked", status_changed_at=when))
    view = home_view(w.delegate, _person(w))
    said = text_of(view)
    assert f"Your Delegate connection was revoked in Slack on <!date^{int(when.timestamp())}^" in said
    assert "(`tokens_revoked`). Connect again to use Delegate." in said
    again, _ = buttons(view)
    assert again["text"]["text"] == "Connect again"
    assert "not connected" not in said


def test_the_next_steps_follow_the_connection_and_name_every_command_and_the_operators_links() -> None:
    from listeners import manifest

    w = world(connected=False)
    before = text_of(home_view(w.delegate, _person(w)))
    assert "Once you have connected" in before and "Try these" not in before
    assert "Get help" not in before and "Privacy policy" not in before  # none set: no dead links

    w.delegate.manager.info = connection("needs_reauth")
    assert "Once you have connected" in text_of(home_view(w.delegate, _person(w)))

    w.delegate.manager.info = connection()
    w.delegate.support_url = "https://help.example.com/?a=1&b=<2>"
    w.delegate.privacy_url = "https://example.com/privacy"
    after = text_of(home_view(w.delegate, _person(w)))
    assert "Try these" in after and "Once you have connected" not in after
    for entry in manifest.slash_command_details():
        assert entry.command in after and entry.description in after
    assert "<https://help.example.com/?a=1&amp;b=&lt;2&gt;|Get help>" in after
    assert "<https://example.com/privacy|Privacy policy>" in after
