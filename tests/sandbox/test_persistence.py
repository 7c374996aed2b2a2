"""The sandbox's state file: what one run issued, the next run on the same file still honours, exactly once."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.persistence import StateFile, StateFileError
from sandbox.server import SandboxServer
from sandbox.state import SandboxState
from tests.sandbox.conftest import ALICE, BOB, BOT_SCOPES, GENERAL, USER_SCOPES
from tests.sandbox.httputil import admin

Start = Callable[..., SandboxServer]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start a sandbox on the test's state file; every one started is closed at the end."""
    started: list[SandboxServer] = []

    def _start(**kwargs: Any) -> SandboxServer:
        server = SandboxServer(state_path=tmp_path / "data" / "sandbox-slack.sqlite3", **kwargs).start()
        started.append(server)
        return server

    yield _start
    for server in started:
        server.close()


def refresh(server: SandboxServer, refresh_token: str) -> dict[str, Any]:
    client = WebClient(base_url=server.api_url)
    answer = client.oauth_v2_access(
        client_id=server.config.client_id,
        client_secret=server.config.client_secret,
        grant_type="refresh_token",
        refresh_token=refresh_token,
    )
    return answer.data  # type: ignore[return-value]


def refresh_error(server: SandboxServer, refresh_token: str) -> str:
    with pytest.raises(SlackApiError) as raised:
        refresh(server, refresh_token)
    return str(raised.value.response["error"])


def test_tokens_messages_and_the_clock_survive_a_restart(start: Start) -> None:
    first = start()
    installed = first.install(ALICE, scope=BOT_SCOPES, user_scope=USER_SCOPES)
    user_token, bot_token = installed["authed_user"]["access_token"], installed["access_token"]
    WebClient(base_url=first.api_url, token=user_token).chat_postMessage(channel=GENERAL, text="before the restart")
    first.advance_clock(3600)
    rotated = refresh(first, installed["authed_user"]["refresh_token"])
    renewals = first.refreshes()
    first.close()

    second = start()
    assert second.state.clock.offset == 3600
    client = WebClient(base_url=second.api_url, token=rotated["access_token"])
    assert client.auth_test()["user_id"] == ALICE
    assert WebClient(base_url=second.api_url, token=bot_token).auth_test()["user_id"] == second.config.bot_user_id
    assert [m["text"] for m in second.messages(GENERAL)] == ["before the restart"]
    assert second.refreshes() == renewals and len(renewals) == 1  # the console's renewal list too
    # The refresh token used before the restart stays used; the one it gave is honoured once, then no more.
    assert refresh_error(second, installed["authed_user"]["refresh_token"]) == "invalid_refresh_token"
    again = refresh(second, rotated["refresh_token"])
    assert WebClient(base_url=second.api_url, token=again["access_token"]).auth_test()["ok"]
    assert refresh_error(second, rotated["refresh_token"]) == "invalid_refresh_token"
    assert second.counters()["grants"]["refresh_token"] == 2
    posted = WebClient(base_url=second.api_url, token=again["access_token"]).chat_postMessage(channel=GENERAL, text="after")
    assert posted["ts"] > second.messages(GENERAL)[0]["ts"]


def test_used_codes_stay_used_and_revoked_tokens_stay_revoked(start: Start) -> None:
    first = start()
    first.install(BOB, scope=BOT_SCOPES, user_scope=USER_SCOPES)
    revoked = first.tokens(BOB)
    first.revoke_tokens(BOB)
    first.deactivate_user(BOB)
    used = first.approve(ALICE, user_scope=USER_SCOPES).split("code=")[1].split("&")[0]
    unused = first.approve(ALICE, user_scope=USER_SCOPES).split("code=")[1].split("&")[0]
    client = WebClient(base_url=first.api_url)
    credentials = {"client_id": first.config.client_id, "client_secret": first.config.client_secret}
    client.oauth_v2_access(code=used, **credentials)
    first.close()

    second = start()
    client = WebClient(base_url=second.api_url)
    with pytest.raises(SlackApiError) as raised:
        client.oauth_v2_access(code=used, **credentials)
    assert raised.value.response["error"] == "invalid_code"
    assert client.oauth_v2_access(code=unused, **credentials)["authed_user"]["id"] == ALICE
    assert {token["status"] for token in second.tokens(BOB)} == {"revoked"} and len(second.tokens(BOB)) == len(revoked)
    assert second.state.user_json(BOB)["deleted"] is True


def test_what_an_answer_reveals_is_on_disk_before_the_answer_arrives(start: Start, tmp_path: Path) -> None:
    server = start()
    installed = admin(server, "POST", "install", {"user_id": ALICE, "user_scope": USER_SCOPES}).json()
    rotated = refresh(server, installed["authed_user"]["refresh_token"])
    # Read the file as a restarted sandbox would, while this one still runs and has written nothing since.
    reader = SandboxState(server.config)
    store = StateFile(tmp_path / "data" / "sandbox-slack.sqlite3")
    try:
        store.load(reader)
    finally:
        store.close()
    assert rotated["access_token"] in reader.tokens and rotated["refresh_token"] in reader.refresh_tokens
    assert reader.refresh_tokens[installed["authed_user"]["refresh_token"]].used_at is not None


def test_the_file_is_owner_only_in_an_owner_only_folder(start: Start, tmp_path: Path) -> None:
    start().install(ALICE, user_scope=USER_SCOPES)
    folder = tmp_path / "data"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_missing_file_is_a_fresh_start(start: Start, tmp_path: Path) -> None:
    server = start()
    assert server.tokens() == [] and server.messages() == []
    assert (tmp_path / "data" / "sandbox-slack.sqlite3").exists()


def test_a_corrupt_file_is_a_clear_error_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "sandbox-slack.sqlite3"
    path.write_bytes(b"not a database at all, but long enough to have a header" * 20)
    with pytest.raises(StateFileError, match="cannot be read.*--fresh"):
        SandboxServer(state_path=path)
    assert path.read_bytes().startswith(b"not a database")


def test_another_apps_file_is_refused(start: Start, tmp_path: Path) -> None:
    start().install(ALICE, user_scope=USER_SCOPES)
    from sandbox.config import SandboxConfig

    with pytest.raises(StateFileError, match="belongs to app A0SANDBOXAP.*--fresh"):
        SandboxServer(SandboxConfig(app_id="A0OTHERAPP1"), state_path=tmp_path / "data" / "sandbox-slack.sqlite3")


def test_start_over_empties_the_app_first_then_the_sandbox_and_its_file(start: Start) -> None:
    calls: list[str] = []
    server = start(on_reset=lambda: calls.append("app emptied"))
    installed = server.install(ALICE, scope=BOT_SCOPES, user_scope=USER_SCOPES)
    server.say(ALICE, GENERAL, "hello")
    reply = admin(server, "POST", "start_over")
    assert reply.status == 200 and reply.json()["ok"], reply.text
    assert calls == ["app emptied"]
    assert server.tokens() == [] and server.messages() == [] and server.counters()["grants"] == {}
    server.close()
    again = start()
    assert again.tokens() == [] and again.messages() == []
    with pytest.raises(SlackApiError) as raised:
        WebClient(base_url=again.api_url, token=installed["access_token"]).auth_test()
    assert raised.value.response["error"] == "invalid_auth"


def test_start_over_changes_nothing_when_the_app_cannot_be_emptied(start: Start) -> None:
    def broken() -> None:
        raise RuntimeError("database down")

    server = start(on_reset=broken)
    server.install(ALICE, user_scope=USER_SCOPES)
    reply = admin(server, "POST", "start_over")
    assert reply.status == 500 and reply.json()["error"] == "reset_failed"
    assert len(server.tokens()) == 1


def test_without_a_path_nothing_touches_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with SandboxServer() as server:
        server.install(ALICE, user_scope=USER_SCOPES)
        assert server.state.store is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.browser
def test_the_consoles_start_over_asks_first_then_empties_the_app_and_the_sandbox(start: Start, chromium: Any) -> None:
    calls: list[str] = []
    server = start(on_reset=lambda: calls.append("app emptied"))
    server.install(ALICE, scope=BOT_SCOPES, user_scope=USER_SCOPES)
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(5000)
        page.goto(server.url)
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click("#start-over")
        assert calls == [] and len(server.tokens()) == 2  # "Cancel" changes nothing
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#start-over")
        page.wait_for_selector("#last-result:has-text('Started over')")
        assert calls == ["app emptied"] and server.tokens() == []
    finally:
        context.close()
