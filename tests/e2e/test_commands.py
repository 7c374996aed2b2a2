"""Every command and shortcut through the sandbox over HTTP, acting only as the person who asked."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import update

from stores.rotation import TokenKey, TokenManager
from stores.schema import utcnow
from tests.e2e.harness import Delegate, running_delegate, wait_for

ALICE, BOB, CAROL = "U0ALICE001", "U0BOB00002", "U0CAROL003"
TEAM, GENERAL, RANDOM = "T0SANDBOX1", "C0GENERAL1", "C0RANDOM02"


@pytest.fixture
def delegate(tmp_path: Path) -> Iterator[Delegate]:
    with running_delegate(tmp_path) as running:
        running.install(ALICE)
        yield running


def posted(delegate: Delegate, channel: str, text: str) -> list[dict[str, Any]]:
    return [m for m in delegate.sandbox.messages(channel) if text in m.get("text", "")]


def shown_to(delegate: Delegate, user_id: str, needle: str) -> list[dict[str, Any]]:
    return [m for m in delegate.sandbox.ephemerals(user_id) if needle in json.dumps(m)]


def modals(delegate: Delegate, user_id: str) -> list[dict[str, Any]]:
    return [v for v in delegate.sandbox.open_views(user_id) if v.get("type") == "modal"]


def token_of(delegate: Delegate, user_id: str) -> str:
    snapshot = delegate.stores.manager.read(TokenKey.of(None, TEAM, user_id))
    assert snapshot is not None and snapshot.token
    return snapshot.token


def profile(delegate: Delegate, user_id: str) -> dict[str, Any]:
    """The person's profile as Slack (the sandbox) holds it."""
    return dict(delegate.sandbox.state.profile_json(user_id))


def snoozing(delegate: Delegate, user_id: str) -> bool:
    end = delegate.sandbox.state.users[user_id].snooze_endtime
    return end is not None and end > delegate.sandbox.now()


def test_post_as_me_posts_as_the_person_where_typed_and_where_named(delegate: Delegate) -> None:
    answer = delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "lunch at noon?", channel_id=GENERAL)
    assert answer["status"] == 200
    [message] = wait_for(lambda: posted(delegate, GENERAL, "lunch at noon?"))
    assert message["user"] == ALICE and message["as"] == "user"
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "#random over here, @bob", channel_id=GENERAL)
    [elsewhere] = wait_for(lambda: posted(delegate, RANDOM, "over here"))
    assert elsewhere["user"] == ALICE and elsewhere["as"] == "user"
    assert elsewhere["text"] == f"over here, <@{BOB}|bob>"  # the mention Slack escaped stays a mention
    assert posted(delegate, GENERAL, "over here") == []


def test_post_as_me_with_a_channel_typo_posts_nothing_anywhere_and_says_why(delegate: Delegate) -> None:
    answer = delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "#rnadom hi all", channel_id=GENERAL)
    assert answer["status"] == 200
    [error] = wait_for(lambda: shown_to(delegate, ALICE, "There is no channel"))
    assert error["via"] == "ack" and "`#rnadom`" in error["text"] and "nothing was posted" in error["text"]
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "after the typo", channel_id=GENERAL)
    wait_for(lambda: posted(delegate, GENERAL, "after the typo"))  # Delegate has done all it was asked
    assert [m["text"] for m in delegate.sandbox.messages()] == ["after the typo"]


def test_post_as_me_can_start_a_message_with_a_hash(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "\\#1 is done & dusted", channel_id=GENERAL)
    [message] = wait_for(lambda: posted(delegate, GENERAL, "is done"))
    assert message["text"] == "#1 is done &amp; dusted" and message["user"] == ALICE


def test_bad_arguments_get_usage_and_change_nothing(delegate: Delegate) -> None:
    for command, text in (("/post-as-me", ""), ("/snooze-me", "forever"), ("/set-my-status", "for zzz"), ("/delegate", "x")):
        answer = delegate.sandbox.send_slash_command(ALICE, command, text, channel_id=GENERAL)
        assert answer["status"] == 200
    assert wait_for(lambda: len(delegate.sandbox.ephemerals(ALICE)) >= 4)
    assert delegate.sandbox.messages(GENERAL) == []


def test_set_and_clear_my_status(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(ALICE, "/set-my-status", ":palm_tree: On holiday for 2h", channel_id=GENERAL)
    status = wait_for(lambda: profile(delegate, ALICE) if profile(delegate, ALICE).get("status_text") else None)
    assert status["status_emoji"] == ":palm_tree:" and status["status_text"] == "On holiday"
    assert status["status_expiration"] > 0
    delegate.sandbox.send_slash_command(ALICE, "/set-my-status", "clear", channel_id=GENERAL)
    wait_for(lambda: profile(delegate, ALICE).get("status_text") == "")


def test_set_my_status_says_when_words_are_not_an_expiry(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(ALICE, "/set-my-status", "hi for banana", channel_id=GENERAL)
    [reply] = wait_for(lambda: shown_to(delegate, ALICE, "No expiry was set"))
    assert "`for banana`" in reply["text"]
    status = profile(delegate, ALICE)
    assert (status["status_text"], status["status_expiration"]) == ("hi for banana", 0)


def test_set_my_status_refuses_a_bad_time_and_an_unknown_emoji_and_changes_nothing(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(ALICE, "/set-my-status", ":coffee: Break", channel_id=GENERAL)
    wait_for(lambda: profile(delegate, ALICE).get("status_text") == "Break")
    delegate.sandbox.send_slash_command(ALICE, "/set-my-status", "x until 25:99", channel_id=GENERAL)
    [bad_time] = wait_for(lambda: shown_to(delegate, ALICE, "25:99"))
    assert bad_time["via"] == "ack" and "is not a time of day" in bad_time["text"]
    delegate.sandbox.send_slash_command(ALICE, "/set-my-status", ":notanemoji: x", channel_id=GENERAL)
    [bad_emoji] = wait_for(lambda: shown_to(delegate, ALICE, "notanemoji"))
    assert "Slack has no emoji `:notanemoji:`" in bad_emoji["text"] and "was not changed" in bad_emoji["text"]
    status = profile(delegate, ALICE)
    assert (status["status_emoji"], status["status_text"]) == (":coffee:", "Break")


def test_snooze_and_end_it(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(ALICE, "/snooze-me", "45m", channel_id=GENERAL)
    wait_for(lambda: snoozing(delegate, ALICE))
    delegate.sandbox.send_slash_command(ALICE, "/snooze-me", "off", channel_id=GENERAL)
    wait_for(lambda: not snoozing(delegate, ALICE))


def test_search_mine_shows_results_only_to_me(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "the quarterly numbers are in", channel_id=GENERAL)
    wait_for(lambda: posted(delegate, GENERAL, "quarterly numbers"))
    delegate.sandbox.send_slash_command(ALICE, "/search-mine", "quarterly", channel_id=GENERAL)
    wait_for(lambda: shown_to(delegate, ALICE, "quarterly numbers"))
    assert len(posted(delegate, GENERAL, "quarterly")) == 1  # the results were not posted in the channel


def test_search_mine_in_a_channel_and_in_a_channel_that_does_not_exist(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "budget for general", channel_id=GENERAL)
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "budget for random", channel_id=RANDOM)
    wait_for(lambda: posted(delegate, GENERAL, "budget") and posted(delegate, RANDOM, "budget"))
    delegate.sandbox.send_slash_command(ALICE, "/search-mine", "budget in:#random", channel_id=GENERAL)
    [results] = wait_for(lambda: shown_to(delegate, ALICE, "of yours match"))
    assert results["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "1 message of yours matches “budget in:#random”"},
    }
    assert "budget for random" in json.dumps(results) and "budget for general" not in json.dumps(results)
    delegate.sandbox.send_slash_command(ALICE, "/search-mine", "budget in:#rnadom", channel_id=GENERAL)
    [error] = wait_for(lambda: shown_to(delegate, ALICE, "There is no channel"))
    assert error["via"] == "ack" and "`#rnadom`" in error["text"] and "nothing was searched" in error["text"]


def test_connection_shows_who_scopes_expiry_and_state(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(ALICE, "/delegate", "connection", channel_id=GENERAL)
    [shown] = wait_for(lambda: shown_to(delegate, ALICE, "search:read"))
    text = json.dumps(shown)
    assert ALICE in text and "Connected" in text and "Token expires" in text and "Last renewal" in text
    assert "xox" not in text


def test_help_lists_every_command(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(ALICE, "/delegate", "help", channel_id=GENERAL)
    [shown] = wait_for(lambda: shown_to(delegate, ALICE, "/search-mine"))
    for command in ("/post-as-me", "/set-my-status", "/snooze-me", "/search-mine", "/delegate"):
        assert command in json.dumps(shown)


def test_someone_not_connected_gets_a_connect_button_and_nothing_is_posted(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(BOB, "/post-as-me", "hi from bob", channel_id=GENERAL)
    [prompt] = wait_for(lambda: shown_to(delegate, BOB, "/slack/connect"))
    assert f"{delegate.base_url}/slack/connect" in json.dumps(prompt)
    assert posted(delegate, GENERAL, "hi from bob") == []  # neither as Bob, nor as Alice, nor as the bot


def test_user_isolation(delegate: Delegate) -> None:
    delegate.connect(BOB)
    delegate.sandbox.send_slash_command(BOB, "/post-as-me", "bob speaking", channel_id=GENERAL)
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "alice speaking", channel_id=GENERAL)
    [bob] = wait_for(lambda: posted(delegate, GENERAL, "bob speaking"))
    [alice] = wait_for(lambda: posted(delegate, GENERAL, "alice speaking"))
    assert (bob["user"], alice["user"]) == (BOB, ALICE)
    delegate.sandbox.send_slash_command(CAROL, "/post-as-me", "carol speaking", channel_id=GENERAL)
    wait_for(lambda: shown_to(delegate, CAROL, "/slack/connect"))
    assert posted(delegate, GENERAL, "carol speaking") == []


def test_missing_scope_asks_for_exactly_the_needed_scope(delegate: Delegate) -> None:
    page = delegate.authorize(BOB, "/slack/connect")
    assert page.status == 200
    # Bob's token lost search:read (say he was connected before Delegate needed it)
    tokens = delegate.sandbox.install(BOB, user_scope="chat:write")["authed_user"]
    from slack_sdk.oauth.installation_store import Installation

    delegate.stores.installation_store.save(
        Installation(
            team_id=TEAM,
            user_id=BOB,
            user_token=tokens["access_token"],
            user_refresh_token=tokens["refresh_token"],
            user_token_expires_in=tokens["expires_in"],
            user_scopes="chat:write",
        )
    )
    delegate.sandbox.send_slash_command(BOB, "/search-mine", "anything", channel_id=GENERAL)
    [prompt] = wait_for(lambda: shown_to(delegate, BOB, "/slack/connect"))
    assert "scopes=search%3Aread" in json.dumps(prompt) or "scopes=search:read" in json.dumps(prompt)


def test_token_that_expires_mid_session_is_refreshed_once(delegate: Delegate) -> None:
    delegate.sandbox.advance_clock(13 * 3600)  # every sandbox token is now expired
    refreshes_before = delegate.sandbox.counters()["grants"].get("refresh_token", 0)
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "still here", channel_id=GENERAL)
    [message] = wait_for(lambda: posted(delegate, GENERAL, "still here"))
    assert message["user"] == ALICE
    assert delegate.sandbox.counters()["grants"].get("refresh_token", 0) - refreshes_before == 1


def test_lost_refresh_answer_ends_in_reconnect_and_nothing_loops(delegate: Delegate) -> None:
    delegate.sandbox.add_fault("oauth.v2.access", drop_after_action=True, times=1)
    delegate.sandbox.advance_clock(13 * 3600)
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "lost", channel_id=GENERAL)
    wait_for(lambda: delegate.user_row(ALICE).status == "needs_reauth")
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "again", channel_id=GENERAL)
    wait_for(lambda: shown_to(delegate, ALICE, "Reconnect"))
    failures = delegate.sandbox.counters()["grant_failures"].get("refresh_token", 0)
    assert failures == 0  # the spent refresh token is never sent again
    assert posted(delegate, GENERAL, "again") == []


def test_revoked_tokens_are_deleted(delegate: Delegate) -> None:
    delegate.sandbox.revoke_tokens(ALICE)
    delegate.sandbox.wait_for_events()
    # The row stays, marked revoked with no token in it, so that the person can be told why (tests/e2e/test_home.py).
    row = wait_for(lambda: (lambda row: row if row.status == "revoked" else None)(delegate.user_row(ALICE)))
    assert row.user_token_enc is None and row.user_refresh_token_enc is None
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "after revoke", channel_id=GENERAL)
    wait_for(lambda: shown_to(delegate, ALICE, "/slack/connect"))


def test_uninstall_deletes_every_token(delegate: Delegate) -> None:
    delegate.connect(BOB)
    delegate.sandbox.uninstall()
    delegate.sandbox.wait_for_events()
    # app_uninstalled and tokens_revoked are acted on after their acks, each on its own thread: wait for both.
    bot = lambda: delegate.stores.installation_store.find_bot(enterprise_id=None, team_id=TEAM)  # noqa: E731
    wait_for(lambda: delegate.user_row(ALICE) is None and delegate.user_row(BOB) is None and bot() is None)
    assert bot() is None


def test_deactivated_user_is_revoked(delegate: Delegate) -> None:
    delegate.sandbox.deactivate_user(ALICE)
    delegate.sandbox.wait_for_events()
    wait_for(lambda: delegate.user_row(ALICE) is None or delegate.user_row(ALICE).status == "revoked")


def test_disconnect_revokes_at_slack_and_deletes_the_token(delegate: Delegate) -> None:
    token = token_of(delegate, ALICE)
    delegate.sandbox.send_slash_command(ALICE, "/delegate", "disconnect", channel_id=GENERAL)
    [prompt] = wait_for(lambda: shown_to(delegate, ALICE, "disconnect"))
    delegate.sandbox.send_block_action(ALICE, "disconnect", value="disconnect", channel_id=GENERAL, message_ts=prompt["ts"])
    wait_for(lambda: delegate.user_row(ALICE) is None)
    from slack_sdk.errors import SlackApiError

    with pytest.raises(SlackApiError):
        WebClient(token=token, base_url=delegate.sandbox.api_url).auth_test()


def test_global_shortcut_sets_status_through_a_modal(delegate: Delegate) -> None:
    delegate.sandbox.send_global_shortcut(ALICE, "set_my_status")
    [view] = wait_for(lambda: modals(delegate, ALICE))
    delegate.sandbox.send_view_submission(
        ALICE, view["id"], {"emoji": {"value": ":coffee:"}, "text": {"value": "Coffee break"}}
    )
    wait_for(lambda: profile(delegate, ALICE).get("status_text") == "Coffee break")
    assert profile(delegate, ALICE)["status_emoji"] == ":coffee:"


def test_message_shortcut_replies_in_thread_as_me(delegate: Delegate) -> None:
    delegate.connect(BOB)
    delegate.sandbox.send_slash_command(BOB, "/post-as-me", "who is around?", channel_id=GENERAL)
    [original] = wait_for(lambda: posted(delegate, GENERAL, "who is around?"))
    delegate.sandbox.send_message_shortcut(ALICE, "reply_as_me", channel_id=GENERAL, message_ts=original["ts"])
    [view] = wait_for(lambda: modals(delegate, ALICE))
    delegate.sandbox.send_view_submission(ALICE, view["id"], {"message": {"value": "me!"}})
    [reply] = wait_for(lambda: posted(delegate, GENERAL, "me!"))
    assert reply["user"] == ALICE and reply["as"] == "user" and reply.get("thread_ts") == original["ts"]


def test_app_home_shows_the_connection(delegate: Delegate) -> None:
    delegate.sandbox.send_event({"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE", "tab": "home"})
    home = wait_for(lambda: [v for v in delegate.sandbox.open_views(ALICE) if v.get("type") == "home"])
    assert "Disconnect" in json.dumps(home) or "disconnect" in json.dumps(home)


def test_an_unexpected_failure_gets_a_sentence_not_a_silent_500(delegate: Delegate, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    def database_down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT", {}, Exception("database is down"))

    monkeypatch.setattr(delegate.stores.manager, "read_for_request", database_down)
    answer = delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "anyone?", channel_id=GENERAL)
    assert answer["status"] == 200
    [notice] = wait_for(lambda: shown_to(delegate, ALICE, "problem on its side"))
    assert "Traceback" not in json.dumps(notice) and "database is down" not in json.dumps(notice)
    assert posted(delegate, GENERAL, "anyone?") == []


def expire_in_delegate_and_slack(delegate: Delegate, user_id: str) -> None:
    """The person's token has expired, as Delegate's row and Slack both see it."""
    users = delegate.stores.installation_store.installations
    with delegate.stores.engine.begin() as conn:
        conn.execute(
            update(users).where(users.c.user_id == user_id).values(user_token_expires_at=utcnow() - timedelta(seconds=5))
        )
    delegate.sandbox.expire_tokens(user_id, "user")


def test_a_rate_limited_refresh_never_holds_the_ack(delegate: Delegate) -> None:
    expire_in_delegate_and_slack(delegate, ALICE)
    delegate.sandbox.add_fault("oauth.v2.access", status=429, retry_after=4, times=1)
    answer = delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "after the pause", channel_id=GENERAL)
    assert answer["status"] == 200 and not answer["late"]
    assert answer["elapsed_ms"] < 1000, "the ack left before any refresh"
    assert posted(delegate, GENERAL, "after the pause") == []
    [message] = wait_for(lambda: posted(delegate, GENERAL, "after the pause"), timeout=15)
    assert message["user"] == ALICE
    assert delegate.sandbox.counters()["grant_failures"].get("refresh_token", 0) == 0
    assert delegate.user_row(ALICE).status == "active"


def test_a_held_refresh_lock_never_holds_the_ack(delegate: Delegate) -> None:
    expire_in_delegate_and_slack(delegate, ALICE)
    manager = delegate.stores.manager
    other = TokenManager(manager.store, client_secret="unused", api_url=manager.api_url, background_refresh=False)
    with other.locks.hold(TokenKey.of(None, TEAM, ALICE), wait=1) as held:  # another worker is refreshing
        assert held is not None
        answer = delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "once it is free", channel_id=GENERAL)
        assert answer["status"] == 200 and not answer["late"] and answer["elapsed_ms"] < 1000
        time.sleep(1)
        assert posted(delegate, GENERAL, "once it is free") == []  # the work after the ack waits for the lock
    [message] = wait_for(lambda: posted(delegate, GENERAL, "once it is free"), timeout=15)
    assert message["user"] == ALICE


def test_an_expired_bot_token_is_renewed_after_the_ack_and_the_form_still_opens(delegate: Delegate) -> None:
    bots = delegate.stores.installation_store.bots
    with delegate.stores.engine.begin() as conn:
        conn.execute(update(bots).values(bot_token_expires_at=utcnow() - timedelta(seconds=5)))
    delegate.sandbox.expire_tokens(delegate.sandbox.config.bot_user_id, "bot")
    before = delegate.sandbox.counters()["grants"].get("refresh_token", 0)
    answer = delegate.sandbox.send_global_shortcut(ALICE, "set_my_status")
    assert answer["status"] == 200 and not answer["late"]
    [view] = wait_for(lambda: modals(delegate, ALICE))
    assert view["type"] == "modal"
    assert delegate.sandbox.counters()["grants"].get("refresh_token", 0) == before + 1  # the bot's, after the ack


def test_disconnect_when_auth_revoke_fails_says_the_grant_may_still_be_live(delegate: Delegate) -> None:
    token = token_of(delegate, ALICE)
    delegate.sandbox.add_fault("auth.revoke", status=500)
    delegate.sandbox.send_slash_command(ALICE, "/delegate", "disconnect", channel_id=GENERAL)
    [prompt] = wait_for(lambda: shown_to(delegate, ALICE, "disconnect"))
    delegate.sandbox.send_block_action(ALICE, "disconnect", value="disconnect", channel_id=GENERAL, message_ts=prompt["ts"])
    wait_for(lambda: shown_to(delegate, ALICE, "may still be live"))
    assert delegate.user_row(ALICE) is None and shown_to(delegate, ALICE, "Manage apps")
    WebClient(token=token, base_url=delegate.sandbox.api_url).auth_test()  # the truth: Slack still honours it
    assert all(record["status"] in (200, None) for record in delegate.sandbox.deliveries())
