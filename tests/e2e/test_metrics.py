"""Black box: `python app.py run` with 2 gunicorn workers against the sandbox; /metrics gives the exact totals of what
both workers did, whichever worker answers the scrape, and /readyz says ready. On SQLite, and on PostgreSQL when
TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.slow_clients import worker_pids
from listeners.manifest import MANIFEST_PATH
from ops.wiring import open_stores
from sandbox.config import SandboxConfig
from sandbox.testing import running_sandbox
from settings import Settings
from tests.e2e.harness import Delegate, delegate_env, fetch, free_port, wait_for
from tests.e2e.test_commands import ALICE, BOB, CAROL, GENERAL, TEAM, posted

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
SHORT_LIFETIME = 40  # seconds: Bob's first token, inside its refresh margin (half: 20 s) later in the test


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(base: str) -> tuple[str, Samples]:
    page = fetch(base + "/metrics")
    assert page.status == 200, page.body
    assert page.headers["content-type"].startswith("text/plain; version=0.0.4")
    return page.body, parse(page.body)


def series(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every non-zero sample of one name, by its labels."""
    return {labels: value for (sample, labels), value in samples.items() if sample == name and value}


def labels(**pairs: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(pairs.items()))


def per_worker(folder: Path, pid: int, into: Path) -> Samples:
    """What one worker alone counted: its own files of the multiprocess folder, read on their own."""
    into.mkdir()
    for file in folder.glob(f"*_{pid}.db"):
        shutil.copy(file, into / file.name)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(into))
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


@pytest.mark.slow
def test_metrics_are_the_totals_of_both_workers_and_readyz_is_ready(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = SandboxConfig.from_manifest(
        MANIFEST_PATH, redirect_urls=[f"{base}/slack/oauth_redirect"], request_url=f"{base}/slack/events"
    )
    sandbox_port = free_port()
    while sandbox_port == port:
        sandbox_port = free_port()
    folder = tmp_path / "metrics"  # named here, so that the test can read each worker's own files
    with running_sandbox(config, port=sandbox_port) as sandbox:
        env = {**os.environ, **delegate_env(config, sandbox, base, database_url), "PROMETHEUS_MULTIPROC_DIR": str(folder)}
        log = tmp_path / "server.log"
        with log.open("w") as output:
            server = subprocess.Popen(
                [sys.executable, "app.py", "run", "--workers", "2"], cwd=ROOT, env=env, stdout=output, stderr=output
            )
            try:
                wait_for(lambda: _healthy(base) and len(worker_pids(server.pid)) == 2, timeout=30)
                workers = worker_pids(server.pid)
                settings = Settings.from_env(env)
                stores = open_stores(settings, background_refresh=False)
                delegate = Delegate(base_url=base, sandbox=sandbox, settings=settings, stores=stores)
                first_worker, second_worker = sorted(workers)
                try:
                    _exercise(delegate, first_worker, second_worker)
                    readiness = fetch(base + "/readyz")
                    scraped = []
                    for paused in (first_worker, second_worker, None):  # answered by one worker, by the other, by either
                        with only_the_other_worker(paused):
                            scraped += [scrape(base) for _ in range(2 if paused else 4)]
                    texts, scrapes = zip(*scraped, strict=True)
                    per_pid = {pid: per_worker(folder, pid, tmp_path / str(pid)) for pid in workers}
                    secrets = _secrets(delegate, env)
                finally:
                    stores.close()
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
        deliveries = sandbox.deliveries()
    assert readiness.status == 200, readiness.body
    assert readiness.body.splitlines() == ["ready", "database: ok", "schema: ok", "keys: ok", "refresher: ok"]

    first = scrapes[0]
    acks = series(first, "delegate_acks_total")
    assert acks[labels(kind="command", outcome="ok")] == 7  # Alice's six and Bob's one
    assert acks[labels(kind="command", outcome="not_connected")] == 2  # Carol's
    assert sum(acks.values()) == len(deliveries)  # every request Slack (the sandbox) sent, counted once
    assert series(first, "delegate_ack_seconds_count") == {labels(kind="command"): 9}
    assert series(first, "delegate_oauth_installs_total") == {labels(flow="install"): 1, labels(flow="connect"): 1}
    assert series(first, "delegate_oauth_failures_total") == {labels(reason="access_denied"): 1}
    failed_post = labels(method="chat.postMessage", error="channel_not_found")
    assert series(first, "delegate_slack_api_errors_total") == {failed_post: 1}
    assert series(first, "delegate_token_refreshes_total") == {labels(kind="user", outcome="refreshed"): 1}
    assert series(first, "delegate_token_refresh_seconds_count") == {labels(kind="user"): 1}
    assert series(first, "delegate_refresh_lock_waits_total") == {labels(result="acquired"): 1}
    # Gauges, from the database at each scrape: Alice's and Bob's tokens, the workspace's bot; none due soon.
    tokens = {labels(kind="user", state="active"): 2, labels(kind="bot", state="active"): 1}
    assert series(first, "delegate_tokens") == tokens
    assert first[("delegate_tokens_expiring", labels(kind="user"))] == 0
    for other in scrapes[1:]:
        assert other == first  # whichever worker answered: every worker's counts, the gauges once

    # Both workers served part of it (one was paused while the other served), so neither alone had these totals.
    counted = {pid: sum(v for (name, _), v in mine.items() if name.endswith("_total")) for pid, mine in per_pid.items()}
    assert all(counted.values()), f"a worker counted nothing: {counted}"
    assert all(value < sum(counted.values()) for value in counted.values())
    for name in ("delegate_acks_total", "delegate_oauth_installs_total"):
        assert sum(Counter(series(mine, name)).total() for mine in per_pid.values()) == Counter(series(first, name)).total()

    for text in (*texts, readiness.body):
        for secret in secrets:
            assert secret not in text, f"a secret reached /metrics or /readyz: {secret[:10]}..."
        for identifier in (ALICE, BOB, CAROL, TEAM):
            assert identifier not in text  # no user or team in a label
    server_log = log.read_text()
    assert "Traceback" not in server_log


@contextmanager
def only_the_other_worker(paused: int | None) -> Iterator[None]:
    """Stop one worker (SIGSTOP) so that every new connection goes to the other, then let it go on (SIGCONT).

    Each pause begins once the last request has been answered and waitress has closed idle connections (5 s), so no
    request is ever sent to a paused worker; pauses stay well under gunicorn's 30 s heartbeat timeout.
    """
    if paused is None:
        yield
        return
    os.kill(paused, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(paused, signal.SIGCONT)


IDLE_CLOSED = 5.5  # waitress closes a connection silent for 5 s: the sandbox's kept-alive one to a worker is gone


def _exercise(delegate: Delegate, first_worker: int, second_worker: int) -> None:
    """Installs, a connect, a cancelled connect, commands that succeed and fail, and a refresh ahead of expiry; the
    commands are served by one worker while the other is paused, then the other way round."""
    sandbox = delegate.sandbox
    assert delegate.install(ALICE).status == 200
    sandbox.configure(expires_in=SHORT_LIFETIME)
    assert delegate.connect(BOB).status == 200  # a token due for renewal 20 s from now (renewed before use at 35 s)
    connected = time.monotonic()
    sandbox.configure(expires_in=43200)  # its renewal gets a 12-hour token again
    _, query, cookie = delegate.start_oauth("/slack/connect")
    cancelled = fetch(f"{delegate.base_url}/slack/oauth_redirect?error=access_denied&state={query['state']}", cookie=cookie)
    assert "You cancelled" in cancelled.body
    sandbox.add_fault("chat.postMessage", error="channel_not_found", times=1)
    with only_the_other_worker(first_worker):
        for n in range(3):  # the first post fails at Slack (after the ack, which is fine)
            assert sandbox.send_slash_command(ALICE, "/post-as-me", f"metrics {n}", channel_id=GENERAL)["status"] == 200
        for n in range(1, 3):
            wait_for(lambda n=n: posted(delegate, GENERAL, f"metrics {n}"))
        time.sleep(IDLE_CLOSED)
    with only_the_other_worker(second_worker):
        for n in range(3, 6):
            assert sandbox.send_slash_command(ALICE, "/post-as-me", f"metrics {n}", channel_id=GENERAL)["status"] == 200
        for n in range(3, 6):
            wait_for(lambda n=n: posted(delegate, GENERAL, f"metrics {n}"))
        for _ in range(2):  # Carol never connected
            assert sandbox.send_slash_command(CAROL, "/post-as-me", "hello", channel_id=GENERAL)["status"] == 200
        time.sleep(IDLE_CLOSED)
    time.sleep(max(0.0, SHORT_LIFETIME / 2 + 1 - (time.monotonic() - connected)))
    # Bob's token is inside its margin: authorize hands it out and has it renewed in the background.
    assert sandbox.send_slash_command(BOB, "/post-as-me", "renewed ahead", channel_id=GENERAL)["status"] == 200
    wait_for(lambda: posted(delegate, GENERAL, "renewed ahead"))
    [renewal] = wait_for(lambda: sandbox.refreshes(BOB), timeout=20)
    assert renewal["left_on_old"] > 0  # ahead of its expiry
    wait_for(lambda: (row := delegate.user_row(BOB)) is not None and row.last_refresh_outcome == "refreshed")


def _secrets(delegate: Delegate, env: dict[str, str]) -> list[str]:
    state = delegate.sandbox.state
    with state.lock:
        issued = [*state.tokens, *state.refresh_tokens]
    assert len(issued) >= 5  # bot, Alice's and Bob's tokens and refresh tokens, Bob's renewal
    return [*issued, env["SLACK_CLIENT_SECRET"], env["SLACK_SIGNING_SECRET"], env["TOKEN_ENCRYPTION_KEYS"]]


def _healthy(base: str) -> bool:
    try:
        return fetch(base + "/healthz").status == 200
    except OSError:
        return False


def test_nothing_imports_prometheus_client_before_the_server_has_chosen_its_folder() -> None:
    """prometheus_client picks in-memory or multiprocess values when first imported: `import app` (the gunicorn master)
    must leave that choice to `run`, which sets PROMETHEUS_MULTIPROC_DIR first."""
    code = "import sys, app; assert 'prometheus_client' not in sys.modules, 'imported too early'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_a_worker_that_exits_leaves_the_metrics_folder_to_the_others(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR unset, `run` makes the folder and removes it at its exit: the master's exit only.
    A worker leaves through the same stack (gunicorn ends it with SystemExit), and once removed the folder along with
    every count, its replacement failed to boot and the whole server stopped."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = SandboxConfig.from_manifest(
        MANIFEST_PATH, redirect_urls=[f"{base}/slack/oauth_redirect"], request_url=f"{base}/slack/events"
    )
    with running_sandbox(config) as sandbox:
        env = {**os.environ, **delegate_env(config, sandbox, base, f"sqlite:///{tmp_path / 'delegate.sqlite3'}")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env["TMPDIR"] = str(tmp_path)  # where `run` makes its folder, to be seen by the test
        log = tmp_path / "server.log"
        with log.open("w") as output:
            server = subprocess.Popen(
                [sys.executable, "app.py", "run", "--workers", "2"], cwd=ROOT, env=env, stdout=output, stderr=output
            )
            try:
                wait_for(lambda: _healthy(base) and len(worker_pids(server.pid)) == 2, timeout=30)
                [folder] = tmp_path.glob("delegate-metrics-*")
                before = worker_pids(server.pid)
                gone = min(before)
                os.kill(gone, signal.SIGTERM)  # as gunicorn's max_requests or a crash would end it
                wait_for(lambda: len(worker_pids(server.pid)) == 2 and gone not in worker_pids(server.pid), timeout=30)
                wait_for(lambda: _healthy(base), timeout=30)
                assert folder.is_dir(), "a worker's exit removed the folder the other workers write to"
                assert server.poll() is None, log.read_text()[-3000:]
                assert fetch(base + "/metrics").status == 200
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
    assert not folder.exists()  # the master's exit removed it
    assert "Worker failed to boot" not in log.read_text()
