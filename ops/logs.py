"""Delegate's logging: plain text (the default) or one JSON object per line (LOG_FORMAT=json), scrubbed first.

Every record is scrubbed where it is made (`stores.redaction`'s record factory rewrites its message, drops its
arguments and scrubs its traceback); the JSON formatter scrubs again what it writes (message, traceback, stack and
context), so a record made some other way (`logging.makeLogRecord`, a handler of a library's own) cannot carry a
secret past it either. It writes only its own fields, never a record's other attributes (`extra=` values included,
except the context names):

    {"time": "2026-12-03T13:16:00.123Z", "level": "INFO", "logger": "delegate", "message": "...",
     "request": "...", "team": "T...", "enterprise": "E...", "user": "U...", "command": "/post-as-me",
     "exc_type": "...", "traceback": "..."}

The context fields come from `stores.log_context` and are left out when unknown: the request id is set at the WSGI
entry (`web.wsgi`), the team, enterprise, user and command by `log_context_middleware` (a global Bolt middleware that
reads the context and body Bolt has already built: no parsing, no database), the token's owner by the refresher.
Bolt's lazy listeners and `listeners.deferred`'s work after the ack run on `ContextExecutor` threads, which carry the
submitter's context, so the lines of the work after the ack name the same request and person as the ack's.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from stores.log_context import FIELDS, bind, current
from stores.redaction import install_log_redaction, redact, register_secrets

if TYPE_CHECKING:
    from slack_bolt import BoltContext, BoltResponse

    from settings import Settings

__all__ = [
    "TEXT_FORMAT",
    "ContextExecutor",
    "JsonFormatter",
    "configure_logging",
    "gunicorn_log_config",
    "log_context_middleware",
]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

P = ParamSpec("P")
T = TypeVar("T")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, the known context, and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(_message(record)),
        }
        context = current()
        for name in FIELDS:
            value = getattr(record, name, None) or context.get(name)  # extra= wins over the context
            if isinstance(value, str) and value:
                entry[name] = redact(value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["traceback"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, separators=(",", ":"))


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed log call still gets a line, without its arguments
        return str(record.msg)


def _formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: Settings) -> None:
    """Log at the configured level in the configured format, every record scrubbed of tokens and of this app's secrets.

    The root logger gets one stderr handler when it has none (as logging.basicConfig would); a handler this function
    made earlier gets the format again. Handlers of others (gunicorn's logconfig_dict, pytest's) are left alone.
    """
    install_log_redaction()
    keys = (settings.encryption_keys or "").split(",")
    register_secrets(settings.client_secret, settings.signing_secret, settings.app_token, *keys)
    root = logging.getLogger()
    ours: list[logging.Handler] = [handler for handler in root.handlers if getattr(handler, "delegate_handler", False)]
    if not root.handlers:
        handler: logging.Handler = logging.StreamHandler()
        handler.delegate_handler = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        ours = [handler]
    for handler in ours:
        handler.setFormatter(_formatter(settings.log_format))
    root.setLevel(settings.log_level)
    if settings.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per plugin at start is noise


def gunicorn_log_config(log_level: str) -> dict[str, Any]:
    """gunicorn's logconfig_dict for LOG_FORMAT=json: its error log, its access log and the app's, all as JSON lines.

    The access log keeps its format string (gunicorn_options': the path without the query string, which may carry an
    OAuth code) as the message; it goes to stdout, the rest to stderr, as in text mode.
    """
    formatter = f"{JsonFormatter.__module__}.{JsonFormatter.__qualname__}"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": formatter}},
        "handlers": {
            "json_stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
            "json_stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "root": {"level": log_level.upper(), "handlers": ["json_stderr"]},
        "loggers": {
            "gunicorn.error": {"level": log_level.upper(), "handlers": ["json_stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["json_stdout"], "propagate": False},
        },
    }


def log_context_middleware(context: BoltContext, body: Any, next: Callable[[], BoltResponse]) -> BoltResponse:  # noqa: A002
    """Bolt middleware: the request's team, enterprise, user and command, for every later log line of its handling.

    Bound, not in a block: Bolt's `next()` only marks the chain as continued and the listeners run after it returns.
    The WSGI entry's block ends it with the request; in Socket Mode the next request's middleware replaces all four.
    """
    bind(team=context.team_id, enterprise=context.enterprise_id, user=context.user_id, command=_command_name(body))
    return next()


def _command_name(body: Any) -> str | None:
    """The slash command, or the kind and callback of an interaction or event (`shortcut:reply_as_me`)."""
    if not isinstance(body, dict):
        return None
    command = body.get("command")
    if isinstance(command, str):
        return command
    kind = body.get("type")
    if not isinstance(kind, str):
        return None
    name: Any = None
    if kind in ("shortcut", "message_action"):
        name = body.get("callback_id")
    elif kind in ("view_submission", "view_closed"):
        view = body.get("view")
        name = view.get("callback_id") if isinstance(view, dict) else None
    elif kind == "block_actions":
        actions = body.get("actions")
        first = actions[0] if isinstance(actions, list) and actions else None
        name = first.get("action_id") if isinstance(first, dict) else None
    elif kind == "event_callback":
        event = body.get("event")
        name = event.get("type") if isinstance(event, dict) else None
    return f"{kind}:{name}" if isinstance(name, str) and name else kind


class ContextExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks run in a copy of the submitter's contextvars (plain pools start each task empty)."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        context = contextvars.copy_context()
        return super().submit(lambda: context.run(fn, *args, **kwargs))
