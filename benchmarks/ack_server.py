"""One app under benchmark, served as `python app.py run` serves Delegate: stock Bolt, Delegate, or a bare WSGI app.

Usage: python -m benchmarks.ack_server CONFIG_JSON. gunicorn with `workers` processes (app.py's default: 2 x cores + 1)
and Delegate's waitress worker, configured by app.gunicorn_options (its access log included), each worker building
its own app as `python app.py run` does. Variants: "delegate" (app.create_wsgi_app, refresher and metrics included),
"stock" (Bolt as its OAuth docs set it up) and "bare" (a WSGI app that answers 200 at once: the server's ceiling).
GET /__stats answers, from whichever worker gets it, the figures of all workers together: SQL statements sent to the
database (counted at the DBAPI cursor, so raw DBAPI reads count as much as SQLAlchemy's) and the pools' figures.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore as StockStore
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import TimeoutError

from app import create_wsgi_app, gunicorn_options, serve_gunicorn
from ops.metrics_dir import prepare_multiprocess_dir
from ops.wiring import open_stores
from settings import Settings
from stores import create_database_engine
from stores.migrations import upgrade

COMMAND = "/post-as-me"

# Shared by every worker (created before gunicorn forks them): statements, then the pools' figures.
STATEMENTS, MAX_IN_USE, MAX_WAIT_MS, TIMEOUTS, POOL_SIZE = range(5)
_FIGURES: Any = None
_LOCK: Any = None


def _add(index: int, amount: float) -> None:
    with _LOCK:
        _FIGURES[index] += amount


def _raise_to(index: int, value: float) -> None:
    with _LOCK:
        _FIGURES[index] = max(_FIGURES[index], value)


class _Counting:
    """Mixed into a DBAPI cursor class: every statement it sends is counted."""

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        _add(STATEMENTS, 1)
        return super().execute(*args, **kwargs)  # type: ignore[misc]

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        _add(STATEMENTS, 1)
        return super().executemany(*args, **kwargs)  # type: ignore[misc]


def _counting_drivers() -> dict[str, tuple[str, type]]:
    """Per DBAPI driver, the connect() argument and the subclass that makes its cursors count what they send."""
    import sqlite3

    class SqliteCursor(_Counting, sqlite3.Cursor):
        pass

    class SqliteConnection(sqlite3.Connection):
        def cursor(self, factory: Any = SqliteCursor) -> Any:  # type: ignore[override]
            return super().cursor(factory)

        def execute(self, *args: Any, **kwargs: Any) -> Any:
            _add(STATEMENTS, 1)
            return super().execute(*args, **kwargs)

    drivers: dict[str, tuple[str, type]] = {"pysqlite": ("factory", SqliteConnection)}
    try:
        import psycopg
    except ImportError:
        return drivers

    class PsycopgCursor(_Counting, psycopg.Cursor):  # type: ignore[misc, type-arg]
        pass

    drivers["psycopg"] = ("cursor_factory", PsycopgCursor)
    return drivers


def count_statements() -> None:
    """Every engine made from now on in this process (and its forks) counts the statements its DBAPI cursors send,
    whoever sends them: SQLAlchemy, or a raw read on the DBAPI connection (which SQLAlchemy's events never see)."""
    global _FIGURES, _LOCK
    _FIGURES = multiprocessing.RawArray("d", 5)
    _LOCK = multiprocessing.Lock()
    drivers = _counting_drivers()

    def connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        argument, counting = drivers.get(dialect.driver, (None, None))
        if argument is None:
            raise SystemExit(f"no statement counter for the {dialect.driver} driver")
        if argument in cparams:
            raise SystemExit(f"the engine already sets {argument}: its statements would not be counted")
        cparams[argument] = counting

    event.listen(Engine, "do_connect", connect)


def figures() -> dict[str, float]:
    with _LOCK:
        values = list(_FIGURES)
    return {
        "statements": values[STATEMENTS],
        "pool_size": values[POOL_SIZE],
        "max_in_use": values[MAX_IN_USE],
        "max_checkout_wait_ms": values[MAX_WAIT_MS],
        "pool_timeouts": values[TIMEOUTS],
    }


def watch_pool(engine: Any) -> None:
    """Keep the pool's figures (connections in use at most, the longest wait for one, timeouts) in the shared array."""
    _raise_to(POOL_SIZE, getattr(engine.pool, "size", lambda: 0)())
    in_use = [0]
    connect = engine.pool.connect

    def timed_connect() -> Any:
        started = time.perf_counter()
        try:
            connection = connect()
        except TimeoutError:
            _add(TIMEOUTS, 1)
            raise
        _raise_to(MAX_WAIT_MS, 1000 * (time.perf_counter() - started))
        return connection

    def checkout(*_: Any) -> None:
        in_use[0] += 1
        _raise_to(MAX_IN_USE, in_use[0])

    def checkin(*_: Any) -> None:
        in_use[0] -= 1

    engine.pool.connect = timed_connect
    event.listen(engine.pool, "checkout", checkout)
    event.listen(engine.pool, "checkin", checkin)


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


def stock_app(config: dict[str, Any]) -> tuple[Any, Engine]:
    """Stock Bolt as its OAuth docs show it: slack_sdk's SQLAlchemy store, built-in rotation, ack then act."""
    engine = create_database_engine(config["database_url"])
    store = StockStore(client_id=config["client_id"], engine=engine)
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


def delegate_settings(config: dict[str, Any]) -> Settings:
    return Settings.from_env(
        {
            "SLACK_CLIENT_ID": config["client_id"],
            "SLACK_CLIENT_SECRET": config["client_secret"],
            "SLACK_SIGNING_SECRET": config["signing_secret"],
            "SLACK_API_URL": config["api_url"],
            "TOKEN_ENCRYPTION_KEYS": config["keys"],
            "DATABASE_URL": config["database_url"],
            "LOG_LEVEL": config.get("log_level", "INFO"),
            **({"DATABASE_POOL_SIZE": str(config["pool_size"])} if config.get("pool_size") else {}),
        }
    )


def bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The ceiling: a WSGI app that answers 200 with an empty body, reading nothing."""
    start_response("200 OK", [("content-type", "text/plain"), ("content-length", "0")])
    return [b""]


def seed(config: dict[str, Any]) -> None:
    """Once, in gunicorn's master before any worker starts: the schema and the one installation the commands use."""
    if config["variant"] == "bare":
        return
    install = installation_from(config["install"], config["user_id"])
    if config["variant"] == "stock":
        engine = create_database_engine(config["database_url"])
        store = StockStore(client_id=config["client_id"], engine=engine)
        store.create_tables()
        store.save(install)
        engine.dispose()
    elif config["variant"] == "delegate":
        settings = delegate_settings(config)
        upgrade(settings.database_url)
        stores = open_stores(settings)
        stores.installation_store.save(install)
        stores.close()


def load(config: dict[str, Any]) -> Any:
    """What each worker serves, built in that worker: the app, behind GET /__stats."""
    wsgi: Any = bare_app
    if config["variant"] == "stock":
        wsgi, engine = stock_app(config)
        watch_pool(engine)
    elif config["variant"] == "delegate":
        wsgi = create_wsgi_app(delegate_settings(config), processes=config["workers"])
        watch_pool(wsgi.stores.engine)

    def with_stats(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/__stats":
            start_response("200 OK", [("content-type", "application/json")])
            return [json.dumps(figures()).encode()]
        return wsgi(environ, start_response)  # type: ignore[no-any-return]

    return with_stats


def main() -> None:
    config = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.WARNING)
    count_statements()
    seed(config)
    if config["variant"] == "delegate":  # as `python app.py run` does: every metric in prometheus_client's files
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = config["metrics_dir"]
        prepare_multiprocess_dir()
    options = gunicorn_options(
        bind=f"127.0.0.1:{config['port']}", workers=config["workers"], log_level=config.get("log_level", "INFO")
    )
    serve_gunicorn(lambda: load(config), options)


if __name__ == "__main__":
    main()
