"""Metrics in one process (plain mode): acks by kind and outcome, the token gauges from one query, METRICS_TOKEN."""

from __future__ import annotations

import http.client
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from slack_bolt.request import BoltRequest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import event, update

from ops.metrics import REGISTRY, TokenCollector, request_kind
from settings import Settings, SettingsError
from stores import SQLAlchemyInstallationStore
from stores.schema import utcnow
from stores.token_counts import count_tokens
from tests.e2e.harness import Delegate, running_delegate, wait_for
from tests.support.slack_requests import command_body, sign

ALICE, CAROL, GENERAL = "U0ALICE001", "U0CAROL003", "C0GENERAL1"
METRICS_TOKEN = "metrics-token-0123456789abcdef"


def acks() -> dict[tuple[str, str], float]:
    return {
        (s.labels["kind"], s.labels["outcome"]): s.value
        for family in REGISTRY.collect()
        for s in family.samples
        if s.name == "delegate_acks_total"
    }


def delta(before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    return {key: value - before.get(key, 0) for key, value in after.items() if value - before.get(key, 0)}


def dispatch(delegate: Delegate, body: str) -> int:
    signing_secret = delegate.settings.signing_secret
    assert signing_secret
    response = delegate.wsgi.app.dispatch(BoltRequest(body=body, headers=sign(signing_secret, body)))  # type: ignore[union-attr]
    return response.status


def get(delegate: Delegate, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    host, port = delegate.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_acks_are_counted_by_kind_and_outcome(tmp_path: Path) -> None:
    with running_delegate(tmp_path) as delegate:
        delegate.install(ALICE)
        team = delegate.sandbox.config.default_team.id
        before = acks()
        assert dispatch(delegate, command_body("/delegate", "help", user_id=ALICE, team_id=team)) == 200
        assert dispatch(delegate, command_body("/post-as-me", "hi", user_id=CAROL, team_id=team)) == 200
        elsewhere = command_body("/post-as-me", "hi", user_id=ALICE, team_id="T0NOTHERE")
        assert dispatch(delegate, elsewhere.replace("response_url=", "no_response_url=")) == 200
        # Bolt tells the person through the response URL, which here refuses the connection: the ack failed.
        assert dispatch(delegate, elsewhere) == 200  # the error handler answers commands with a sentence
        assert dispatch(delegate, '{"type": "url_verification", "challenge": "abc", "token": "t"}') == 200
        assert dispatch(delegate, command_body("/nobody-listens", "", user_id=ALICE, team_id=team)) == 404
        counted = delta(before, acks())
    assert counted == {
        ("command", "ok"): 1,
        ("command", "not_connected"): 1,  # Carol never connected: asked to
        ("command", "not_installed"): 1,  # no installation for that team: Bolt's "not installed" answer
        ("url_verification", "ok"): 1,
        ("command", "unhandled"): 1,
        ("command", "error"): 1,
    }


def test_socket_mode_acks_are_counted_too(tmp_path: Path) -> None:
    with running_delegate(tmp_path, socket_mode=True) as delegate:
        delegate.install(ALICE)
        before = acks()
        delegate.sandbox.send_slash_command(ALICE, "/delegate", "help", channel_id=GENERAL)
        wait_for(lambda: delta(before, acks()))
        assert delta(before, acks()) == {("command", "ok"): 1}


def test_request_kinds_come_from_the_parsed_body() -> None:
    assert request_kind({"command": "/x"}) == "command"
    assert request_kind({"type": "event_callback"}) == "event"
    assert request_kind({"type": "block_actions"}) == "block_actions"
    assert request_kind({"type": "message_action"}) == "message_action"
    assert request_kind({"type": ["not", "a", "string"]}) == "other"
    assert request_kind({"type": "something_new"}) == "other"
    assert request_kind("not a dict") == "other"


def save(store: SQLAlchemyInstallationStore, user_id: str) -> None:
    store.save(
        Installation(
            app_id="A1", team_id="T1", bot_token="xoxb-gauge-bot", bot_refresh_token="xoxe-1-bot",
            bot_token_expires_in=43200, bot_id="B1", bot_user_id="UB", user_id=user_id, user_token=f"xoxe.xoxp-1-{user_id}",
            user_refresh_token=f"xoxe-1-{user_id}", user_token_expires_in=43200, user_scopes="chat:write",
        )
    )  # fmt: skip


def test_token_gauges_come_from_one_grouped_query(store: SQLAlchemyInstallationStore) -> None:
    for user in ("U1", "U2", "U3", "U4", "U5", "U6"):
        save(store, user)
    table = store.installations
    now = utcnow()
    with store.engine.begin() as conn:
        conn.execute(update(table).where(table.c.user_id == "U2").values(user_token_expires_at=now + timedelta(minutes=30)))
        conn.execute(update(table).where(table.c.user_id == "U3").values(user_token_expires_at=now - timedelta(minutes=1)))
        conn.execute(update(table).where(table.c.user_id == "U4").values(status="needs_reauth", user_refresh_token_enc=None))
        conn.execute(update(table).where(table.c.user_id == "U5").values(status="revoked", user_token_enc=None))
        # expired, but set aside by the refresher as unused: renewed on its next use, not an alert
        conn.execute(update(table).where(table.c.user_id == "U6").values(user_token_expires_at=now - timedelta(days=3),
                                                                         refresh_ahead=False))  # fmt: skip
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    families = {family.name: family for family in TokenCollector(store).collect()}
    assert len(statements) == 1
    tokens = {tuple(s.labels.values()): s.value for s in families["delegate_tokens"].samples}
    assert tokens == {("user", "active"): 4, ("user", "needs_reauth"): 1, ("user", "revoked"): 1, ("bot", "active"): 1}
    expiring = {s.labels["kind"]: s.value for s in families["delegate_tokens_expiring"].samples}
    assert expiring == {"user": 2, "bot": 0}  # U2 within the window, U3 expired and not renewed
    assert {(c.kind, c.state) for c in count_tokens(store, now=now, window=timedelta(0))} == set(tokens)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-token-0123456789"}, 401),
        ({"Authorization": f"Bearer {METRICS_TOKEN}"}, 200),
    ],
)
def test_metrics_token_guards_the_scrape(tmp_path: Path, headers: dict[str, str], status: int) -> None:
    with running_delegate(tmp_path, env={"METRICS_TOKEN": METRICS_TOKEN}) as delegate:
        answer, body = get(delegate, "/metrics", headers)
        assert get(delegate, "/readyz")[0] == 200  # readiness stays open for the load balancer
    assert answer == status
    if status == 200:
        names = {family.name for family in text_string_to_metric_families(body)}
        assert {"delegate_acks", "delegate_tokens", "delegate_token_refreshes"} <= names
    assert METRICS_TOKEN not in body


def test_a_malformed_metrics_token_stops_the_start() -> None:
    env: dict[str, Any] = {"METRICS_TOKEN": "short"}
    with pytest.raises(SettingsError, match="METRICS_TOKEN must be 16 to 256"):
        Settings.from_env(env)
    assert "metrics-token" not in repr(Settings.from_env({"METRICS_TOKEN": METRICS_TOKEN}))
