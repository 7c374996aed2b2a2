"""The sandbox clock's listeners and the refresh history: what lets the console show refresh-ahead happen."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from slack_sdk import WebClient

from sandbox.clock import Clock
from sandbox.server import SandboxServer
from tests.sandbox.conftest import ALICE
from tests.sandbox.httputil import admin, request


def renew(client: WebClient, sandbox: SandboxServer, refresh_token: str) -> dict[str, Any]:
    return client.oauth_v2_access(
        client_id=sandbox.config.client_id,
        client_secret=sandbox.config.client_secret,
        grant_type="refresh_token",
        refresh_token=refresh_token,
    ).data  # type: ignore[return-value]


def test_advance_tells_every_listener_the_new_time_and_survives_a_failing_one() -> None:
    clock = Clock()
    heard: list[float] = []

    def broken(now: float) -> None:
        raise RuntimeError("listener bug")

    clock.on_advance(broken)
    clock.on_advance(heard.append)
    now = clock.advance(3600)
    assert heard == [now]
    assert clock.now_utc().tzinfo is UTC and abs(clock.now_utc().timestamp() - clock.now()) < 1


def test_each_refresh_grant_is_listed_with_how_long_the_old_token_had_left(
    sandbox: SandboxServer, client: WebClient, installed: dict[str, Any]
) -> None:
    assert sandbox.refreshes() == []
    sandbox.advance_clock(11 * 3600)
    first = renew(client, sandbox, installed["authed_user"]["refresh_token"])
    [ahead] = sandbox.refreshes(ALICE)
    assert ahead["kind"] == "user" and ahead["user_id"] == ALICE
    assert 3590 <= ahead["left_on_old"] <= 3600  # renewed an hour before it was due
    assert abs(ahead["expires_at"] - (ahead["at"] + 12 * 3600)) < 1
    sandbox.advance_clock(13 * 3600)
    renew(client, sandbox, first["refresh_token"])
    late = sandbox.refreshes(ALICE)[-1]
    assert -3600 <= late["left_on_old"] < -3590  # this one had expired an hour before
    dumped = repr(sandbox.refreshes())
    assert first["access_token"] not in dumped and first["refresh_token"] not in dumped


def test_refresh_history_over_the_admin_api_needs_the_admin_token(
    sandbox: SandboxServer, client: WebClient, installed: dict[str, Any]
) -> None:
    renew(client, sandbox, installed["authed_user"]["refresh_token"])
    answer = admin(sandbox, "GET", f"refreshes?user_id={ALICE}").json()
    assert answer["ok"] is True and [r["user_id"] for r in answer["refreshes"]] == [ALICE]
    assert answer["now"] >= answer["refreshes"][0]["at"]
    assert admin(sandbox, "GET", "refreshes?user_id=U0NOBODY").json()["refreshes"] == []
    assert admin(sandbox, "GET", "state").json()["refreshes"] == answer["refreshes"]
    assert request("GET", f"{sandbox.url}sandbox/admin/refreshes").status == 401
