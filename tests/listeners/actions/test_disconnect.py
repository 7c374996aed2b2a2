from __future__ import annotations

from listeners.actions.connect import connect_callback
from listeners.actions.disconnect import disconnect_ack, disconnect_callback
from stores.disconnect import DisconnectResult

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
    # The Home tab follows: it says not connected, without the notice (the message already said what happened).
    published = w.bot.last("views_publish")
    assert published["user_id"] == "U1" and "not connected" in text_of(published["view"])
    assert "Slack revoked" not in text_of(published["view"])


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


def test_when_slack_did_not_confirm_the_person_is_told_the_grant_may_still_be_live() -> None:
    w = world(info=connection())
    w.delegate.manager.disconnect_result = DisconnectResult(
        had_connection=True, revoked_at_slack=False, slack_error="http_500 internal_error", deleted=True
    )
    disconnect_callback(body={"type": "block_actions"}, context=w.context, respond=w.respond)
    said = w.respond.last["text"]
    assert "Delegate deleted its copy of your token" in said and "did not confirm" in said
    assert "may still be live" in said and "Manage apps" in said and "http_500 internal_error" in said
    assert "Slack revoked" not in said


def test_when_slack_revoked_but_the_delete_failed_the_person_hears_both() -> None:
    w = world(info=connection())
    w.delegate.manager.disconnect_result = DisconnectResult(
        had_connection=True, revoked_at_slack=True, slack_error=None, deleted=False
    )
    disconnect_callback(body={"type": "block_actions"}, context=w.context, respond=w.respond)
    said = w.respond.last["text"]
    assert "Slack revoked Delegate's access" in said and "could not delete" in said
    assert "something went wrong" not in said


def test_a_second_disconnect_says_there_was_nothing_to_disconnect() -> None:
    w = world(info=None)
    w.delegate.manager.disconnect_result = DisconnectResult(
        had_connection=False, revoked_at_slack=False, slack_error=None, deleted=True
    )
    disconnect_callback(body={"type": "block_actions"}, context=w.context, respond=w.respond)
    assert "nothing to disconnect" in w.respond.last["text"]


def test_from_app_home_a_grant_that_may_be_live_is_said_on_the_tab() -> None:
    w = world(info=connection())
    w.delegate.manager.disconnect_result = DisconnectResult(
        had_connection=True, revoked_at_slack=False, slack_error="connection_error:URLError", deleted=True
    )
    disconnect_callback(body={"type": "block_actions", "view": {"type": "home"}}, context=w.context, respond=w.respond)
    shown = text_of(w.bot.last("views_publish")["view"])
    assert "may still be live" in shown and "Manage apps" in shown and "not connected" in shown
    assert w.respond.calls == []


def test_a_failed_disconnect_from_app_home_is_said_on_the_tab_not_swallowed() -> None:
    w = world(info=connection())

    def broken(**_: object) -> DisconnectResult:
        raise RuntimeError("database is down")

    w.delegate.manager.disconnect = broken  # type: ignore[method-assign]
    disconnect_callback(body={"type": "block_actions", "view": {"type": "home"}}, context=w.context, respond=w.respond)
    assert "could not disconnect you" in text_of(w.bot.last("views_publish")["view"])


def test_connect_link_clicks_are_acknowledged() -> None:
    ack = Calls()
    connect_callback(ack=ack)
    assert ack.calls == [{}]


def test_a_failing_republish_is_logged_and_the_person_still_hears_the_outcome(caplog) -> None:  # type: ignore[no-untyped-def]
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import SlackResponse

    w = world(info=connection())
    refused = SlackResponse(
        client=None, http_verb="POST", api_url="", req_args={}, data={"ok": False, "error": "token_revoked"},
        headers={}, status_code=200,
    )  # fmt: skip
    w.bot.errors["views_publish"] = SlackApiError("refused", refused)
    disconnect_callback(body={"type": "block_actions"}, context=w.context, respond=w.respond)
    assert "Slack revoked" in w.respond.last["text"]
    assert "republish the Home tab of U1: token_revoked" in caplog.text
