"""Scale-out settings: one pool size per process, PgBouncer mode, the refresher in workers or not, and the warning
when one host's processes could open more connections than PostgreSQL accepts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from app import check_connections, create_wsgi_app
from ops.capacity import check_max_connections, default_pool_size, plan
from ops.wiring import engine_for
from settings import Settings, SettingsError
from stores import generate_key
from stores.locks import PostgresLocks
from stores.migrations import upgrade

SLACK = {"SLACK_CLIENT_ID": "111.222", "SLACK_CLIENT_SECRET": "s", "SLACK_SIGNING_SECRET": "g"}


def test_scale_out_settings_and_their_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.database_pool_size, settings.database_pgbouncer, settings.refresher) == (None, False, "workers")
    assert settings.refresh_ahead_days == 14
    settings = Settings.from_env({"DATABASE_POOL_SIZE": "7", "DATABASE_PGBOUNCER": "true", "DELEGATE_REFRESHER": "off",
                                  "DELEGATE_REFRESH_AHEAD_DAYS": "30"})  # fmt: skip
    assert (settings.database_pool_size, settings.database_pgbouncer, settings.refresher) == (7, True, "off")
    assert settings.refresh_ahead_days == 30


def test_malformed_scale_out_settings_are_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"DATABASE_POOL_SIZE": "0", "DATABASE_PGBOUNCER": "maybe", "DELEGATE_REFRESHER": "sometimes",
                           "DELEGATE_REFRESH_AHEAD_DAYS": "0"})  # fmt: skip
    message = str(caught.value)
    assert "DATABASE_POOL_SIZE must be a whole number of connections from 1 to 100, got '0'" in message
    assert "DATABASE_PGBOUNCER must be true or false, got 'maybe'" in message
    assert "DELEGATE_REFRESHER must be workers" in message and "'sometimes'" in message
    assert "DELEGATE_REFRESH_AHEAD_DAYS must be a whole number of days from 1 to 365" in message


def test_the_default_pool_shrinks_with_the_workers_of_a_host() -> None:
    assert [default_pool_size(n) for n in (1, 3, 5, 9, 17)] == [5, 5, 4, 2, 2]
    connections = plan(9, 2, refresher_in_workers=True)  # 4 cores: 2 x 4 + 1 workers
    assert (connections.per_process, connections.total) == (2 + 1 + 6, 81)
    assert plan(9, 2, refresher_in_workers=False).total == 9 * (2 + 1 + 2)


@pytest.mark.postgres
def test_the_pool_size_reaches_the_engine_and_pgbouncer_mode_prepares_nothing(postgres_url: str) -> None:
    settings = Settings.from_env({"DATABASE_URL": postgres_url, "DATABASE_POOL_SIZE": "3", "DATABASE_PGBOUNCER": "true"})
    engine = engine_for(settings, processes=4)
    locks = PostgresLocks(engine, "111.222")
    try:
        assert (engine.pool.size(), engine.pool._max_overflow, engine.pool.timeout()) == (3, 1, 2.0)  # type: ignore[attr-defined]
        for candidate in (engine, locks.engine):  # the refresh locks' own connections too
            with candidate.connect() as conn:
                assert conn.connection.driver_connection.prepare_threshold is None  # type: ignore[union-attr]
    finally:
        locks.close()
        engine.dispose()
    derived = engine_for(Settings.from_env({"DATABASE_URL": postgres_url}), processes=5)
    try:
        assert derived.pool.size() == 4  # type: ignore[attr-defined]
        with derived.connect() as conn:
            assert conn.connection.driver_connection.prepare_threshold == 5  # type: ignore[union-attr] # psycopg's default
    finally:
        derived.dispose()


@pytest.mark.postgres
def test_a_host_that_cannot_fit_is_warned_with_the_numbers(postgres_url: str) -> None:
    settings = Settings.from_env({"DATABASE_URL": postgres_url, "DATABASE_POOL_SIZE": "5"})
    engine = engine_for(settings)
    try:
        with engine.connect() as conn:
            limit = int(conn.execute(text("SHOW max_connections")).scalar_one())
            reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar_one())
        assert check_max_connections(engine, plan(1, 5, refresher_in_workers=True)) is None
        processes = (limit - reserved) // 13 + 1  # 13 each: pool 5 + overflow 2 + 6 refresh locks
        warning = check_max_connections(engine, plan(processes, 5, refresher_in_workers=True))
    finally:
        engine.dispose()
    assert warning is not None
    assert f"{processes} processes x 13 connections (pool 5 + overflow 2 + 6 refresh locks) = {processes * 13}" in warning
    assert f"PostgreSQL accepts {limit - reserved} (max_connections {limit} - superuser_reserved_connections" in warning
    assert "DELEGATE_REFRESHER=off" in warning
    assert check_connections(settings, processes=processes) == warning  # what `python app.py run` prints at start


def test_sqlite_is_never_checked(tmp_path: Path) -> None:
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'd.sqlite3'}"})
    assert check_connections(settings, processes=500) is None


@pytest.mark.parametrize("mode", ["workers", "off"])
def test_delegate_refresher_off_starts_no_refresher_thread(tmp_path: Path, mode: str) -> None:
    url = f"sqlite:///{tmp_path / 'delegate.sqlite3'}"
    upgrade(url)
    env = {**SLACK, "DATABASE_URL": url, "TOKEN_ENCRYPTION_KEYS": generate_key(), "DELEGATE_REFRESHER": mode}
    env["DELEGATE_DATA_DIR"] = str(tmp_path)
    env["DELEGATE_REFRESH_AHEAD_DAYS"] = "21"
    wsgi = create_wsgi_app(Settings.from_env(env))
    try:
        assert wsgi.stores.manager.active_window == timedelta(days=21)
        if mode == "off":
            assert wsgi.refresher is None
        else:
            assert wsgi.refresher is not None and wsgi.refresher._thread is not None and wsgi.refresher._thread.is_alive()
    finally:
        if wsgi.refresher is not None:
            wsgi.refresher.stop()
        wsgi.stores.close()
