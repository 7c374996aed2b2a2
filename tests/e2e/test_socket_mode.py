"""The same Delegate over Socket Mode: Slack's requests arrive on the sandbox's WebSocket, not over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Delegate, running_delegate, wait_for
from tests.e2e.test_commands import ALICE, BOB, GENERAL, modals, posted, profile, shown_to


@pytest.fixture
def delegate(tmp_path: Path) -> Iterator[Delegate]:
    with running_delegate(tmp_path, socket_mode=True) as running:
        running.install(ALICE)
        yield running


def test_commands_arrive_over_the_websocket_and_act_as_the_person(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "hello over sockets", channel_id=GENERAL)
    [message] = wait_for(lambda: posted(delegate, GENERAL, "hello over sockets"))
    assert message["user"] == ALICE and message["as"] == "user"
    transports = {d.get("transport") for d in delegate.sandbox.deliveries()}
    assert transports == {"socket_mode"}, transports


def test_not_connected_person_is_prompted_over_sockets_too(delegate: Delegate) -> None:
    delegate.sandbox.send_slash_command(BOB, "/post-as-me", "bob?", channel_id=GENERAL)
    wait_for(lambda: shown_to(delegate, BOB, "/slack/connect"))
    assert posted(delegate, GENERAL, "bob?") == []


def test_shortcut_and_modal_over_sockets(delegate: Delegate) -> None:
    delegate.sandbox.send_global_shortcut(ALICE, "set_my_status")
    [view] = wait_for(lambda: modals(delegate, ALICE))
    delegate.sandbox.send_view_submission(ALICE, view["id"], {"emoji": {"value": ":rocket:"}, "text": {"value": "Shipping"}})
    wait_for(lambda: profile(delegate, ALICE).get("status_text") == "Shipping")


def test_expired_token_mid_session_over_sockets(delegate: Delegate) -> None:
    delegate.sandbox.advance_clock(13 * 3600)
    delegate.sandbox.send_slash_command(ALICE, "/post-as-me", "after the night", channel_id=GENERAL)
    [message] = wait_for(lambda: posted(delegate, GENERAL, "after the night"))
    assert message["user"] == ALICE
