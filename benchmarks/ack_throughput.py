"""Commands acknowledged per second: stock Bolt as its docs set it up, against Delegate, in the same run.

Three processes: the sandbox standing in for Slack (answering every Web API call after 50 ms), the app under test
(one gunicorn worker process, the same server for both), and this client sending signed slash commands one at a
time over HTTP. Stock Bolt: slack_sdk's SQLAlchemyInstallationStore, built-in token rotation, a listener that acks
and then posts (Bolt's default runner waits for ack() by polling every 10 ms; its authorize calls auth.test for the
bot and for the user token on every request). Delegate: its real app (our authorize, ack first, the post in a lazy
listener). Every command's message is posted before the figures are read.

    .venv/bin/python -m benchmarks.ack_throughput [--requests 300] [--delegate-requests 3000] [--server gunicorn|threaded]
        [--concurrency 1] [--database-url URL] [--pool-size N] [--delegate-only]

With --concurrency N, N clients send at once (each command still on a new connection); with --database-url, Delegate
keeps its tokens there (PostgreSQL: in a schema of its own, dropped after) with a pool of --pool-size connections
(default: DATABASE_POOL_SIZE's for one worker), and the pool's figures are printed: connections in use at most, the
longest wait for one, and how many waits timed out.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sandbox.delivery import sign as slack_signature
from stores import generate_key

ROOT = Path(__file__).resolve().parents[1]
USER, TEAM, CHANNEL = "U0ALICE001", "T0SANDBOX1", "C0GENERAL1"
COMMAND, TEXT = "/post-as-me", "benchmark message"
SECRETS = {"client_id": "1111111111.2222222222", "client_secret": "bench-secret", "signing_secret": "bench-signing"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request on a new connection, as Slack sends each request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        payload = json.dumps(body) if isinstance(body, dict) else body
        connection.request(method, path, body=payload, headers=headers or {"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def admin(port: int, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One admin API call, with the token the sandbox wrote to its --admin-token-file."""
    headers = {"content-type": "application/json", "x-sandbox-admin-token": token}
    status, data = call(port, method, f"/sandbox/admin/{path}", body or ({} if method == "POST" else None), headers)
    if status != 200:
        raise SystemExit(f"sandbox admin {path}: HTTP {status} {data[:200]!r}")
    return dict(json.loads(data))


def start(args: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start a process and wait until it accepts connections on its port."""
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{' '.join(args[1:4])} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{' '.join(args[1:4])} did not start")


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its children (gunicorn's worker), from /proc."""
    total = 0.0
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        children = []
    for candidate in (pid, *children):
        fields = Path(f"/proc/{candidate}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def slash_command(signing_secret: str) -> tuple[str, dict[str, str]]:
    body = urlencode(
        {
            "team_id": TEAM, "team_domain": "sandbox-inc", "channel_id": CHANNEL, "channel_name": "general",
            "user_id": USER, "user_name": "alice", "command": COMMAND, "text": TEXT, "api_app_id": "A0SANDBOXAP",
            "is_enterprise_install": "false", "response_url": "http://127.0.0.1:9/none", "trigger_id": "1.2.3",
        }
    )  # fmt: skip
    timestamp = str(int(time.time()))
    return body, {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": slack_signature(signing_secret, timestamp, body.encode()),
    }


def run_variant(
    variant: str,
    sandbox_port: int,
    token: str,
    folder: Path,
    requests: int,
    server: str,
    *,
    concurrency: int = 1,
    database_url: str | None = None,
    pool_size: int | None = None,
) -> dict[str, float]:
    install = admin(
        sandbox_port, token, "POST", "install", {"user_id": USER, "scope": "commands,chat:write", "user_scope": "chat:write"}
    )
    port = free_port()
    config = {
        **SECRETS,
        "variant": variant,
        "port": port,
        "server": server,
        "api_url": f"http://127.0.0.1:{sandbox_port}/api/",
        "database_url": database_url
        if database_url and variant == "delegate"
        else f"sqlite:///{folder / (variant + '.sqlite3')}",
        "pool_size": pool_size,
        "metrics_dir": str(folder / f"{variant}-metrics") if server == "gunicorn" else None,
        "keys": generate_key(),
        "install": install,
        "user_id": USER,
    }
    app = start([sys.executable, "-m", "benchmarks.ack_server", json.dumps(config)], port)
    latencies: list[float] = []
    try:
        before = admin(sandbox_port, token, "GET", "counters")["api_calls"]
        for warmup in (True, False):
            cpu_before = process_cpu_seconds(app.pid)
            started_all = time.perf_counter()

            def one(_: int) -> float:
                body, headers = slash_command(SECRETS["signing_secret"])
                started = time.perf_counter()
                status, _ = call(port, "POST", "/slack/events", body, headers)
                if status != 200:
                    raise SystemExit(f"{variant}: the app answered HTTP {status}")
                return 1000 * (time.perf_counter() - started)

            with ThreadPoolExecutor(max_workers=1 if warmup else concurrency) as clients:
                timings = list(clients.map(one, range(5 if warmup else requests)))
            if not warmup:
                latencies.extend(timings)
            elapsed = time.perf_counter() - started_all
        expected = before.get("chat.postMessage", 0) + requests + 5
        deadline = time.monotonic() + 120
        while admin(sandbox_port, token, "GET", "counters")["api_calls"].get("chat.postMessage", 0) < expected:
            if time.monotonic() > deadline:
                raise SystemExit(f"{variant}: not every command's message was posted")
            time.sleep(0.05)
        cpu = process_cpu_seconds(app.pid) - cpu_before
        after = admin(sandbox_port, token, "GET", "counters")["api_calls"]
        stats = json.loads(call(port, "GET", "/__stats")[1])
        statements = stats["statements"]
    finally:
        app.terminate()
        app.wait(10)
    latencies.sort()
    return {
        "acks_per_second": requests / elapsed,
        "p50_ack_ms": latencies[len(latencies) // 2],
        "p99_ack_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)],
        "app_cpu_ms_per_command": 1000 * cpu / requests,
        "sql_statements_per_command": statements / (requests + 5),
        "auth_test_calls_per_command": (after.get("auth.test", 0) - before.get("auth.test", 0)) / (requests + 5),
        "slack_calls_per_command": (sum(after.values()) - sum(before.values())) / (requests + 5),
        "pool_size": float(stats.get("pool_size", 0)),
        "pool_max_in_use": float(stats.get("max_in_use", 0)),
        "pool_max_wait_ms": float(stats.get("max_checkout_wait_ms", 0)),
        "pool_timeouts": float(stats.get("pool_timeouts", 0)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="commands sent to stock Bolt")
    parser.add_argument(
        "--delegate-requests", type=int, default=3000, help="commands sent to Delegate (more: its run is 50x shorter)"
    )
    parser.add_argument("--server", choices=["gunicorn", "threaded"], default="gunicorn", help="the WSGI server for both")
    parser.add_argument("--concurrency", type=int, default=1, help="clients sending at once")
    parser.add_argument("--database-url", default=None, help="Delegate's database (default: a SQLite file)")
    parser.add_argument("--pool-size", type=int, default=None, help="DATABASE_POOL_SIZE for Delegate's worker")
    parser.add_argument("--delegate-only", action="store_true", help="measure Delegate alone")
    args = parser.parse_args()
    schema_url, drop_schema = scoped_database(args.database_url)
    sandbox_port = free_port()
    with tempfile.TemporaryDirectory() as name:
        token_file = Path(name) / "sandbox-admin-token"
        sandbox = start(
            [
                sys.executable, "app.py", "sandbox", "serve", "--port", str(sandbox_port), "--request-url", "",
                "--client-id", SECRETS["client_id"], "--client-secret", SECRETS["client_secret"],
                "--signing-secret", SECRETS["signing_secret"], "--admin-token-file", str(token_file),
            ],
            sandbox_port,
        )  # fmt: skip
        try:
            token = token_file.read_text(encoding="utf-8")
            admin(sandbox_port, token, "POST", "faults", {"method": "*", "latency_ms": 50})
            variants = [("stock Bolt", "stock", args.requests)] if not args.delegate_only else []
            rows = {
                label: run_variant(
                    variant,
                    sandbox_port,
                    token,
                    Path(name),
                    count,
                    args.server,
                    concurrency=args.concurrency,
                    database_url=schema_url,
                    pool_size=args.pool_size,
                )  # fmt: skip
                for label, variant, count in [*variants, ("Delegate", "delegate", args.delegate_requests)]
            }
        finally:
            sandbox.terminate()
            sandbox.wait(10)
            drop_schema()

    print(
        f"slash commands, {args.requests} to stock Bolt and {args.delegate_requests} to Delegate, sent one at a time over"
        f" HTTP ({args.server}, {args.concurrency} at once), Slack answering after 50 ms"
    )
    names = list(rows)
    print(f"{'':30}" + "".join(f"{n:>14}" for n in names))
    for metric in rows[names[0]]:
        print(f"{metric:30}" + "".join(f"{rows[n][metric]:>14.2f}" for n in names))
    if "stock Bolt" in rows:
        ratio = rows["Delegate"]["acks_per_second"] / rows["stock Bolt"]["acks_per_second"]
        print(f"Delegate acknowledges {ratio:.1f}x the commands per second of stock Bolt (target: 40x)")


def scoped_database(url: str | None) -> tuple[str | None, Callable[[], None]]:
    """PostgreSQL: a schema of the benchmark's own on that server (and how to drop it); others as given."""
    if url is None or not url.startswith("postgresql"):
        return url, lambda: None
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from stores import create_database_engine

    schema = f"delegate_bench_{os.getpid()}"
    admin = create_database_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), drop


if __name__ == "__main__":
    main()
