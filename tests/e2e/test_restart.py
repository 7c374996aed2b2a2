"""`python app.py run` in sandbox mode as a real process: stopped, killed and started again, everyone stays connected."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.e2e.harness import fetch, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
ALICE, GENERAL = "U0ALICE001", "C0GENERAL1"


@dataclass
class Run:
    """One `python app.py run` process on fixed ports with its data folder, and the sandbox's admin API."""

    process: subprocess.Popen[bytes]
    port: int
    sandbox_port: int
    token_file: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sandbox(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        import urllib.request

        request = urllib.request.Request(
            f"{self.sandbox}/sandbox/admin/{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"X-Sandbox-Admin-Token": self.token_file.read_text(), "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def install(self, user_id: str) -> None:
        """The browser's path: Delegate's install link, the sandbox's consent page, Allow, Delegate's callback."""
        start = fetch(f"{self.base}/slack/install")
        assert start.status == 302, start.body
        cookie = start.headers["set-cookie"].split(";", 1)[0]
        consent = fetch(start.location)
        hidden = dict(re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'>", consent.body))
        decision = fetch(
            f"{self.sandbox}/oauth/v2/authorize",
            method="POST",
            body=urlencode({**hidden, "user_id": user_id, "action": "allow"}),
        )
        assert decision.status == 302, decision.body
        assert fetch(decision.location, cookie=cookie).status == 200

    def post_as_me(self, user_id: str, text: str) -> dict[str, Any]:
        """/post-as-me `text` in #general; returns the message once the person's token has posted it."""
        record = self.admin(
            "POST",
            "deliver/slash_command",
            {"user_id": user_id, "command": "/post-as-me", "text": text, "channel_id": GENERAL},
        )
        assert record["status"] == 200, record

        def message() -> dict[str, Any] | None:
            found = [m for m in self.admin("GET", f"messages?channel={GENERAL}")["messages"] if m["text"] == text]
            return found[0] if found else None

        return wait_for(message, timeout=30)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """Start `python app.py run` on the same free ports and data folder each time; every process ends with the test."""
    ports = (free_port(), free_port())
    while ports[0] == ports[1]:
        ports = (ports[0], free_port())
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "DATABASE_URL", "TOKEN_"))}
    env.update({"DELEGATE_DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "INFO"})
    processes: list[subprocess.Popen[bytes]] = []

    def _start(*extra: str) -> Run:
        token_file = tmp_path / "admin-token"
        token_file.unlink(missing_ok=True)
        command = [sys.executable, "app.py", "run", "--port", str(ports[0]), "--sandbox-port", str(ports[1])]
        with (tmp_path / f"run-{len(processes)}.log").open("wb") as log:  # the child keeps its own copy open
            process = subprocess.Popen(
                [*command, "--admin-token-file", str(token_file), *extra], cwd=ROOT, env=env, stdout=log, stderr=log
            )
        processes.append(process)
        run = Run(process, ports[0], ports[1], token_file)
        wait_for(lambda: process.poll() is not None or (token_file.exists() and _healthy(run.base)), timeout=60)
        assert process.poll() is None, (tmp_path / f"run-{len(processes) - 1}.log").read_text()
        return run

    yield _start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def _healthy(base: str) -> bool:
    try:
        return fetch(base + "/healthz").status == 200
    except OSError:
        return False


def stop(run: Run, how: signal.Signals) -> None:
    run.process.send_signal(how)
    assert run.process.wait(timeout=30) == (-signal.SIGKILL if how == signal.SIGKILL else 0)


def test_a_stopped_or_killed_run_starts_again_with_everyone_still_connected(start: Any) -> None:
    first = start()
    first.install(ALICE)
    assert first.post_as_me(ALICE, "before any restart")["user"] == ALICE
    stop(first, signal.SIGINT)  # Ctrl-C

    second = start()
    assert second.post_as_me(ALICE, "after Ctrl-C")["user"] == ALICE
    stop(second, signal.SIGTERM)

    third = start()
    assert third.post_as_me(ALICE, "after kill")["user"] == ALICE
    third.admin("POST", "clock/advance", {"seconds": 13 * 3600})  # every token has expired: the next post refreshes
    refreshes = third.admin("GET", "counters")["grants"].get("refresh_token", 0)
    assert third.post_as_me(ALICE, "after 13 hours")["user"] == ALICE
    assert third.admin("GET", "counters")["grants"]["refresh_token"] > refreshes
    stop(third, signal.SIGKILL)  # right after the refresh: no chance to write anything more

    fourth = start()
    assert fourth.post_as_me(ALICE, "after kill -9")["user"] == ALICE
    tokens = [t for t in fourth.admin("GET", f"tokens?user_id={ALICE}")["tokens"] if t["status"] == "active"]
    assert tokens, "the rotated token is still known to the sandbox"


def test_fresh_starts_both_over(start: Any, tmp_path: Path) -> None:
    first = start()
    first.install(ALICE)
    first.post_as_me(ALICE, "kept until --fresh")
    stop(first, signal.SIGTERM)

    fresh = start("--fresh")
    state = fresh.admin("GET", "state")
    assert state["tokens"] == [] and state["messages"] == []
    record = fresh.admin(
        "POST", "deliver/slash_command", {"user_id": ALICE, "command": "/post-as-me", "text": "hi", "channel_id": GENERAL}
    )
    assert record["status"] == 200, record
    answers = wait_for(lambda: fresh.admin("GET", f"messages?channel={GENERAL}")["ephemerals"], timeout=30)
    assert "not installed" in answers[-1]["text"], answers
    assert fresh.admin("GET", f"messages?channel={GENERAL}")["messages"] == []
    stop(fresh, signal.SIGTERM)


def test_start_over_empties_delegate_too(start: Any) -> None:
    run = start()
    run.install(ALICE)
    run.post_as_me(ALICE, "before starting over")
    assert run.admin("POST", "start_over")["ok"]
    state = run.admin("GET", "state")
    assert state["tokens"] == [] and state["messages"] == []
    run.install(ALICE)  # Delegate forgot the old install too, so installing again is a first install
    assert run.post_as_me(ALICE, "after starting over")["user"] == ALICE
    stop(run, signal.SIGTERM)
