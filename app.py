"""Delegate's composition root and command line: settings -> engine -> store -> token manager -> Bolt App.

Run modes (python app.py run):
- HTTP on PORT under gunicorn with worker processes (the default when a Slack app is configured);
- Socket Mode when SLACK_APP_TOKEN is set, plus a small HTTP server for the OAuth pages;
- the sandbox when no Slack app is configured (or with --sandbox): an offline slack.com and Delegate together.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import click
from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware
from slack_sdk import WebClient
from slack_sdk.http_retry import default_retry_handlers
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.oauth.installation_store import Installation

from listeners.manifest import MANIFEST_PATH
from ops.cli import load_settings
from ops.logs import ContextExecutor, configure_logging, gunicorn_log_config, log_context_middleware
from ops.wiring import Stores, open_stores
from settings import Settings, required_for_run
from stores.authorize import DelegateAuthorize, no_person_token_in_bot_client
from stores.database import delete_all_rows
from stores.files import private_directory, sqlite_companions
from stores.rotation import TokenManager
from stores.schema import utcnow
from web.oauth import DelegateOAuthFlow, ErrorRecordingClient, build_oauth_settings, connect_url
from web.pages import Guide
from web.server import serve_threaded
from web.wsgi import DelegateWSGI

if TYPE_CHECKING:
    from ops.metrics import PrometheusObserver
    from sandbox.server import SandboxServer

logger = logging.getLogger("delegate")


# -- composition ------------------------------------------------------------------------------------------------


class DelegateServices:
    """What listeners reach through context["delegate"]: the token manager, the connect links and the clock."""

    def __init__(
        self,
        manager: TokenManager,
        *,
        base_url: str,
        user_scopes: Sequence[str],
        clock: Callable[[], datetime] | None = None,
        support_url: str | None = None,
        privacy_url: str | None = None,
    ):
        self.manager = manager
        self.base_url = base_url.rstrip("/")
        self.user_scopes = tuple(user_scopes)
        self.clock = clock or manager.clock  # what "now" is for every answer: the token manager's time
        self.support_url = support_url  # DELEGATE_SUPPORT_URL and DELEGATE_PRIVACY_URL, for App Home
        self.privacy_url = privacy_url

    def connect_url(self, *, team_id: str | None, user_scopes: Sequence[str] | None = None) -> str:
        return connect_url(self.base_url, team_id=team_id, user_scopes=user_scopes)

    def __deepcopy__(self, memo: dict[int, object]) -> DelegateServices:
        return self  # shared by every request, thread-safe; Bolt deep-copies contexts for lazy listeners

    def __repr__(self) -> str:
        return f"DelegateServices(base_url={self.base_url!r})"


def public_base_url(settings: Settings) -> str:
    """Where people's browsers reach this app: from SLACK_REDIRECT_URI, else localhost on PORT."""
    if settings.redirect_uri:
        parsed = urlparse(settings.redirect_uri)
        return f"{parsed.scheme}://{parsed.netloc}"
    return f"http://localhost:{settings.port}"


def guide_for(settings: Settings) -> Guide:
    """What the install pages tell a new person: the manifest's commands, and the operator's support and privacy links."""
    from listeners.manifest import slash_command_details

    commands = [(f"{entry.command} {entry.usage_hint}".strip(), entry.description) for entry in slash_command_details()]
    return Guide(commands=commands, support_url=settings.support_url, privacy_url=settings.privacy_url)


def create_app(settings: Settings, stores: Stores, observer: PrometheusObserver | None = None) -> App:
    """The Bolt app: our authorize (no Slack call per request), OAuth on our stores, and every listener; with an
    observer, its acknowledgements, OAuth results and failed Slack calls are counted (ops/metrics.py)."""
    from listeners import register_listeners
    from listeners.manifest import bot_scopes, user_scopes
    from stores.observe import NO_OBSERVER, with_api_error_counter

    counted = observer if observer is not None else NO_OBSERVER

    base_url = public_base_url(settings)
    assert settings.client_id and settings.client_secret and settings.signing_secret
    requested_user_scopes = settings.user_scopes.split(",") if settings.user_scopes else list(user_scopes())
    services = DelegateServices(
        stores.manager,
        base_url=base_url,
        user_scopes=requested_user_scopes,
        clock=stores.clock,
        support_url=settings.support_url,
        privacy_url=settings.privacy_url,
    )

    def show_home(installation: Installation) -> None:
        """Right after someone connects or installs, their App Home tab shows it (before the success page answers, so
        that the tab is true when the person gets back to Slack; the bot token's renewal is bounded to 2 s)."""
        from listeners.context import Person
        from listeners.home import bot_client_for, republish_home

        team = None if installation.is_enterprise_install else installation.team_id
        # Through the token manager: a bot token past its 12 hours is renewed first, never sent expired.
        client = bot_client_for(
            stores.manager,
            enterprise_id=installation.enterprise_id,
            team_id=team,
            is_enterprise_install=installation.is_enterprise_install,
            base_url=settings.api_url,
            wait=timedelta(seconds=2),
            timeout=5,
        )
        person = Person(
            enterprise_id=installation.enterprise_id,
            team_id=team,
            user_id=installation.user_id,
            workspace_id=installation.team_id,
        )
        # The connection is saved whatever happens here: a failed publish is logged, and fixed at the next opening.
        republish_home(client, services, person)

    oauth_settings = build_oauth_settings(
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        bot_scopes=settings.scopes.split(",") if settings.scopes else bot_scopes(),
        user_scopes=requested_user_scopes,
        redirect_uri=settings.redirect_uri or f"{base_url}/slack/oauth_redirect",
        authorization_url=settings.authorize_url,
        installation_store=stores.installation_store,
        state_store=stores.state_store,
        slack_home_url=settings.slack_home_url,
        after_install=show_home,
        observer=observer,
        guide=guide_for(settings),
    )
    flow = DelegateOAuthFlow(
        clock=stores.clock,
        client=ErrorRecordingClient(
            base_url=settings.api_url, timeout=10, retry_handlers=with_api_error_counter(default_retry_handlers(), counted)
        ),
        logger=logging.getLogger("delegate.oauth"),
        settings=oauth_settings,
    )
    client = WebClient(
        base_url=settings.api_url,
        timeout=10,
        # Bolt copies these into the client it builds for each request: the counter, last, sees every failed call once.
        retry_handlers=with_api_error_counter(
            [ConnectionErrorRetryHandler(max_retry_count=1), RateLimitErrorRetryHandler(max_retry_count=2)], counted
        ),
    )
    app = App(
        signing_secret=settings.signing_secret,
        client=client,
        installation_store=stores.installation_store,
        # Authorize also puts DelegateServices in context["delegate"]: one step per request instead of a middleware.
        authorize=DelegateAuthorize(stores.manager, services=services),  # type: ignore[arg-type] # an Authorize, which Bolt accepts
        oauth_flow=flow,
        process_before_response=True,
        # Lazy listeners make the Slack calls; Bolt's default pool (cores + 4 threads) queues them behind each other.
        # Their threads carry the request's log context (request id, person, command) from the ack (ops/logs.py).
        listener_executor=ContextExecutor(max_workers=32, thread_name_prefix="delegate-listener"),
        token_verification_enabled=False,
        user_facing_authorize_error_message=(
            f"Delegate is not installed in this workspace yet. An admin can add it at {base_url}/slack/install"
        ),
    )

    @app.error
    def unexpected_error(error: Exception, body: dict[str, Any], context: BoltContext) -> BoltResponse | None:
        """Anything unforeseen (the database down, say): logged with its traceback; a person gets a sentence."""
        logger.error("unhandled error in a Slack request: %s", type(error).__name__, exc_info=error)
        context["delegate_ack_failed"] = True  # the acknowledgement counts as an error (ops.metrics.ACK_FAILED)
        if isinstance(body, dict) and body.get("command"):
            text = "Delegate hit a problem on its side and did nothing. Try again in a minute."
            return BoltResponse(
                status=200,
                body=json.dumps({"response_type": "ephemeral", "text": text}),
                headers={"content-type": "application/json"},
            )
        return None  # Slack retries events and shows its own notice for interactions

    app.use(RequestSteps(services))  # our three steps after authorize, in one middleware Bolt calls directly

    # Bolt tries listeners in registration order: commands lead; revocation events are ours (listeners/events/).
    register_listeners(app)
    if observer is not None:
        from ops.metrics import instrument_acks

        instrument_acks(app, observer)
    return app


class RequestSteps(Middleware):
    """Our global middleware: the log context, no person's token in the bot client, and context["delegate"].

    One Middleware subclass, which Bolt calls with the request itself, instead of three middleware functions: for each
    function Bolt builds every argument it could inject (payload views, say, respond and more) before calling it, which
    cost about 50 us of the ack's 480 on this machine (in-process CPU per ack: 457-481 us before, 415-427 after).
    """

    def __init__(self, services: DelegateServices):
        self.services = services

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse | None:  # noqa: A002
        context = req.context
        return log_context_middleware(
            context, req.body, lambda: no_person_token_in_bot_client(context, lambda: self._delegate(context, next))
        )

    def _delegate(self, context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:  # noqa: A002
        """Bolt runs no authorize for tokens_revoked and app_uninstalled; their listeners need context["delegate"] too."""
        if context.get("delegate") is None:
            context["delegate"] = self.services
        return next()


# For every refresher of this app on every host together: they share one budget in the database (stores.budget). The
# 100 a minute left under oauth.v2.access's 600 are the headroom for installs and the rare refresh after an ack.
REFRESHES_PER_MINUTE = 500


def create_wsgi_app(
    settings: Settings | None = None,
    *,
    refresher: bool | None = None,
    processes: int = 1,
    clock: Callable[[], datetime] = utcnow,
) -> DelegateWSGI:
    """The WSGI application for a production server: gunicorn 'app:create_wsgi_app()'.

    Each process runs a refresh-ahead sweeper unless DELEGATE_REFRESHER=off (or `refresher=False`); all of them, on
    every host, draw from one refresh budget in the database. `processes` is how many app processes this host runs,
    for the database pool's default size (DATABASE_POOL_SIZE). `clock` is the time every token decision and every
    answer is made on: real time, except in sandbox mode (the sandbox's).
    """
    from ops.health import Readiness
    from ops.metrics import MetricsPage, PrometheusObserver  # imports prometheus_client: after run() set its folder

    settings = settings or Settings.from_env()
    configure_logging(settings)
    if os.environ.get("DELEGATE_PROCESSES"):
        logger.warning("DELEGATE_PROCESSES is no longer used: every refresher shares one budget through the database")
    observer = PrometheusObserver()
    stores = open_stores(settings, clock=clock, observer=observer, processes=processes)
    app = create_app(settings, stores, observer)
    sweeper = None
    if settings.refresher == "workers" if refresher is None else refresher:
        from stores.refresher import Refresher

        sweeper = Refresher(stores.manager, interval=timedelta(seconds=60), max_per_minute=REFRESHES_PER_MINUTE)
        sweeper.start()

    assert settings.signing_secret  # create_app has checked it
    # /healthz: the process answers, no database (ops/health.py says why); /readyz: the four checks.
    wsgi = DelegateWSGI(
        app,
        signing_secret=settings.signing_secret,
        readiness=Readiness(stores, refresher=sweeper).answer,
        metrics=MetricsPage(stores.installation_store, token=settings.metrics_token),
        trusted_proxies=settings.trusted_proxies,
        guide=guide_for(settings),
    )
    wsgi.stores = stores
    wsgi.refresher = sweeper
    return wsgi


def create_sandbox_wsgi_app(settings: Settings, sandbox: SandboxServer) -> DelegateWSGI:
    """Delegate for sandbox mode: on the sandbox's clock, its refresher woken at once whenever that clock jumps.

    So "+11 hours" in the console makes a token due and the refresher renews it within a second, as refresh-ahead
    would during those hours, instead of at its next one-minute sweep. Production keeps real time and its pacing.
    """
    clock = sandbox.state.clock
    wsgi = create_wsgi_app(settings, clock=clock.now_utc)
    refresher = wsgi.refresher
    if refresher is not None:
        clock.on_advance(lambda _now: refresher.wake())
    return wsgi


# -- servers ------------------------------------------------------------------------------------------------------


def gunicorn_options(*, bind: str, workers: int, log_level: str, log_format: str = "text") -> dict[str, Any]:
    """Production server settings: gunicorn's processes, each serving through waitress, so that slow clients never
    hold a worker (web/server.py says why and what was measured); with LOG_FORMAT=json its logs are JSON lines too."""
    options: dict[str, Any] = {
        "bind": bind,
        "workers": workers,
        "worker_class": "web.server.WaitressWorker",
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": "-",
        # %(U)s is the path without the query string, which may carry an OAuth code
        "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss',
        "loglevel": log_level.lower(),
    }
    if log_format == "json":
        options["logconfig_dict"] = gunicorn_log_config(log_level)
    return options


def serve_gunicorn(load: Callable[[], Any], options: dict[str, Any]) -> None:
    """Run a WSGI app under gunicorn; load() runs in each worker process (its own engine, app and refresher)."""
    from gunicorn.app.base import BaseApplication

    class DelegateServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in options.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            return load()

    DelegateServer().run()


# -- command line ---------------------------------------------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Delegate: a Slack app that acts as its users, with rotating user tokens done right."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.command("run")
@click.option(
    "--sandbox", "use_sandbox", is_flag=True, help="Run against the built-in sandbox (the default with no Slack app)."
)
@click.option("--port", type=int, default=None, help="HTTP port (default: PORT or 3000).")
@click.option("--sandbox-port", type=int, default=4000, show_default=True, help="The sandbox's port in sandbox mode.")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes in HTTP mode [default: 2 x cores + 1].")
@click.option(
    "--fresh", is_flag=True, help="Sandbox mode: start over, forgetting the sandbox's workspace and Delegate's tokens."
)
@click.option(
    "--admin-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Sandbox mode: write the sandbox's admin API token to this file (owner-only), for scripts and tests.",
)
@click.option(
    "--grid",
    is_flag=True,
    help="Sandbox mode: an Enterprise Grid organisation (two workspaces, a shared channel), kept in data/grid/.",
)
def run(
    use_sandbox: bool,
    port: int | None,
    sandbox_port: int,
    workers: int | None,
    fresh: bool,
    admin_token_file: Path | None,
    grid: bool = False,
) -> None:
    """Run Delegate: against Slack when a Slack app is configured, else against the built-in sandbox."""
    # One round: every malformed value and, when any Slack setting is given, every missing one (never a silent sandbox).
    settings = load_settings(required=required_for_run(os.environ, sandbox=use_sandbox))
    if port is not None:
        settings = settings.replace(port=port)
    configure_logging(settings)
    if use_sandbox or not settings.client_id:
        run_with_sandbox(settings, sandbox_port=sandbox_port, fresh=fresh, admin_token_file=admin_token_file, grid=grid)
        return
    from stores.migrations import upgrade

    upgrade(settings.database_url, pgbouncer=settings.database_pgbouncer)
    if settings.app_token:
        check_connections(settings, processes=1)
        run_socket_mode(settings)
    else:
        workers = workers or 2 * (os.cpu_count() or 1) + 1
        check_connections(settings, processes=workers)
        click.echo(f"Delegate on http://0.0.0.0:{settings.port}/ ({workers} workers): request URL /slack/events")
        from ops.metrics_dir import prepare_multiprocess_dir, remove_multiprocess_dir, worker_exited

        # Before any worker imports prometheus_client: every worker's metrics in one folder, summed by /metrics.
        folder, made_here = prepare_multiprocess_dir()
        options = gunicorn_options(
            bind=f"0.0.0.0:{settings.port}", workers=workers, log_level=settings.log_level, log_format=settings.log_format
        )
        options["child_exit"] = worker_exited
        master = os.getpid()
        try:
            serve_gunicorn(lambda: create_wsgi_app(settings, processes=workers), options)
        finally:
            # A worker leaves through here too (gunicorn ends a forked worker with SystemExit, which unwinds this very
            # stack): only the master, at its own exit, removes the folder every worker still writes to.
            if made_here and os.getpid() == master:
                remove_multiprocess_dir(folder)


def check_connections(settings: Settings, *, processes: int) -> str | None:
    """Warn (once, at start, in the log) when this host's processes could open more connections than PostgreSQL
    accepts; returns the warning."""
    from ops.capacity import check_max_connections, default_pool_size, plan
    from ops.wiring import engine_for

    pool_size = settings.database_pool_size or default_pool_size(processes)
    connections = plan(processes, pool_size, refresher_in_workers=settings.refresher == "workers")
    engine = engine_for(settings, processes=processes)
    try:
        warning = check_max_connections(engine, connections)
    finally:
        engine.dispose()
    return warning


def run_socket_mode(settings: Settings) -> None:
    """Socket Mode for Slack's requests, and a small HTTP server for the OAuth pages."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    wsgi = create_wsgi_app(settings)
    server, _ = serve_threaded(wsgi, "0.0.0.0", settings.port)
    click.echo(f"Delegate in Socket Mode; OAuth pages on http://0.0.0.0:{settings.port}/")
    handler = SocketModeHandler(wsgi.app, app_token=settings.app_token)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM as Ctrl-C, then a clean exit: the refresher stops after its refreshes in flight, and the exit waits
        # for the work after the ack on the listener executor's threads (SIGTERM's default would cut both off).
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        handler.start()
    except KeyboardInterrupt:
        pass
    finally:
        handler.close()
        server.shutdown()
        wsgi.stop()


def sandbox_encryption_key(settings: Settings) -> str:
    """The key ring for sandbox mode: TOKEN_ENCRYPTION_KEYS, else a key generated once and kept owner-only."""
    if settings.encryption_keys:
        return settings.encryption_keys
    from stores.crypto import generate_key

    path = private_directory(settings.data_dir) / "sandbox-encryption.key"
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(generate_key())
    os.chmod(path, 0o600)
    return path.read_text().strip()


SANDBOX_DATABASE = "sandbox.sqlite3"  # Delegate's tokens in sandbox mode (unless DATABASE_URL names another database)
SANDBOX_STATE = "sandbox-slack.sqlite3"  # the sandbox's own workspace, tokens and messages


def keep_or_drop_sandbox_data(settings: Settings, *, fresh: bool, own_database: bool) -> None:
    """Delegate's sandbox database and the sandbox's state file hold the same tokens: keep both, or delete both.

    Both go with --fresh, and when only one of them is there (the other was deleted, or an earlier version ran).
    With `own_database` False (DATABASE_URL names a database of the person's own) only the state file is Delegate's
    to delete. The generated encryption key stays: it encrypts nothing once the database is gone.
    """
    data_dir = private_directory(settings.data_dir)
    state, database = data_dir / SANDBOX_STATE, data_dir / SANDBOX_DATABASE
    if not fresh and (state.exists() == database.exists() or not own_database):
        return
    if not fresh:
        logger.info("sandbox mode: %s or %s is missing, so both start over", state, database)
    for path in [state, database] if own_database else [state]:
        for file in (path, *sqlite_companions(path)):
            file.unlink(missing_ok=True)


def directory_links(settings: Settings, base_url: str) -> dict[str, str]:
    """The links a Marketplace listing shows, where Delegate serves them (/privacy, /support), for those that are set."""
    from web.wsgi import PRIVACY_PATH, SUPPORT_PATH

    wanted = (("Privacy policy", settings.privacy_url, PRIVACY_PATH), ("Support", settings.support_url, SUPPORT_PATH))
    return {label: f"{base_url}{path}" for label, url, path in wanted if url}


def run_with_sandbox(
    settings: Settings, *, sandbox_port: int, fresh: bool = False, admin_token_file: Path | None = None, grid: bool = False
) -> None:
    """Start the sandbox and Delegate together on the embedded defaults, and print the one URL to open.

    Both keep their state in the data folder across restarts; `fresh` (--fresh) starts both over, and so does the
    console's "Start over" (the sandbox's on_reset empties Delegate's tables).
    """
    from sandbox.cli import write_owner_only
    from sandbox.config import SandboxConfig, organisation
    from sandbox.persistence import StateFileError
    from sandbox.server import SandboxServer
    from stores.migrations import upgrade

    base = f"http://127.0.0.1:{settings.port}"
    redirect = f"{base}/slack/oauth_redirect"
    if grid:  # the organisation's tokens and the single workspace's are never mixed: each in a folder of its own
        settings = settings.replace(data_dir=settings.data_dir / "grid")
    config = SandboxConfig.from_manifest(
        MANIFEST_PATH,
        redirect_urls=[redirect],
        request_url=f"{base}/slack/events",
        links={"Add Delegate to the workspace": f"{base}/slack/install", "Connect my account": f"{base}/slack/connect"},
        directory_links=directory_links(settings, base),
        **(organisation() if grid else {}),
    )
    config.links["Delegate in the Marketplace"] = f"/apps/{config.app_id}"  # the listing: "Add to Slack" direct install
    own_database = not os.environ.get("DATABASE_URL")
    keep_or_drop_sandbox_data(settings, fresh=fresh, own_database=own_database)

    def empty_delegate() -> None:
        delete_all_rows(wsgi.stores.engine)

    try:
        sandbox = SandboxServer(
            config, port=sandbox_port, state_path=settings.data_dir / SANDBOX_STATE, on_reset=empty_delegate
        )
    except StateFileError as error:
        raise click.ClickException(str(error)) from None
    try:
        sandbox.start()
    except OSError as error:
        sandbox.close()
        raise click.ClickException(
            f"the sandbox cannot listen on port {sandbox_port} ({error.strerror}); pick another with --sandbox-port"
        ) from None
    if admin_token_file is not None:
        write_owner_only(admin_token_file, sandbox.admin_token)
    database_url = settings.database_url
    if own_database:
        # Sandbox tokens are good only with this sandbox: they live in a database of their own, beside its state.
        database_url = f"sqlite:///{(settings.data_dir / SANDBOX_DATABASE).resolve()}"
    settings = settings.replace(
        client_id=config.client_id,
        client_secret=config.client_secret,
        signing_secret=config.signing_secret,
        api_url=sandbox.api_url,
        authorize_url=sandbox.authorize_url,
        redirect_uri=redirect,
        encryption_keys=sandbox_encryption_key(settings),
        database_url=database_url,
        slack_home_url=sandbox.url,  # no Slack client to open: "Open Slack" leads to the console, which stands in for it
    )
    upgrade(settings.database_url)
    wsgi = create_sandbox_wsgi_app(settings, sandbox)
    if fresh and not own_database:
        delete_all_rows(wsgi.stores.engine)  # a database of the person's own: emptied, not deleted
    try:
        server, _ = serve_threaded(wsgi, "127.0.0.1", settings.port)
    except OSError as error:
        sandbox.close()
        raise click.ClickException(
            f"Delegate cannot listen on port {settings.port} ({error.strerror}); pick another with --port"
        ) from None
    click.echo(
        "\nDelegate is running against the built-in Slack sandbox.\n"
        f"  Open {sandbox.url} to try it: pick a person, install or connect, run commands.\n"
        f"  (Delegate itself listens on {base}/; Ctrl-C stops both.)\n"
    )
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # `kill` stops both as cleanly as Ctrl-C does
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        sandbox.close()


def _register_commands() -> None:
    from ops.cli import db, keys, tokens

    for group in (db, keys, tokens):
        cli.add_command(group)
    try:
        from sandbox.cli import sandbox_command
    except ImportError:  # the sandbox package is optional for operators
        return
    cli.add_command(sandbox_command, name="sandbox")


_register_commands()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
