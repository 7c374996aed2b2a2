"""One refresher process of the scale benchmarks: stores.refresher.Refresher on the sandbox's (faster) clock.

Usage: python -m benchmarks.refresher_worker < CONFIG_JSON (on stdin, as it holds keys). It sweeps from `start_at`
(epoch seconds) until SIGTERM, then prints one JSON line with what its sweeps did. The token manager and the store
run on the sandbox clock (`clock`: a sandbox.clock.Clock timeline), so margins and expiries are judged in sandbox
time, while the refresh budget (`max_per_minute`, in real minutes) is drawn from the database as in production.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from datetime import timedelta
from typing import Any

from sandbox.clock import Clock
from stores import SQLAlchemyInstallationStore, create_database_engine
from stores.refresher import Refresher
from stores.rotation import TokenManager


def build_refresher(config: dict[str, Any]) -> tuple[Refresher, TokenManager]:
    """The token manager and refresher a config describes, on the sandbox's clock."""
    engine = create_database_engine(config["database_url"], pool_size=config["concurrency"] + 2)
    clock = Clock(**config["clock"]).now_utc
    store = SQLAlchemyInstallationStore(config["client_id"], engine, encryption_keys=config["keys"], clock=clock)
    manager = TokenManager(
        store,
        client_secret=config["client_secret"],
        api_url=config["api_url"],
        refresh_margin=timedelta(minutes=config["margin_minutes"]),
        background_refresh=False,
        clock=clock,
        active_window=timedelta(days=config.get("active_window_days", 14)),
    )
    speed = float(config["clock"]["speed"])
    refresher = Refresher(
        manager,
        window=timedelta(minutes=config["margin_minutes"] + 10),  # the margin plus its largest per-token jitter
        jitter=timedelta(0),
        batch_size=config.get("batch_size", 100),
        concurrency=config["concurrency"],
        max_per_minute=config["max_per_minute"],
        # Its default 5 minutes is real time at Slack's pace; on a faster clock a batch takes that many times longer
        # in sandbox time. Capped well under a token's renewal period: a lease outlives the refresh it covered.
        lease=timedelta(seconds=min(3600.0, max(300.0, 30 * speed))),
    )
    return refresher, manager


def main() -> None:
    config = json.loads(sys.stdin.readline())
    refresher, manager = build_refresher(config)
    stop = threading.Event()

    def on_term(*_: object) -> None:
        stop.set()
        refresher.stop(timeout=0)

    signal.signal(signal.SIGTERM, on_term)
    totals = {"due": 0, "refreshed": 0, "skipped": 0, "failed": 0, "sweeps": 0}
    delay = config["start_at"] - time.time()
    if delay > 0:
        stop.wait(delay)
    while not stop.is_set():
        result = refresher.sweep_once()
        totals["sweeps"] += 1
        for name in ("due", "refreshed", "skipped", "failed"):
            totals[name] += getattr(result, name)
        if result.due == 0:
            stop.wait(config.get("idle_seconds", 0.2))  # nothing due: look again shortly (the clock runs fast)
    manager.close()
    manager.store.engine.dispose()
    totals["cpu_seconds"] = round(time.process_time(), 3)  # this process's CPU, start-up included
    print(json.dumps(totals), flush=True)


if __name__ == "__main__":
    main()
