"""Sweep: N tokens come due at once; how long do 1 or 3 refresher processes take to renew them all under Slack's limit?

The sandbox answers oauth.v2.access after 50 ms and allows it 600 calls a minute (Slack's limit), counting minutes on
its own clock. To run in minutes instead of hours, the sandbox clock runs `--speed` times faster than real time: its
limit becomes 600 x speed calls per real minute, and the refreshers' shared budget is scaled alike (600 x speed x
`--budget-share` per real minute; the share, 0.98 by default, keeps call arrivals' jitter off the limit's edge). The
refreshers run on the sandbox clock (stores.rotation.TokenManager(clock=...)), so expiries and margins are in sandbox
time; every duration below is in sandbox time, where the bound is N / 600 minutes.

The tokens (N people seeded in bulk, in the store and at the sandbox) expire one after another over 1.25 bounds,
starting 10 sandbox minutes from the start, so every one is due at once and a refresher that keeps to the limit
renews each before it expires. The refresh margin is Delegate's 2 hours when that holds them all; more tokens than
the margin holds at 600 a minute (72,000 in 2 hours) get a wider margin, printed with the run.

Counted at the sandbox: refresh calls against tokens (none twice, none missed), refreshes rejected, 429s; tokens that
expired before their renewal, and tokens the store still holds expired at the end.

    .venv/bin/python -m benchmarks.refresh_sweep [--tokens 10000 100000] [--processes 1 3] [--runs 2] \
        [--database-url URL] [--speed 10] [--smoke]

The refreshers must be able to keep up with the scaled budget (98 refreshes a real second at speed 10, about 4 ms of
a refresher's CPU each): one process does on this 2-core machine when nothing else runs; on a slower or loaded one,
lower the speed until the refreshers' CPU is not the limit.
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.config import SandboxConfig
from sandbox.testing import running_sandbox
from stores import SQLAlchemyInstallationStore, create_database_engine, generate_key

from .report import DOCS, plot_axes, spread
from .scale_support import (
    LIMIT_PER_MINUTE,
    benchmark_database,
    drop_tables,
    expired_rows,
    fresh_tables,
    load_average,
    person_ids,
    refresh_figures,
    seed_people,
    start_workers,
    stop_workers,
    worker_config,
)

LEAD_MINUTES = 10  # the first token expires this long after the start
SPREAD = 1.25  # the expiries span this many bounds
DEFAULT_MARGIN_MINUTES = 120


def margin_minutes(bound_minutes: float) -> int:
    """Delegate's 2-hour margin, or wider (whole hours) when the tokens' expiries would not all fall inside it."""
    needed = LEAD_MINUTES + SPREAD * bound_minutes + 10  # plus the margin's largest per-token jitter
    return DEFAULT_MARGIN_MINUTES if needed <= DEFAULT_MARGIN_MINUTES else 60 * math.ceil(needed / 60)


def sweep(
    database_url: str, tokens: int, processes: int, *, speed: float, budget_share: float, concurrency: int
) -> dict[str, Any]:
    """One run: seed, start the refreshers together, wait until every token is renewed (or far past the bound)."""
    config = SandboxConfig(rate_limits={"oauth.v2.access": LIMIT_PER_MINUTE})
    engine = create_database_engine(database_url)
    keys = generate_key()
    with running_sandbox(config) as sandbox:
        sandbox.add_fault("oauth.v2.access", latency_ms=50)
        store = SQLAlchemyInstallationStore(config.client_id, engine, encryption_keys=keys)
        fresh_tables(store)
        bound = tokens / LIMIT_PER_MINUTE * 60  # sandbox seconds
        margin = margin_minutes(bound / 60)
        users = person_ids(tokens)
        start = sandbox.now()
        expires = [start + LEAD_MINUTES * 60 + SPREAD * bound * n / tokens for n in range(tokens)]
        seed_seconds = seed_people(sandbox, store, users, expires)
        sandbox.state.clock.set_speed(speed)
        start_at = time.time() + 3  # the processes' imports and connections first
        settings = {
            "margin_minutes": margin,
            "max_per_minute": LIMIT_PER_MINUTE * speed * budget_share,
            "concurrency": concurrency,
            "start_at": start_at,
        }
        workers = start_workers([worker_config(sandbox, database_url, keys, **settings)] * processes)
        timeline = sandbox.state.clock.timeline()
        started = timeline["base"] + (start_at - timeline["anchor"]) * speed  # the sandbox time at start_at
        deadline = start_at + 3 * bound / speed + 30
        done = 0
        while time.time() < deadline:
            time.sleep(0.5)
            done = len(sandbox.counters()["refreshes_by_user"])
            if done >= tokens:
                break
        time.sleep(0.5)  # a refresh of a token renewed twice would be in flight now
        per_process = stop_workers(workers)
        figures = refresh_figures(sandbox, users)
        still_expired = expired_rows(store, datetime.fromtimestamp(sandbox.now(), UTC))
        sandbox.state.clock.set_speed(1.0)
    drop_tables(store)
    engine.dispose()
    times = figures.pop("times")
    renew_all = (times[-1] - started) if times else float("nan")
    return {
        **figures,
        "tokens": tokens,
        "processes": processes,
        "margin_minutes": margin,
        "seed_seconds": seed_seconds,
        "bound_minutes": bound / 60,
        "renew_all_minutes": renew_all / 60,
        "ratio_to_bound": renew_all / bound,
        "still_expired": still_expired,
        "per_process": [p.get("refreshed", p) for p in per_process],
        "cpu_ms_per_refresh": 1000 * sum(p.get("cpu_seconds", 0) for p in per_process) / max(1, figures["refresh_calls"]),
        "progress": [((t - started) / 60, n + 1) for n, t in enumerate(times)],
    }


def check(run: dict[str, Any]) -> list[str]:
    """What a run got wrong: every token renewed exactly once, nothing rejected, nothing left expired."""
    problems = []
    if run["renewed"] != run["tokens"] or run["missed"]:
        problems.append(f"{run['missed']} of {run['tokens']} tokens never renewed")
    if run["renewed_twice"]:
        problems.append(f"{run['renewed_twice']} tokens renewed twice")
    if run["refresh_calls"] != run["tokens"] or run["rejected"]:
        problems.append(f"{run['refresh_calls']} refresh calls for {run['tokens']} tokens, {run['rejected']} rejected")
    if run["still_expired"] or run["renewed_after_expiry"]:
        problems.append(f"{run['renewed_after_expiry']} renewed after expiry, {run['still_expired']} still expired")
    return problems


def print_table(runs: list[dict[str, Any]], database: str) -> None:
    cases = sorted({(r["tokens"], r["processes"]) for r in runs})
    print(f"\n{database}: ranges over runs (median (min-max, n runs)); durations in sandbox minutes")
    header = ["tokens", "procs", "bound", "renew all", "x bound", "calls", "twice", "missed", "rejected", "429s", "late"]
    print("  ".join(f"{h:>14}" if i >= 2 else f"{h:>7}" for i, h in enumerate(header)))
    for tokens, processes in cases:
        mine = [r for r in runs if (r["tokens"], r["processes"]) == (tokens, processes)]

        def cell(name: str, fmt: str = "{:.0f}", rows: list[dict[str, Any]] = mine) -> str:
            return spread([float(r[name]) for r in rows], fmt)

        cells = [
            f"{tokens:>7}",
            f"{processes:>7}",
            f"{mine[0]['bound_minutes']:>14.1f}",
            f"{cell('renew_all_minutes', '{:.1f}'):>14}",
            f"{cell('ratio_to_bound', '{:.3f}'):>14}",
            f"{cell('refresh_calls'):>14}",
            f"{cell('renewed_twice'):>14}",
            f"{cell('missed'):>14}",
            f"{cell('rejected'):>14}",
            f"{cell('rate_limited'):>14}",
            f"{cell('renewed_after_expiry'):>14}",
        ]
        print("  ".join(cells))
        print(
            f"{'':16}margin {mine[0]['margin_minutes']} min; per process {[r['per_process'] for r in mine]}; "
            f"still expired in the store at the end {[r['still_expired'] for r in mine]}; "
            f"seeding {spread([r['seed_seconds'] for r in mine], '{:.1f}')} s; refreshers' CPU per refresh "
            f"{spread([r['cpu_ms_per_refresh'] for r in mine], '{:.1f}')} ms"
        )


def plot(runs: list[dict[str, Any]], name: str, speed: float) -> Path:
    figure, axes = plot_axes(
        f"Refresh sweep: tokens renewed over time (sandbox clock x{speed:g}, limit 600/min)",
        xlabel="time since the refreshers started, in bounds (tokens / 600 per minute)",
        ylabel="tokens renewed, as a share of the tokens due",
    )
    cases = sorted({(run["tokens"], run["processes"]) for run in runs})
    for run in runs:
        points = run["progress"][:: max(1, len(run["progress"]) // 400)] + run["progress"][-1:]
        label = f"{run['tokens']:,} tokens, {run['processes']} process{'es' if run['processes'] > 1 else ''}"
        colour = f"C{cases.index((run['tokens'], run['processes']))}"  # every run of a case in its colour
        x, y = [p[0] / run["bound_minutes"] for p in points], [p[1] / run["tokens"] for p in points]
        axes.plot(x, y, color=colour, label=label)
    axes.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="the bound: 600 a minute")
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axes.legend(unique.values(), unique.keys(), fontsize=8)
    path = DOCS / f"{name.removesuffix('.png')}.png"
    figure.savefig(path)
    return path


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--speed", type=float, default=10.0, help="the sandbox clock's speed (x real time)")
    parser.add_argument("--budget-share", type=float, default=0.98, help="the refreshers' budget, as a share of the limit")
    parser.add_argument("--concurrency", type=int, default=16, help="refresh threads in all (split between processes)")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--smoke", action="store_true", help="a tiny run: 200 tokens, 1 and 3 processes, once")
    parser.add_argument("--plot", default="refresh_sweep", help="the PNG's name under docs/benchmarks/")
    args = parser.parse_args(argv)
    if args.smoke:
        args.tokens, args.runs, args.plot = [200], 1, None
    with benchmark_database(args.database_url, "sweep") as (database_url, database):
        print(
            f"refresh sweep on {database}: sandbox clock x{args.speed:g} (limit 600 per sandbox minute = "
            f"{LIMIT_PER_MINUTE * args.speed:,.0f} per real minute), budget {args.budget_share:.0%} of it, "
            f"Slack at 50 ms, {args.concurrency} threads per case; load {load_average()}"
        )
        runs = []
        for tokens in args.tokens:
            for processes in args.processes:
                for number in range(args.runs):
                    run = sweep(
                        database_url,
                        tokens,
                        processes,
                        speed=args.speed,
                        budget_share=args.budget_share,
                        concurrency=max(1, args.concurrency // processes),
                    )
                    runs.append(run)
                    problems = check(run)
                    print(
                        f"  {tokens} tokens, {processes} process(es), run {number + 1}: renewed all in "
                        f"{run['renew_all_minutes']:.1f} of a {run['bound_minutes']:.1f}-minute bound "
                        f"(x{run['ratio_to_bound']:.3f}); {run['refresh_calls']} calls, {run['rate_limited']} 429s; "
                        f"{'; '.join(problems) or 'every token renewed once, none late'}; load {load_average()}",
                        flush=True,
                    )
    print_table(runs, database)
    if args.plot:
        print(f"plot: {plot(runs, args.plot, args.speed)}")
    return runs


if __name__ == "__main__":
    main()
