"""Acknowledgements under load: Delegate against the bare server's ceiling and stock Bolt, in the same run.

The sandbox stands in for Slack (answering every Web API call after 50 ms). Each app runs as `python app.py run` runs
Delegate: gunicorn with 2 x cores + 1 workers and Delegate's waitress worker (benchmarks/ack_server.py). The apps:
- bare: a WSGI app answering 200 at once, on the same server: the ceiling for this machine;
- Delegate: its real app (app.create_wsgi_app: request guard, our authorize, ack first, the post after it, the
  refresher and the metrics);
- stock Bolt as its OAuth docs set it up (slack_sdk's store, built-in rotation; its authorize calls auth.test for
  the bot and for the user on every request, and its runner polls for ack() every 10 ms).
A client in processes of its own (wrk when installed, else Python: benchmarks/ack_client.py) sends signed slash
commands, each on a new connection, at each concurrency for a fixed time; then every acknowledged command's message
must reach the sandbox before the next measurement starts. Every run starts every server afresh; figures are
printed as the median and range over runs, and ratios to the bare server are taken within each run.

    .venv/bin/python -m benchmarks.ack_throughput [--runs 3] [--concurrency 1,8,32] [--seconds 5]
        [--apps bare,delegate,stock] [--workers N] [--client auto|wrk|python] [--database-url URL] [--pool-size N]
        [--smoke] [--json PATH] [--no-plot]

CPU per command is the gunicorn master's and workers' user + system time over the measurement (the posts after the
ack included) divided by the commands acknowledged; the sandbox's and the client's are printed beside it. SQL
statements are counted at the DBAPI cursor in every worker (raw DBAPI reads included). With --database-url, Delegate
keeps its tokens there (PostgreSQL: in a schema of its own, dropped after); stock Bolt stays on SQLite.
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
from pathlib import Path
from typing import Any

from stores import generate_key

from .ack_client import USER, run_python, run_wrk, wrk_available
from .report import DOCS, plot_axes, spread

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {"client_id": "1111111111.2222222222", "client_secret": "bench-secret", "signing_secret": "bench-signing"}
LABELS = {"bare": "bare WSGI", "delegate": "Delegate", "stock": "stock Bolt"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request on a new connection."""
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
    """Start a process and wait until it accepts connections on its port (errors name it by its first arguments, never
    by a configuration that may carry tokens)."""
    name = " ".join(arg for arg in args[1:4] if not arg.startswith("{"))
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{name} did not start")


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its children (gunicorn's workers), from /proc."""
    total = 0.0
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        children = []
    for candidate in (pid, *children):
        try:
            fields = Path(f"/proc/{candidate}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a worker that has just exited
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Sandbox:
    """The sandbox process, answering every Web API call after 50 ms, and its counters."""

    def __init__(self, folder: Path):
        self.port = free_port()
        token_file = folder / "sandbox-admin-token"
        self.process = start(
            [
                sys.executable, "app.py", "sandbox", "serve", "--port", str(self.port), "--request-url", "",
                "--client-id", SECRETS["client_id"], "--client-secret", SECRETS["client_secret"],
                "--signing-secret", SECRETS["signing_secret"], "--admin-token-file", str(token_file),
            ],
            self.port,
        )  # fmt: skip
        self.token = token_file.read_text(encoding="utf-8")
        admin(self.port, self.token, "POST", "faults", {"method": "*", "latency_ms": 50})

    def calls(self) -> dict[str, int]:
        return dict(admin(self.port, self.token, "GET", "counters")["api_calls"])

    def install(self) -> dict[str, Any]:
        scopes = {"user_id": USER, "scope": "commands,chat:write", "user_scope": "chat:write"}
        return admin(self.port, self.token, "POST", "install", scopes)

    def cpu(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Server:
    """One app under gunicorn (benchmarks/ack_server.py), started afresh."""

    def __init__(self, variant: str, sandbox: Sandbox, folder: Path, *, workers: int, database_url: str | None,
                 pool_size: int | None):  # fmt: skip
        self.variant = variant
        self.port = free_port()
        config = {
            **SECRETS,
            "variant": variant,
            "port": self.port,
            "workers": workers,
            "api_url": f"http://127.0.0.1:{sandbox.port}/api/",
            "database_url": database_url
            if database_url and variant == "delegate"
            else f"sqlite:///{folder / (variant + '.sqlite3')}",
            "pool_size": pool_size,
            "metrics_dir": str(folder / f"{variant}-metrics"),
            "keys": generate_key(),
            "install": sandbox.install() if variant != "bare" else None,
            "user_id": USER,
        }
        self.process = start([sys.executable, "-m", "benchmarks.ack_server", json.dumps(config)], self.port)
        deadline = time.monotonic() + 60
        while self.stats() is None:  # a worker has booted
            if time.monotonic() > deadline:
                raise SystemExit(f"{variant}: no worker answered within 60 s")
            time.sleep(0.2)

    def stats(self) -> dict[str, float] | None:
        try:
            status, data = call(self.port, "GET", "/__stats")
        except OSError:
            return None
        return dict(json.loads(data)) if status == 200 else None

    def cpu(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def settle(sandbox: Sandbox, before: int, acknowledged: int, expect_posts: bool) -> int:
    """Wait until every acknowledged command's message is posted and the count has stopped moving; returns posts."""
    deadline = time.monotonic() + 120
    posted, still_since = -1, time.monotonic()
    while True:
        now_posted = sandbox.calls().get("chat.postMessage", 0) - before
        if now_posted != posted:
            posted, still_since = now_posted, time.monotonic()
        done = posted >= acknowledged if expect_posts else True
        if done and time.monotonic() - still_since >= 0.5:
            return posted
        if time.monotonic() > deadline:
            return posted  # reported: fewer posts than acknowledgements
        time.sleep(0.1)


def measure(server: Server, sandbox: Sandbox, client: Callable[..., dict[str, Any]], concurrency: int, seconds: float,
            warmup: float) -> dict[str, Any]:  # fmt: skip
    """Warm up at this concurrency, then one timed measurement; every figure is per acknowledged command."""
    expect_posts = server.variant != "bare"
    calls = sandbox.calls()
    warm = client(server.port, concurrency, warmup, SECRETS["signing_secret"])
    settle(sandbox, calls.get("chat.postMessage", 0), warm["answered"], expect_posts)
    calls, stats = sandbox.calls(), server.stats() or {}
    cpu, sandbox_cpu = server.cpu(), sandbox.cpu()
    result = client(server.port, concurrency, seconds, SECRETS["signing_secret"])
    acked = result["answered"]
    posted = settle(sandbox, calls.get("chat.postMessage", 0), acked, expect_posts)
    cpu, sandbox_cpu = server.cpu() - cpu, sandbox.cpu() - sandbox_cpu
    after_calls, after_stats = sandbox.calls(), server.stats() or {}
    per = max(acked, 1)
    return {
        "acks_per_second": acked / result["seconds"],
        "p50_ack_ms": result["p50_ms"],
        "p99_ack_ms": result["p99_ms"],
        "app_cpu_ms_per_command": 1000 * cpu / per,
        "sandbox_cpu_ms_per_command": 1000 * sandbox_cpu / per,
        "client_cpu_ms_per_command": 1000 * result["client_cpu_s"] / per,
        "sql_statements_per_command": (after_stats.get("statements", 0) - stats.get("statements", 0)) / per,
        "slack_calls_per_command": (sum(after_calls.values()) - sum(calls.values())) / per,
        "auth_test_calls_per_command": (after_calls.get("auth.test", 0) - calls.get("auth.test", 0)) / per,
        "acknowledged": acked,
        "posted": posted,
        "errors": sum(result["errors"].values()),
        "pool_max_in_use": after_stats.get("max_in_use", 0),
        "pool_max_wait_ms": after_stats.get("max_checkout_wait_ms", 0),
        "pool_timeouts": after_stats.get("pool_timeouts", 0),
    }


SHOWN = [
    ("acks_per_second", "acks per second", "{:.0f}"),
    ("ratio_to_bare", "share of the bare ceiling", "{:.0%}"),
    ("p50_ack_ms", "p50 ack (ms)", "{:.1f}"),
    ("p99_ack_ms", "p99 ack (ms)", "{:.1f}"),
    ("app_cpu_ms_per_command", "app CPU per command (ms)", "{:.2f}"),
    ("sandbox_cpu_ms_per_command", "sandbox CPU per command (ms)", "{:.2f}"),
    ("client_cpu_ms_per_command", "client CPU per command (ms)", "{:.2f}"),
    ("sql_statements_per_command", "SQL statements per command", "{:.2f}"),
    ("slack_calls_per_command", "Slack calls per command", "{:.2f}"),
    ("auth_test_calls_per_command", "auth.test calls per command", "{:.2f}"),
    ("errors", "client errors", "{:.0f}"),
    ("unposted", "acknowledged, not posted", "{:.0f}"),
    ("pool_max_wait_ms", "longest pool wait (ms)", "{:.1f}"),
]


def report(results: dict[str, dict[int, list[dict[str, Any]]]], concurrencies: list[int]) -> None:
    apps = list(results)
    for concurrency in concurrencies:
        print(f"\nconcurrency {concurrency}")
        print(f"{'':32}" + "".join(f"{LABELS[a]:>30}" for a in apps))
        for key, label, fmt in SHOWN:
            cells = []
            for app in apps:
                values = [run[key] for run in results[app][concurrency] if run.get(key) is not None]
                cells.append(spread(values, fmt) if values else "-")
            print(f"{label:32}" + "".join(f"{cell:>30}" for cell in cells))


def plot(results: dict[str, dict[int, list[dict[str, Any]]]], concurrencies: list[int], note: str) -> list[Path]:
    """Two PNGs under docs/benchmarks/: acks per second and ack latency against concurrency (median, min-max bars)."""
    import statistics

    written = []
    for name, keys, ylabel in (
        ("ack_throughput.png", [("acks_per_second", "")], "acknowledgements per second"),
        ("ack_latency.png", [("p50_ack_ms", " p50"), ("p99_ack_ms", " p99")], "ack latency (ms)"),
    ):
        figure, axes = plot_axes(f"Slash commands acknowledged, {note}", xlabel="concurrent clients", ylabel=ylabel)
        for number, (app, by_concurrency) in enumerate(results.items()):
            for key, suffix in keys:
                xs, mids, lows, highs = [], [], [], []
                for concurrency in concurrencies:
                    values = [run[key] for run in by_concurrency[concurrency] if run.get(key) is not None]
                    if values:
                        mid = statistics.median(values)
                        xs.append(concurrency)
                        mids.append(mid)
                        lows.append(mid - min(values))
                        highs.append(max(values) - mid)
                style = {"color": f"C{number}", "linestyle": "--" if key == "p99_ack_ms" else "-"}
                axes.errorbar(xs, mids, yerr=[lows, highs], marker="o", capsize=4, label=LABELS[app] + suffix, **style)
        axes.set_xscale("log", base=2)
        axes.set_xticks(concurrencies, [str(c) for c in concurrencies])
        if name == "ack_latency.png":
            axes.set_yscale("log")
        axes.legend()
        figure.tight_layout()
        path = DOCS / name
        figure.savefig(path)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="times every server is started and measured")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated clients at once")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measurement")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each measurement")
    parser.add_argument("--apps", default="bare,delegate,stock", help="comma-separated: bare, delegate, stock")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1, help="gunicorn workers per app")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--database-url", default=None, help="Delegate's database (default: a SQLite file)")
    parser.add_argument("--pool-size", type=int, default=None, help="DATABASE_POOL_SIZE for Delegate's workers")
    parser.add_argument("--smoke", action="store_true", help="a quick check: 1 run, 2 workers, concurrency 4, 1 s")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's figures to this file")
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.concurrency, args.seconds, args.warmup, args.workers = 1, "4", 1.0, 0.3, 2
        args.no_plot = True
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    apps = [a for a in args.apps.split(",") if a]
    use_wrk = args.client == "wrk" or (args.client == "auto" and wrk_available())
    client = run_wrk if use_wrk else run_python
    schema_url, drop_schema = scoped_database(args.database_url)
    load_before = load_average()
    results: dict[str, dict[int, list[dict[str, Any]]]] = {app: {c: [] for c in concurrencies} for app in apps}
    with tempfile.TemporaryDirectory() as name:
        sandbox = Sandbox(Path(name))
        try:
            for run in range(args.runs):
                for app in apps:
                    folder = Path(name) / f"run{run}"
                    folder.mkdir(exist_ok=True)
                    server = Server(app, sandbox, folder, workers=args.workers, database_url=schema_url,
                                    pool_size=args.pool_size)  # fmt: skip
                    try:
                        for concurrency in concurrencies:
                            figures = measure(server, sandbox, client, concurrency, args.seconds, args.warmup)
                            if app != "bare":  # the bare app posts nothing
                                figures["unposted"] = max(0, figures["acknowledged"] - figures["posted"])
                            results[app][concurrency].append(figures)
                    finally:
                        server.stop()
                for concurrency in concurrencies:  # ratios within the run: the machine's load moves between runs
                    if "bare" in results:
                        ceiling = results["bare"][concurrency][-1]["acks_per_second"]
                        for app in apps:
                            latest = results[app][concurrency][-1]
                            latest["ratio_to_bare"] = latest["acks_per_second"] / ceiling
        finally:
            sandbox.stop()
            drop_schema()

    note = (
        f"{args.workers} workers, {'wrk' if use_wrk else 'Python client'}, {args.runs} runs of {args.seconds:g} s,"
        f" load {load_before} -> {load_average()}"
    )
    print(f"slash commands, each on a new connection, Slack answering after 50 ms; {note}")
    report(results, concurrencies)
    if args.json is not None:
        args.json.write_text(json.dumps({"note": note, "results": results}, indent=1), encoding="utf-8")
    if not args.no_plot:
        for path in plot(results, concurrencies, f"{args.workers} workers"):
            print(f"wrote {path.relative_to(ROOT)}")


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
