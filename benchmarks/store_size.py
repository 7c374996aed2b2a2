"""Authorize and find_installation with 1,000 and 1,000,000 stored people, on SQLite and on PostgreSQL.

One process, no HTTP: the store is seeded with the bulk path (`store.save_many`, the seeding time is printed), then
a random stored person at a time is authorized the way a request is (`DelegateAuthorize`: one indexed read, the bot
and user tokens decrypted, the user client built) and looked up with `find_installation` (what a stock Bolt app using
the store calls); slack_sdk's own store, seeded with the same people in its own tables, answers `find_installation`
alongside for reference. The same database grows from the small size to the large one. Each size is measured in
several runs and printed as ranges; the target is p99 at the large size within 2x p99 at the small one.

    .venv/bin/python -m benchmarks.store_size [--database-url URL] [--sizes 1000,1000000] [--runs 3] [--samples 2000]
        [--no-sqlite] [--no-stock] [--plot docs/benchmarks/store_size.png] [--save FILE.json]
    .venv/bin/python -m benchmarks.store_size --merge sqlite.json postgresql.json   # one report and plot of both
    .venv/bin/python -m benchmarks.store_size --smoke    # a few thousand people, SQLite only, no plot: a quick check

PostgreSQL runs in a schema of its own on that server, dropped after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from statistics import median
from typing import Any

from slack_bolt import BoltContext
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore as StockStore
from sqlalchemy import func, insert, select

from benchmarks.ack_throughput import scoped_database
from benchmarks.report import DOCS, percentile, plot_axes, spread
from stores import SQLAlchemyInstallationStore, create_database_engine, generate_key
from stores.authorize import DelegateAuthorize
from stores.rotation import TokenManager

CLIENT_ID = "1111111111.2222222222"
PEOPLE_PER_TEAM = 1000
TARGET = 2.0


def person(index: int) -> tuple[str, str]:
    """(team, user) of the index-th person: a thousand people per workspace."""
    return f"T{index // PEOPLE_PER_TEAM:06d}", f"U{index:08d}"


def installations(start: int, stop: int, now: float) -> Iterator[Installation]:
    """People start..stop-1; the first of each workspace installed the app (a bot token), the others connected."""
    for index in range(start, stop):
        team, user = person(index)
        installer = index % PEOPLE_PER_TEAM == 0
        yield Installation(
            app_id="A0BENCH", team_id=team, team_name=f"Team {team}", user_id=user,
            bot_token=f"xoxe.xoxb-1-{team}" if installer else None,
            bot_refresh_token=f"xoxe-1-b{team}" if installer else None,
            bot_token_expires_at=int(now) + 40000 if installer else None, bot_id="B0BENCH" if installer else None,
            bot_user_id="U0BOT" if installer else None, bot_scopes="commands,chat:write" if installer else "",
            user_token=f"xoxe.xoxp-1-{user}", user_refresh_token=f"xoxe-1-{user}", user_token_expires_at=int(now) + 40000,
            user_scopes="chat:write,users.profile:write", token_type="bot" if installer else "user", installed_at=now,
        )  # fmt: skip


def seed_stock(stock: StockStore, start: int, stop: int, now: float) -> None:
    """The same people in slack_sdk's tables, a chunk of plain rows at a time (it has no encryption to do)."""
    moment = datetime.fromtimestamp(now)  # noqa: DTZ006 - slack_sdk stores naive datetimes
    for low in range(start, stop, 10000):
        rows = []
        for index in range(low, min(stop, low + 10000)):
            team, user = person(index)
            rows.append(
                {
                    "client_id": CLIENT_ID,
                    "app_id": "A0BENCH",
                    "team_id": team,
                    "user_id": user,
                    "bot_token": f"xoxe.xoxb-1-{team}",
                    "bot_id": "B0BENCH",
                    "bot_user_id": "U0BOT",
                    "bot_scopes": "commands",
                    "user_token": f"xoxe.xoxp-1-{user}",
                    "user_refresh_token": f"xoxe-1-{user}",
                    "user_token_expires_at": moment,
                    "user_scopes": "chat:write",
                    "is_enterprise_install": False,
                    "installed_at": moment,
                }  # fmt: skip
            )
        with stock.engine.begin() as conn:
            conn.execute(insert(stock.installations), rows)


def latencies(call: Callable[[int], Any], people: int, samples: int, rng: random.Random) -> tuple[float, ...]:
    """(p50, p99) of the microseconds per call, each for a random stored person, in wall time and in this thread's
    CPU time (which leaves out the time other processes on a loaded machine take, and the database server's)."""
    for _ in range(min(200, samples // 4)):
        call(rng.randrange(people))
    wall, cpu = [], []
    for _ in range(samples):
        index = rng.randrange(people)
        started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
        call(index)
        cpu.append((time.thread_time_ns() - started_cpu) / 1000)
        wall.append((time.perf_counter_ns() - started) / 1000)
    return percentile(wall, 0.5), percentile(wall, 0.99), percentile(cpu, 0.5), percentile(cpu, 0.99)


class Seeded:
    """One database holding `size` people, in Delegate's store (and slack_sdk's), with the calls measured on it."""

    def __init__(self, label: str, url: str, size: int, stock: bool):
        self.engine = create_database_engine(url, pool_size=2)
        self.store = SQLAlchemyInstallationStore(
            CLIENT_ID, self.engine, encryption_keys=generate_key(), bots_table_name=f"size{size}_workspaces",
            installations_table_name=f"size{size}_user_tokens", token_events_table_name=f"size{size}_token_events",
        )  # fmt: skip
        self.store.create_tables()
        self.manager = TokenManager(self.store, client_secret="bench-secret", background_refresh=False)
        self.authorize = DelegateAuthorize(self.manager)
        self.reference = None
        if stock:
            self.reference = StockStore(
                client_id=CLIENT_ID, engine=self.engine, bots_table_name=f"size{size}_slack_bots",
                installations_table_name=f"size{size}_slack_installations",
            )  # fmt: skip
        now, started = time.time(), time.perf_counter()
        self.store.save_many(installations(0, size, now), chunk_size=2000)
        self.seed_seconds = time.perf_counter() - started
        message = f"{label}: seeded {size:,} people in {self.seed_seconds:.1f} s ({size / self.seed_seconds:,.0f}/s)"
        if self.reference is not None:
            self.reference.create_tables()
            started = time.perf_counter()
            seed_stock(self.reference, 0, size, now)
            message += f", slack_sdk's tables in {time.perf_counter() - started:.1f} s"
        print(message, flush=True)
        with self.engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(self.store.installations)).scalar_one()
        assert stored == size, f"{label}: {stored} people stored, {size} seeded"

    def operations(self) -> list[tuple[str, Callable[[int], None]]]:
        calls = [("authorize", self.authorize_one), ("find_installation", self.find_one)]
        return calls + ([("slack_sdk find_installation", self.stock_find_one)] if self.reference is not None else [])

    def authorize_one(self, index: int) -> None:
        team, user = person(index)
        result = self.authorize(context=BoltContext(), enterprise_id=None, team_id=team, user_id=user)
        assert result is not None and result.user_token == f"xoxe.xoxp-1-{user}" and result.bot_token is not None

    def find_one(self, index: int) -> None:
        team, user = person(index)
        found = self.store.find_installation(enterprise_id=None, team_id=team, user_id=user)
        assert found is not None and found.user_token == f"xoxe.xoxp-1-{user}"

    def stock_find_one(self, index: int) -> None:
        team, user = person(index)
        assert self.reference is not None
        assert self.reference.find_installation(enterprise_id=None, team_id=team, user_id=user) is not None

    def close(self) -> None:
        self.manager.close()
        self.engine.dispose()


def measure_database(label: str, url: str, sizes: Sequence[int], runs: int, samples: int, stock: bool) -> dict[int, Any]:
    """Seed one set of tables per size, then measure the sizes in turn within each run, so that the machine's load in
    any minute falls on every size alike."""
    rng = random.Random(12)
    databases: dict[int, Seeded] = {}
    try:
        for size in sizes:
            databases[size] = Seeded(label, url, size, stock)
        results: dict[int, Any] = {
            size: {"seed_seconds": db.seed_seconds, **{name: [] for name, _ in db.operations()}}
            for size, db in databases.items()
        }
        for _ in range(runs):
            for size, db in databases.items():
                for name, call in db.operations():
                    results[size][name].append(latencies(call, size, samples, rng))
    finally:
        for db in databases.values():
            db.close()
    return results


def report(results: dict[str, dict[int, Any]], sizes: Sequence[int]) -> dict[str, float]:
    """Print the table and the ratios; returns each (database, operation)'s p99 ratio, large size over small."""
    ratios: dict[str, float] = {}
    heads = ("p50 µs", "p99 µs", "CPU p50 µs", "CPU p99 µs")
    print(f"\n{'database':11}{'people':>11}  {'operation':28}" + "".join(f"{h:>28}" for h in heads))
    for label, by_size in results.items():
        for size in sizes:
            for name, runs in by_size[size].items():
                if not isinstance(runs, list):
                    continue
                cells = [spread([r[i] for r in runs], "{:.0f}") for i in range(4)]
                print(f"{label:11}{size:>11,}  {name:28}" + "".join(f"{c:>28}" for c in cells))
    small, large = sizes[0], sizes[-1]
    print()
    for label, by_size in results.items():
        for name in by_size[small]:
            if not isinstance(by_size[small][name], list):
                continue
            for index, kind in ((1, "p99"), (3, "CPU p99")):
                ratio = median([r[index] for r in by_size[large][name]]) / median([r[index] for r in by_size[small][name]])
                ratios[f"{label} {name} {kind}"] = ratio
                verdict = "within" if ratio <= TARGET else "over"
                print(
                    f"{label} {name}: {kind} at {large:,} people is {ratio:.2f}x its value at {small:,} "
                    f"(medians of runs; target {TARGET:.0f}x: {verdict})"
                )
    return ratios


def plot(results: dict[str, dict[int, Any]], sizes: Sequence[int], path: Path) -> None:
    figure, axes = plot_axes(
        "Latency against stored people (median of runs; bars: range)", xlabel="stored people", ylabel="µs per call"
    )
    series = [(label, name) for label, by_size in results.items() for name, runs in by_size[sizes[0]].items()]
    colours = {
        pair: f"C{number}"
        for number, pair in enumerate(p for p in series if isinstance(results[p[0]][sizes[0]][p[1]], list))
    }
    for label, by_size in results.items():
        for name in by_size[sizes[0]]:
            if (label, name) not in colours:
                continue
            for index, (quantile, style) in enumerate((("p50", "--"), ("p99", "-"))):
                values = [[r[index] for r in by_size[size][name]] for size in sizes]
                middle = [sorted(v)[len(v) // 2] for v in values]
                errors = [
                    [m - min(v) for m, v in zip(middle, values, strict=True)],
                    [max(v) - m for m, v in zip(middle, values, strict=True)],
                ]
                axes.errorbar(
                    sizes,
                    middle,
                    yerr=errors,
                    linestyle=style,
                    marker="o",
                    capsize=3,
                    color=colours[(label, name)],
                    label=f"{label} {name} {quantile}",
                )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path)
    print(f"plot: {path}")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server to measure too")
    parser.add_argument("--sizes", default="1000,1000000", help="stored people, comma-separated, smallest first")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=2000, help="calls per operation per run")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-stock", action="store_true", help="leave slack_sdk's store out")
    parser.add_argument("--plot", default=None, help=f"PNG to write (default {DOCS / 'store_size.png'}; none with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="1,000 and 2,000 people, 2 runs of 200 calls")
    parser.add_argument("--save", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--merge", nargs="+", default=None, help="report and plot figures saved by earlier runs")
    args = parser.parse_args(argv)
    if args.merge:
        saved = [json.loads(Path(name).read_text()) for name in args.merge]
        sizes = saved[0]["sizes"]
        merged = {db: {int(n): f for n, f in by_size.items()} for run in saved for db, by_size in run["results"].items()}
        ratios = report(merged, sizes)
        plot(merged, sizes, Path(args.plot) if args.plot else DOCS / "store_size.png")
        return {"results": merged, "ratios": ratios, "sizes": sizes}
    if args.smoke:
        args.sizes, args.runs, args.samples = "1000,2000", 2, 200
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)", flush=True)
    results: dict[str, dict[int, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        if not args.no_sqlite:
            url = f"sqlite:///{Path(folder) / 'size.sqlite3'}"
            results["SQLite"] = measure_database("SQLite", url, sizes, args.runs, args.samples, not args.no_stock)
        if args.database_url:
            scoped, drop = scoped_database(args.database_url)
            try:
                assert scoped is not None
                results["PostgreSQL"] = measure_database(
                    "PostgreSQL", scoped, sizes, args.runs, args.samples, not args.no_stock
                )
            finally:
                drop()
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.save:
        Path(args.save).write_text(json.dumps({"sizes": sizes, "results": results}))
    ratios = report(results, sizes)
    path = Path(args.plot) if args.plot else (None if args.smoke else DOCS / "store_size.png")
    if path is not None:
        plot(results, sizes, path)
    return {"results": results, "ratios": ratios, "sizes": sizes}


if __name__ == "__main__":
    main()
