"""`/healthz` latency while slow clients hold connections open: the production server against the old sync workers.

The app runs as `python app.py run --workers N` runs it (HTTP mode, gunicorn, one process per worker), pointed at the
sandbox standing in for Slack. The old server is the same command with only gunicorn's worker class set back to
`sync` (`--servers gthread` measures gunicorn's gthread workers with 4 threads the same way). For each server and
each count of slow connections (as many as workers, then 2x and 10x), a fresh server is started, the slow clients
connect (each sends a request line, then one header line every 5 s, and reconnects when the server closes on it, as
an attacker would), and `/healthz` is asked on new connections, one after another, for a window of seconds; a probe
gives up after 40 s (gunicorn's timeout is 30 s). Then the worker PIDs are compared with those from before: a PID
gone is a worker the arbiter killed.

    .venv/bin/python -m benchmarks.slow_clients [--workers 2] [--window 35] [--servers waitress,sync]
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.ack_throughput import SECRETS, free_port, start
from stores import generate_key

PROBE_TIMEOUT = 40.0
LINE_EVERY = 5.0
# `python app.py run` with only gunicorn's worker class changed: sync (before web/server.py), or gthread for comparison.
OTHER_SERVER = (
    "import app; options = app.gunicorn_options; "
    "app.gunicorn_options = lambda **kw: {{**options(**kw), 'worker_class': '{0}', 'threads': {1}}}; app.main()"
)
THREADS = {"sync": 1, "gthread": 4}


def worker_pids(arbiter: int) -> set[int]:
    """The arbiter's child processes, from /proc."""
    try:
        return {int(pid) for pid in Path(f"/proc/{arbiter}/task/{arbiter}/children").read_text().split()}
    except OSError:
        return set()


class SlowClient(threading.Thread):
    """One connection sending a request's headers one line every 5 s; reconnects when the server closes it."""

    def __init__(self, port: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.cut = 0  # connections the server closed (after a 408, or silently)
        self.lifetimes: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            opened = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    line = 0
                    while not self.stop.is_set():
                        readable, _, _ = select.select([sock], [], [], LINE_EVERY)
                        if readable:
                            sock.recv(65536)  # a 408 or the end of the stream: either way the server let go
                            break
                        line += 1
                        sock.sendall(f"X-Slow-{line}: 1\r\n".encode())
                    else:
                        return
            except OSError:
                pass
            if not self.stop.is_set():
                self.cut += 1
                self.lifetimes.append(time.monotonic() - opened)
                time.sleep(0.05)


def probe(port: int) -> float | None:
    """Seconds `/healthz` took to answer 200 on a new connection, or None if it did not within PROBE_TIMEOUT."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer:
                    break
    except OSError:
        return None
    return time.monotonic() - started if answer.startswith(b"HTTP/1.1 200") else None


def run_level(server: str, workers: int, slow: int, window: float, sandbox_port: int, folder: Path) -> dict[str, str]:
    port = free_port()
    env = {
        **os.environ,
        "SLACK_CLIENT_ID": SECRETS["client_id"],
        "SLACK_CLIENT_SECRET": SECRETS["client_secret"],
        "SLACK_SIGNING_SECRET": SECRETS["signing_secret"],
        "SLACK_API_URL": f"http://127.0.0.1:{sandbox_port}/api/",
        "SLACK_AUTHORIZE_URL": f"http://127.0.0.1:{sandbox_port}/oauth/v2/authorize",
        "SLACK_REDIRECT_URI": f"http://127.0.0.1:{port}/slack/oauth_redirect",
        "TOKEN_ENCRYPTION_KEYS": generate_key(),
        "DATABASE_URL": f"sqlite:///{folder / f'{server}-{slow}.sqlite3'}",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    command = ["app.py"] if server == "waitress" else ["-c", OTHER_SERVER.format(server, THREADS[server])]
    app = start([sys.executable, *command, "run", "--workers", str(workers)], port, env=env)
    try:
        deadline = time.monotonic() + 30
        while probe(port) is None or len(worker_pids(app.pid)) < workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"{server}: not healthy with {workers} workers")
            time.sleep(0.2)
        before = worker_pids(app.pid)
        stop = threading.Event()
        clients = [SlowClient(port, stop) for _ in range(slow)]
        for client in clients:
            client.start()
        time.sleep(1)  # every slow client has sent its first line
        latencies: list[float | None] = []
        ends = time.monotonic() + window
        while time.monotonic() < ends:
            latencies.append(probe(port))
            time.sleep(0.25)
        after = worker_pids(app.pid)
        stop.set()
        for client in clients:
            client.join(LINE_EVERY + 5)
    finally:
        app.terminate()
        app.wait(30)
    answered = sorted(latency for latency in latencies if latency is not None)
    lifetimes = [life for client in clients for life in client.lifetimes]
    return {
        "server": server,
        "slow connections": str(slow),
        "/healthz answered": f"{len(answered)}/{len(latencies)}",
        "median": f"{1000 * statistics.median(answered):.1f} ms" if answered else "-",
        "slowest": f"{1000 * answered[-1]:.1f} ms" if answered else "-",
        "timed out (40 s)": str(len(latencies) - len(answered)),
        "workers killed": str(len(before - after)),
        "slow conns cut": str(sum(client.cut for client in clients)),
        "cut after": f"{statistics.median(lifetimes):.1f} s" if lifetimes else "-",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--window", type=float, default=35.0, help="seconds of probes per level (past the 30 s timeout)")
    parser.add_argument(
        "--servers", default="waitress,sync", help="comma-separated: waitress (today's), sync (before), gthread (4 threads)"
    )
    args = parser.parse_args()
    sandbox_port = free_port()
    sandbox = start(
        [
            sys.executable, "app.py", "sandbox", "serve", "--port", str(sandbox_port), "--request-url", "",
            "--client-id", SECRETS["client_id"], "--client-secret", SECRETS["client_secret"],
            "--signing-secret", SECRETS["signing_secret"],
        ],
        sandbox_port,
    )  # fmt: skip
    rows = []
    try:
        with tempfile.TemporaryDirectory() as name:
            for server in args.servers.split(","):
                for times in (1, 2, 10):
                    rows.append(run_level(server, args.workers, times * args.workers, args.window, sandbox_port, Path(name)))
                    print("  " + ", ".join(f"{k}: {v}" for k, v in rows[-1].items()), file=sys.stderr, flush=True)
    finally:
        sandbox.terminate()
        sandbox.wait(10)

    print(f"/healthz during {args.window:.0f} s while slow clients send a header line every 5 s, {args.workers} workers")
    columns = list(rows[0])
    widths = [max(len(column), *(len(row[column]) for row in rows)) for column in columns]
    print("  ".join(column.rjust(width) for column, width in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(row[column].rjust(width) for column, width in zip(columns, widths, strict=True)))


if __name__ == "__main__":
    main()
