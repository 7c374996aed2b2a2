"""The sandbox's aiohttp application, and SandboxServer, which runs it on a background thread."""

from __future__ import annotations

import asyncio
import html
import logging
import socket
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler

from sandbox import admin, directory, links, oauth, web_api
from sandbox.config import SandboxConfig
from sandbox.errors import SlackError
from sandbox.guard import ADMIN_GUARD, ADMIN_TOKEN_HEADER, AdminGuard, new_admin_token
from sandbox.pages import STATIC, render
from sandbox.persistence import StateFile
from sandbox.runtime import RUNTIME, Runtime
from sandbox.state import SandboxState

logger = logging.getLogger(__name__)
T = TypeVar("T")


async def api_method(request: web.Request) -> web.StreamResponse:
    """`/api/<method>`: faults first, then the call, then any events it caused."""
    runtime = request.app[RUNTIME]
    state = runtime.state
    name = request.match_info["method"]
    try:
        params = await web_api.read_params(request)
    except SlackError as error:
        return web_api.json_answer(error.body(), status=error.status)
    early, drop = await web_api.apply_fault_before(state, name)
    with state.lock:
        state.api_calls[name] += 1
    if early is not None:
        return early
    wait = state.rate_limited(name)
    if wait is not None:
        return web_api.json_answer({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(wait)})
    status, headers = 200, None
    try:
        if name == "apps.connections.open":
            web_api.check_app_token(state, web_api.bearer_token(request) or params.get("token"))
            answer = {"ok": True, "url": runtime.hub.open_connection_url(f"ws://{request.host}")}
        else:
            answer = web_api.dispatch(
                state,
                name,
                params,
                bearer=web_api.bearer_token(request),
                authorization=request.headers.get("Authorization"),
                base_url=runtime.base_url,
            )
    except SlackError as error:
        answer, status, headers = error.body(), error.status, error.headers
    runtime.delivery.flush_events()
    if drop:
        state.persist()  # the call acted: what it issued is kept even though its answer never arrives
        logger.info("dropping the connection after %s acted (injected fault)", name)
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=499)
    return web_api.json_answer(answer, status=status, headers=headers)


async def console_page(request: web.Request) -> web.StreamResponse:
    """The console: a page to act as sandbox users and watch what the app does, carrying the admin token it uses."""
    guard = request.app[ADMIN_GUARD]
    try:
        guard.check_host(request)
    except SlackError as error:
        return web.Response(status=error.status, text=f"{error.error}: {error.extra['detail']}\n")
    body = render("console.html", admin_token=html.escape(guard.token, quote=True))
    headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": "frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }
    return web.Response(text=body, content_type="text/html", headers=headers)


async def link(request: web.Request) -> web.StreamResponse:
    """The Socket Mode WebSocket endpoint."""
    return await request.app[RUNTIME].hub.handle(request)


@web.middleware
async def persist_changes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Write the state's changes to its file (if any) before the answer leaves, also when the handler raised."""
    try:
        return await handler(request)
    finally:
        request.app[RUNTIME].state.persist()


async def _on_startup(app: web.Application) -> None:
    await app[RUNTIME].delivery.start()


async def _on_shutdown(app: web.Application) -> None:
    await app[RUNTIME].hub.close_all()


async def _on_cleanup(app: web.Application) -> None:
    await app[RUNTIME].delivery.close()


def create_app(
    config: SandboxConfig | None = None,
    *,
    base_url: str = "http://127.0.0.1:4000/",
    state: SandboxState | None = None,
    port: int | None = None,
    admin_token: str | None = None,
    on_reset: Callable[[], None] | None = None,
) -> web.Application:
    """The sandbox as an aiohttp application.

    `base_url` is where the app reaches it (for response_url, links); `port` is the one it listens on (default:
    base_url's), which the admin API's loopback Host must name; `admin_token` defaults to a fresh random one;
    `on_reset` runs when the console starts over, before the sandbox forgets its state (to empty the app's data).
    """
    runtime = Runtime.build(config or SandboxConfig(), state)
    runtime.base_url = base_url
    runtime.on_reset = on_reset
    app = web.Application(middlewares=[persist_changes, admin.admin_errors])
    app[RUNTIME] = runtime
    app[ADMIN_GUARD] = AdminGuard.create(base_url, port=port, token=admin_token)
    app.router.add_route("*", "/api/{method}", api_method)
    app.router.add_get("/oauth/v2/authorize", oauth.authorize_page)
    app.router.add_post("/oauth/v2/authorize", oauth.authorize_decision)
    app.router.add_get("/link/", link)
    app.router.add_get("/", console_page)
    app.router.add_get("/console", console_page)
    app.router.add_get("/archives/{channel}/{message}", links.archives_page)
    app.router.add_get("/apps/{app}", directory.listing_page)
    app.router.add_static("/sandbox/static/", STATIC)
    admin.add_routes(app)
    app.on_startup.append(_on_startup)
    app.on_shutdown.append(_on_shutdown)
    app.on_cleanup.append(_on_cleanup)
    return app


class SandboxServer:
    """A sandbox on a background thread with its own event loop; every method is safe to call from any thread.

    With `state_path`, the sandbox loads its state from that SQLite file (created owner-only if missing) and writes
    every change there before the answer that reveals it; without one it keeps everything in memory. `on_reset` is
    called (on a worker thread) when the console's "Start over" is pressed, before the sandbox forgets its state.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_path: str | Path | None = None,
        on_reset: Callable[[], None] | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.host = host
        self.port = port
        self.on_reset = on_reset
        self.state = SandboxState(self.config)
        if state_path is not None:
            store = StateFile(state_path)
            try:
                store.load(self.state)
            except BaseException:
                store.close()
                raise
            self.state.store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None
        self._admin_token = new_admin_token()

    def __repr__(self) -> str:
        return f"SandboxServer(url={self.url if self._runner else None!r}, app_id={self.config.app_id!r})"

    # ----- lifecycle -----

    def start(self) -> SandboxServer:
        """Bind the port (0 picks a free one), start serving and return self."""
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"sandbox:{self.port}", daemon=True)
        self._thread.start()
        self._admin_token = new_admin_token()  # each start is a new run with a token of its own
        self._app = create_app(
            self.config,
            base_url=self.url,
            state=self.state,
            port=self.port,
            admin_token=self._admin_token,
            on_reset=self.on_reset,
        )

        async def serve() -> web.AppRunner:
            runner = web.AppRunner(
                self._app,  # type: ignore[arg-type]
                handle_signals=False,
                access_log_class=RedactedAccessLogger,
                access_log=logging.getLogger("sandbox.access"),
            )
            await runner.setup()
            await web.SockSite(runner, sock).start()
            return runner

        try:
            self._runner = self._run(serve())
        except BaseException:
            sock.close()
            self._stop_loop()
            raise
        return self

    def stop(self) -> None:
        """Close connections, stop serving, join the thread and write the last changes to the state file (if any)."""
        if self._loop is None:
            return
        if self._runner is not None:
            self._run(self._runner.cleanup())
            self._runner = None
        self._stop_loop()
        self.state.persist()

    def close(self) -> None:
        """Stop, and close the state file: the last step before another SandboxServer opens the same file."""
        self.stop()
        if self.state.store is not None:
            self.state.store.close()
            self.state.store = None

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def drain() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await loop.shutdown_asyncgens()

        asyncio.run_coroutine_threadsafe(drain(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop, self._thread = None, None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the sandbox is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _call_and_persist(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            self.state.persist()

    def _admin(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        return self._run(self._call_and_persist(function, self.runtime, *args, **kwargs))

    # ----- URLs -----

    @property
    def runtime(self) -> Runtime:
        """The running sandbox's parts."""
        if self._app is None:
            raise RuntimeError("the sandbox is not running")
        return self._app[RUNTIME]

    @property
    def url(self) -> str:
        """The root URL, e.g. `http://127.0.0.1:PORT/` (the console)."""
        return f"http://{self.host}:{self.port}/"

    @property
    def admin_token(self) -> str:
        """This run's admin token (a new one at each start), for the `X-Sandbox-Admin-Token` header of admin requests."""
        return self._admin_token

    @property
    def admin_headers(self) -> dict[str, str]:
        """Headers an admin API request needs: the admin token and a JSON content type."""
        return {ADMIN_TOKEN_HEADER: self._admin_token, "Content-Type": "application/json"}

    @property
    def api_url(self) -> str:
        """The Web API base URL for `WebClient(base_url=...)`."""
        return f"{self.url}api/"

    @property
    def authorize_url(self) -> str:
        """The consent page, for Bolt's `authorization_url`."""
        return f"{self.url}oauth/v2/authorize"

    # ----- admin -----

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox clock forward; returns its new time."""
        return float(self._admin(admin.advance_clock, seconds)["now"])

    def now(self) -> float:
        """The sandbox clock's time."""
        return self.state.now()

    def expire_tokens(self, user_id: str, kind: str | None = None) -> int:
        """Make a user's rotating tokens (or only `kind`: "user"/"bot") expire now; returns how many."""
        return int(self._admin(admin.expire_tokens, user_id, kind)["expired"])

    def revoke_tokens(self, user_id: str) -> dict[str, list[str]]:
        """Revoke every token of a user and send tokens_revoked."""
        return dict(self._admin(admin.revoke_tokens, user_id)["tokens"])

    def deactivate_user(self, user_id: str) -> None:
        """Deactivate a user (account_inactive; user_change event with deleted=true)."""
        self._admin(admin.deactivate_user, user_id)

    def reactivate_user(self, user_id: str) -> None:
        """Undo deactivate_user."""
        self._admin(admin.reactivate_user, user_id)

    def uninstall(self, team_id: str | None = None) -> dict[str, list[str]]:
        """Uninstall the app from a team (default: the first); sends tokens_revoked and app_uninstalled."""
        return dict(self._admin(admin.uninstall, team_id)["tokens"])

    def add_fault(self, method: str, **spec: Any) -> None:
        """Inject a fault: latency_ms, status (429 + retry_after, 5xx), error, drop_after_action, times."""
        self._admin(admin.add_fault, {"method": method, **spec})

    def clear_faults(self, method: str | None = None) -> None:
        """Stop injecting faults (all, or one method's)."""
        self._admin(admin.clear_faults, method)

    def configure(self, **changes: Any) -> None:
        """Change run-time knobs: token_rotation, expires_in, refresh_grace_seconds, refresh_error_name, ..."""
        self._admin(admin.configure, changes)

    def install(
        self, user_id: str, *, scope: str = "", user_scope: str = "", team_id: str | None = None, org_wide: bool = False
    ) -> dict[str, Any]:
        """Install or connect as a user without the browser (into `team_id`, default their home workspace, or on Grid
        their whole org); returns oauth.v2.access's answer (with tokens)."""
        return dict(self._admin(admin.install, user_id, scope, user_scope, team_id, org_wide))

    def approve(
        self,
        user_id: str,
        *,
        scope: str = "",
        user_scope: str = "",
        redirect_uri: str | None = None,
        state: str = "",
        team_id: str | None = None,
        org_wide: bool = False,
    ) -> str:
        """Press Allow on the consent page as a user (for `team_id`, or on Grid their whole org); returns the redirect
        URL carrying code and state."""
        answer = self._admin(admin.approve, user_id, scope, user_scope, redirect_uri, state, team_id, org_wide)
        return str(answer["redirect_url"])

    def api_call_log(self, method: str | None = None) -> list[dict[str, Any]]:
        """The authenticated Web API calls so far (the last 10,000), oldest first: method and whose token made it
        (kind, user, team, enterprise, org-level or not; the token redacted)."""
        with self.state.lock:
            return [dict(call) for call in self.state.call_log if method is None or call["method"] == method]

    def say(self, user_id: str, channel_id: str, text: str) -> dict[str, Any]:
        """Post a message as a person typing in Slack; returns it (with `ts`, for message shortcuts)."""
        return dict(self._admin(admin.say, user_id, channel_id, text)["message"])

    def start_over(self) -> None:
        """What the console's "Start over" does: the `on_reset` hook, then the sandbox forgets its state."""
        self._run(admin.start_over(self.runtime))

    def counters(self) -> dict[str, Any]:
        """Web API calls per method and OAuth grants per grant type (refresh_token, authorization_code, exchange)."""
        return self.state.counters()

    def messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        """Channel messages kept so far (with `user`, `as` = user/bot and `via`)."""
        with self.state.lock:
            return [dict(m) for m in self.state.messages if channel_id is None or m["channel"] == channel_id]

    def ephemerals(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Ephemeral messages kept so far, optionally only those shown to `user_id`."""
        with self.state.lock:
            return [dict(m) for m in self.state.ephemerals if user_id is None or m["to_user"] == user_id]

    def tokens(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Tokens issued so far, redacted, with their state (active/expired/revoked)."""
        return [token for token in self.state.token_summary() if user_id is None or token["user_id"] == user_id]

    def refreshes(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Every refresh_token grant served so far, oldest first: when, whose, and how long the old token had left."""
        return self.state.refresh_history(user_id)

    def open_views(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Modals and home tabs that are open, newest last."""
        with self.state.lock:
            return [
                {**view.to_payload(self.config.app_id), "user_id": view.user_id, "errors": dict(view.errors)}
                for view in self.state.views.values()
                if not view.closed and (user_id is None or view.user_id == user_id)
            ]

    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery to the app so far, with transport, HTTP status, the app's answer and any error."""
        with self.state.lock:
            return [dict(record) for record in self.state.deliveries]

    def wait_for_events(self, timeout: float = 5.0) -> None:
        """Block until queued events (tokens_revoked, app_uninstalled, ...) have been delivered."""
        self._run(self.runtime.delivery.wait_idle(timeout), timeout + 5)

    def request_socket_disconnect(self) -> int:
        """Send `disconnect` to every Socket Mode connection; returns how many were asked."""
        return int(self._run(self.runtime.hub.request_disconnect()))

    @property
    def socket_mode_connected(self) -> bool:
        """Whether the app holds a Socket Mode connection."""
        return self.runtime.hub.connected

    # ----- deliveries -----

    async def _deliver_and_persist(self, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            return await admin.deliver(self.runtime, kind, args)
        finally:
            self.state.persist()

    def _deliver(self, kind: str, **args: Any) -> dict[str, Any]:
        return dict(self._run(self._deliver_and_persist(kind, args)))

    def send_slash_command(
        self, user_id: str, command: str, text: str = "", *, channel_id: str | None = None, team_id: str | None = None
    ) -> dict[str, Any]:
        """Run a slash command as a user (on Grid, from `team_id`, a workspace of theirs); returns the delivery record
        (status, body = the app's answer, message)."""
        return self._deliver(
            "slash_command", user_id=user_id, command=command, text=text, channel_id=channel_id, team_id=team_id
        )

    def send_global_shortcut(self, user_id: str, callback_id: str, *, team_id: str | None = None) -> dict[str, Any]:
        """Run a global shortcut as a user (on Grid, in `team_id`)."""
        return self._deliver("global_shortcut", user_id=user_id, callback_id=callback_id, team_id=team_id)

    def send_message_shortcut(
        self, user_id: str, callback_id: str, *, channel_id: str, message_ts: str, team_id: str | None = None
    ) -> dict[str, Any]:
        """Run a message shortcut as a user on a stored message (on Grid, from `team_id`)."""
        return self._deliver(
            "message_shortcut",
            user_id=user_id,
            callback_id=callback_id,
            channel_id=channel_id,
            message_ts=message_ts,
            team_id=team_id,
        )

    def send_view_submission(self, user_id: str, view_id: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """Submit an open modal; `values` is Slack's state.values or `{block_id: {action_id: "text"}}`."""
        return self._deliver("view_submission", user_id=user_id, view_id=view_id, values=values)

    def send_view_closed(self, user_id: str, view_id: str) -> dict[str, Any]:
        """Cancel an open modal."""
        return self._deliver("view_closed", user_id=user_id, view_id=view_id)

    def send_block_action(
        self,
        user_id: str,
        action_id: str,
        *,
        value: str = "",
        block_id: str = "",
        view_id: str | None = None,
        channel_id: str | None = None,
        message_ts: str | None = None,
        text: str | None = None,
        url: str | None = None,
        team_id: str | None = None,
    ) -> dict[str, Any]:
        """Click a button in a view or a message (`text`: its label; `url`: a link button's, sent along as Slack does;
        `team_id`: on Grid, the workspace it is clicked in)."""
        return self._deliver(
            "block_action",
            user_id=user_id,
            action_id=action_id,
            value=value,
            block_id=block_id,
            view_id=view_id,
            channel_id=channel_id,
            message_ts=message_ts,
            text=text,
            url=url,
            team_id=team_id,
        )

    def send_app_home_opened(self, user_id: str, *, team_id: str | None = None) -> dict[str, Any]:
        """The person opens the app's Home tab (app_home_opened, with the published view if any; on Grid in
        `team_id`)."""
        return self._deliver("app_home_opened", user_id=user_id, team_id=team_id)

    def send_event(self, event: dict[str, Any], *, team_id: str | None = None) -> dict[str, Any]:
        """Deliver an Events API event (wrapped in Slack's event_callback envelope) and wait for the answer."""
        return self._deliver("event", event=event, team_id=team_id)


# The console reads these every second while it is open: logged at DEBUG when they succeed, so an idle console is quiet.
QUIET_READ_PREFIXES = ("/sandbox/admin/", "/sandbox/static/")


class RedactedAccessLogger(AbstractAccessLogger):
    """Access log lines without query strings or response_url keys, so no token reaches the log.

    Successful reads of the admin API and static files (the console's polling) go to DEBUG; everything else, Web API
    calls and failures included, to INFO.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = request.path
        if path.startswith("/sandbox/response/"):
            path = "/sandbox/response/…"
        quiet = request.method in ("GET", "HEAD") and response.status < 400 and path.startswith(QUIET_READ_PREFIXES)
        level = logging.DEBUG if quiet else logging.INFO
        self.logger.log(level, "%s %s %s %.1f ms", request.method, path, response.status, time * 1000)
