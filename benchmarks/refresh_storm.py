"""Refresh storm: P processes x T threads ask for one person's expired token at the same instant.

Stock (slack_sdk's SQLAlchemy store + its token rotator, as Bolt's authorize runs them) against Delegate's token
manager, in the same run, against the sandbox with a 50 ms answer time and zero refresh-token grace (like Slack).
Each run seeds a fresh expired token for each; the figures are printed as the median and range over the runs.

    .venv/bin/python -m benchmarks.refresh_storm [--runs 5] [--processes 8] [--threads 4] [--database-url URL]
        [--smoke] [--json PATH]

With a PostgreSQL --database-url the tables live in a schema of the benchmark's own, dropped after.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore as StockStore
from sqlalchemy import MetaData

from sandbox.testing import running_sandbox
from stores import SQLAlchemyInstallationStore, create_database_engine, generate_key

from .ack_throughput import load_average, scoped_database
from .report import spread

ROOT = Path(__file__).resolve().parents[1]
USER = "U0ALICE001"
TEAM = "T0SANDBOX1"


def seed(store, sandbox) -> None:  # type: ignore[no-untyped-def]
    """Install for one person, then make their token expired both at Slack and in the store."""
    answer = sandbox.install(USER, scope="commands", user_scope="chat:write")
    person = answer["authed_user"]
    store.save(
        Installation(
            app_id=answer["app_id"],
            team_id=TEAM,
            bot_token=answer["access_token"],
            bot_user_id=answer["bot_user_id"],
            user_id=USER,
            user_token=person["access_token"],
            user_refresh_token=person["refresh_token"],
            user_token_expires_at=int(time.time()) - 5,
            user_scopes=person["scope"],
        )
    )
    sandbox.expire_tokens(USER, "user")


def worker_config(sandbox, database_url: str, keys: str, **extra: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """What one storm worker process needs to reach the database and the sandbox as this app."""
    return {
        "database_url": database_url,
        "client_id": sandbox.config.client_id,
        "client_secret": sandbox.config.client_secret,
        "keys": keys,
        "api_url": sandbox.api_url,
        "team_id": TEAM,
        "user_id": USER,
        "threads": 4,
        "start_at": time.time() + 4,
        **extra,
    }


def run_workers(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start one worker process per config at once; returns each one's last JSON line (or its exit code)."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.storm_worker", json.dumps(c)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for c in configs
    ]
    outputs = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        outputs.append(json.loads(out.strip().splitlines()[-1]) if out.strip() else {"returncode": process.returncode})
    return outputs


def run_workers_together(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Like run_workers, but the storm starts once every process is ready (imports done, database reached): on a loaded
    machine a fixed start time leaves slow starters late, finding the token already refreshed."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.storm_worker", json.dumps(c)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for c in configs
    ]
    for process in processes:
        assert process.stdout is not None
        if "ready" not in process.stdout.readline():
            raise SystemExit(f"a storm worker exited before it was ready ({process.wait(10)})")
    start_at = time.time() + 0.3
    outputs = []
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"go {start_at}\n")
        process.stdin.flush()
    for process in processes:
        out, _ = process.communicate(timeout=120)
        outputs.append(json.loads(out.strip().splitlines()[-1]) if out.strip() else {"returncode": process.returncode})
    return outputs


def storm(mode: str, database_url: str, sandbox, keys: str, processes: int, threads: int) -> dict:  # type: ignore[no-untyped-def, type-arg]
    before = sandbox.counters()
    config = worker_config(sandbox, database_url, keys, mode=mode, threads=threads, go_on_stdin=True)
    results = [r for output in run_workers_together([config] * processes) for r in output["results"]]
    after = sandbox.counters()
    tokens = {r["token"] for r in results if "token" in r}
    working = {t for t in tokens if _works(sandbox, t)}
    waits = sorted(float(r["seconds"]) for r in results)
    return {
        "callers": len(results),
        "callers_started_late": sum(1 for r in results if r.get("late")),
        "refresh_calls": after["grants"].get("refresh_token", 0)
        + after["grant_failures"].get("refresh_token", 0)
        - before["grants"].get("refresh_token", 0)
        - before["grant_failures"].get("refresh_token", 0),
        "rejected": after["grant_failures"].get("refresh_token", 0) - before["grant_failures"].get("refresh_token", 0),
        "callers_with_error": sum(1 for r in results if "error" in r),
        "distinct_tokens": len(tokens),
        "callers_with_working_token": sum(1 for r in results if r.get("token") in working),
        "p50_wait_ms": 1000 * waits[len(waits) // 2],
        "max_wait_ms": 1000 * waits[-1],
    }


def _works(sandbox, token: str) -> bool:  # type: ignore[no-untyped-def]
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    try:
        return bool(WebClient(token=token, base_url=sandbox.api_url).auth_test()["ok"])
    except SlackApiError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="storms per implementation")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--smoke", action="store_true", help="a quick run: 1 run of 2 processes x 2 threads")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's figures to this file")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.processes, args.threads = 1, 2, 2

    load_before = load_average()
    runs: dict[str, list[dict[str, Any]]] = {"stock Bolt": [], "Delegate": []}
    database_url, drop_schema = scoped_database(args.database_url)
    with tempfile.TemporaryDirectory() as folder, running_sandbox() as sandbox:
        sandbox.add_fault("oauth.v2.access", latency_ms=50, times=100000)
        database_url = database_url or f"sqlite:///{Path(folder) / 'storm.sqlite3'}"
        engine = create_database_engine(database_url)
        keys = generate_key()
        ours = SQLAlchemyInstallationStore(sandbox.config.client_id, engine, encryption_keys=keys)
        stock = StockStore(client_id=sandbox.config.client_id, engine=engine)
        try:
            for _ in range(args.runs):
                for store in (ours, stock):
                    store.metadata.drop_all(engine)
                    store.create_tables()
                for name, store, mode in (("stock Bolt", stock, "stock"), ("Delegate", ours, "delegate")):
                    seed(store, sandbox)
                    runs[name].append(storm(mode, database_url, sandbox, keys, args.processes, args.threads))
            for store in (ours, stock):
                store.metadata.drop_all(engine)
            MetaData().drop_all(engine)
        finally:
            engine.dispose()
            drop_schema()
        dialect = engine.dialect.name

    print(
        f"refresh storm: {args.processes} processes x {args.threads} threads, {dialect}, Slack at 50 ms, {args.runs} runs"
        f" (load average {load_before} -> {load_average()})"
    )
    print(f"{'':28}" + "".join(f"{n:>34}" for n in runs))
    for metric in runs["Delegate"][0]:
        fmt = "{:.1f}" if metric.endswith("_ms") else "{:.0f}"
        print(f"{metric:28}" + "".join(f"{spread([r[metric] for r in runs[n]], fmt):>34}" for n in runs))
    if args.json is not None:
        args.json.write_text(json.dumps({"dialect": dialect, "runs": runs}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
