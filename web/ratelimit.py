"""A per-client-address rate limit for the pages that issue OAuth states (/slack/install, /slack/connect).

Every install or connect link writes a state row that lives for ten minutes, so without a limit anyone can fill
the state table from one machine. The limit lives in memory in each process (under gunicorn, each worker counts
on its own, so the effective limit is workers x limit) and its memory is bounded: at most `max_clients` addresses
are remembered, each with at most `limit` timestamps, and the least recently seen address is forgotten first.

The client address is the WSGI REMOTE_ADDR. Behind a reverse proxy that is the proxy's address, so every person
shares one budget; name the proxy in `trusted_proxies` (DELEGATE_TRUSTED_PROXIES) and the address the proxy
appended to X-Forwarded-For is used instead.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Mapping
from typing import Any

__all__ = ["StartLimiter", "client_address"]


class StartLimiter:
    """At most `limit` starts per client address in any `window_seconds`, in bounded memory."""

    def __init__(
        self,
        *,
        limit: int = 30,
        window_seconds: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limit = limit
        self.window_seconds = window_seconds
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._starts: OrderedDict[str, deque[float]] = OrderedDict()

    def acquire(self, address: str) -> int | None:
        """Count one start for the address; None if allowed, else the seconds to wait before the next is allowed."""
        now = self._clock()
        with self._lock:
            starts = self._starts.pop(address, None)
            if starts is None:
                starts = deque(maxlen=self.limit)
            while starts and starts[0] <= now - self.window_seconds:
                starts.popleft()
            self._starts[address] = starts  # now the most recently seen
            if len(starts) >= self.limit:
                return max(1, math.ceil(starts[0] + self.window_seconds - now))
            starts.append(now)
            while len(self._starts) > self.max_clients:
                self._starts.popitem(last=False)
            return None

    def __len__(self) -> int:
        return len(self._starts)


def client_address(environ: Mapping[str, Any], trusted_proxies: Collection[str] = ()) -> str:
    """The address a request came from: REMOTE_ADDR, or the one a trusted proxy put last in X-Forwarded-For."""
    address = str(environ.get("REMOTE_ADDR") or "unknown")
    if address in trusted_proxies:
        forwarded = [hop.strip() for hop in str(environ.get("HTTP_X_FORWARDED_FOR") or "").split(",")]
        # Walk from the right: each trusted proxy appended the address it saw; the first other one is the client.
        for hop in reversed(forwarded):
            if hop and hop not in trusted_proxies:
                return hop[:64]
    return address
