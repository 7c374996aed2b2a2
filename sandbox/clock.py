"""An advanceable clock: real time plus an offset that tests and the console can move forward."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

logger = logging.getLogger(__name__)


class Clock:
    """Seconds since the epoch as the sandbox sees them; `advance()` moves every expiry forward at once.

    It may run faster than real time (`speed`, or `set_speed()` while running): a benchmark lives a day in minutes.
    `timeline()` describes it so that another process (the app under test) can follow the same clock.
    """

    def __init__(self, speed: float = 1.0, *, anchor: float | None = None, base: float | None = None) -> None:
        _check_speed(speed)
        self.anchor = time.time() if anchor is None else anchor  # a real moment (epoch seconds) ...
        self._base = self.anchor if base is None else base  # ... and the sandbox's time then, before any advance
        self.speed = speed
        self._offset = 0.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[float], None]] = []

    def now(self) -> float:
        """The sandbox's current time in epoch seconds."""
        with self._lock:
            return self._running(time.time()) + self._offset

    def now_utc(self) -> datetime:
        """The sandbox's current time as an aware UTC datetime: the clock an app under test can run on."""
        return datetime.fromtimestamp(self.now(), UTC)

    def _running(self, real: float) -> float:
        return self._base + (real - self.anchor) * self.speed

    def set_speed(self, speed: float) -> None:
        """Run `speed` times faster than real time from now on (1.0: real time again); the time itself does not jump."""
        _check_speed(speed)
        with self._lock:
            real = time.time()
            self._base, self.anchor, self.speed = self._running(real), real, speed

    def timeline(self) -> dict[str, float]:
        """What `Clock(**timeline)` needs to tell the same time in another process (until the next change)."""
        with self._lock:
            return {"anchor": self.anchor, "base": self._base + self._offset, "speed": self.speed}

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
            now = self._running(time.time()) + self._offset
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(now)
            except Exception:  # noqa: BLE001 - a listener's failure must not fail the advance
                logger.exception("a clock listener failed")
        return now


def _check_speed(speed: float) -> None:
    if not speed > 0:
        raise ValueError("the sandbox clock's speed must be positive")
