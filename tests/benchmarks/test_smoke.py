"""The benchmarks' --smoke runs: their figures hold together, not merely the scripts exit 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def bench_database(request: pytest.FixtureRequest) -> list[str]:
    """--database-url for the benchmark: none (its own SQLite file), or the test PostgreSQL (it makes its own schema)."""
    if request.param == "sqlite":
        return []
    return ["--database-url", request.getfixturevalue("postgres_url")]


def run_smoke(module: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    output = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", module, "--smoke", "--json", str(output), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(output.read_text(encoding="utf-8")))


def test_ack_throughput_smoke_acknowledges_and_posts_every_command_and_counts_every_statement(
    tmp_path: Path, bench_database: list[str]
) -> None:
    figures = run_smoke("benchmarks.ack_throughput", tmp_path, "--client", "python", *bench_database)["results"]
    assert set(figures) == {"bare", "delegate", "stock"}
    for app, by_concurrency in figures.items():
        for concurrency, runs in by_concurrency.items():
            (run,) = runs
            assert run["errors"] == 0, (app, concurrency)
            assert run["acknowledged"] > 0 and run["acks_per_second"] > 0 and run["p99_ack_ms"] >= run["p50_ack_ms"] > 0
            assert 0 < run["app_cpu_ms_per_command"]
            if app == "bare":
                assert run["ratio_to_bare"] == 1 and run["sql_statements_per_command"] == 0
                continue
            # every acknowledged command's message reached Slack; at most one per client was still in flight at the end
            assert run["unposted"] == 0
            assert run["acknowledged"] <= run["posted"] <= run["acknowledged"] + int(concurrency)
            assert 0 < run["ratio_to_bare"] < 1
            # counted at the DBAPI cursor: Delegate's raw read counts as much as stock Bolt's SQLAlchemy queries
            assert run["sql_statements_per_command"] >= 1, app
    delegate, stock = figures["delegate"]["4"][0], figures["stock"]["4"][0]
    assert delegate["auth_test_calls_per_command"] == 0 and stock["auth_test_calls_per_command"] >= 1.9
    assert delegate["slack_calls_per_command"] == pytest.approx(delegate["posted"] / delegate["acknowledged"])


def test_refresh_storm_smoke_refreshes_once_for_delegate_and_accounts_for_every_caller(
    tmp_path: Path, bench_database: list[str]
) -> None:
    runs = run_smoke("benchmarks.refresh_storm", tmp_path, *bench_database)["runs"]
    (delegate,), (stock,) = runs["Delegate"], runs["stock Bolt"]
    for run in (delegate, stock):
        assert run["callers"] == 4 and run["callers_started_late"] == 0  # 2 processes x 2 threads, at once
        assert run["callers_with_error"] + run["callers_with_working_token"] <= run["callers"]
        assert run["rejected"] < run["refresh_calls"]  # at least one refresh went through
        assert run["max_wait_ms"] >= run["p50_wait_ms"] > 0
    assert delegate["refresh_calls"] == 1 and delegate["rejected"] == 0
    assert delegate["callers_with_working_token"] == 4 and delegate["distinct_tokens"] == 1
    assert stock["callers_with_working_token"] >= 1
