"""Builds the stores from settings: engine -> installation store -> OAuth state store -> token manager."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine, make_url

from stores.database import create_database_engine
from stores.files import private_directory
from stores.installation_store import SQLAlchemyInstallationStore
from stores.oauth_state_store import SQLAlchemyOAuthStateStore
from stores.observe import NO_OBSERVER, Observer
from stores.rotation import TokenManager
from stores.schema import utcnow

if TYPE_CHECKING:
    from settings import Settings

__all__ = ["Stores", "engine_for", "open_stores", "uses_data_dir"]


@dataclass
class Stores:
    """Everything that keeps tokens, for one process."""

    engine: Engine
    installation_store: SQLAlchemyInstallationStore
    state_store: SQLAlchemyOAuthStateStore
    manager: TokenManager

    @property
    def clock(self) -> Callable[[], datetime]:
        """The time every token decision and every answer to a person is made on (real time unless injected)."""
        return self.manager.clock

    def close(self) -> None:
        self.manager.close()
        self.engine.dispose()


def uses_data_dir(settings: Settings) -> bool:
    """Whether the database is a SQLite file inside the data folder (the embedded default)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return False
    return Path(url.database).resolve().is_relative_to(settings.data_dir.resolve())


def engine_for(settings: Settings, *, processes: int = 1) -> Engine:
    """The engine of DATABASE_URL with this process's pool: DATABASE_POOL_SIZE, or its default for `processes`
    processes on this host; no prepared statements behind PgBouncer (DATABASE_PGBOUNCER)."""
    from ops.capacity import default_pool_size

    pool_size = settings.database_pool_size or default_pool_size(processes)
    return create_database_engine(settings.database_url, pool_size=pool_size, pgbouncer=settings.database_pgbouncer)


def open_stores(
    settings: Settings,
    *,
    background_refresh: bool = True,
    clock: Callable[[], datetime] = utcnow,
    observer: Observer = NO_OBSERVER,
    processes: int = 1,
) -> Stores:
    """Open the database and build the stores on `clock`, reporting to `observer` (metrics); the schema must exist
    (python app.py db upgrade). `processes` is how many app processes this host runs, for the pool's default size."""
    if not settings.client_id or not settings.client_secret:
        raise ValueError("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are needed to refresh tokens")
    if uses_data_dir(settings):
        private_directory(settings.data_dir)  # tightened at start, also when an earlier version made it 0755
    engine = engine_for(settings, processes=processes)
    store = SQLAlchemyInstallationStore(settings.client_id, engine, encryption_keys=settings.keyring(), clock=clock)
    manager = TokenManager(
        store,
        client_secret=settings.client_secret,
        api_url=settings.api_url,
        background_refresh=background_refresh,
        observer=observer,
        active_window=timedelta(days=settings.refresh_ahead_days),
    ).attach()
    return Stores(
        engine=engine,
        installation_store=store,
        state_store=SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine),
        manager=manager,
    )
