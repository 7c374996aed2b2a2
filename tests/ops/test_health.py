"""Readiness: each check named when it fails (database stopped, wrong revision, a ring without the key that sealed a
stored token, a dead or stalled refresher), answered from a short cache, and never a secret in the answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import event

from ops.health import Readiness
from ops.wiring import Stores, open_stores
from settings import Settings
from stores import generate_key
from stores.migrations import head_revision, upgrade
from stores.refresher import Refresher
from tests.conftest import CLIENT_ID

SECRET = "test-client-secret-value"


def settings_for(database_url: str, tmp_path: Path, keys: str) -> Settings:
    return Settings(
        data_dir=tmp_path, database_url=database_url, encryption_keys=keys, client_id=CLIENT_ID, client_secret=SECRET
    )


@pytest.fixture
def key() -> str:
    return generate_key()


@pytest.fixture
def stores(database_url: str, tmp_path: Path, key: str) -> Iterator[Stores]:
    upgrade(database_url)
    opened = open_stores(settings_for(database_url, tmp_path, key), background_refresh=False)
    yield opened
    opened.close()


def save_install(stores: Stores, user_id: str = "U1") -> None:
    stores.installation_store.save(
        Installation(
            app_id="A1", team_id="T1", bot_token="xoxb-readiness-bot", bot_id="B1", bot_user_id="UB", user_id=user_id,
            user_token=f"xoxp-readiness-{user_id}", user_refresh_token=f"xoxe-1-refresh-{user_id}",
            user_token_expires_in=43200, user_scopes="chat:write",
        )
    )  # fmt: skip


def lines(readiness: Readiness) -> tuple[int, list[str]]:
    status, body = readiness.answer()
    return status, body.splitlines()


def test_ready_when_everything_holds(stores: Stores) -> None:
    save_install(stores)
    status, body = lines(Readiness(stores, refresher=None))
    assert status == 200
    assert body == ["ready", "database: ok", "schema: ok", "keys: ok", "refresher: off (runs as its own process)"]


def test_a_stopped_database_is_named_and_its_url_is_not(tmp_path: Path, key: str) -> None:
    url = "postgresql+psycopg://delegate:hunter2-password@127.0.0.1:1/delegate"  # nothing listens on port 1
    stopped = open_stores(settings_for(url, tmp_path, key), background_refresh=False)
    try:
        status, body = lines(Readiness(stopped, refresher=None))
    finally:
        stopped.close()
    assert status == 503
    assert body[:2] == ["not ready", "database: unreachable (OperationalError)"]
    assert body[2].startswith("schema: not checked") and body[3].startswith("keys: not checked")
    assert "hunter2" not in "\n".join(body) and "Traceback" not in "\n".join(body)


def test_a_database_behind_the_head_revision_is_named(database_url: str, tmp_path: Path, key: str) -> None:
    upgrade(database_url, "0001")
    behind = open_stores(settings_for(database_url, tmp_path, key), background_refresh=False)
    try:
        status, body = lines(Readiness(behind, refresher=None))
    finally:
        behind.close()
    assert status == 503
    assert f"schema: at 0001, head is {head_revision()} (python app.py db upgrade)" in body


def test_code_newer_than_the_database_is_named(stores: Stores) -> None:
    status, body = lines(Readiness(stores, refresher=None, head=lambda: "9999_from_newer_code"))
    expected = f"schema: at {head_revision()}, head is 9999_from_newer_code (python app.py db upgrade)"
    assert status == 503 and expected in body


def test_a_ring_without_the_key_that_sealed_the_newest_token_is_not_ready(
    stores: Stores, database_url: str, tmp_path: Path, key: str
) -> None:
    save_install(stores)
    other = generate_key()
    without = open_stores(settings_for(database_url, tmp_path, other), background_refresh=False)
    with_old_last = open_stores(settings_for(database_url, tmp_path, f"{other},{key}"), background_refresh=False)
    try:
        status, body = lines(Readiness(without, refresher=None))
        assert status == 503
        [keys] = [line for line in body if line.startswith("keys:")]
        sealed_with = stores.installation_store.keyring.primary_key_id
        expected = f"the newest bot_token_enc is sealed with key {sealed_with}, which is not in TOKEN_ENCRYPTION_KEYS"
        assert keys == f"keys: {expected}"
        assert lines(Readiness(with_old_last, refresher=None))[0] == 200  # the old key still in the ring: fine
    finally:
        without.close()
        with_old_last.close()
    answer = "\n".join(body)
    for secret in ("xoxp-readiness", "xoxe-1-refresh", "xoxb-readiness", key, other, SECRET):
        assert secret not in answer


def test_a_dead_or_stalled_refresher_is_named(stores: Stores) -> None:
    refresher = Refresher(stores.manager, interval=timedelta(seconds=60))
    readiness = Readiness(stores, refresher=refresher)
    assert "refresher: its thread is not running" in lines(readiness)[1]  # never started
    refresher.start()
    try:
        time.sleep(0.2)  # its first sweep (nothing due) has finished
        status, body = lines(readiness)
        assert status == 200 and body[-1] == "refresher: ok"
        refresher.last_progress = time.monotonic() - 200  # as if no sweep had finished for over 3 intervals
        status, body = lines(readiness)
        assert status == 503 and body[-1] == "refresher: no sweep finished for 200 s (every 60 s expected)"
    finally:
        refresher.stop()
    status, body = lines(readiness)
    assert status == 503 and body[-1] == "refresher: its thread is not running"


def test_the_database_checks_are_cached_for_a_moment(stores: Stores) -> None:
    statements: list[str] = []
    event.listen(stores.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    now = [100.0]
    readiness = Readiness(stores, refresher=None, cache_seconds=2.0, clock=lambda: now[0])
    readiness.answer()
    first = len(statements)
    assert 0 < first <= 5  # SELECT 1, the revision, the newest token of each table
    readiness.answer()
    now[0] += 1.0
    readiness.answer()
    assert len(statements) == first  # answered from the cache
    now[0] += 1.5
    readiness.answer()
    assert len(statements) == 2 * first
