"""Acknowledge first, then act on a worker thread: what Bolt's lazy listeners do, without copying the request.

Bolt deep-copies the whole request (its context, clients and payload) for every lazy function; on the request path
that copy measured 0.35 ms of about 3 ms per command. The work here receives the very objects the acknowledgement
saw, which is safe because Bolt never touches a request's context again once dispatch has returned.

It is also where a bot token that authorize found due for renewal is renewed (authorize never calls Slack): before
the work runs, within a bound short enough for a shortcut to still open its modal inside the trigger's 3 seconds.
And the work's bot client becomes a `stores.bot_client.BotClient`, which renews the bot token when Slack answers
token_expired (Slack's clock ahead of Delegate's): built here, after the ack, it costs the ack nothing (about 18 us
as a middleware before it).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import timedelta
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from stores.bot_client import BotClient
from stores.errors import TokenError
from stores.rotation import TokenKey

__all__ = ["after_ack"]

logger = logging.getLogger(__name__)


_BOLT_ARGUMENTS = frozenset(
    {"ack", "body", "payload", "command", "shortcut", "view", "action", "event", "context", "client", "respond", "say"}
    | {"logger"}
)


def _parameters(function: Callable[..., Any]) -> tuple[str, ...]:
    """The Bolt arguments a function takes; others must be bound already (functools.partial) and are left alone."""
    parameters = inspect.signature(function).parameters.items()
    return tuple(name for name, p in parameters if name in _BOLT_ARGUMENTS or p.default is inspect.Parameter.empty)


def after_ack(app: App, ack_function: Callable[..., Any], work: Sequence[Callable[..., Any]]) -> Callable[..., None]:
    """A Bolt listener that runs ack_function (which must ack) and then hands each work function to the executor."""
    executor: Executor = app.listener_runner.listener_executor
    ack_names = _parameters(ack_function)
    work_names = [(function, _parameters(function)) for function in work]

    def listener(
        ack: Any, body: Any, payload: Any, command: Any, shortcut: Any, view: Any, action: Any, event: Any,
        context: Any, client: Any, respond: Any, say: Any, logger: Any,
    ) -> None:  # fmt: skip
        available = {
            "ack": ack, "body": body, "payload": payload, "command": command, "shortcut": shortcut, "view": view,
            "action": action, "event": event, "context": context, "client": client, "respond": respond, "say": say,
            "logger": logger,
        }  # fmt: skip
        ack_function(**{name: available[name] for name in ack_names})
        if work_names:
            jobs = [(function, {name: available[name] for name in names}) for function, names in work_names]
            executor.submit(_run_all, context, client, jobs)

    listener.__name__ = ack_function.__name__
    listener.__qualname__ = ack_function.__qualname__
    listener.acknowledge = ack_function  # type: ignore[attr-defined]
    listener.work = tuple(work)  # type: ignore[attr-defined]
    return listener


BOT_RENEWAL_WAIT = timedelta(seconds=2)  # leaves a shortcut's views.open time inside its trigger's 3 s


def _renew_stale_bot_token(context: BoltContext, client: Any) -> None:
    """Renew the bot token authorize marked stale and put it in the client. If that cannot be done in time, the work
    runs with the old token (still valid unless it has expired; a shortcut whose form then fails to open says so)."""
    delegate = context.get("delegate")
    if not context.get("bot_token_stale") or delegate is None:
        return
    try:
        fresh = delegate.manager.fresh_bot_token(
            enterprise_id=context.enterprise_id,
            team_id=context.team_id,
            is_enterprise_install=context.is_enterprise_install,
            wait=BOT_RENEWAL_WAIT,
        )
    except TokenError as error:
        logger.warning("could not renew the bot token of team %s: %s", context.team_id, type(error).__name__)
        return
    if client is not None:
        client.token = fresh.token
    context["bot_token"] = fresh.token
    context["bot_token_stale"] = False


def _bot_client_that_renews(context: BoltContext, client: Any) -> Any:
    """The bot client as a BotClient (also in context.client), or the client unchanged when there is no bot token."""
    delegate = context.get("delegate")
    if delegate is None or not isinstance(client, WebClient) or isinstance(client, BotClient) or not client.token:
        return client
    key = TokenKey.of(context.enterprise_id, None if context.is_enterprise_install else context.team_id)
    renewing = BotClient.like(client, delegate.manager, key)
    if context.get("client") is client:
        context["client"] = renewing
    return renewing


def _run_all(context: Any, client: Any, jobs: Sequence[tuple[Callable[..., Any], dict[str, Any]]]) -> None:
    if isinstance(context, BoltContext):
        renewing = _bot_client_that_renews(context, client)
        _renew_stale_bot_token(context, renewing)
        if renewing is not client:
            jobs = [(function, {**kw, "client": renewing} if "client" in kw else kw) for function, kw in jobs]
    for function, kwargs in jobs:
        _run(function, kwargs)


def _run(function: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    try:
        function(**kwargs)
    except Exception:  # noqa: BLE001 - a failed follow-up is logged, like Bolt's lazy listeners do
        name = getattr(getattr(function, "func", function), "__name__", function)  # a partial names its function
        logger.exception("%s failed after the acknowledgement", name)
