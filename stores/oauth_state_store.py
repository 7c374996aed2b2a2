"""Single-use, expiring OAuth state store with a bounded table.

slack_sdk's SQLAlchemyOAuthStateStore reads the state and then deletes it in two statements, so two callbacks
racing with the same state can both be accepted; here consuming is one conditional DELETE, so exactly one wins.
Expired states are pruned while issuing, but only every `prune_every` issues (or once an expiry period has passed
since the last prune) and at most `prune_batch` rows at a time, so a flood of abandoned links never turns one
person's "Add to Slack" into a long DELETE.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from datetime import timedelta

from slack_sdk.oauth.state_store import OAuthStateStore
from sqlalchemy import MetaData, and_, delete, insert, select
from sqlalchemy.engine import Connection, Engine

from .schema import build_oauth_states_table, utcnow

__all__ = ["SQLAlchemyOAuthStateStore"]

# What issue() hands out (secrets.token_urlsafe); anything else cannot be a state and never reaches the database.
_STATE = re.compile(r"[A-Za-z0-9_-]{16,128}")


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
        prune_every: int = 50,
        prune_batch: int = 500,
    ):
        self.expiration_seconds = expiration_seconds
        self.engine = engine
        self.metadata = MetaData()
        self.oauth_states = build_oauth_states_table(self.metadata, name=table_name)
        self.prune_every = prune_every
        self.prune_batch = prune_batch
        self._logger = logger or logging.getLogger(__name__)
        self._prune_lock = threading.Lock()
        self._issued_since_prune = 0
        self._last_prune = float("-inf")  # the first issue prunes: a restart finds whatever the last process left

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
            if self._prune_due():
                self._prune(conn)
            conn.execute(
                insert(self.oauth_states).values(state=state, expire_at=now + timedelta(seconds=self.expiration_seconds))
            )
        return state

    def consume(self, state: str) -> bool:
        """Accept the state once if it was issued here and has not expired."""
        if not isinstance(state, str) or not _STATE.fullmatch(state):
            return False
        c = self.oauth_states.c
        with self.engine.begin() as conn:
            deleted = conn.execute(delete(self.oauth_states).where(and_(c.state == state, c.expire_at > utcnow())))
        return deleted.rowcount == 1

    def prune(self) -> int:
        """Delete up to prune_batch expired states now; returns how many went."""
        with self.engine.begin() as conn:
            return self._prune(conn)

    def _prune_due(self) -> bool:
        with self._prune_lock:
            self._issued_since_prune += 1
            now = time.monotonic()
            if self._issued_since_prune < self.prune_every and now - self._last_prune < self.expiration_seconds:
                return False
            self._issued_since_prune = 0
            self._last_prune = now
            return True

    def _prune(self, conn: Connection) -> int:
        c = self.oauth_states.c
        # The derived table keeps the LIMIT legal on MySQL too, which refuses LIMIT directly inside IN (...).
        expired = select(c.id).where(c.expire_at <= utcnow()).limit(self.prune_batch).subquery()
        result = conn.execute(delete(self.oauth_states).where(c.id.in_(select(expired.c.id))))
        return int(result.rowcount or 0)
