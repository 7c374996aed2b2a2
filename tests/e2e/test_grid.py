"""Delegate on Enterprise Grid, end to end through the sandbox's organisation, over HTTP and over Socket Mode.

The org (sandbox.config.organisation): Olivia, an org admin in North and South; Nora only in North; Sam only in
South; Cleo in both; #shared-launch belongs to North and is shared with South. Every act is checked against the
sandbox's record of which token made each Web API call, so "as the person" means their own token, nobody else's.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from listeners.modals import REPLY_AS_ME_MODAL
from sandbox.config import GRID_ENTERPRISE, GRID_NORTH, GRID_SOUTH, organisation
from stores.rotation import TokenKey
from tests.e2e.harness import Delegate, fetch, running_delegate, wait_for
from tests.e2e.test_commands import modals, posted, profile, shown_to
from tests.e2e.test_restart import start, stop

__all__ = ["start"]  # a fixture of test_restart's, used here

OLIVIA, NORA, SAM, CLEO = "W0OLIVIA01", "W0NORA0002", "W0SAM00003", "W0CLEO0004"
NORTH_GENERAL, SOUTH_GENERAL, SHARED = "C0NORTHGN1", "C0SOUTHGN2", "C0SHARED03"


@pytest.fixture(params=["http", "socket_mode"])
def org(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Delegate]:
    """Delegate on the org, installed org-wide by Olivia (an org admin) through the browser flow, once."""
    with running_delegate(tmp_path, socket_mode=request.param == "socket_mode", **organisation()) as running:
        page = running.authorize(OLIVIA, "/slack/install", org_wide=True)
        assert page.status == 200, page.body
        yield running


@pytest.fixture(params=["http", "socket_mode"])
def workspaces(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Delegate]:
    """Delegate on the org installed workspace by workspace: North by Nora, South by Sam (no org-wide install)."""
    with running_delegate(tmp_path, socket_mode=request.param == "socket_mode", **organisation()) as running:
        assert running.authorize(NORA, "/slack/install", team_id=GRID_NORTH).status == 200
        assert running.authorize(SAM, "/slack/install", team_id=GRID_SOUTH).status == 200
        yield running


def user_calls(delegate: Delegate, method: str) -> list[dict[str, Any]]:
    """The calls of a Web API method made with a person's token (never the bot's), in order."""
    return [call for call in delegate.sandbox.api_call_log(method) if call["kind"] == "user"]


def connected_as(delegate: Delegate, enterprise_id: str | None, team_id: str | None, user_id: str) -> bool:
    snapshot = delegate.stores.manager.read(TokenKey.of(enterprise_id, team_id, user_id))
    return snapshot is not None and bool(snapshot.token)


def test_an_org_wide_install_serves_every_workspace_with_the_installers_own_org_level_token(org: Delegate) -> None:
    assert connected_as(org, GRID_ENTERPRISE, None, OLIVIA)  # one row for the org, no workspace in its key
    assert not connected_as(org, GRID_ENTERPRISE, GRID_NORTH, OLIVIA)
    org.sandbox.send_slash_command(OLIVIA, "/post-as-me", "hello north", channel_id=NORTH_GENERAL)
    org.sandbox.send_slash_command(OLIVIA, "/post-as-me", "hello south", channel_id=SOUTH_GENERAL)
    [north] = wait_for(lambda: posted(org, NORTH_GENERAL, "hello north"))
    [south] = wait_for(lambda: posted(org, SOUTH_GENERAL, "hello south"))
    assert (north["user"], north["as"], north["team"]) == (OLIVIA, "user", GRID_NORTH)
    assert (south["user"], south["as"], south["team"]) == (OLIVIA, "user", GRID_SOUTH)
    calls = user_calls(org, "chat.postMessage")
    assert [(c["user_id"], c["team_id"], c["enterprise_id"], c["is_enterprise_install"]) for c in calls] == [
        (OLIVIA, None, GRID_ENTERPRISE, True)
    ] * 2
    # /delegate connection from either workspace finds the one org-level connection (not "not connected").
    for team, channel in ((GRID_NORTH, NORTH_GENERAL), (GRID_SOUTH, SOUTH_GENERAL)):
        org.sandbox.send_slash_command(OLIVIA, "/delegate", "connection", channel_id=channel, team_id=team)
    [north_answer, south_answer] = wait_for(
        lambda: len(shown_to(org, OLIVIA, "onnected")) == 2 and shown_to(org, OLIVIA, "onnected")
    )
    for answer in (north_answer, south_answer):
        assert "Connected" in str(answer["blocks"]) and "not connected" not in str(answer["blocks"])


def test_a_person_of_the_other_workspace_in_the_shared_channel_acts_only_with_their_own_token(org: Delegate) -> None:
    # Sam (South only) in #shared-launch, North's channel shared with South: not connected, so asked to connect,
    # and nothing is done with anyone's token (Olivia's org-level token could post there).
    answer = org.sandbox.send_slash_command(SAM, "/post-as-me", "sam here", channel_id=SHARED)
    assert answer["status"] == 200 and answer["error"] is None
    wait_for(lambda: shown_to(org, SAM, "connect your Slack account"))
    assert shown_to(org, SAM, "/slack/connect")
    assert posted(org, SHARED, "sam here") == [] and user_calls(org, "chat.postMessage") == []
    # Sam connects once (for the org: the app is installed org-wide) and then acts as himself there.
    assert org.connect(SAM).status == 200
    assert connected_as(org, GRID_ENTERPRISE, None, SAM) and not connected_as(org, GRID_ENTERPRISE, GRID_SOUTH, SAM)
    org.sandbox.send_slash_command(SAM, "/post-as-me", "sam again", channel_id=SHARED)
    [message] = wait_for(lambda: posted(org, SHARED, "sam again"))
    assert (message["user"], message["as"], message["team"]) == (SAM, "user", GRID_SOUTH)
    [call] = user_calls(org, "chat.postMessage")
    assert (call["user_id"], call["enterprise_id"], call["is_enterprise_install"]) == (SAM, GRID_ENTERPRISE, True)
    # From his own workspace's channel, naming the shared one (Slack escapes #shared-launch for him: it is in South).
    org.sandbox.send_slash_command(SAM, "/post-as-me", "#shared-launch over here", channel_id=SOUTH_GENERAL)
    [named] = wait_for(lambda: posted(org, SHARED, "over here"))
    assert named["user"] == SAM and posted(org, SOUTH_GENERAL, "over here") == []
    # Nora (North only), not connected, in the same channel: prompted; still only Sam's calls.
    org.sandbox.send_slash_command(NORA, "/post-as-me", "nora here", channel_id=SHARED)
    wait_for(lambda: shown_to(org, NORA, "connect your Slack account"))
    assert posted(org, SHARED, "nora here") == [] and {c["user_id"] for c in user_calls(org, "chat.postMessage")} == {SAM}


def test_a_person_in_both_workspaces_connects_once_and_acts_from_either(org: Delegate) -> None:
    assert org.connect(CLEO).status == 200
    for team, channel in ((GRID_NORTH, SHARED), (GRID_SOUTH, SHARED), (GRID_SOUTH, SOUTH_GENERAL)):
        org.sandbox.send_slash_command(
            CLEO, "/post-as-me", f"cleo from {team} in {channel}", channel_id=channel, team_id=team
        )
        wait_for(lambda team=team, channel=channel: posted(org, channel, f"cleo from {team} in {channel}"))
    assert {c["user_id"] for c in user_calls(org, "chat.postMessage")} == {CLEO}
    org.sandbox.send_slash_command(CLEO, "/search-mine", "cleo", channel_id=SOUTH_GENERAL, team_id=GRID_SOUTH)
    [search] = wait_for(lambda: user_calls(org, "search.messages"))
    assert search["user_id"] == CLEO
    wait_for(lambda: shown_to(org, CLEO, "cleo from"))
    assert not shown_to(org, CLEO, "went wrong")


def test_shortcuts_and_app_home_work_in_both_workspaces_as_the_person(org: Delegate) -> None:
    assert org.connect(SAM).status == 200
    org.sandbox.send_global_shortcut(SAM, "set_my_status", team_id=GRID_SOUTH)
    [view] = wait_for(lambda: modals(org, SAM))
    org.sandbox.send_view_submission(SAM, view["id"], {"emoji": {"value": ":rocket:"}, "text": {"value": "Launching"}})
    wait_for(lambda: profile(org, SAM).get("status_text") == "Launching")
    assert {c["user_id"] for c in user_calls(org, "users.profile.set")} == {SAM}
    org.sandbox.say(NORA, SHARED, "launch at noon")
    [said] = posted(org, SHARED, "launch at noon")
    org.sandbox.send_message_shortcut(SAM, "reply_as_me", channel_id=SHARED, message_ts=said["ts"])
    [reply_form] = wait_for(lambda: [v for v in modals(org, SAM) if v["callback_id"] == REPLY_AS_ME_MODAL])
    org.sandbox.send_view_submission(SAM, reply_form["id"], {"message": {"value": "on my way"}})
    [reply] = wait_for(lambda: posted(org, SHARED, "on my way"))
    assert (reply["user"], reply.get("thread_ts")) == (SAM, said["ts"])
    # Nora (not connected) runs the same shortcut in North: the form tells her to connect; nobody's token is used.
    org.sandbox.send_global_shortcut(NORA, "set_my_status", team_id=GRID_NORTH)
    wait_for(lambda: [v for v in modals(org, NORA) if "onnect" in str(v["blocks"])])
    assert {c["user_id"] for c in user_calls(org, "users.profile.set")} == {SAM}
    for person, team in ((SAM, GRID_SOUTH), (OLIVIA, GRID_NORTH), (NORA, GRID_NORTH)):
        org.sandbox.send_app_home_opened(person, team_id=team)

    def homes() -> dict[str, Any]:
        published = {v["user_id"]: v for v in org.sandbox.open_views() if v["type"] == "home"}
        return published if published.keys() >= {SAM, OLIVIA, NORA} else {}

    home = wait_for(homes)
    assert "Connected" in str(home[SAM]["blocks"]) and "Connected" in str(home[OLIVIA]["blocks"])
    assert "not connected" in str(home[NORA]["blocks"]) and "Connected" not in str(home[NORA]["blocks"])


def test_separate_workspace_installs_never_lend_one_workspaces_token_to_the_other(workspaces: Delegate) -> None:
    # Cleo belongs to both workspaces and connects in North only: in South (even in the shared channel) she is
    # asked to connect there, and her North token is never used.
    assert workspaces.authorize(CLEO, "/slack/connect", team_id=GRID_NORTH).status == 200
    assert connected_as(workspaces, GRID_ENTERPRISE, GRID_NORTH, CLEO)
    workspaces.sandbox.send_slash_command(CLEO, "/post-as-me", "from north", channel_id=SHARED, team_id=GRID_NORTH)
    wait_for(lambda: posted(workspaces, SHARED, "from north"))
    workspaces.sandbox.send_slash_command(CLEO, "/post-as-me", "from south", channel_id=SHARED, team_id=GRID_SOUTH)
    wait_for(lambda: shown_to(workspaces, CLEO, "connect your Slack account"))
    assert posted(workspaces, SHARED, "from south") == []
    calls = user_calls(workspaces, "chat.postMessage")
    assert [(c["user_id"], c["team_id"]) for c in calls] == [(CLEO, GRID_NORTH)]
    # Sam (the South installer) posts in the shared channel with his South token.
    workspaces.sandbox.send_slash_command(SAM, "/post-as-me", "sam in shared", channel_id=SHARED)
    wait_for(lambda: posted(workspaces, SHARED, "sam in shared"))
    assert [(c["user_id"], c["team_id"]) for c in user_calls(workspaces, "chat.postMessage")][-1] == (SAM, GRID_SOUTH)


def test_a_person_deactivated_in_the_org_loses_their_org_level_connection(org: Delegate) -> None:
    assert org.connect(CLEO).status == 200 and org.connect(SAM).status == 200
    org.sandbox.deactivate_user(CLEO)  # user_change, to the org-wide installation (is_enterprise_install)
    org.sandbox.wait_for_events()
    wait_for(lambda: (row := org.user_row(CLEO)) is not None and row.status == "revoked")
    assert connected_as(org, GRID_ENTERPRISE, None, SAM)


def test_an_org_level_revocation_and_uninstall_clean_up_everything_under_the_org(org: Delegate) -> None:
    assert org.connect(SAM).status == 200 and org.connect(CLEO).status == 200
    org.sandbox.revoke_tokens(SAM)  # tokens_revoked, for the org-wide installation
    org.sandbox.wait_for_events()
    wait_for(lambda: not connected_as(org, GRID_ENTERPRISE, None, SAM))
    assert connected_as(org, GRID_ENTERPRISE, None, CLEO)
    org.sandbox.send_slash_command(SAM, "/post-as-me", "after revoke", channel_id=SHARED)
    wait_for(lambda: shown_to(org, SAM, "revoked"))
    org.sandbox.uninstall(GRID_ENTERPRISE)  # tokens_revoked then app_uninstalled, for the org
    org.sandbox.wait_for_events()
    store = org.stores.installation_store
    bot = lambda: store.find_bot(enterprise_id=GRID_ENTERPRISE, team_id=None, is_enterprise_install=True)  # noqa: E731
    # tokens_revoked and app_uninstalled are acted on after their acks, each on its own thread: wait for both.
    wait_for(lambda: all(org.user_row(person) is None for person in (OLIVIA, SAM, CLEO)) and bot() is None)
    org.sandbox.send_slash_command(CLEO, "/post-as-me", "after uninstall", channel_id=SOUTH_GENERAL)
    wait_for(lambda: shown_to(org, CLEO, "not installed"))
    assert posted(org, SOUTH_GENERAL, "after uninstall") == []


def test_the_org_wide_install_and_the_shared_channel_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    from tests.conftest import _reset_postgres as reset_postgres

    reset_postgres(postgres_url)  # the session's schema, emptied of earlier tests' rows
    with running_delegate(tmp_path, database_url=postgres_url, **organisation()) as org:
        assert org.authorize(OLIVIA, "/slack/install", org_wide=True).status == 200
        org.sandbox.send_slash_command(SAM, "/post-as-me", "sam here", channel_id=SHARED)
        wait_for(lambda: shown_to(org, SAM, "connect your Slack account"))
        assert org.connect(SAM).status == 200 and connected_as(org, GRID_ENTERPRISE, None, SAM)
        org.sandbox.send_slash_command(SAM, "/post-as-me", "sam again", channel_id=SHARED)
        [message] = wait_for(lambda: posted(org, SHARED, "sam again"))
        assert message["user"] == SAM and posted(org, SHARED, "sam here") == []
        assert [c["user_id"] for c in user_calls(org, "chat.postMessage")] == [SAM]


def test_org_level_tokens_rotate_after_twelve_hours_and_stay_the_persons(org: Delegate) -> None:
    assert org.connect(SAM).status == 200
    before = org.sandbox.tokens(SAM)
    org.sandbox.advance_clock(13 * 3600)  # every token has expired: the bot's and Sam's org-level ones
    org.sandbox.send_slash_command(SAM, "/post-as-me", "after the night", channel_id=SHARED)
    [message] = wait_for(lambda: posted(org, SHARED, "after the night"))
    assert message["user"] == SAM
    [renewal] = [r for r in org.sandbox.refreshes(SAM) if r["kind"] == "user"]
    renewed = [t for t in org.sandbox.tokens(SAM) if t["grant"] == "refresh_token"]
    assert len(renewed) == 1 and renewed[0]["enterprise_id"] == GRID_ENTERPRISE and renewed[0]["team_id"] is None
    assert renewal["old_token"] == before[0]["token"]
    [call] = user_calls(org, "chat.postMessage")
    assert call["user_id"] == SAM and call["token"] == renewed[0]["token"]  # the renewed org-level token acted
    assert connected_as(org, GRID_ENTERPRISE, None, SAM)


def test_run_with_grid_keeps_the_org_in_its_own_folder_across_a_restart(start: Any, tmp_path: Path) -> None:
    """`python app.py run --sandbox --grid` as a real process: the org-wide install survives Ctrl-C, in data/grid/."""

    def post(run: Any, text: str) -> dict[str, Any]:
        body = {"user_id": OLIVIA, "command": "/post-as-me", "text": text, "channel_id": SHARED, "team_id": GRID_SOUTH}
        assert run.admin("POST", "deliver/slash_command", body)["status"] == 200

        def message() -> dict[str, Any] | None:
            found = [m for m in run.admin("GET", f"messages?channel={SHARED}")["messages"] if m["text"] == text]
            return found[0] if found else None

        return wait_for(message, timeout=30)

    first = start("--grid")
    begin = fetch(f"{first.base}/slack/install")
    cookie = begin.headers["set-cookie"].split(";", 1)[0]
    consent = fetch(begin.location)
    assert "the whole organisation" in consent.body
    hidden = dict(re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'>", consent.body))
    form = {**hidden, "user_id": OLIVIA, "install_on": GRID_ENTERPRISE, "action": "allow"}
    decision = fetch(f"{first.sandbox}/oauth/v2/authorize", method="POST", body=urlencode(form))
    assert decision.status == 302 and fetch(decision.location, cookie=cookie).status == 200
    assert post(first, "before the restart")["user"] == OLIVIA
    stop(first, signal.SIGINT)
    second = start("--grid")
    assert post(second, "after the restart")["user"] == OLIVIA
    data = tmp_path / "data"
    assert (data / "grid" / "sandbox.sqlite3").exists() and not (data / "sandbox.sqlite3").exists()
