"""Through PgBouncer in transaction pooling (Debian's pgbouncer 1.18, started here on a port of its own): the refresh
lock (a transaction-scoped advisory lock, SET LOCAL timeouts) still lets exactly one process refresh a token.

PgBouncer rejects the `options` startup parameter that the other tests use to pick their schema, so its database
entry sets the session's search_path with `connect_query` on each server connection instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks.refresh_storm import TEAM, USER, run_workers, seed, worker_config
from sandbox.server import SandboxServer
from sandbox.testing import running_sandbox
from stores import SQLAlchemyInstallationStore, create_database_engine, generate_key
from stores.locks import PostgresLocks
from stores.token_rows import TokenKey
from tests.conftest import IN_CI, _reset_postgres
from tests.stores.test_refresh_faults import finish, start

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
pytestmark = pytest.mark.postgres


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pgbouncer_url(postgres_url: str) -> Iterator[str]:
    """A PgBouncer in transaction pooling in front of the test PostgreSQL, on the session's schema."""
    if not Path(PGBOUNCER).exists():
        if IN_CI:
            pytest.fail("CI=true but pgbouncer is missing: .ci/run installs Debian's pgbouncer")
        pytest.skip("pgbouncer is missing (apt-get install pgbouncer)")
    _reset_postgres(postgres_url)
    server = make_url(postgres_url)
    schema = unquote(str(server.query["options"])).removeprefix("-csearch_path=")
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="delegate-pgbouncer-"))
    (folder / "users.txt").write_text(f'"{server.username}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"delegate = host={server.host} port={server.port or 5432} dbname={server.database} user={server.username} "
        f"connect_query='SET search_path TO {schema}'\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 20\nmax_client_conn = 200\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
    )
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        shutil.chown(folder, "postgres")
        for path in folder.iterdir():
            shutil.chown(path, "postgres")
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"postgresql+psycopg://{server.username}@127.0.0.1:{port}/delegate"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {(folder / 'pgbouncer.log').read_text()}") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
        _reset_postgres(postgres_url)  # tests that use the session's schema as they find it come after


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox() as server:
        server.add_fault("oauth.v2.access", latency_ms=200)  # a slow refresh, so every caller overlaps it
        yield server


def test_the_refresh_lock_and_set_local_hold_under_transaction_pooling(pgbouncer_url: str) -> None:
    engine = create_database_engine(pgbouncer_url, pgbouncer=True)
    # Advisory locks are per database, not per schema: a key of its own, so no other test run on the server meets it.
    locks = PostgresLocks(engine, f"pgbouncer-{uuid.uuid4().hex}")
    key = TokenKey.of(None, "T1", "U1")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_schema()")).scalar_one().startswith("delegate_test_")
            for _ in range(10):  # past psycopg's prepare threshold (5): nothing is prepared, so nothing breaks
                assert conn.execute(text("SELECT 1 WHERE 1 = :one"), {"one": 1}).scalar_one() == 1
        with locks.hold(key, wait=1) as held:
            assert held is not None and held.connection is not None
            assert held.connection.exec_driver_sql("SHOW lock_timeout").scalar_one() == "5s"  # SET LOCAL, same transaction
            with locks.hold(key, wait=0) as other:
                assert other is None, "the advisory lock is held by the first transaction's server connection"
            with locks.hold(key, wait=0.3) as other:
                assert other is None, "a waiter gives up after its lock_timeout"
        with locks.hold(key, wait=0) as again:
            assert again is not None, "released with its transaction"
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar_one() == "0", "SET LOCAL never leaked to the pool"
    finally:
        locks.close()
        engine.dispose()


@pytest.mark.slow
def test_6_processes_by_4_threads_through_pgbouncer_make_exactly_one_refresh(
    pgbouncer_url: str, postgres_url: str, sandbox: SandboxServer
) -> None:
    keys = generate_key()
    engine = create_database_engine(postgres_url)
    store = SQLAlchemyInstallationStore(sandbox.config.client_id, engine, encryption_keys=keys)
    store.create_tables()
    seed(store, sandbox)  # installed, then expired both at Slack and in the store
    try:
        configs = [worker_config(sandbox, pgbouncer_url, keys, pgbouncer=True) for _ in range(6)]
        results = [r for output in run_workers(configs) for r in output["results"]]
        assert len(results) == 24 and [r for r in results if "error" in r] == []
        counters = sandbox.counters()
        assert counters["grants"].get("refresh_token", 0) == 1, "exactly one refresh reached Slack"
        assert counters["grant_failures"].get("refresh_token", 0) == 0
        assert len({r["token"] for r in results}) == 1, "every caller ends up with the same new token"
        stored = store.find_installation(enterprise_id=None, team_id=TEAM, user_id=USER)
        assert stored is not None and stored.user_token == results[0]["token"]
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_holder_killed_behind_pgbouncer_frees_the_token_at_once(
    pgbouncer_url: str, postgres_url: str, sandbox: SandboxServer
) -> None:
    """PgBouncer closes the server connection of a client that vanished inside a transaction: the lock goes with it."""
    keys = generate_key()
    engine = create_database_engine(postgres_url)
    store = SQLAlchemyInstallationStore(sandbox.config.client_id, engine, encryption_keys=keys)
    store.create_tables()
    seed(store, sandbox)
    try:
        config = worker_config(sandbox, pgbouncer_url, keys, pgbouncer=True, start_at=0)
        holder = start({**config, "mode": "die_holding_lock", "hold_seconds": 3})
        assert json.loads(holder.stdout.readline()) == {"holding": True}  # type: ignore[union-attr]
        waiter = start({**config, "wait_seconds": 15})  # queues behind it
        [killed] = finish(holder)
        assert holder.returncode == -9
        results = finish(waiter)[-1]["results"]
        assert [r for r in results if "error" in r] == [] and len({r["token"] for r in results}) == 1
        assert sandbox.counters()["grants"].get("refresh_token", 0) == 1
        took = min(float(r["finished_at"]) for r in results) - killed["killed_at"]
        assert took < 1.0, f"the next caller had a fresh token {took:.2f} s after the holder was killed"
    finally:
        engine.dispose()
