"""One OS process of a refresh storm: N threads ask for the same user's token at the same instant.

Usage: python -m tests.support.storm_worker CONFIG_JSON; prints one JSON line with the tokens each thread got.
With "die_holding_lease", the process takes the refresh lease and then kills itself with SIGKILL instead.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from datetime import timedelta

from stores import SQLAlchemyInstallationStore, create_database_engine
from stores.rotation import TokenKey, TokenManager


def main() -> None:
    config = json.loads(sys.argv[1])
    engine = create_database_engine(config["database_url"])
    store = SQLAlchemyInstallationStore(config["client_id"], engine, encryption_keys=config["keys"])
    manager = TokenManager(
        store,
        client_secret=config["client_secret"],
        api_url=config["api_url"],
        lease=timedelta(seconds=config.get("lease_seconds", 60)),
        wait_timeout=timedelta(seconds=config.get("wait_seconds", 30)),
        background_refresh=False,
    )
    key = TokenKey.of(None, config["team_id"], config["user_id"])
    if config.get("die_holding_lease"):
        snapshot = manager.read(key)
        assert snapshot is not None and manager._acquire_lease(key, snapshot)
        print(json.dumps({"holding": True}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    results: list[dict[str, str]] = []
    lock = threading.Lock()

    def ask() -> None:
        delay = config["start_at"] - time.time()
        if delay > 0:
            time.sleep(delay)
        try:
            token = manager.fresh_user_token(enterprise_id=None, team_id=config["team_id"], user_id=config["user_id"]).token
            outcome = {"token": token}
        except Exception as error:  # noqa: BLE001 - reported to the test
            outcome = {"error": f"{type(error).__name__}: {error}"}
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=ask) for _ in range(config["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    print(json.dumps({"results": results}), flush=True)


if __name__ == "__main__":
    main()
