from __future__ import annotations

from listeners.actions.connect import connect_callback
from listeners.actions.disconnect import disconnect_ack, disconnect_callback

from ..fakes import TEAM, Calls, connection, text_of, world

KEY = {"enterprise_id": None, "team_id": TEAM, "user_id": "U1"}


def test_disconnect_from_a_message_revokes_deletes_and_replaces_the_prompt() -> None:
    w = world(info=connection())
    disconnect_ack(ack=w.ack)
    disconnect_callback(
        body={"type": "block_actions", "container": {"type": "message"}}, context=w.context, respond=w.respond
    )
    assert w.ack.calls == [{}]
    assert w.delegate.manager.disconnected == [KEY]
    assert w.respond.last["replace_original"] is True and "Slack revoked" in w.respond.last["text"]
    assert w.bot.calls == []


def test_disconnect_only_ever_disconnects_the_person_who_clicked() -> None:
    w = world(user_id="U7")
    body = {"type": "block_actions", "user": {"id": "U7"}, "actions": [{"value": "U1"}]}
    disconnect_callback(body=body, context=w.context, respond=w.respond)
    assert w.delegate.manager.disconnected == [{**KEY, "user_id": "U7"}]


def test_disconnect_from_app_home_republishes_the_home_tab() -> None:
    w = world(info=connection())
    disconnect_callback(body={"type": "block_actions", "view": {"type": "home"}}, context=w.context, respond=w.respond)
    published = w.bot.last("views_publish")
    assert published["user_id"] == "U1" and "not connected" in text_of(published["view"])
    assert w.respond.calls == []


def test_when_slack_could_not_revoke_the_token_is_still_deleted() -> None:
    w = world(info=connection())
    w.delegate.manager.revoked_at_slack = False
    disconnect_callback(body={"type": "block_actions"}, context=w.context, respond=w.respond)
    assert "Delegate deleted your token" in w.respond.last["text"]


def test_connect_link_clicks_are_acknowledged() -> None:
    ack = Calls()
    connect_callback(ack=ack)
    assert ack.calls == [{}]
