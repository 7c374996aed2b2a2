"""App Home stays true through the real sandbox and Delegate: the bot token renewed, and the tab republished after
every change of the person's connection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Delegate, running_delegate, wait_for

ALICE, BOB = "U0ALICE001", "U0BOB00002"
TEAM, GENERAL = "T0SANDBOX1", "C0GENERAL1"


@pytest.fixture
def delegate(tmp_path: Path) -> Iterator[Delegate]:
    with running_delegate(tmp_path) as running:
        running.install(ALICE)
        wait_for(lambda: home_of(running, ALICE))  # published right after the install
        yield running


def home_of(delegate: Delegate, user_id: str) -> dict[str, Any] | None:
    """The person's App Home view as the sandbox holds it (what the Home tab shows), or None."""
    homes = [view for view in delegate.sandbox.open_views(user_id) if view.get("type") == "home"]
    return homes[-1] if homes else None


def home_says(delegate: Delegate, user_id: str, *needles: str) -> dict[str, Any] | None:
    """The person's App Home view once it shows every needle, else None."""
    home = home_of(delegate, user_id)
    text = json.dumps(home["blocks"]) if home else ""
    return home if home and all(needle in text for needle in needles) else None


def republished(delegate: Delegate, user_id: str, before: dict[str, Any] | None) -> dict[str, Any] | None:
    """The person's App Home view once Delegate has published it again since `before`, else None."""
    home = home_of(delegate, user_id)
    return home if home and (before is None or home["hash"] != before["hash"]) else None


def bot_refreshes(delegate: Delegate) -> int:
    """Bot tokens the sandbox issued for a refresh grant."""
    bot = delegate.sandbox.config.bot_user_id
    return sum(1 for token in delegate.sandbox.tokens(bot) if token["kind"] == "bot" and token["grant"] == "refresh_token")


def test_app_home_after_13_hours_renews_the_bot_token_once_and_publishes(delegate: Delegate) -> None:
    before = home_of(delegate, ALICE)
    assert before is not None
    delegate.sandbox.advance_clock(13 * 3600)  # every token expired at Slack; no refresher ran meanwhile
    assert bot_refreshes(delegate) == 0
    delegate.sandbox.send_app_home_opened(ALICE)
    after = wait_for(lambda: republished(delegate, ALICE, before))
    assert "Your Delegate connection" in json.dumps(after["blocks"])
    assert bot_refreshes(delegate) == 1
    assert delegate.sandbox.counters()["grant_failures"].get("refresh_token", 0) == 0
    assert delegate.sandbox.counters()["refreshes_by_user"].get(ALICE, 0) == 0  # App Home needs no user token


def shown_to(delegate: Delegate, user_id: str, needle: str) -> list[dict[str, Any]]:
    return [m for m in delegate.sandbox.ephemerals(user_id) if needle in json.dumps(m)]


def test_a_second_person_who_connects_sees_it_on_their_home_tab(delegate: Delegate) -> None:
    assert home_of(delegate, BOB) is None
    page = delegate.connect(BOB)
    assert page.status == 200
    home = wait_for(lambda: home_says(delegate, BOB, "Your Delegate connection", "Connected"))
    assert "not connected" not in json.dumps(home["blocks"])


def test_a_failing_publish_never_breaks_the_connect(delegate: Delegate) -> None:
    delegate.sandbox.add_fault("views.publish", status=500)
    page = delegate.connect(BOB)
    assert page.status == 200 and "Traceback" not in page.body
    assert delegate.user_row(BOB).status == "active"
    wait_for(lambda: delegate.sandbox.counters()["api_calls"].get("views.publish", 0) >= 2)  # tried, refused
    assert home_of(delegate, BOB) is None


def test_disconnect_with_the_command_republishes_the_home_tab(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(ALICE, "/delegate", "disconnect", channel_id=GENERAL)
    [prompt] = wait_for(lambda: shown_to(delegate, ALICE, "Disconnect Delegate?"))
    delegate.sandbox.send_block_action(ALICE, "disconnect", value="disconnect", channel_id=GENERAL, message_ts=prompt["ts"])
    wait_for(lambda: shown_to(delegate, ALICE, "Disconnected: Slack revoked"))
    wait_for(lambda: home_says(delegate, ALICE, "not connected", "Connect Delegate"))


def test_disconnect_from_the_home_tab_says_what_happened_there(delegate: Delegate) -> None:
    home = home_of(delegate, ALICE)
    assert home is not None
    delegate.sandbox.send_block_action(ALICE, "disconnect", value="disconnect", view_id=home["id"])
    after = wait_for(lambda: home_says(delegate, ALICE, "Disconnected: Slack revoked", "not connected"))
    assert "Your Delegate connection*" not in json.dumps(after["blocks"])


def test_revoke_in_the_console_republishes_the_home_tab_and_commands_say_it_was_revoked(delegate: Delegate) -> None:
    delegate.sandbox.revoke_tokens(ALICE)  # the console's Revoke: Slack sends tokens_revoked
    delegate.sandbox.wait_for_events()
    home = wait_for(lambda: home_says(delegate, ALICE, "revoked in Slack on", "`tokens_revoked`", "Connect again"))
    assert "Connected" not in json.dumps(home["blocks"]).replace("Connected since", "")
    row = delegate.user_row(ALICE)
    assert row.status == "revoked" and row.user_token_enc is None and row.user_refresh_token_enc is None
    answer = delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "after revoke", channel_id=GENERAL)
    said = json.dumps(answer["body"])
    assert "revoked in Slack on" in said and "tokens_revoked" in said and "Connect again" in said
    assert "first" not in said  # not the prompt of someone who never connected
    assert delegate.sandbox.messages(GENERAL) == []
    delegate.sandbox.send_global_shortcut(ALICE, "set_my_status")  # a shortcut says the same, in its modal
    [modal] = wait_for(lambda: [v for v in delegate.sandbox.open_views(ALICE) if v.get("type") == "modal"])
    assert "revoked in Slack on" in json.dumps(modal["blocks"]) and "Connect again" in json.dumps(modal["blocks"])


def test_a_deactivated_person_has_their_home_tab_say_so(delegate: Delegate) -> None:
    delegate.sandbox.deactivate_user(ALICE)
    delegate.sandbox.wait_for_events()
    wait_for(lambda: home_says(delegate, ALICE, "revoked when your Slack account was deactivated", "`user_deactivated`"))
    assert delegate.user_row(ALICE).status == "revoked"


def test_after_an_uninstall_and_a_reinstall_the_home_tab_shows_the_new_connection(delegate: Delegate) -> None:
    delegate.sandbox.uninstall()
    delegate.sandbox.wait_for_events()
    wait_for(lambda: delegate.user_row(ALICE) is None)
    before = home_of(delegate, ALICE)
    page = delegate.install(ALICE)
    assert page.status == 200
    after = wait_for(lambda: republished(delegate, ALICE, before))
    assert "Your Delegate connection" in json.dumps(after["blocks"]) and "Connected" in json.dumps(after["blocks"])


def test_disconnect_after_13_hours_renews_the_token_so_slack_really_revokes_it(delegate: Delegate) -> None:
    delegate.sandbox.advance_clock(13 * 3600)  # the person's token and the bot's have expired at Slack
    delegate.sandbox.send_slash_command(ALICE, "/delegate", "disconnect", channel_id=GENERAL)
    [prompt] = wait_for(lambda: shown_to(delegate, ALICE, "Disconnect Delegate?"))
    delegate.sandbox.send_block_action(ALICE, "disconnect", value="disconnect", channel_id=GENERAL, message_ts=prompt["ts"])
    wait_for(lambda: shown_to(delegate, ALICE, "Disconnected: Slack revoked"))
    assert delegate.user_row(ALICE) is None
    live = [t for t in delegate.sandbox.tokens(ALICE) if t["kind"] == "user" and t["status"] == "active"]
    assert live == []  # Slack holds no live grant: the refresh made auth.revoke possible
    assert delegate.sandbox.counters()["refreshes_by_user"].get(ALICE, 0) == 1
    wait_for(lambda: home_says(delegate, ALICE, "not connected"))


def test_disconnect_when_slack_cannot_revoke_says_where_to_remove_the_app(delegate: Delegate) -> None:
    delegate.sandbox.advance_clock(13 * 3600)
    delegate.sandbox.add_fault("oauth.v2.access", status=500)  # the renewal that auth.revoke needs keeps failing
    delegate.sandbox.send_slash_command(ALICE, "/delegate", "disconnect", channel_id=GENERAL)
    [prompt] = wait_for(lambda: shown_to(delegate, ALICE, "Disconnect Delegate?"))
    delegate.sandbox.send_block_action(ALICE, "disconnect", value="disconnect", channel_id=GENERAL, message_ts=prompt["ts"])
    [said] = wait_for(lambda: shown_to(delegate, ALICE, "may still be live"), timeout=30)
    assert "Delegate deleted its copy of your token" in json.dumps(said) and "Manage apps" in json.dumps(said)
    assert "token_expired" in json.dumps(said)
    assert delegate.user_row(ALICE) is None
