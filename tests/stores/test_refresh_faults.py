"""The refresh under faults, with real OS processes, real SIGKILLs and the sandbox's latency and faults, on SQLite
and PostgreSQL: a killed lock holder, a rate limit with a long Retry-After, a late answer while others wait, and a
database connection lost after Slack rotated."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine, make_url

from benchmarks.refresh_storm import TEAM, USER, seed, worker_config
from sandbox.server import SandboxServer
from sandbox.testing import running_sandbox
from stores import SQLAlchemyInstallationStore, create_database_engine, generate_key
from stores.keys import reencrypt
from stores.rotation import TokenKey, TokenManager
from tests.stores.test_refresh_storm import keys_and_store, refreshes

__all__ = ["keys_and_store"]  # a fixture, shared with the storm test

ROOT = Path(__file__).resolve().parents[2]
KEY = TokenKey.of(None, TEAM, USER)

pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox() as server:
        yield server


def start(config: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.storm_worker", json.dumps(config)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, _ = process.communicate(timeout=60)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def user_row(store: SQLAlchemyInstallationStore) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(select(store.installations).where(store.installations.c.user_id == USER)).one()


def test_a_holder_killed_before_slack_rotated_frees_the_token_at_once(
    sandbox: SandboxServer, keys_and_store: tuple[str, SQLAlchemyInstallationStore], database_url: str, engine: Engine
) -> None:
    keys, store = keys_and_store
    holder = start(worker_config(sandbox, database_url, keys, mode="die_holding_lock", hold_seconds=3, start_at=0))
    assert json.loads(holder.stdout.readline()) == {"holding": True}  # type: ignore[union-attr]
    waiter = start(worker_config(sandbox, database_url, keys, start_at=0, wait_seconds=15))  # queues behind it
    [killed] = finish(holder)
    assert holder.returncode == -9
    results = finish(waiter)[-1]["results"]
    assert [r for r in results if "error" in r] == [] and len({r["token"] for r in results}) == 1
    assert refreshes(sandbox) == (1, 0), "one refresh reached Slack, none was refused"
    took = min(float(r["finished_at"]) for r in results) - killed["killed_at"]
    bound = 1.0 if engine.dialect.name == "postgresql" else 3.0
    assert took < bound, f"the next caller had a fresh token {took:.2f} s after the holder was killed"
    row = user_row(store)
    assert (row.status, row.refresh_sent_at, row.generation) == ("active", None, 2)


def test_a_holder_killed_after_slack_rotated_loses_that_token_only_and_never_resends_it(
    sandbox: SandboxServer, keys_and_store: tuple[str, SQLAlchemyInstallationStore], database_url: str
) -> None:
    keys, store = keys_and_store
    [dying] = [start(worker_config(sandbox, database_url, keys, mode="die_after_rotation", threads=1, start_at=0))]
    lines = finish(dying)
    assert lines == [{"rotated": True}] and dying.returncode == -9
    after = finish(start(worker_config(sandbox, database_url, keys, start_at=0, grace_seconds=1, wait_seconds=5)))
    results = after[-1]["results"]
    assert {(r.get("error"), r.get("reason")) for r in results} == {("NeedsReauth", "refresh_interrupted")}
    assert refreshes(sandbox) == (1, 0), "the spent refresh token was never sent again"
    row = user_row(store)
    assert (row.status, row.status_reason) == ("needs_reauth", "refresh_interrupted")


def test_a_long_retry_after_is_waited_out_without_holding_the_lock(
    sandbox: SandboxServer, keys_and_store: tuple[str, SQLAlchemyInstallationStore], database_url: str
) -> None:
    keys, store = keys_and_store
    sandbox.add_fault("oauth.v2.access", status=429, retry_after=3, times=1)
    start_at = time.time() + 4  # two processes must boot before then, on a loaded machine too (2 s was missed once)
    workers = [start(worker_config(sandbox, database_url, keys, threads=2, start_at=start_at, wait_seconds=10))
               for _ in range(2)]  # fmt: skip
    probe = TokenManager(store, client_secret=sandbox.config.client_secret, api_url=sandbox.api_url,
                         background_refresh=False)  # fmt: skip
    time.sleep(max(0.0, start_at - time.time()) + 1.5)  # inside the 3 s pause
    with probe.locks.hold(KEY, wait=0) as free:
        lock_was_free = free is not None
    during = user_row(store)
    results = [r for w in workers for r in finish(w)[-1]["results"]]
    assert lock_was_free, "nobody holds the lock while waiting out Retry-After"
    assert during.last_refresh_outcome == "ratelimited" and during.refresh_retry_at is not None
    assert [r for r in results if "error" in r] == [] and len({r["token"] for r in results}) == 1
    assert refreshes(sandbox) == (1, 0)
    row = user_row(store)
    assert (row.status, row.refresh_retry_at, row.refresh_failures) == ("active", None, 0)


def test_a_late_answer_is_kept_and_waiters_never_take_over(
    sandbox: SandboxServer, keys_and_store: tuple[str, SQLAlchemyInstallationStore], database_url: str
) -> None:
    keys, store = keys_and_store
    sandbox.add_fault("oauth.v2.access", latency_ms=4000, times=1)  # Slack answers the holder late
    now = time.time()
    holder = start(worker_config(sandbox, database_url, keys, threads=1, start_at=now + 3, wait_seconds=10))
    # Others arrive while the answer is late; they would condemn a dead holder's refresh after 1 s, but this one lives.
    waiter = start(worker_config(sandbox, database_url, keys, threads=2, start_at=now + 4.5, wait_seconds=1,
                                 grace_seconds=1))  # fmt: skip
    [waited] = [finish(waiter)[-1]["results"]]
    [held] = finish(holder)[-1]["results"]
    assert {r.get("error") for r in waited} == {"RefreshTimeout"}, "an expired token and a live holder: try again"
    assert "token" in held
    assert refreshes(sandbox) == (1, 0)
    row = user_row(store)
    assert row.status == "active" and row.refresh_sent_at is None
    assert store.find_installation(enterprise_id=None, team_id=TEAM, user_id=USER).user_token == held["token"]


def slow_refresh_ahead(
    sandbox: SandboxServer, engine: Engine, *, latency_ms: int
) -> tuple[SQLAlchemyInstallationStore, TokenManager]:
    """A store on the engine with the person's token expired, and Slack slow to answer the next refresh."""
    store = SQLAlchemyInstallationStore(sandbox.config.client_id, engine, encryption_keys=generate_key())
    store.create_tables()
    seed(store, sandbox)
    sandbox.add_fault("oauth.v2.access", latency_ms=latency_ms, times=1)
    manager = TokenManager(store, client_secret=sandbox.config.client_secret, api_url=sandbox.api_url,
                           background_refresh=False)  # fmt: skip
    return store, manager


def assert_stored_once_the_database_answers(
    store: SQLAlchemyInstallationStore, manager: TokenManager, token: str, *, within: float
) -> None:
    """The rotation held in memory lands on its own once the database is back, and the row is active again."""
    deadline = time.monotonic() + within
    while manager.pending_writes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert manager.pending_writes() == 0, "the write landed on its own once the database was back"
    assert store.find_installation(enterprise_id=None, team_id=TEAM, user_id=USER).user_token == token
    assert user_row(store).status == "active"


def test_a_connection_lost_after_slack_rotated_keeps_the_token_until_the_write_lands(
    sandbox: SandboxServer, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("cuts the server-side connections of this test's engine")
    marker = f"delegate-blink-{time.time_ns()}"
    # In the URL, so that every pool of the manager (its lock pool too) carries the name.
    named = make_url(database_url).update_query_dict({"application_name": marker}).render_as_string(hide_password=False)
    engine = create_database_engine(named)
    admin = create_database_engine(database_url)
    try:
        store, manager = slow_refresh_ahead(sandbox, engine, latency_ms=1000)

        def cut_while_slack_answers() -> None:
            time.sleep(0.5)
            with admin.begin() as conn:
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                    {"name": marker},
                )

        cutter = threading.Thread(target=cut_while_slack_answers)
        cutter.start()
        fresh = manager.fresh_token(KEY, wait=timedelta(seconds=10))
        cutter.join()
        assert refreshes(sandbox) == (1, 0)
        # served from memory meanwhile, the same token again, and stored once the database answers again
        assert manager.fresh_token(KEY).token == fresh.token
        assert_stored_once_the_database_answers(store, manager, fresh.token, within=10)
    finally:
        engine.dispose()
        admin.dispose()


def test_reencryption_looping_while_the_token_rotates_never_loses_it(
    sandbox: SandboxServer, engine: Engine, database_url: str
) -> None:
    old, new = generate_key(), generate_key()
    # Mid-roll: a host still writing with the old key first rotates the token, while re-encryption moves rows to the new.
    store = SQLAlchemyInstallationStore(sandbox.config.client_id, engine, encryption_keys=f"{new},{old}")
    store.create_tables()
    seed(SQLAlchemyInstallationStore(sandbox.config.client_id, engine, encryption_keys=f"{old},{new}"), sandbox)
    sandbox.add_fault("oauth.v2.access", latency_ms=100)  # widen the window between read and write
    rotator = start(worker_config(sandbox, database_url, f"{old},{new}", mode="rotate_every", threads=1, rounds=12,
                                  interval=0.05, start_at=0))  # fmt: skip
    passes = []
    while rotator.poll() is None:
        passes.append(reencrypt(store, batch_size=1))
    [result] = finish(rotator)[-1]["results"]
    assert "token" in result, result
    assert sum(p.rows_rewritten for p in passes) > 0
    assert refreshes(sandbox) == (12, 0), "every rotation was kept: none was refused as already spent"
    stored = store.find_installation(enterprise_id=None, team_id=TEAM, user_id=USER)
    assert stored.user_token == result["token"] and user_row(store).status == "active"


def test_postgresql_restarted_while_a_refresh_is_in_flight(sandbox: SandboxServer, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("restarts the PostgreSQL server")
    tool, clusters = shutil.which("pg_ctlcluster"), Path("/etc/postgresql")
    if tool is None or not clusters.is_dir() or os.geteuid() != 0:
        pytest.skip("needs pg_ctlcluster and root to restart the local PostgreSQL cluster")
    version = sorted(p.name for p in clusters.iterdir())[0]
    engine = create_database_engine(database_url)
    try:
        store, manager = slow_refresh_ahead(sandbox, engine, latency_ms=1500)  # Slack answers while the server is down

        def restart() -> None:
            time.sleep(0.3)
            subprocess.run([tool, version, "main", "restart"], check=True, timeout=60, capture_output=True)

        restarter = threading.Thread(target=restart)
        restarter.start()
        fresh = manager.fresh_token(KEY, wait=timedelta(seconds=10))
        assert manager.fresh_token(KEY).token == fresh.token  # served from memory while the write waits
        restarter.join()
        assert refreshes(sandbox) == (1, 0)
        assert_stored_once_the_database_answers(store, manager, fresh.token, within=20)
    finally:
        for _ in range(60):  # leave the server up for the rest of the suite
            if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0:
                break
            time.sleep(0.5)
        engine.dispose()
