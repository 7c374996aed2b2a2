"""Builds the stores from settings: engine -> installation store -> OAuth state store -> token manager."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from stores.database import create_database_engine
from stores.installation_store import SQLAlchemyInstallationStore
from stores.oauth_state_store import SQLAlchemyOAuthStateStore
from stores.rotation import TokenManager

if TYPE_CHECKING:
    from settings import Settings

__all__ = ["Stores", "open_stores"]


@dataclass
class Stores:
    """Everything that keeps tokens, for one process."""

    engine: Engine
    installation_store: SQLAlchemyInstallationStore
    state_store: SQLAlchemyOAuthStateStore
    manager: TokenManager

    def close(self) -> None:
        self.manager.close()
        self.engine.dispose()


def open_stores(settings: Settings, *, background_refresh: bool = True) -> Stores:
    """Open the database and build the stores; the schema must exist (python app.py db upgrade)."""
    if not settings.client_id or not settings.client_secret:
        raise ValueError("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are needed to refresh tokens")
    engine = create_database_engine(settings.database_url)
    store = SQLAlchemyInstallationStore(settings.client_id, engine, encryption_keys=settings.keyring())
    manager = TokenManager(
        store, client_secret=settings.client_secret, api_url=settings.api_url, background_refresh=background_refresh
    ).attach()
    return Stores(
        engine=engine,
        installation_store=store,
        state_store=SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine),
        manager=manager,
    )
