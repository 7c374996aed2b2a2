"""Rotations Slack answered whose write has not landed: kept in memory, served from there, and written until done.

Once Slack has rotated a token, the old refresh token is dead and the answer holds the only copies of the new ones.
If the database cannot take them (PostgreSQL restarting, a connection cut), losing them would lose the person's
connection; so they wait here, never logged, and a background thread writes them, fenced by the generation they
rotated, until the write lands or a newer token (a reconnect) makes them moot.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from .token_rows import Snapshot, TokenKey, TokenRows

__all__ = ["PendingRotations"]

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    generation: int
    values: dict[str, Any] = field(repr=False)
    snapshot: Snapshot


class PendingRotations:
    """The rotations this process holds until the database takes them."""

    def __init__(self, rows: TokenRows, *, first_pause: float = 0.2, max_pause: float = 5.0):
        self.rows = rows
        self.first_pause = first_pause
        self.max_pause = max_pause
        self._pending: dict[TokenKey, _Pending] = {}
        self._guard = threading.Lock()
        self._writer: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def __bool__(self) -> bool:
        return bool(self._pending)

    def get(self, key: TokenKey) -> Snapshot | None:
        """The state to serve for the key while its write is pending, else None."""
        pending = self._pending.get(key)
        return None if pending is None else pending.snapshot

    def keep(self, key: TokenKey, generation: int, values: dict[str, Any], snapshot: Snapshot) -> None:
        """Hold a rotation of `generation` and write it in the background until it lands."""
        with self._guard:
            self._pending[key] = _Pending(generation, values, snapshot)
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_all, name="delegate-pending", daemon=True)
                self._writer.start()

    def drop(self, key: TokenKey) -> None:
        """Forget the key's pending rotation (the person disconnected, or was revoked)."""
        with self._guard:
            self._pending.pop(key, None)

    def _write_all(self) -> None:
        pause = self.first_pause
        while True:
            with self._guard:
                items = list(self._pending.items())
                if not items:
                    self._writer = None
                    return
            for key, pending in items:
                try:
                    written = self.rows.commit_refresh(key, pending.generation, pending.values)
                except SQLAlchemyError as error:
                    logger.warning("the database is still unavailable for %s: %s", key.describe(), type(error).__name__)
                    continue
                with self._guard:
                    if self._pending.get(key) is pending:
                        del self._pending[key]
                if written:
                    logger.info("stored the refreshed token of %s after the database came back", key.describe())
                else:
                    logger.warning("a newer token of %s was saved meanwhile; dropped the one kept in memory",
                                   key.describe())  # fmt: skip
            time.sleep(pause)
            pause = min(self.max_pause, pause * 2)
