"""Day in the life: 100,000 connected people, 10% of whom use Delegate, over one day on the sandbox clock.

Each person's token has between 2 and 12 hours left at the day's start, as under a refresher that keeps up (its
margin is 2 hours); the active tenth last used Delegate within the past two days and each sends `--commands` commands
at random moments of the day; the others last used it 15 to 90 days ago. The day is lived twice from the same kind of
state: under the activity-aware policy (the refresher renews ahead only the tokens used within `--window` days,
Delegate's default 14) and under the activity-blind one (every token renewed ahead: the window made a century long).

The sandbox clock runs `--speed` times faster than real time (96 by default: a day in 15 minutes); the refresher runs
on that clock, and its budget and the sandbox's limit (600 oauth.v2.access calls a sandbox minute) are scaled alike,
so Slack's limit binds as it would over a real day. Slack answers refreshes after 50 ms. The activity-blind day costs
ten times the refreshes, more than this shared 2-core machine renews at that speed, so by default it is lived by a
random tenth of the people (`--blind-share 0.1`, same active share) and its counts are printed multiplied back (x10);
`--blind-share 1` lives it in full.

A command does what Delegate does with a slash command: authorize reads the person's token (noting the use, as the
app does), the work after the acknowledgement refreshes it first if it is about to expire or has expired (the
command "waited for a refresh"), then calls Slack with it (auth.test), refreshing and retrying once on
token_expired. Counted at the sandbox: refresh calls per policy, for active and inactive people.

    .venv/bin/python -m benchmarks.day_in_the_life [--people 100000] [--active 0.1] [--commands 2] [--window 14] \
        [--speed 96] [--blind-share 0.1] [--runs 1] [--database-url URL] [--smoke]
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.config import SandboxConfig
from sandbox.testing import running_sandbox
from stores import SQLAlchemyInstallationStore, create_database_engine, generate_key
from stores.rotation import TokenKey, TokenManager

from .report import DOCS, percentile, plot_axes, spread
from .scale_support import (
    LIMIT_PER_MINUTE,
    benchmark_database,
    drop_tables,
    expired_rows,
    fresh_tables,
    load_average,
    person_ids,
    seed_people,
    start_workers,
    stop_workers,
    worker_config,
)

DAY = 86400.0
HOUR = 3600.0
BLIND_WINDOW_DAYS = 36500  # a century: every token counts as used, so every one is renewed ahead


@dataclass
class Commands:
    """What the day's commands met: how many ran, waited for a refresh, failed, and how late they started."""

    ran: int = 0
    waited: int = 0
    failed: int = 0
    unsent: int = 0  # still waiting to start when the day ended (the machine could not keep up): never sent
    lags: list[float] = field(default_factory=list)
    waited_by: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_command(manager: TokenManager, client: WebClient, key: TokenKey, commands: Commands) -> None:
    """One slash command: authorize's read (no Slack call, no lock), then the work after the ack."""
    waited = False
    try:
        snapshot = manager.read(key)
        fresh = manager.token_for_request(key, snapshot)  # the ack path: notes the use, never refreshes inline
        assert snapshot is not None and snapshot.expires_at is not None
        if fresh.stale or snapshot.expires_at <= manager.clock():
            waited = True  # the work refreshes before it can act
            fresh = manager.fresh_token(key, wait=timedelta(seconds=30))
        try:
            client.auth_test(token=fresh.token)
        except SlackApiError as error:
            if error.response.get("error") != "token_expired":
                raise
            waited = True
            client.auth_test(token=manager.refresh_after_expired(key, fresh.token).token)
        outcome = "waited" if waited else "ran"
    except Exception:  # noqa: BLE001 - counted, the day goes on
        outcome = "failed"
    with commands.lock:
        commands.ran += 1
        if outcome == "waited":
            commands.waited += 1
            commands.waited_by.add(key.user_id)
        elif outcome == "failed":
            commands.failed += 1


def live_the_day(
    schedule: list[tuple[float, str]], manager: TokenManager, api_url: str, to_real: Any, threads: int, ends: float
) -> Commands:
    """Send each command at its sandbox moment (converted to real time), from a few threads, until the day `ends`
    (real time): what could not start by then is counted as unsent."""
    commands = Commands()
    cursor = iter(schedule)
    cursor_lock = threading.Lock()

    def work() -> None:
        client = WebClient(base_url=api_url, retry_handlers=[])
        while True:
            with cursor_lock:
                item = next(cursor, None)
            if item is None:
                return
            at, user = item
            if time.time() > ends:
                with commands.lock:
                    commands.unsent += 1
                continue
            delay = to_real(at) - time.time()
            if delay > 0:
                time.sleep(delay)
            with commands.lock:
                commands.lags.append(max(0.0, -delay))
            run_command(manager, client, TokenKey("", "T0SANDBOX1", user), commands)

    workers = [threading.Thread(target=work, name=f"day-command-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return commands


def one_day(database_url: str, policy: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Seed the day's start, start the refresher(s) and send the day's commands; counts at the sandbox."""
    rng = random.Random(seed)
    share = 1.0 if policy == "aware" else args.blind_share
    people = person_ids(round(args.people * share))
    active = set(rng.sample(people, round(args.active * len(people))))
    config = SandboxConfig(rate_limits={"oauth.v2.access": LIMIT_PER_MINUTE})
    engine = create_database_engine(database_url, pool_size=args.threads + 2)
    keys = generate_key()
    with running_sandbox(config) as sandbox:
        sandbox.add_fault("oauth.v2.access", latency_ms=50)
        store = SQLAlchemyInstallationStore(config.client_id, engine, encryption_keys=keys)
        fresh_tables(store)
        start = sandbox.now()
        # Between 2 hours (the margin, plus its largest jitter) and 12 hours left, as under a refresher that keeps up,
        # counted from the day's start: after the seeding (at real speed) and the refreshers' start (at full speed).
        lead = 300 + 3 * args.speed
        expires = [start + lead + 130 * 60 + (12 * HOUR - 130 * 60) * rng.random() for _ in people]
        last_used = [
            start - (2 * DAY * rng.random() if person in active else (15 + 75 * rng.random()) * DAY) for person in people
        ]
        seed_seconds = seed_people(sandbox, store, people, expires, last_used, installed_at=start - 120 * DAY)
        schedule = sorted((start + DAY * rng.random(), person) for person in active for _ in range(args.commands))
        sandbox.state.clock.set_speed(args.speed)
        timeline = sandbox.state.clock.timeline()
        start_at = time.time() + 3
        day_starts = timeline["base"] + (start_at - timeline["anchor"]) * args.speed
        shift = day_starts - start  # the day starts when the refreshers do; the commands keep their time of day
        schedule = [(at + shift, person) for at, person in schedule]

        def to_real(at: float) -> float:
            return float(timeline["anchor"] + (at - timeline["base"]) / args.speed)

        window = args.window if policy == "aware" else BLIND_WINDOW_DAYS
        settings = {
            "margin_minutes": 120,
            "max_per_minute": LIMIT_PER_MINUTE * args.speed * 0.98,
            "concurrency": args.concurrency,
            "active_window_days": window,
            "start_at": start_at,
        }
        workers = start_workers([worker_config(sandbox, database_url, keys, **settings)] * args.processes)
        clock = sandbox.state.clock.now_utc
        app_store = SQLAlchemyInstallationStore(config.client_id, engine, encryption_keys=keys, clock=clock)
        manager = TokenManager(
            app_store,
            client_secret=config.client_secret,
            api_url=sandbox.api_url,
            clock=clock,
            active_window=timedelta(days=window),
        )
        try:
            day_ends = to_real(day_starts + DAY)
            commands = live_the_day(schedule, manager, sandbox.api_url, to_real, args.threads, day_ends)
            time.sleep(max(0.0, day_ends - time.time()))  # the rest of the day
            end = sandbox.now()
        finally:
            per_process = stop_workers(workers)
            manager.close()
        counters = sandbox.counters()
        by_user = counters["refreshes_by_user"]
        active_left_expired = expired_active(app_store, active, datetime.fromtimestamp(end, UTC))
        figures = {
            "policy": policy,
            "share": share,
            "window_days": window,
            "refresh_calls": counters["grants"].get("refresh_token", 0) + counters["grant_failures"].get("refresh_token", 0),
            "refresh_calls_active": sum(n for user, n in by_user.items() if user in active),
            "refresh_calls_inactive": sum(n for user, n in by_user.items() if user not in active),
            "people_renewed": len(by_user),
            "active_renewed": sum(1 for user in by_user if user in active),
            "people": len(people),
            "active": len(active),
            "rejected": counters["grant_failures"].get("refresh_token", 0),
            "rate_limited": counters["rate_limited"].get("oauth.v2.access", 0),
            "commands": commands.ran,
            "commands_waited": commands.waited,
            "people_waited": len(commands.waited_by),
            "commands_failed": commands.failed,
            "commands_unsent": commands.unsent,
            "lag_p99_ms": 1000 * percentile(commands.lags, 0.99),
            "active_left_expired": active_left_expired,
            "expired_at_end": expired_rows(app_store, datetime.fromtimestamp(end, UTC)),
            "sandbox_hours": (end - day_starts) / HOUR,
            "seed_seconds": seed_seconds,
            "per_process": [p.get("refreshed", p) for p in per_process],
            "hourly": hourly(sandbox.refreshes(), day_starts),
        }
        sandbox.state.clock.set_speed(1.0)
    drop_tables(store)
    engine.dispose()
    return figures


def expired_active(store: SQLAlchemyInstallationStore, active: set[str], at: datetime) -> int:
    """Active people whose stored token had expired by the end of the day."""
    from sqlalchemy import select

    c = store.installations.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(c.user_id).where(c.user_token_expires_at < at)).scalars().all()
    return sum(1 for user in rows if user in active)


def hourly(records: list[dict[str, Any]], day_starts: float) -> list[int]:
    """Refresh calls in each hour of the day."""
    counts = [0] * 24
    for record in records:
        hour = int((record["at"] - day_starts) // HOUR)
        if 0 <= hour < 24:
            counts[hour] += 1
    return counts


def print_table(days: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.people:,} people, {args.active:.0%} active, {args.commands} commands each a day; "
        f"ranges over runs (median (min-max, n runs))"
    )
    rows = [
        ("refresh calls in the day", "refresh_calls"),
        ("  for active people", "refresh_calls_active"),
        ("  for inactive people", "refresh_calls_inactive"),
        ("refreshes rejected", "rejected"),
        ("429s", "rate_limited"),
        ("commands", "commands"),
        ("commands that waited for a refresh", "commands_waited"),
        ("people who waited", "people_waited"),
        ("commands failed", "commands_failed"),
        ("commands not sent by the day's end (lagging)", "commands_unsent"),
        ("active people's tokens expired at the end", "active_left_expired"),
        ("tokens expired at the end (all)", "expired_at_end"),
        ("commands' start lag p99 (ms, real)", "lag_p99_ms"),
    ]
    names = ("aware", "blind")
    blind_title = "activity-blind" + (f" (x{1 / args.blind_share:g} of a sample)" if args.blind_share < 1 else "")
    print(f"{'':44}{'activity-aware (window ' + str(args.window) + ' d)':>34}{blind_title:>34}")
    for label, name in rows:
        counted = name not in ("lag_p99_ms", "rejected", "rate_limited")  # counts of people or calls: scaled back
        cells = [
            spread([float(d[name]) / (d["share"] if counted else 1) for d in days if d["policy"] == policy], "{:.0f}")
            for policy in names
        ]
        print(f"{label:44}" + "".join(f"{cell:>34}" for cell in cells))
    aware = [d["refresh_calls"] for d in days if d["policy"] == "aware"]
    blind = [d["refresh_calls"] / d["share"] for d in days if d["policy"] == "blind"]
    if aware and blind and min(aware):
        print(
            f"{'blind / aware refresh calls':44}{spread([b / a for a, b in zip(aware, blind, strict=True)], '{:.1f}'):>34}"
        )
    budget = LIMIT_PER_MINUTE * 60 * 24
    print(
        f"Slack's limit allows {budget:,} refreshes a day; a token lives 12 hours, so refreshing ahead costs about 2 a "
        f"person a day: {2 * args.people:,} for every person here, {2 * round(args.active * args.people):,} for the "
        f"active ones; refresh-ahead for everyone stops fitting at {budget // 2:,} people"
    )


def plot(days: list[dict[str, Any]], name: str) -> Path:
    figure, axes = plot_axes(
        "Day in the life: refresh calls per hour of the sandbox day",
        xlabel="hour of the day (sandbox clock)",
        ylabel="oauth.v2.access refresh calls",
    )
    for policy, colour in (("aware", "tab:green"), ("blind", "tab:red")):
        for number, day in enumerate(d for d in days if d["policy"] == policy):
            label = f"activity-{policy}" + (f" (window {day['window_days']} days)" if policy == "aware" else "")
            label += f" (x{1 / day['share']:g} of a sample)" if day["share"] < 1 else ""
            counts = [n / day["share"] for n in day["hourly"]]
            axes.plot(range(24), counts, color=colour, alpha=0.8, label=label if number == 0 else None)
    axes.axhline(LIMIT_PER_MINUTE * 60, color="black", linestyle="--", linewidth=1, label="Slack's limit (600 a minute)")
    axes.set_yscale("log")
    axes.legend(fontsize=8)
    path = DOCS / f"{name.removesuffix('.png')}.png"
    figure.savefig(path)
    return path


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--active", type=float, default=0.1, help="the share of people who use Delegate")
    parser.add_argument("--commands", type=int, default=2, help="commands each active person sends in the day")
    parser.add_argument("--window", type=int, default=14, help="the activity window of the aware policy, in days")
    parser.add_argument("--speed", type=float, default=96.0, help="the sandbox clock's speed (96: a day in 15 minutes)")
    parser.add_argument("--blind-share", type=float, default=0.1, help="the share of people the activity-blind day has")
    parser.add_argument("--processes", type=int, default=1, help="refresher processes")
    parser.add_argument("--concurrency", type=int, default=16, help="refresh threads per refresher process")
    parser.add_argument("--threads", type=int, default=8, help="threads sending commands")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--policies", nargs="+", default=["aware", "blind"], choices=["aware", "blind"])
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--smoke", action="store_true", help="a tiny day: 120 people, 25%% active, a day in 40 s")
    parser.add_argument("--plot", default="day_in_the_life", help="the PNG's name under docs/benchmarks/")
    args = parser.parse_args(argv)
    if args.smoke:
        args.people, args.active, args.speed, args.runs, args.plot, args.blind_share = 120, 0.25, DAY / 40, 1, None, 1.0
    with benchmark_database(args.database_url, "day") as (database_url, database):
        print(
            f"day in the life on {database}: sandbox clock x{args.speed:g} (a day in {DAY / args.speed / 60:.1f} real "
            f"minutes; limit 600 per sandbox minute = {LIMIT_PER_MINUTE * args.speed:,.0f} per real minute, the "
            f"refresher's budget 98% of it), Slack at 50 ms, {args.processes} refresher process(es); load {load_average()}"
        )
        days = []
        for number in range(args.runs):
            for policy in args.policies:
                day = one_day(database_url, policy, args, seed=number)
                days.append(day)
                print(
                    f"  run {number + 1}, activity-{policy}: {day['refresh_calls']:,} refresh calls "
                    f"({day['refresh_calls_active']:,} active, {day['refresh_calls_inactive']:,} inactive), "
                    f"{day['commands']:,} commands ({day['commands_unsent']} not sent), "
                    f"{day['commands_waited']} waited for a refresh, "
                    f"{day['commands_failed']} failed, {day['active_left_expired']} active people's tokens expired; "
                    f"{day['rate_limited']} 429s; seeding {day['seed_seconds']:.1f} s; load {load_average()}",
                    flush=True,
                )
    print_table(days, args)
    if args.plot:
        print(f"plot: {plot(days, args.plot)}")
    return days


if __name__ == "__main__":
    main()
