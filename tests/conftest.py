"""Shared fixtures: a fresh database per test on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from stores import KeyRing, SQLAlchemyInstallationStore, SQLAlchemyOAuthStateStore, create_database_engine, generate_key

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CLIENT_ID = "111.222"


def pytest_configure(config: pytest.Config) -> None:
    """Child processes the tests send SIGINT to must see it: a shell that starts a command in the background without
    job control (`nohup ./test &`, some CI runners) leaves SIGINT ignored, every child inherits that, and Python then
    never raises KeyboardInterrupt (seen: three Ctrl-C tests failing in a background CI run, none in the foreground)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a Python handler: children start with the default


def postgres_admin_url() -> str | None:
    """The PostgreSQL URL to test against, or None; in CI its absence is a failure, not a skip."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        if IN_CI:
            pytest.fail("CI=true but TEST_DATABASE_URL is not set: PostgreSQL tests must run in CI")
        return None
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema of its own, dropped at the end of the session."""
    url = postgres_admin_url()
    if url is None:
        pytest.skip("set TEST_DATABASE_URL to run the PostgreSQL tests")
    schema = f"delegate_test_{uuid.uuid4().hex[:10]}"
    admin = create_database_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # noqa: BLE001 - any failure to reach the server means the same thing here
        admin.dispose()
        message = f"PostgreSQL at TEST_DATABASE_URL is not reachable: {type(error).__name__}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield scoped.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_database_engine(url)
    with engine.begin() as conn:
        names = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars().all()
        for name in names:
            conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """An empty database: a SQLite file, or the session's PostgreSQL schema emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'delegate.sqlite3'}"
    url = request.getfixturevalue("postgres_url")
    _reset_postgres(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def keyring() -> KeyRing:
    return KeyRing.from_string(generate_key())


@pytest.fixture
def store(engine: Engine, keyring: KeyRing) -> SQLAlchemyInstallationStore:
    store = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=keyring)
    store.create_tables()
    return store


@pytest.fixture
def state_store(engine: Engine) -> SQLAlchemyOAuthStateStore:
    states = SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine)
    states.create_tables()
    return states


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Debian's headless Chromium driven by Playwright, once per session; in CI its absence is a failure."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"CI=true but {CHROMIUM} is missing: install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
