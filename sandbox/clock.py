"""An advanceable clock: real time plus an offset that tests and the console can move forward."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

logger = logging.getLogger(__name__)


class Clock:
    """Seconds since the epoch as the sandbox sees them; `advance()` moves every expiry forward at once."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[float], None]] = []

    def now(self) -> float:
        """The sandbox's current time in epoch seconds."""
        with self._lock:
            return time.time() + self._offset

    def now_utc(self) -> datetime:
        """The sandbox's current time as an aware UTC datetime: the clock an app under test can run on."""
        return datetime.fromtimestamp(self.now(), UTC)

    @property
    def offset(self) -> float:
        """How many seconds the clock has been advanced in total."""
        with self._lock:
            return self._offset

    def on_advance(self, listener: Callable[[float], None]) -> None:
        """Call `listener(new_now)` after every advance (e.g. to wake an app's refresher right away)."""
        with self._lock:
            self._listeners.append(listener)

    def advance(self, seconds: float) -> float:
        """Move the clock forward by `seconds` (never backwards), tell the listeners, and return the new time."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds
            now = time.time() + self._offset
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(now)
            except Exception:  # noqa: BLE001 - a listener's failure must not fail the advance
                logger.exception("a clock listener failed")
        return now
