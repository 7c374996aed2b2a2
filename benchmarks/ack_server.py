"""One app under benchmark, in a process of its own: stock Bolt as its docs show it, or Delegate.

Usage: python -m benchmarks.ack_server CONFIG_JSON. Serves the app on the given port with the same threaded WSGI
server for both, plus GET /__stats (SQL statements run so far), and prints "ready" once it listens.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore as StockStore
from sqlalchemy import event
from sqlalchemy.exc import TimeoutError

from app import create_app, gunicorn_options, serve_gunicorn, serve_threaded
from ops.metrics_dir import prepare_multiprocess_dir
from ops.wiring import open_stores
from settings import Settings
from stores import create_database_engine
from stores.migrations import upgrade
from web.wsgi import DelegateWSGI

COMMAND = "/post-as-me"


def installation_from(answer: dict[str, Any], user_id: str) -> Installation:
    """The Installation Bolt's OAuth flow would build from this oauth.v2.access answer."""
    person = answer["authed_user"]
    return Installation(
        app_id=answer["app_id"],
        team_id=answer["team"]["id"],
        team_name=answer["team"]["name"],
        bot_token=answer["access_token"],
        bot_id=answer.get("bot_id"),
        bot_user_id=answer["bot_user_id"],
        bot_scopes=answer["scope"],
        bot_refresh_token=answer.get("refresh_token"),
        bot_token_expires_in=answer.get("expires_in"),
        user_id=user_id,
        user_token=person["access_token"],
        user_scopes=person["scope"],
        user_refresh_token=person.get("refresh_token"),
        user_token_expires_in=person.get("expires_in"),
        token_type="bot",
    )


def stock_app(config: dict[str, Any]) -> tuple[Any, Any]:
    """Stock Bolt as its OAuth docs show it: slack_sdk's SQLAlchemy store, built-in rotation, ack then act."""
    engine = create_database_engine(config["database_url"])
    store = StockStore(client_id=config["client_id"], engine=engine)
    store.create_tables()
    store.save(installation_from(config["install"], config["user_id"]))
    app = App(
        signing_secret=config["signing_secret"],
        client=WebClient(base_url=config["api_url"]),
        oauth_settings=OAuthSettings(
            client_id=config["client_id"],
            client_secret=config["client_secret"],
            scopes=["commands", "chat:write"],
            user_scopes=["chat:write"],
            installation_store=store,
        ),
    )

    @app.command(COMMAND)
    def post_as_me(ack: Any, command: dict[str, Any], client: WebClient, context: Any) -> None:
        ack()
        client.chat_postMessage(token=context.user_token, channel=command["channel_id"], text=command["text"])

    return SlackRequestHandler(app), engine


def delegate_app(config: dict[str, Any]) -> tuple[Any, Any]:
    """Delegate's real app, built as app.py builds it."""
    settings = Settings.from_env(
        {
            "SLACK_CLIENT_ID": config["client_id"],
            "SLACK_CLIENT_SECRET": config["client_secret"],
            "SLACK_SIGNING_SECRET": config["signing_secret"],
            "SLACK_API_URL": config["api_url"],
            "TOKEN_ENCRYPTION_KEYS": config["keys"],
            "DATABASE_URL": config["database_url"],
            **({"DATABASE_POOL_SIZE": str(config["pool_size"])} if config.get("pool_size") else {}),
        }
    )
    upgrade(settings.database_url)
    if config.get("metrics_dir"):  # as `python app.py run` does: every metric in prometheus_client's multiprocess files
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = config["metrics_dir"]
        prepare_multiprocess_dir()
    from ops.metrics import PrometheusObserver  # after the folder is set, as in app.create_wsgi_app

    observer = PrometheusObserver()
    stores = open_stores(settings, observer=observer)
    stores.installation_store.save(installation_from(config["install"], config["user_id"]))
    return DelegateWSGI(create_app(settings, stores, observer), signing_secret=config["signing_secret"]), stores.engine


def watch_pool(engine: Any) -> dict[str, Any]:
    """The pool's figures, kept up to date: connections in use at most, the longest wait for one, timeouts."""
    figures: dict[str, Any] = {"pool_size": getattr(engine.pool, "size", lambda: 0)(), "max_in_use": 0}
    figures.update(in_use=0, max_checkout_wait_ms=0.0, pool_timeouts=0)
    lock = threading.Lock()
    connect = engine.pool.connect

    def timed_connect() -> Any:
        started = time.perf_counter()
        try:
            connection = connect()
        except TimeoutError:
            with lock:
                figures["pool_timeouts"] += 1
            raise
        waited = 1000 * (time.perf_counter() - started)
        with lock:
            figures["max_checkout_wait_ms"] = max(figures["max_checkout_wait_ms"], waited)
        return connection

    def checkout(*_: Any) -> None:
        with lock:
            figures["in_use"] += 1
            figures["max_in_use"] = max(figures["max_in_use"], figures["in_use"])

    def checkin(*_: Any) -> None:
        with lock:
            figures["in_use"] -= 1

    engine.pool.connect = timed_connect
    event.listen(engine.pool, "checkout", checkout)
    event.listen(engine.pool, "checkin", checkin)
    return figures


def main() -> None:
    config = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.WARNING)
    wsgi, engine = stock_app(config) if config["variant"] == "stock" else delegate_app(config)
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    pool = watch_pool(engine)

    def with_stats(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/__stats":
            start_response("200 OK", [("content-type", "application/json")])
            return [json.dumps({"statements": statements[0], **pool}).encode()]
        return wsgi(environ, start_response)

    if config.get("server") == "gunicorn":
        serve_with_gunicorn(with_stats, config["port"])
    else:
        serve_threaded(with_stats, "127.0.0.1", config["port"])
        print("ready", flush=True)
        threading.Event().wait()


def serve_with_gunicorn(wsgi: Any, port: int) -> None:
    """One gunicorn worker process, configured exactly as `python app.py run` configures its workers."""
    options = gunicorn_options(bind=f"127.0.0.1:{port}", workers=1, log_level="warning")
    options.update(accesslog=None, preload_app=True)
    serve_gunicorn(lambda: wsgi, options)


if __name__ == "__main__":
    main()
