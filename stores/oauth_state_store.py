"""Single-use, expiring OAuth state store.

slack_sdk's SQLAlchemyOAuthStateStore reads the state and then deletes it in two statements, so two callbacks
racing with the same state can both be accepted; here consuming is one conditional DELETE, so exactly one wins.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from slack_sdk.oauth.state_store import OAuthStateStore
from sqlalchemy import MetaData, and_, delete, insert
from sqlalchemy.engine import Engine

from .schema import build_oauth_states_table, utcnow

__all__ = ["SQLAlchemyOAuthStateStore"]


class SQLAlchemyOAuthStateStore(OAuthStateStore):
    """OAuth state store where each state is accepted at most once and only before it expires."""

    default_table_name = "delegate_oauth_states"

    def __init__(
        self,
        expiration_seconds: int,
        engine: Engine,
        *,
        logger: logging.Logger | None = None,
        table_name: str = default_table_name,
    ):
        self.expiration_seconds = expiration_seconds
        self.engine = engine
        self.metadata = MetaData()
        self.oauth_states = build_oauth_states_table(self.metadata, name=table_name)
        self._logger = logger or logging.getLogger(__name__)

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    def create_tables(self) -> None:
        self.metadata.create_all(self.engine)

    def issue(self, *args: object, **kwargs: object) -> str:
        """Create, store and return a new random state."""
        state = secrets.token_urlsafe(32)
        now = utcnow()
        with self.engine.begin() as conn:
            # Expired states are dead weight; sweep them while we are writing anyway.
            conn.execute(delete(self.oauth_states).where(self.oauth_states.c.expire_at <= now))
            conn.execute(
                insert(self.oauth_states).values(state=state, expire_at=now + timedelta(seconds=self.expiration_seconds))
            )
        return state

    def consume(self, state: str) -> bool:
        """Accept the state once if it was issued here and has not expired."""
        if not state or len(state) > 200:
            return False
        c = self.oauth_states.c
        with self.engine.begin() as conn:
            deleted = conn.execute(delete(self.oauth_states).where(and_(c.state == state, c.expire_at > utcnow())))
        return deleted.rowcount == 1
