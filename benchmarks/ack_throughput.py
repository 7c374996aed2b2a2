"""Commands acknowledged per second: stock Bolt as its docs set it up, against Delegate, in the same run.

One process, one request at a time, over HTTP, with the sandbox answering every Slack call after 50 ms.
Stock Bolt: slack_sdk's SQLAlchemyInstallationStore, built-in token rotation, a listener that acks and then acts
(Bolt's default runner waits for ack() by polling every 10 ms; its authorize calls auth.test for the bot and the
user token on each request). Delegate: its real app (our authorize, ack first, the Slack call in a lazy listener).

    .venv/bin/python -m benchmarks.ack_throughput [--requests 200]
"""

from __future__ import annotations

import argparse
import http.client
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from slack_bolt import App
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore as StockStore
from sqlalchemy import event

from app import create_app, serve_threaded
from sandbox.testing import running_sandbox
from settings import Settings
from stores import create_database_engine, generate_key
from stores.migrations import upgrade
from stores.wiring import open_stores
from tests.support.slack_requests import command_body, sign

USER, TEAM, CHANNEL = "U0ALICE001", "T0SANDBOX1", "C0GENERAL1"
COMMAND, TEXT = "/post-as-me", "benchmark message"


class StatementCounter:
    """Counts SQL statements an engine runs."""

    def __init__(self, engine: Any):
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.count += 1


def installation_from(answer: dict[str, Any]) -> Installation:
    person = answer["authed_user"]
    return Installation(
        app_id=answer["app_id"],
        team_id=TEAM,
        team_name=answer["team"]["name"],
        bot_token=answer["access_token"],
        bot_id=answer.get("bot_id"),
        bot_user_id=answer["bot_user_id"],
        bot_scopes=answer["scope"],
        bot_refresh_token=answer.get("refresh_token"),
        bot_token_expires_in=answer.get("expires_in"),
        user_id=USER,
        user_token=person["access_token"],
        user_scopes=person["scope"],
        user_refresh_token=person.get("refresh_token"),
        user_token_expires_in=person.get("expires_in"),
        token_type="bot",
    )


def stock_app(sandbox: Any, database_url: str, answer: dict[str, Any]) -> tuple[App, Any]:
    """Stock Bolt as its OAuth docs show it, with the same command doing the same work."""
    engine = create_database_engine(database_url)
    store = StockStore(client_id=sandbox.config.client_id, engine=engine)
    store.create_tables()
    store.save(installation_from(answer))
    app = App(
        signing_secret=sandbox.config.signing_secret,
        client=WebClient(base_url=sandbox.api_url),
        oauth_settings=OAuthSettings(
            client_id=sandbox.config.client_id,
            client_secret=sandbox.config.client_secret,
            scopes=["commands", "chat:write"],
            user_scopes=["chat:write"],
            installation_store=store,
            authorization_url=sandbox.authorize_url,
        ),
    )

    @app.command(COMMAND)
    def post_as_me(ack: Any, command: dict[str, Any], client: WebClient, context: Any) -> None:
        ack()
        client.chat_postMessage(token=context.user_token, channel=command["channel_id"], text=command["text"])

    return app, engine


def delegate_app(sandbox: Any, folder: Path, answer: dict[str, Any]) -> tuple[App, Any]:
    database_url = f"sqlite:///{folder / 'delegate.sqlite3'}"
    settings = Settings.from_env(
        {
            "SLACK_CLIENT_ID": sandbox.config.client_id,
            "SLACK_CLIENT_SECRET": sandbox.config.client_secret,
            "SLACK_SIGNING_SECRET": sandbox.config.signing_secret,
            "SLACK_API_URL": sandbox.api_url,
            "SLACK_AUTHORIZE_URL": sandbox.authorize_url,
            "TOKEN_ENCRYPTION_KEYS": generate_key(),
            "DATABASE_URL": database_url,
        }
    )
    upgrade(database_url)
    stores = open_stores(settings)
    stores.installation_store.save(installation_from(answer))
    return create_app(settings, stores), stores.engine


def measure(wsgi: Any, signing_secret: str, requests: int) -> tuple[float, list[float]]:
    """Send signed slash commands one at a time; returns (acks per second, latencies in ms)."""
    server, thread = serve_threaded(wsgi, "127.0.0.1", 0)
    port = server.server_address[1]
    latencies = []
    try:
        for warmup in (True, False):
            started_all = time.perf_counter()
            for _ in range(5 if warmup else requests):
                body = command_body(COMMAND, TEXT, user_id=USER, team_id=TEAM, channel_id=CHANNEL)
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                started = time.perf_counter()
                connection.request("POST", "/slack/events", body=body, headers=sign(signing_secret, body))
                response = connection.getresponse()
                response.read()
                connection.close()
                if response.status != 200:
                    raise SystemExit(f"the app answered HTTP {response.status}")
                if not warmup:
                    latencies.append(1000 * (time.perf_counter() - started))
            elapsed = time.perf_counter() - started_all
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    return requests / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    from web.wsgi import DelegateWSGI

    with tempfile.TemporaryDirectory() as name, running_sandbox() as sandbox:
        folder = Path(name)
        sandbox.add_fault("*", latency_ms=50)
        rows = {}
        for label in ("stock Bolt", "Delegate"):
            answer = sandbox.install(USER, scope="commands,chat:write", user_scope="chat:write")
            before = sandbox.counters()["api_calls"]
            if label == "stock Bolt":
                app, engine = stock_app(sandbox, f"sqlite:///{folder / 'stock.sqlite3'}", answer)
                wsgi: Any = SlackRequestHandler(app)
            else:
                app, engine = delegate_app(sandbox, folder, answer)
                wsgi = DelegateWSGI(app)
            statements = StatementCounter(engine)
            rate, latencies = measure(wsgi, sandbox.config.signing_secret, args.requests)
            time.sleep(1.0)  # let lazy listeners finish their Slack calls
            after = sandbox.counters()["api_calls"]
            auth_tests = after.get("auth.test", 0) - before.get("auth.test", 0)
            latencies.sort()
            rows[label] = {
                "acks_per_second": rate,
                "p50_ack_ms": latencies[len(latencies) // 2],
                "p99_ack_ms": latencies[int(len(latencies) * 0.99) - 1],
                "sql_statements_per_request": statements.count / (args.requests + 5),
                "auth_test_calls_per_request": auth_tests / (args.requests + 5),
            }
            engine.dispose()

    print(f"acknowledged commands, {args.requests} sequential requests over HTTP, Slack answering after 50 ms")
    names = list(rows)
    print(f"{'':30}" + "".join(f"{n:>14}" for n in names))
    for metric in rows[names[0]]:
        print(f"{metric:30}" + "".join(f"{rows[n][metric]:>14.2f}" for n in names))
    ratio = rows["Delegate"]["acks_per_second"] / rows["stock Bolt"]["acks_per_second"]
    print(f"Delegate acknowledges {ratio:.1f}x the commands per second of stock Bolt (target: 40x)")


if __name__ == "__main__":
    main()
