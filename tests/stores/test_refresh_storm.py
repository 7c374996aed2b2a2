"""Exactly one refresh per token across real OS processes (8 x 4 threads), against the sandbox's token endpoint,
which rejects a used refresh token with invalid_refresh_token like Slack (zero grace), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from benchmarks.refresh_storm import TEAM, USER, run_workers, seed, worker_config
from sandbox.server import SandboxServer
from sandbox.testing import running_sandbox
from stores import SQLAlchemyInstallationStore, generate_key

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with running_sandbox() as server:
        server.add_fault("oauth.v2.access", latency_ms=200)  # a slow refresh, so every caller overlaps it
        yield server


@pytest.fixture
def keys_and_store(engine: Engine, sandbox: SandboxServer) -> tuple[str, SQLAlchemyInstallationStore]:
    keys = generate_key()
    store = SQLAlchemyInstallationStore(sandbox.config.client_id, engine, encryption_keys=keys)
    store.create_tables()
    seed(store, sandbox)  # installed, then expired both at Slack and in the store
    return keys, store


def refreshes(sandbox: SandboxServer) -> tuple[int, int]:
    """(refreshes Slack rotated, refreshes Slack rejected because the refresh token was already spent)."""
    counters = sandbox.counters()
    return counters["grants"].get("refresh_token", 0), counters["grant_failures"].get("refresh_token", 0)


@pytest.mark.slow
def test_8_processes_by_4_threads_make_exactly_one_refresh(
    sandbox: SandboxServer, keys_and_store: tuple[str, SQLAlchemyInstallationStore], database_url: str
) -> None:
    keys, store = keys_and_store
    outputs = run_workers([worker_config(sandbox, database_url, keys) for _ in range(8)])
    results = [r for output in outputs for r in output["results"]]
    assert len(results) == 32 and [r for r in results if "error" in r] == []
    assert refreshes(sandbox) == (1, 0), "exactly one refresh reached Slack, and none was rejected"
    tokens = {r["token"] for r in results}
    assert len(tokens) == 1, "every caller ends up with the same new token"
    [token] = tokens
    assert WebClient(token=token, base_url=sandbox.api_url).auth_test()["user_id"] == USER
    stored = store.find_installation(enterprise_id=None, team_id=TEAM, user_id=USER)
    assert stored.user_token == token and stored.user_token_expires_at > time.time() + 43000
