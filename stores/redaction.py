"""Keeps secrets out of logs: every log record's text is scrubbed of tokens, refresh tokens and client secrets.

slack_sdk logs request bodies and responses at DEBUG, refresh tokens and access tokens included, so scrubbing is
done where records are made (a log record factory), whatever the level, logger or handler.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["install_log_redaction", "redact"]

REDACTED = "(redacted)"

_TOKEN = re.compile(r"\b(xox[a-z]?(?:\.xox[a-z])?|xapp)-[A-Za-z0-9-]{4,}")
_SECRET_FIELD = re.compile(
    r"""(?P<name>client_secret|refresh_token|access_token|signing_secret|\btoken|\bcode|TOKEN_ENCRYPTION_KEYS)"""
    r"""(?P<sep>['"]?\s*[:=]\s*['"]?)(?P<value>[^'"&\s,}\]]+)""",
    re.IGNORECASE,
)
_WEBHOOK = re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/]+")


def redact(text: str) -> str:
    """Replace anything that looks like a Slack token or a named secret with (redacted)."""
    text = _TOKEN.sub(lambda m: f"{m.group(1)}-{REDACTED}", text)
    text = _SECRET_FIELD.sub(lambda m: f"{m.group('name')}{m.group('sep')}{REDACTED}", text)
    return _WEBHOOK.sub(f"hooks.slack.com/services/{REDACTED}", text)


_installed = False


def install_log_redaction() -> None:
    """Make every log record in this process carry only redacted text (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed log call must still not leak its arguments
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
