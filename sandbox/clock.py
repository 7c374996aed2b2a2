"""An advanceable clock: real time plus an offset that tests and the console can move forward."""

from __future__ import annotations

import threading
import time


class Clock:
    """Seconds since the epoch as the sandbox sees them; `advance()` moves every expiry forward at once."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """The sandbox's current time in epoch seconds."""
        with self._lock:
            return time.time() + self._offset

    @property
    def offset(self) -> float:
        """How many seconds the clock has been advanced in total."""
        with self._lock:
            return self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward by `seconds` (never backwards) and return the new time."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds
            return time.time() + self._offset
