"""The Web API methods Delegate uses, with Slack's token and scope checks, through slack_sdk's unchanged WebClient."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.server import SandboxServer
from tests.sandbox.conftest import ALICE, BOB, GENERAL, RANDOM, USER_SCOPES
from tests.sandbox.httputil import request


def error_of(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value.response.data  # type: ignore[no-any-return]


def test_token_errors(sandbox: SandboxServer, client: WebClient, user_token: str) -> None:
    assert error_of(lambda: client.auth_test())["error"] == "not_authed"
    assert error_of(lambda: client.auth_test(token="xoxp-1-2-3-made-up"))["error"] == "invalid_auth"
    sandbox.advance_clock(43200)
    assert error_of(lambda: client.auth_test(token=user_token))["error"] == "token_expired"


def test_revoked_and_inactive(sandbox: SandboxServer, client: WebClient, user_token: str, bot_token: str) -> None:
    bob_token = sandbox.install(BOB, user_scope="chat:write")["authed_user"]["access_token"]
    assert client.auth_revoke(token=user_token).data == {"ok": True, "revoked": True}
    assert error_of(lambda: client.auth_test(token=user_token))["error"] == "token_revoked"
    sandbox.deactivate_user(BOB)
    assert error_of(lambda: client.auth_test(token=bob_token))["error"] == "account_inactive"
    assert client.auth_test(token=bot_token)["ok"] is True


def test_auth_revoke_test_mode_keeps_the_token(client: WebClient, user_token: str) -> None:
    assert client.auth_revoke(token=user_token, test=True)["revoked"] is False
    assert client.auth_test(token=user_token)["ok"] is True


def test_missing_scope_names_needed_and_provided(sandbox: SandboxServer, client: WebClient) -> None:
    token = sandbox.install(BOB, user_scope="chat:write,users:read")["authed_user"]["access_token"]
    answer = error_of(lambda: client.users_profile_set(token=token, profile={"status_text": "x"}))
    assert answer == {
        "ok": False,
        "error": "missing_scope",
        "needed": "users.profile:write",
        "provided": "chat:write,users:read",
    }


def test_user_only_methods_refuse_bot_tokens(client: WebClient, bot_token: str) -> None:
    assert error_of(lambda: client.search_messages(token=bot_token, query="x"))["error"] == "not_allowed_token_type"
    assert error_of(lambda: client.dnd_setSnooze(token=bot_token, num_minutes=5))["error"] == "not_allowed_token_type"


def test_unknown_method_and_token_transports(sandbox: SandboxServer, user_token: str) -> None:
    assert error_of(lambda: WebClient(base_url=sandbox.api_url, token=user_token).api_call("nope.nope"))["error"] == (
        "unknown_method"
    )
    by_form = request("POST", f"{sandbox.api_url}auth.test", form={"token": user_token}).json()
    assert by_form["user_id"] == ALICE
    by_get = request("GET", f"{sandbox.api_url}auth.test?token={user_token}").json()
    assert by_get["user_id"] == ALICE
    json_without_bearer = request("POST", f"{sandbox.api_url}auth.test", body={"token": user_token}).json()
    assert json_without_bearer["error"] == "not_authed"
    json_with_bearer = request(
        "POST",
        f"{sandbox.api_url}chat.postMessage",
        body={"channel": GENERAL, "text": "hi"},
        headers={"Authorization": f"Bearer {user_token}"},
    )
    assert json_with_bearer.status == 200 and json_with_bearer.json()["ok"] is True


def test_auth_test_fields(sandbox: SandboxServer, client: WebClient, user_token: str, bot_token: str) -> None:
    user = client.auth_test(token=user_token).data
    assert user["user_id"] == ALICE and user["team_id"] == "T0SANDBOX1" and user["user"] == "alice"
    assert user["team"] == "Sandbox Inc" and user["url"].startswith("https://") and "bot_id" not in user
    assert user["is_enterprise_install"] is False and user["enterprise_id"] is None
    bot = client.auth_test(token=bot_token).data
    assert bot["user_id"] == sandbox.config.bot_user_id and bot["bot_id"] == sandbox.config.bot_id


def test_post_message_as_user_and_as_bot(sandbox: SandboxServer, client: WebClient, user_token: str, bot_token: str) -> None:
    mine = client.chat_postMessage(token=user_token, channel=GENERAL, text="from alice")
    assert mine["channel"] == GENERAL and mine["message"]["user"] == ALICE and "bot_id" not in mine["message"]
    reply = client.chat_postMessage(token=bot_token, channel="#general", text="from the bot", thread_ts=mine["ts"])
    assert reply["message"]["bot_id"] == sandbox.config.bot_id and reply["message"]["thread_ts"] == mine["ts"]
    stored = sandbox.messages(GENERAL)
    assert [(m["text"], m["user"], m["as"]) for m in stored] == [
        ("from alice", ALICE, "user"),
        ("from the bot", sandbox.config.bot_user_id, "bot"),
    ]
    assert error_of(lambda: client.chat_postMessage(token=user_token, channel="C0NOPE", text="x"))["error"] == (
        "channel_not_found"
    )
    no_text = request("POST", f"{sandbox.api_url}chat.postMessage", form={"token": user_token, "channel": GENERAL})
    assert no_text.json()["error"] == "no_text"


def test_post_ephemeral(sandbox: SandboxServer, client: WebClient, bot_token: str) -> None:
    answer = client.chat_postEphemeral(token=bot_token, channel=RANDOM, user=BOB, text="psst")
    assert answer["message_ts"]
    assert [(m["to_user"], m["text"]) for m in sandbox.ephemerals()] == [(BOB, "psst")]
    assert (
        error_of(lambda: client.chat_postEphemeral(token=bot_token, channel=RANDOM, user="U0NOBODY", text="x"))["error"]
        == "user_not_in_channel"
    )


def test_users_info_and_profiles(sandbox: SandboxServer, client: WebClient, user_token: str, bot_token: str) -> None:
    info = client.users_info(token=bot_token, user=BOB)["user"]
    assert info["id"] == BOB and info["name"] == "bob" and info["deleted"] is False
    assert error_of(lambda: client.users_info(token=bot_token, user="U0NOBODY"))["error"] == "user_not_found"
    set_json = client.users_profile_set(token=user_token, profile={"status_text": "On leave", "status_emoji": ":palm_tree:"})
    assert set_json["profile"]["status_text"] == "On leave"
    client.users_profile_set(token=user_token, name="status_text", value="Back soon")
    profile = client.users_profile_get(token=user_token)["profile"]
    assert profile["status_text"] == "Back soon" and profile["status_emoji"] == ":palm_tree:"
    form = {"token": user_token, "profile": json.dumps({"status_expiration": int(sandbox.now()) + 60})}
    assert request("POST", f"{sandbox.api_url}users.profile.set", form=form).json()["ok"] is True
    sandbox.advance_clock(61)
    assert client.users_profile_get(token=user_token)["profile"]["status_text"] == ""


def test_dnd_snooze(sandbox: SandboxServer, client: WebClient, user_token: str) -> None:
    answer = client.dnd_setSnooze(token=user_token, num_minutes=30)
    assert answer["snooze_enabled"] is True and answer["snooze_remaining"] == 1800
    assert abs(answer["snooze_endtime"] - (sandbox.now() + 1800)) < 5
    assert client.dnd_info(token=user_token)["snooze_enabled"] is True
    ended = client.dnd_endSnooze(token=user_token)
    assert ended["snooze_enabled"] is False and ended["dnd_enabled"] is True
    assert error_of(lambda: client.dnd_endSnooze(token=user_token))["error"] == "snooze_not_active"


def test_search_messages(sandbox: SandboxServer, client: WebClient, user_token: str) -> None:
    for index in range(5):
        client.chat_postMessage(token=user_token, channel=GENERAL if index % 2 else RANDOM, text=f"quarterly report {index}")
    client.chat_postMessage(token=user_token, channel=GENERAL, text="lunch?")
    answer = client.search_messages(token=user_token, query="report", count=2, page=2)["messages"]
    assert answer["total"] == 5 and len(answer["matches"]) == 2
    assert answer["pagination"]["page"] == 2 and answer["pagination"]["page_count"] == 3 and answer["paging"]["pages"] == 3
    match = answer["matches"][0]
    assert match["user"] == ALICE and match["channel"]["id"] in (GENERAL, RANDOM) and "permalink" in match
    in_general = client.search_messages(token=user_token, query="report in:#general")["messages"]
    assert in_general["total"] == 2


def test_conversations_list_and_history(sandbox: SandboxServer, client: WebClient, bot_token: str) -> None:
    names = [channel["name"] for channel in client.conversations_list(token=bot_token)["channels"]]
    assert names == ["general", "random"]
    client.chat_postMessage(token=bot_token, channel=GENERAL, text="one")
    client.chat_postMessage(token=bot_token, channel=GENERAL, text="two")
    assert [m["text"] for m in client.conversations_history(token=bot_token, channel=GENERAL)["messages"]] == ["two", "one"]


def modal(title: str = "Set status") -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "status_modal",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [
            {
                "type": "input",
                "block_id": "text",
                "label": {"type": "plain_text", "text": "Status"},
                "element": {"type": "plain_text_input", "action_id": "value"},
            }
        ],
    }


def test_views_need_fresh_single_use_trigger_ids(sandbox: SandboxServer, client: WebClient, bot_token: str) -> None:
    trigger = sandbox.state.new_trigger("T0SANDBOX1", BOB)
    opened = client.views_open(token=bot_token, trigger_id=trigger, view=modal())["view"]
    assert opened["id"].startswith("V") and opened["callback_id"] == "status_modal"
    assert [view["id"] for view in sandbox.open_views(BOB)] == [opened["id"]]
    assert error_of(lambda: client.views_open(token=bot_token, trigger_id=trigger, view=modal()))["error"] == (
        "invalid_trigger_id"
    )
    late = sandbox.state.new_trigger("T0SANDBOX1", BOB)
    sandbox.advance_clock(sandbox.config.trigger_ttl_seconds + 1)
    assert (
        error_of(lambda: client.views_open(token=bot_token, trigger_id=late, view=modal()))["error"] == "expired_trigger_id"
    )


def test_views_update_with_hash_and_publish(sandbox: SandboxServer, client: WebClient, bot_token: str) -> None:
    opened = client.views_open(token=bot_token, trigger_id=sandbox.state.new_trigger("T0SANDBOX1", BOB), view=modal())[
        "view"
    ]
    updated = client.views_update(token=bot_token, view_id=opened["id"], hash=opened["hash"], view=modal("Again"))["view"]
    assert updated["title"]["text"] == "Again" and updated["hash"] != opened["hash"]
    stale = error_of(lambda: client.views_update(token=bot_token, view_id=opened["id"], hash=opened["hash"], view=modal()))
    assert stale["error"] == "hash_conflict"
    assert error_of(lambda: client.views_update(token=bot_token, view_id="V0NOPE", view=modal()))["error"] == "not_found"
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi"}}]}
    published = client.views_publish(token=bot_token, user_id=BOB, view=home)["view"]
    assert published["type"] == "home"
    again = client.views_publish(token=bot_token, user_id=BOB, view=home)["view"]
    assert again["id"] == published["id"]


def test_user_tokens_are_personal(sandbox: SandboxServer, client: WebClient) -> None:
    bob = sandbox.install(BOB, user_scope=USER_SCOPES)["authed_user"]["access_token"]
    client.chat_postMessage(token=bob, channel=GENERAL, text="bob speaking")
    assert sandbox.messages(GENERAL)[-1]["user"] == BOB
