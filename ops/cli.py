"""The operator's command line: the `tokens` group and its long-running commands; `db` (ops.db_cli), `keys`
(ops.keys_cli) and the other token commands (ops.tokens_cli, ops.tokens_actions) live beside it, and app.py imports
all three groups from here."""

from __future__ import annotations

import click

from ops.cli_support import FOR_TOKENS, PROGRESS, load_settings, open_token_stores
from ops.db_cli import db
from ops.keys_cli import keys
from ops.progress import Interrupted, Progress, interrupted_exit, progress_mode, run_interruptibly
from ops.tokens_actions import tokens_refresh, tokens_revoke
from ops.tokens_cli import tokens_list, tokens_show

__all__ = ["FOR_TOKENS", "db", "keys", "load_settings", "tokens"]


@click.group()
def tokens() -> None:
    """Token lifecycle commands: list, show, refresh and revoke tokens, the background refresher, and the migration
    to rotating tokens."""


_open = open_token_stores


@tokens.command("refresher")
@click.option("--window-minutes", default=120, show_default=True, help="Refresh tokens expiring within this many minutes.")
@click.option("--interval-seconds", default=60, show_default=True, help="Pause between sweeps.")
@click.option("--batch-size", default=100, show_default=True, help="Tokens read per batch.")
@click.option("--concurrency", default=4, show_default=True, help="Refreshes in flight at once.")
@click.option(
    "--max-per-minute",
    default=500,
    show_default=True,
    help="Refreshes a minute for every refresher of this app together (one budget in the database), under "
    "oauth.v2.access's 600; the rest is headroom for installs.",
)
@click.option(
    "--lease-seconds",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="How long a claimed batch stays this refresher's: it must outlast the batch's refreshes, and is how long the "
    "batch of a refresher that died waits before another takes it.",
)
@click.option("--once", is_flag=True, help="Sweep once and exit (for cron).")
@click.option(
    "--metrics-port",
    type=click.IntRange(min=1, max=65535),
    envvar="REFRESHER_METRICS_PORT",
    default=None,
    help="Serve /metrics, /readyz and /healthz on this port (METRICS_TOKEN protects /metrics) [REFRESHER_METRICS_PORT].",
)
@click.option("--metrics-host", default="0.0.0.0", show_default=True, help="Address the metrics port listens on.")
def tokens_refresher(
    window_minutes: int,
    interval_seconds: int,
    batch_size: int,
    concurrency: int,
    max_per_minute: int,
    lease_seconds: int,
    once: bool,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Run the refresh-ahead sweeper as a process of its own (several may run at once, on any hosts, sharing one
    refresh budget; with DELEGATE_REFRESHER=off the app's workers run none); SIGTERM stops it cleanly."""
    import signal
    from datetime import timedelta

    from ops.logs import configure_logging
    from stores.refresher import Refresher

    settings = load_settings(required=FOR_TOKENS)
    configure_logging(settings)  # LOG_LEVEL, LOG_FORMAT, and the redaction of secrets
    observer = None
    if metrics_port is not None:
        from ops.metrics import PrometheusObserver

        observer = PrometheusObserver()  # this process's refreshes: with DELEGATE_REFRESHER=off, nobody else has them
    stores = _open(observer=observer)
    refresher = Refresher(
        stores.manager,
        window=timedelta(minutes=window_minutes),
        batch_size=batch_size,
        concurrency=concurrency,
        max_per_minute=max_per_minute,
        interval=timedelta(seconds=interval_seconds),
        lease=timedelta(seconds=lease_seconds),
    )
    server = None
    if metrics_port is not None:
        from ops.health import Readiness
        from ops.metrics import MetricsPage
        from ops.refresher_http import refresher_endpoints
        from web.server import serve_threaded

        page = MetricsPage(stores.installation_store, token=settings.metrics_token)
        readiness = Readiness(stores, refresher=None if once else refresher)
        try:
            server, _ = serve_threaded(refresher_endpoints(page, readiness), metrics_host, metrics_port)
        except OSError as error:
            stores.close()
            raise click.ClickException(f"cannot listen on port {metrics_port} ({error.strerror})") from None
    try:
        if once:
            result = refresher.sweep_once()
            click.echo(
                f"{result.due} due, {result.refreshed} refreshed, {result.skipped} skipped, {result.failed} failed, "
                f"{result.set_aside} set aside (unused: renewed on their next use)"
            )
        else:
            # SIGTERM (systemd, a Procfile runner) as Ctrl-C: refreshes in flight finish and are saved, then it exits.
            signal.signal(signal.SIGTERM, lambda *_: refresher.stop(timeout=0))
            click.echo(f"refresher running: window {window_minutes} min, every {interval_seconds} s (Ctrl-C stops)")
            refresher.run_forever()
    except KeyboardInterrupt:
        refresher.stop()
    finally:
        if server is not None:
            server.shutdown()
        stores.close()


@tokens.command("exchange")
@click.option("--max-per-minute", default=50, show_default=True, help="Pace under oauth.v2.exchange's Tier 3 limit.")
@click.option("--limit", type=int, default=None, help="Stop after this many tokens (run again to resume).")
@PROGRESS
def tokens_exchange(max_per_minute: int, limit: int | None, progress: bool | None) -> None:
    """Exchange every stored long-lived token for a rotating one; safe to interrupt (Ctrl-C) and run again."""
    from stores.exchange import exchange_long_lived_tokens

    stores = _open()
    bar = Progress("exchanging", None, progress_mode(progress))
    try:
        with bar:
            report = run_interruptibly(
                lambda stop: exchange_long_lived_tokens(
                    stores.manager, max_per_minute=max_per_minute, limit=limit, stop=stop, on_progress=bar.update_to
                )
            )
    except Interrupted:
        raise interrupted_exit(bar.done, "token(s)") from None
    finally:
        stores.close()
    click.echo(
        f"{report.exchanged} exchanged, {report.already_exchanged} already exchanged, "
        f"{report.failed} failed, {report.remaining} left for the next run"
    )


@tokens.command("prune-events")
@click.option(
    "--older-than-days", type=click.IntRange(min=1), default=90, show_default=True, help="Age of events to delete."
)
def tokens_prune_events(older_than_days: int) -> None:
    """Delete token audit events older than the given number of days (the table never holds secrets)."""
    from datetime import timedelta

    from stores.schema import utcnow

    stores = _open()
    try:
        count = stores.installation_store.prune_events(utcnow() - timedelta(days=older_than_days))
    finally:
        stores.close()
    click.echo(f"deleted {count} audit event(s) older than {older_than_days} day(s)")


for _command in (tokens_list, tokens_show, tokens_refresh, tokens_revoke):
    tokens.add_command(_command)
