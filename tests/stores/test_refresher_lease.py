"""A refresher process killed with SIGKILL mid-sweep: its claimed batch stays out of other refreshers' claims until its
lease lapses, then another refresher renews every one of them, once. A real `python app.py tokens refresher` process
on the real database (a SQLite file; PostgreSQL), against the local token endpoint."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from stores.refresher import Refresher
from stores.rotation import TokenManager
from tests.conftest import CLIENT_ID
from tests.stores.test_rotation import CLIENT_SECRET, user_row
from tests.stores.test_shared_budget import due_tokens, refresher_env
from tests.support.token_server import TokenServerState, running_token_server

ROOT = Path(__file__).resolve().parents[2]
TOKENS = 10
LEASE = 4  # seconds

pytestmark = pytest.mark.slow


@pytest.fixture
def token_server() -> Iterator[tuple[str, TokenServerState]]:
    with running_token_server(CLIENT_ID) as server:
        yield server


REFRESHER = [sys.executable, "app.py", "tokens", "refresher", "--max-per-minute=120", "--concurrency=1",
             "--batch-size=8", f"--lease-seconds={LEASE}"]  # fmt: skip


def test_a_killed_refreshers_batch_is_renewed_by_another_once_its_lease_lapses(
    engine: Engine, database_url: str, token_server: tuple[str, TokenServerState], tmp_path: Path
) -> None:
    api_url, state = token_server
    keys, store, users = due_tokens(engine, state, TOKENS)
    env = refresher_env(database_url, api_url, keys, tmp_path)

    # A claims a batch of 8 and refreshes one every 0.5 s; it is killed just after its second refresh.
    first = subprocess.Popen(REFRESHER, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while len(state.refresh_log) < 2 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.01)
    time.sleep(0.2)  # its second refresh is committed; its third is 0.3 s away
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert len(state.refresh_log) == 2, "killed between refreshes"
    u = store.installations.c
    with engine.connect() as conn:
        leased = conn.execute(
            select(u.user_id, u.sweep_claimed_until).where(u.sweep_claimed_until > store.clock(), u.status == "active")
        ).all()
    orphaned = {user for user, _ in leased} - {user for _, user in state.refresh_log}
    assert len(orphaned) == 6, "the rest of the dead refresher's batch is still leased to it"

    # Another refresher (here in this process), at once: takes only what nobody has claimed.
    manager = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False)
    try:
        sweep = Refresher(manager, jitter=timedelta(0), max_per_minute=6000, lease=timedelta(seconds=LEASE))
        second = sweep.sweep_once()
        assert (second.due, second.refreshed) == (2, 2), second
        assert not orphaned & {user for _, user in state.refresh_log}, "nothing leased to the dead refresher was taken"

        # Once the dead refresher's lease has lapsed by itself, the next sweep renews its batch.
        with engine.connect() as conn:
            lapses = conn.execute(select(func.max(u.sweep_claimed_until)).where(u.user_id.in_(orphaned))).scalar_one()
        time.sleep(max(0.0, (lapses - store.clock()).total_seconds()) + 0.1)
        third = sweep.sweep_once()
        assert (third.due, third.refreshed) == (6, 6), third
    finally:
        manager.close()

    rotated = sorted(user for _, user in state.refresh_log if user)
    assert rotated == users, "every token renewed exactly once: none twice, none missed"
    assert state.rejected_refreshes == 0
    for user in users:
        row = user_row(engine, store, user)
        assert row.status == "active" and row.user_token_expires_at - store.clock() > timedelta(hours=11)
