"""The other long runs: `tokens exchange` reports progress, stops between two tokens when asked, and resumes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy.engine import Engine

from app import cli
from stores import SQLAlchemyInstallationStore, generate_key
from stores.exchange import exchange_long_lived_tokens
from stores.rotation import TokenManager
from tests.conftest import CLIENT_ID
from tests.support.token_server import CLIENT_SECRET, TokenServerState, running_token_server


@pytest.fixture
def token_server() -> Iterator[tuple[str, TokenServerState]]:
    with running_token_server(CLIENT_ID) as server:
        yield server


def long_lived(store: SQLAlchemyInstallationStore, state: TokenServerState, count: int) -> None:
    for n in range(count):
        token = f"xoxp-long-lived-U{n}"
        state.long_lived[token] = f"U{n}"
        store.save(Installation(app_id="A1", team_id="T1", user_id=f"U{n}", user_token=token, user_scopes="chat:write"))


def test_exchange_stops_between_tokens_and_the_next_run_resumes(engine: Engine, token_server) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    store = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=generate_key())
    store.create_tables()
    long_lived(store, state, 4)
    manager = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False)
    stop, seen = threading.Event(), []

    def on_progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 2:
            stop.set()  # what Ctrl-C does through ops.progress.run_interruptibly

    first = exchange_long_lived_tokens(manager, max_per_minute=60000, stop=stop, on_progress=on_progress)
    assert (first.exchanged, first.remaining, seen) == (2, 2, [(1, 4), (2, 4)])
    second = exchange_long_lived_tokens(manager, max_per_minute=60000)
    assert (second.exchanged, second.remaining) == (2, 0) and state.exchange_calls == 4
    manager.close()


def test_exchange_command_prints_one_summary_line(engine: Engine, database_url: str, token_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    key = generate_key()
    store = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=key)
    store.create_tables()
    long_lived(store, state, 3)
    for name, value in {
        "DATABASE_URL": database_url, "SLACK_CLIENT_ID": CLIENT_ID, "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "SLACK_API_URL": api_url, "TOKEN_ENCRYPTION_KEYS": key,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["tokens", "exchange", "--max-per-minute", "60000", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "2 exchanged, 0 already exchanged, 0 failed, 1 left for the next run\n"
    assert result.stderr == ""  # no terminal: no bar, no line per token
    again = CliRunner().invoke(cli, ["tokens", "exchange", "--max-per-minute", "60000"])
    assert again.stdout == "1 exchanged, 0 already exchanged, 0 failed, 0 left for the next run\n"
    found = store.find_installation(enterprise_id=None, team_id="T1", user_id="U2")
    assert found.user_token.startswith("xoxe.xoxp-1-") and found.user_token_expires_at > 0
