"""What the scale benchmarks share: bulk seeding of people (sandbox and store), fresh tables, refresher processes.

Seeding is bulk on both sides: the sandbox's `seed_people` issues every token in one pass under its lock, and the
store gets its rows by SQLAlchemy Core inserts of 5,000 rows at a time, each token sealed with the store's own
encryption (bound to its row and field, as `save()` seals it), so the refresher reads them like any other row.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from sandbox.server import SandboxServer
from stores import SQLAlchemyInstallationStore
from stores.database import refresh_statistics
from stores.schema import NONE, STATUS_ACTIVE
from stores.schema.tables import refresh_budget

ROOT = Path(__file__).resolve().parents[1]
LIMIT_PER_MINUTE = 600  # Slack's limit on oauth.v2.access, per app
CHUNK = 5000


@contextmanager
def benchmark_database(url: str | None, name: str) -> Iterator[tuple[str, str]]:
    """(URL, dialect name): the given database, or a fresh SQLite file removed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        url = url or f"sqlite:///{Path(folder) / name}.sqlite3"
        yield url, url.split(":", 1)[0].split("+", 1)[0]


def person_ids(count: int) -> list[str]:
    return [f"U{n:09d}" for n in range(count)]


def drop_tables(store: SQLAlchemyInstallationStore) -> None:
    """Drop the store's tables and the refresh budget."""
    store.metadata.drop_all(store.engine)
    refresh_budget.drop(store.engine, checkfirst=True)


def fresh_tables(store: SQLAlchemyInstallationStore) -> None:
    """Empty schema for one run: the store's tables and the refresh budget, dropped and created again."""
    drop_tables(store)
    store.create_tables()


def seed_people(
    sandbox: SandboxServer,
    store: SQLAlchemyInstallationStore,
    users: Sequence[str],
    expires_at: Sequence[float],
    last_used_at: Sequence[float | None] | None = None,
    installed_at: float | None = None,
) -> float:
    """Give each person a rotating user token at the sandbox and the same one in the store, granted at `installed_at`
    (default now) and last used at `last_used_at` (default now); times on the sandbox clock. Returns the seconds taken."""
    started = time.perf_counter()
    issued = sandbox.state.seed_people(users, expires_at)
    team = sandbox.config.default_team.id
    now = datetime.fromtimestamp(sandbox.now(), UTC)
    granted = now if installed_at is None else datetime.fromtimestamp(installed_at, UTC)
    used = [now if t is None else datetime.fromtimestamp(t, UTC) for t in last_used_at or [None] * len(users)]
    lifetime = sandbox.config.expires_in
    table = store.installations
    with store.engine.begin() as conn:
        people = list(zip(users, issued, expires_at, used, strict=True))
        for start in range(0, len(people), CHUNK):
            rows = [
                {
                    "client_id": store.client_id,
                    "enterprise_id": NONE,
                    "team_id": team,
                    "user_id": user,
                    "app_id": sandbox.config.app_id,
                    "is_enterprise_install": False,
                    "user_token_enc": store.seal(access, NONE, team, user, "user_token_enc"),
                    "user_refresh_token_enc": store.seal(refresh, NONE, team, user, "user_refresh_token_enc"),
                    "user_token_expires_at": datetime.fromtimestamp(expiry, UTC),
                    "user_scopes": "chat:write",
                    "status": STATUS_ACTIVE,
                    "refresh_failures": 0,
                    "lifetime_seconds": lifetime,
                    "generation": 1,
                    "last_used_at": last_used,
                    "installed_at": granted,
                    "updated_at": now,
                }
                for user, (access, refresh), expiry, last_used in people[start : start + CHUNK]
            ]
            conn.execute(insert(table), rows)
    refresh_statistics(store.engine, store.metadata)  # as `db import-slack-sdk` does after a bulk write
    return time.perf_counter() - started


def expired_rows(store: SQLAlchemyInstallationStore, at: datetime) -> int:
    """Active user tokens in the store that expired before `at`."""
    c = store.installations.c
    with store.engine.connect() as conn:
        query = select(func.count()).where(c.status == STATUS_ACTIVE, c.user_token_expires_at < at)
        return int(conn.execute(query).scalar_one())


def worker_config(sandbox: SandboxServer, database_url: str, keys: str, **settings: Any) -> dict[str, Any]:
    """What a refresher process needs: the database, the app's credentials, the sandbox and its clock's timeline."""
    return {
        "database_url": database_url,
        "client_id": sandbox.config.client_id,
        "client_secret": sandbox.config.client_secret,
        "keys": keys,
        "api_url": sandbox.api_url,
        "clock": sandbox.state.clock.timeline(),
        **settings,
    }


def start_workers(configs: list[dict[str, Any]]) -> list[subprocess.Popen[str]]:
    """One refresher process per config (benchmarks.refresher_worker), handed its config on stdin (it holds keys)."""
    processes = []
    for config in configs:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.refresher_worker"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdin is not None
        process.stdin.write(json.dumps(config) + "\n")
        process.stdin.close()
        processes.append(process)
    return processes


def stop_workers(processes: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """SIGTERM each refresher (refreshes in flight finish) and return what each one's sweeps did."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    outputs = []
    for process in processes:
        assert process.stdout is not None
        with process.stdout:
            lines = process.stdout.read().strip().splitlines()
        process.wait(timeout=120)
        outputs.append(json.loads(lines[-1]) if lines else {"returncode": process.returncode})
    return outputs


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages (other work on this shared machine moves every figure)."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def refresh_figures(sandbox: SandboxServer, users: Sequence[str]) -> dict[str, Any]:
    """Counted at the sandbox: refresh calls, people renewed once, twice or never, rejections, 429s, late renewals."""
    wanted = set(users)
    counters = sandbox.counters()
    by_user = {user: count for user, count in counters["refreshes_by_user"].items() if user in wanted}
    records = [r for r in sandbox.refreshes() if r["kind"] == "user" and r["user_id"] in wanted]
    return {
        "refresh_calls": counters["grants"].get("refresh_token", 0) + counters["grant_failures"].get("refresh_token", 0),
        "renewed": len(by_user),
        "renewed_twice": sum(1 for count in by_user.values() if count > 1),
        "missed": len(wanted) - len(by_user),
        "rejected": counters["grant_failures"].get("refresh_token", 0),
        "rate_limited": counters["rate_limited"].get("oauth.v2.access", 0),
        "renewed_after_expiry": sum(1 for r in records if r["left_on_old"] is not None and r["left_on_old"] <= 0),
        "times": sorted(r["at"] for r in records),
    }
