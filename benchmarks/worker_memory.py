"""One worker's resident memory after many commands from many people: it must not grow with the people it has seen.

The sandbox runs in a child process with 10,000 people, each connected to Delegate (the first installed the app);
this process builds Delegate's real app (`benchmarks.ack_server.delegate_app`: the WSGI app with its guard, Bolt,
our authorize, the lazy post after the ack) on a SQLite file and sends it signed `/post-as-me` commands in-process,
person after person, each posting in the sandbox as that person. After the first checkpoint's commands and after the
last (every post done, garbage collected), it reads its own VmRSS from /proc/self/status; the target is the last
within 10% of the first. The caches that hold an entry per person are printed at each checkpoint.

    .venv/bin/python -m benchmarks.worker_memory [--people 10000] [--commands 100000] [--first 1000] [--runs 1]
        [--plot docs/benchmarks/worker_memory.png]
"""

from __future__ import annotations

import argparse
import gc
import io
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from slack_sdk.oauth.installation_store import Installation

from benchmarks.ack_server import delegate_app
from benchmarks.ack_throughput import SECRETS, admin
from benchmarks.report import DOCS, plot_axes, spread
from sandbox.config import SandboxConfig, SandboxUser
from sandbox.delivery import sign
from stores import SQLAlchemyInstallationStore, create_database_engine, generate_key
from stores.crypto import _associated_data
from stores.migrations import upgrade
from stores.token_rows import jitter_fraction

TEAM, CHANNEL = "T0SANDBOX1", "C0GENERAL1"


def user_id(index: int) -> str:
    return f"U{index:09d}"


def run_sandbox(people: int, database_url: str, keys: str, pipe: Connection) -> None:
    """The child: a sandbox with `people` more people, each connected, and saved in Delegate's database here, so the
    worker under measure has never seen them; sends (port, admin token, the installer's answer), then serves until
    the parent says stop."""
    from sandbox import admin as sandbox_admin
    from sandbox.server import SandboxServer

    users = [SandboxUser(user_id(i), f"person{i}", f"Person {i}", TEAM) for i in range(people)]
    config = SandboxConfig(
        client_id=SECRETS["client_id"], client_secret=SECRETS["client_secret"],
        signing_secret=SECRETS["signing_secret"], request_url=None, users=[*SandboxConfig().users, *users],
    )  # fmt: skip
    server = SandboxServer(config).start()
    answers = [
        sandbox_admin.oauth.install(
            server.state,
            user_id=user_id(i),
            bot_scopes=["commands", "chat:write"] if i == 0 else [],
            user_scopes=["chat:write"],
        )  # fmt: skip
        for i in range(people)
    ]
    upgrade(database_url)
    store = SQLAlchemyInstallationStore(SECRETS["client_id"], create_database_engine(database_url), encryption_keys=keys)
    store.save_many(connected(answer, user_id(i)) for i, answer in enumerate(answers) if i)
    store.engine.dispose()
    pipe.send((server.port, server._admin_token, answers[0]))
    pipe.recv()
    server.stop()


def resident_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def command_environ(index: int, person: str) -> dict[str, Any]:
    body = urlencode(
        {
            "team_id": TEAM,
            "team_domain": "sandbox-inc",
            "channel_id": CHANNEL,
            "channel_name": "general",
            "user_id": person,
            "user_name": person.lower(),
            "command": "/post-as-me",
            "text": f"memory {index}",
            "api_app_id": "A0SANDBOXAP",
            "is_enterprise_install": "false",
            "response_url": "http://127.0.0.1:9/none",
            "trigger_id": f"1.{index}.3",
        }  # fmt: skip
    ).encode()
    timestamp = str(int(time.time()))
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "3000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "HTTP_X_SLACK_REQUEST_TIMESTAMP": timestamp,
        "HTTP_X_SLACK_SIGNATURE": sign(SECRETS["signing_secret"], timestamp, body),
    }  # fmt: skip


def caches() -> str:
    jitter, contexts = jitter_fraction.cache_info().currsize, _associated_data.cache_info().currsize
    return f"jitter cache {jitter:,}, AEAD context cache {contexts:,}"


def connected(answer: dict[str, Any], person: str) -> Installation:
    """The Installation Delegate's connect flow saves from a user-only oauth.v2.access answer."""
    granted = answer["authed_user"]
    return Installation(
        app_id=answer["app_id"], team_id=answer["team"]["id"], team_name=answer["team"]["name"], user_id=person,
        user_token=granted["access_token"], user_scopes=granted["scope"], user_refresh_token=granted.get("refresh_token"),
        user_token_expires_in=granted.get("expires_in"), token_type="user",
    )  # fmt: skip


def one_run(people: int, commands: int, checkpoints: Sequence[int]) -> list[tuple[int, int]]:
    """(commands sent, VmRSS KiB) at each checkpoint of one run."""
    points: list[tuple[int, int]] = []
    with tempfile.TemporaryDirectory() as folder:
        database_url, keys = f"sqlite:///{folder}/memory.sqlite3", generate_key()
        parent, child = multiprocessing.get_context("fork").Pipe()
        sandbox = multiprocessing.get_context("fork").Process(
            target=run_sandbox, args=(people, database_url, keys, child), daemon=True
        )
        sandbox.start()
        port, token, installer = parent.recv()
        try:
            config = {
                **SECRETS, "api_url": f"http://127.0.0.1:{port}/api/", "database_url": database_url, "keys": keys,
                "install": installer, "user_id": user_id(0),
            }  # fmt: skip
            wsgi, _ = delegate_app(config)
            posted = _posted_counter(port, token)
            base = posted()
            statuses: list[str] = []

            def start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
                statuses.append(status)
                return lambda _: None

            started = time.monotonic()
            for index in range(commands):
                statuses.clear()
                b"".join(wsgi(command_environ(index, user_id(index % people)), start_response))
                if statuses != ["200 OK"]:
                    raise SystemExit(f"command {index}: HTTP {statuses}")
                sent = index + 1
                if sent % 250 == 0 or sent in checkpoints:
                    _wait_for(lambda n=sent: posted() - base >= n, f"the posts of {sent} commands")  # type: ignore[misc]
                if sent in checkpoints:
                    gc.collect()
                    points.append((sent, resident_kib()))
                    print(
                        f"  {sent:>9,} commands ({time.monotonic() - started:.0f} s): VmRSS {points[-1][1] / 1024:.1f} MiB;"
                        f" {caches()}",
                        flush=True,
                    )
        finally:
            parent.send("stop")
            sandbox.join(20)
    return points


def _posted_counter(port: int, token: str) -> Callable[[], int]:
    def posted() -> int:
        return int(admin(port, token, "GET", "counters")["api_calls"].get("chat.postMessage", 0))

    return posted


def _wait_for(done: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10000)
    parser.add_argument("--commands", type=int, default=100000)
    parser.add_argument("--first", type=int, default=1000, help="the checkpoint the last is compared with")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--plot", default=None, help=f"PNG to write (default {DOCS / 'worker_memory.png'})")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    checkpoints = sorted({args.first, *[args.commands * k // 10 for k in range(1, 11)]} - {0})
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)", flush=True)
    runs = []
    for run in range(args.runs):
        print(f"run {run + 1}: {args.commands:,} commands from {args.people:,} people", flush=True)
        runs.append(one_run(args.people, args.commands, checkpoints))
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    ratios = [dict(points)[args.commands] / dict(points)[args.first] for points in runs]
    verdict = "within" if max(ratios) <= 1.10 else "over"
    print(
        f"VmRSS after {args.commands:,} commands / after {args.first:,}: {spread(ratios, '{:.3f}')} "
        f"(target at most 1.10: {verdict}); MiB at {args.first:,}: "
        f"{spread([dict(p)[args.first] / 1024 for p in runs])}, at {args.commands:,}: "
        f"{spread([dict(p)[args.commands] / 1024 for p in runs])}"
    )
    if not args.no_plot:
        path = Path(args.plot) if args.plot else DOCS / "worker_memory.png"
        figure, axes = plot_axes(
            f"One worker's VmRSS, {args.people:,} people taking turns", xlabel="commands", ylabel="VmRSS (MiB)"
        )
        for number, points in enumerate(runs, 1):
            axes.plot([p[0] for p in points], [p[1] / 1024 for p in points], marker="o", label=f"run {number}")
        axes.set_ylim(bottom=0)
        axes.legend()
        figure.tight_layout()
        figure.savefig(path)
        print(f"plot: {path}")
    return {"runs": runs, "ratios": ratios, "checkpoints": checkpoints}


if __name__ == "__main__":
    main()
