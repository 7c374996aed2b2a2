"""Ctrl-C on a long run: a real `python app.py tokens refresh --all-due` process gets SIGINT mid-run, says how far it
got, exits 130, and a second run refreshes the rest; the sandbox's latency widens the window, and it sees every
person refreshed exactly once across both runs (nothing lost, nothing refreshed twice)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from sandbox.config import SandboxConfig, SandboxUser
from sandbox.server import SandboxServer
from sandbox.testing import running_sandbox
from stores import SQLAlchemyInstallationStore, generate_key
from tests.ops.support import TEAM, connect

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = [f"U0PERSON{i:02d}" for i in range(8)]


@pytest.fixture
def slack() -> Iterator[SandboxServer]:
    base = SandboxConfig()
    people = [SandboxUser(user_id, user_id.lower(), f"Person {user_id[-2:]}", TEAM) for user_id in PEOPLE]
    with running_sandbox(replace(base, users=[*base.users, *people])) as server:
        yield server


def command_env(database_url: str, slack: SandboxServer, key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "TOKEN_"))}
    env.update(
        DATABASE_URL=database_url,
        SLACK_CLIENT_ID=slack.config.client_id,
        SLACK_CLIENT_SECRET=slack.config.client_secret,
        SLACK_API_URL=slack.api_url,
        TOKEN_ENCRYPTION_KEYS=key,
    )
    return env


def refreshed(slack: SandboxServer) -> dict[str, int]:
    return dict(slack.counters()["refreshes_by_user"])


def test_sigint_stops_a_refresh_run_and_the_next_run_resumes(engine: Engine, database_url: str, slack) -> None:  # type: ignore[no-untyped-def]
    key = generate_key()
    store = SQLAlchemyInstallationStore(slack.config.client_id, engine, encryption_keys=key)
    store.create_tables()
    for person in PEOPLE:
        connect(store, slack, person, left=timedelta(minutes=30))
    slack.add_fault("oauth.v2.access", latency_ms=400)  # each refresh takes 0.4 s: a window to interrupt in
    command = [sys.executable, "app.py", "tokens", "refresh", "--all-due", "--concurrency", "1"]
    env = command_env(database_url, slack, key)

    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while sum(refreshed(slack).values()) < 2 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=30)
    assert first.returncode == 130, (out, err)
    done = sum(refreshed(slack).values())
    assert 2 <= done < len(PEOPLE), (out, err)
    assert f"interrupted after {done} token(s); run the command again to resume" in err
    assert "Traceback" not in err

    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, (second.stdout, second.stderr)
    assert second.stdout.startswith(f"{len(PEOPLE) - done} due, {len(PEOPLE) - done} refreshed")
    assert refreshed(slack) == dict.fromkeys(PEOPLE, 1)
    assert slack.counters()["grant_failures"] == {}


def test_on_a_terminal_the_run_draws_a_progress_bar_on_stderr(engine: Engine, database_url: str, slack) -> None:  # type: ignore[no-untyped-def]
    import pty

    key = generate_key()
    store = SQLAlchemyInstallationStore(slack.config.client_id, engine, encryption_keys=key)
    store.create_tables()
    for person in PEOPLE[:3]:
        connect(store, slack, person, left=timedelta(minutes=30))
    leader, follower = pty.openpty()
    command = [sys.executable, "app.py", "tokens", "refresh", "--all-due"]
    env = command_env(database_url, slack, key)
    run = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=follower, text=True, timeout=60)
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: everything is read
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    assert run.returncode == 0 and run.stdout.startswith("3 due, 3 refreshed")
    assert b"refreshing" in drawn and b"3/3" in drawn  # click's bar, with the count it knew beforehand
