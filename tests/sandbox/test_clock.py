"""The sandbox clock's listeners and the refresh history: what lets the console show refresh-ahead happen."""

from __future__ import annotations

import time
from datetime import UTC
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

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


def test_a_faster_clock_runs_at_its_speed_without_jumping_and_another_process_can_follow_it() -> None:
    clock = Clock()
    before = clock.now()
    clock.set_speed(100)
    assert abs(clock.now() - before) < 1, "changing the speed does not move the time"
    follower = Clock(**clock.timeline())  # what a refresher process builds from the benchmark's config
    time.sleep(0.2)
    assert 19 <= clock.now() - before <= 40  # 0.2 s at 100 times real time
    assert abs(follower.now() - clock.now()) < 0.5
    clock.advance(3600)
    assert abs(Clock(**clock.timeline()).now() - clock.now()) < 0.5, "an advance is part of the timeline"
    with pytest.raises(ValueError):
        clock.set_speed(0)


def test_rate_limits_count_minutes_of_the_sandbox_clock_and_count_what_they_refuse(
    sandbox: SandboxServer, user_token: str
) -> None:
    sandbox.configure(rate_limits={"auth.test": 2})
    sandbox.state.clock.set_speed(120)  # a sandbox minute is half a real second
    client = WebClient(base_url=sandbox.api_url, retry_handlers=[])
    client.auth_test(token=user_token)
    client.auth_test(token=user_token)
    with pytest.raises(SlackApiError) as raised:
        client.auth_test(token=user_token)
    assert raised.value.response.status_code == 429 and raised.value.response.headers["Retry-After"] == "1"
    assert sandbox.counters()["rate_limited"] == {"auth.test": 1}
    time.sleep(0.6)  # more than a minute later on the sandbox clock
    assert client.auth_test(token=user_token)["ok"] is True


def test_people_seeded_in_bulk_refresh_like_installed_ones_and_each_refresh_names_the_token_it_replaced(
    sandbox: SandboxServer, client: WebClient
) -> None:
    now = sandbox.now()
    people = [f"U{n:09d}" for n in range(3)]
    issued = sandbox.state.seed_people(people, [now + 60, now + 120, now - 5])
    assert client.auth_test(token=issued[0][0])["user_id"] == people[0]
    with pytest.raises(SlackApiError, match="token_expired"):
        client.auth_test(token=issued[2][0])
    for _access, refresh in issued:
        renew(client, sandbox, refresh)
    assert [round(r["left_on_old"]) for r in sandbox.refreshes()] == [60, 120, -5]
    assert sandbox.counters()["refreshes_by_user"] == dict.fromkeys(people, 1)
