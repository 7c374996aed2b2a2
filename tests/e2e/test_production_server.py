"""Black box: `python app.py run` (gunicorn, worker processes) against the sandbox, as against slack.com."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app import gunicorn_options
from benchmarks.slow_clients import SlowClient, worker_pids
from listeners.manifest import MANIFEST_PATH
from ops.wiring import open_stores
from sandbox.config import SandboxConfig
from sandbox.testing import running_sandbox
from settings import Settings
from tests.e2e.harness import Delegate, delegate_env, fetch, free_port, wait_for
from tests.e2e.test_commands import ALICE, GENERAL, posted

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_app_py_run_serves_slack_through_gunicorn_workers(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = SandboxConfig.from_manifest(
        MANIFEST_PATH, redirect_urls=[f"{base}/slack/oauth_redirect"], request_url=f"{base}/slack/events"
    )
    sandbox_port = free_port()
    while sandbox_port == port:  # the app binds its port only once it starts: keep the two apart
        sandbox_port = free_port()
    with running_sandbox(config, port=sandbox_port) as sandbox:
        env = {
            **os.environ,
            **delegate_env(config, sandbox, base, f"sqlite:///{tmp_path / 'prod.sqlite3'}"),
            "LOG_LEVEL": "DEBUG",
        }
        log = tmp_path / "server.log"
        with log.open("w") as output:
            server = subprocess.Popen(
                [sys.executable, "app.py", "run", "--workers", "2"], cwd=ROOT, env=env, stdout=output, stderr=output
            )
            try:
                wait_for(lambda: _healthy(base), timeout=30)
                settings = Settings.from_env(env)
                stores = open_stores(settings, background_refresh=False)
                delegate = Delegate(base_url=base, sandbox=sandbox, settings=settings, stores=stores)
                assert delegate.install(ALICE).status == 200
                for n in range(4):  # several requests, so more than one worker answers
                    assert (
                        sandbox.send_slash_command(ALICE, "/post-as-me", f"from gunicorn {n}", channel_id=GENERAL)["status"]
                        == 200
                    )
                for n in range(4):
                    [message] = wait_for(lambda n=n: posted(delegate, GENERAL, f"from gunicorn {n}"))
                    assert message["user"] == ALICE
                stores.close()
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
        text = log.read_text()
        assert "Booting worker" in text
        assert "oauth.v2.access" in text and "Sending a request" in text  # slack_sdk's DEBUG logging was on
        for secret in (
            config.client_secret,
            config.signing_secret,
            "xoxe.xoxp-1-",
            "xoxe.xoxb-1-",
            env["TOKEN_ENCRYPTION_KEYS"],
        ):
            assert secret not in text, f"a secret reached the server log: {secret[:12]}..."
        assert "?code=" not in text


def _healthy(base: str) -> bool:
    try:
        return fetch(base + "/healthz").status == 200
    except OSError:
        return False


@pytest.mark.slow
def test_slow_clients_neither_starve_nor_kill_the_workers(tmp_path: Path) -> None:
    """As many slow connections as workers, each sending a header line every 5 s, past gunicorn's timeout.

    Under sync workers each of them owned a worker: /healthz waited until gunicorn killed the workers at 30 s.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = SandboxConfig.from_manifest(MANIFEST_PATH, redirect_urls=[f"{base}/slack/oauth_redirect"])
    sandbox_port = free_port()
    while sandbox_port == port:
        sandbox_port = free_port()
    workers = 2
    with running_sandbox(config, port=sandbox_port) as sandbox:
        env = {**os.environ, **delegate_env(config, sandbox, base, f"sqlite:///{tmp_path / 'prod.sqlite3'}")}
        log = tmp_path / "server.log"
        with log.open("w") as output:
            server = subprocess.Popen(
                [sys.executable, "app.py", "run", "--workers", str(workers)], cwd=ROOT, env=env, stdout=output, stderr=output
            )
            stop = threading.Event()
            clients = [SlowClient(port, stop) for _ in range(workers)]
            try:
                wait_for(lambda: _healthy(base) and len(worker_pids(server.pid)) == workers, timeout=30)
                before = worker_pids(server.pid)
                for client in clients:
                    client.start()
                time.sleep(1)  # each slow client is connected and has sent its first line
                ends = time.monotonic() + gunicorn_options(bind="", workers=1, log_level="INFO")["timeout"] + 5
                answered = 0
                while time.monotonic() < ends:
                    assert _health_status(port) == 200
                    answered += 1
                    time.sleep(1)
                after = worker_pids(server.pid)
            finally:
                stop.set()
                for client in clients:
                    client.join(10)
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
        assert answered > 30
        assert after == before, "gunicorn killed a worker"
        assert sum(client.cut for client in clients) > 0  # the server let go of them, and they came back
        text = log.read_text()
        assert "WORKER TIMEOUT" not in text and "Traceback" not in text


def _health_status(port: int) -> int:
    """GET /healthz on a new connection, giving up after 5 s (under sync workers it waited for the workers' death)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    finally:
        connection.close()
