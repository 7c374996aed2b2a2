"""One OS process of a refresh storm: N threads ask for the same person's token at the same instant.

Usage: python -m benchmarks.storm_worker CONFIG_JSON; prints one JSON line with what each thread got (with
"go_on_stdin", first a ready line, then it waits for "go <unix time>" on stdin: the storm's start).
Modes: "delegate" (our token manager), "stock" (slack_sdk's SQLAlchemy store and token rotator, exactly what
Bolt's authorize does on every request), "die_holding_lock" (take the token's refresh lock, then SIGKILL itself
before anything reaches Slack) and "die_after_rotation" (refresh, and SIGKILL itself once Slack has answered,
before the answer is stored), and "rotate_every" (force a rotation `rounds` times, `interval` seconds apart).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore as StockStore
from slack_sdk.oauth.token_rotation import TokenRotator

from stores import SQLAlchemyInstallationStore, create_database_engine
from stores.rotation import TokenKey, TokenManager


def delegate_asker(config: dict, engine) -> Callable[[], str]:  # type: ignore[no-untyped-def, type-arg]
    store = SQLAlchemyInstallationStore(config["client_id"], engine, encryption_keys=config["keys"])
    manager = TokenManager(
        store,
        client_secret=config["client_secret"],
        api_url=config["api_url"],
        wait_timeout=timedelta(seconds=config.get("wait_seconds", 30)),
        in_flight_grace=timedelta(seconds=config.get("grace_seconds", 25)),
        background_refresh=False,
    )
    key = TokenKey.of(None, config["team_id"], config["user_id"])
    if config.get("mode") == "die_holding_lock":
        with manager.locks.hold(key, wait=5) as held:
            assert held is not None
            print(json.dumps({"holding": True}), flush=True)
            time.sleep(config.get("hold_seconds", 0.5))
            print(json.dumps({"killed_at": time.time()}), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    if config.get("mode") == "die_after_rotation":
        rows = manager.rows

        def die(*args: object, **kwargs: object) -> bool:
            print(json.dumps({"rotated": True}), flush=True)  # Slack has rotated; nothing is stored yet
            os.kill(os.getpid(), signal.SIGKILL)
            return False

        rows.commit_refresh = die  # type: ignore[method-assign]
    if config.get("mode") == "rotate_every":

        def rotate() -> str:
            token = ""
            for _ in range(config["rounds"]):
                snapshot = manager.read(key)
                assert snapshot is not None
                token = str(manager.refresh(key, snapshot, force=True).token)
                time.sleep(config.get("interval", 0.1))
            return token

        return rotate
    return lambda: manager.fresh_token(key).token


def stock_asker(config: dict, engine) -> Callable[[], str]:  # type: ignore[no-untyped-def, type-arg]
    store = StockStore(client_id=config["client_id"], engine=engine)
    rotator = TokenRotator(
        client_id=config["client_id"], client_secret=config["client_secret"], client=WebClient(base_url=config["api_url"])
    )

    def ask() -> str:
        # What Bolt's InstallationStoreAuthorize does for each incoming request.
        installation = store.find_installation(enterprise_id=None, team_id=config["team_id"], user_id=config["user_id"])
        assert installation is not None
        refreshed = rotator.perform_token_rotation(installation=installation, minutes_before_expiration=120)
        if refreshed is None:
            return str(installation.user_token)
        store.save(refreshed)
        return str(refreshed.user_token)

    return ask


def main() -> None:
    config = json.loads(sys.argv[1])
    engine = create_database_engine(config["database_url"], pgbouncer=config.get("pgbouncer", False))
    ask = stock_asker(config, engine) if config.get("mode") == "stock" else delegate_asker(config, engine)
    results: list[dict[str, str]] = []
    lock = threading.Lock()
    if config.get("go_on_stdin"):  # the storm starts when every process is ready: "go <unix time>" on stdin
        print(json.dumps({"ready": True}), flush=True)
        config["start_at"] = float(sys.stdin.readline().split()[1])

    def run() -> None:
        delay = config["start_at"] - time.time()
        if delay > 0:
            time.sleep(delay)
        late = delay <= 0  # not ready by the start: this caller joined the storm late (a loaded machine's slow start)
        started = time.perf_counter()
        try:
            outcome = {"token": ask()}
        except Exception as error:  # noqa: BLE001 - reported to the caller
            outcome = {"error": type(error).__name__, "reason": str(getattr(error, "reason", "") or "")}
        outcome["seconds"] = f"{time.perf_counter() - started:.4f}"
        if late:
            outcome["late"] = "1"
        outcome["finished_at"] = f"{time.time():.4f}"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(config["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    print(json.dumps({"results": results}), flush=True)


if __name__ == "__main__":
    main()
