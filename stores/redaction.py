"""Keeps secrets out of logs: every log record's text is scrubbed of tokens, refresh tokens and client secrets.

slack_sdk logs request bodies and responses at DEBUG, refresh tokens and access tokens included, and its webhook
client logs every response_url it posts to, so scrubbing is done where records are made (a log record factory),
whatever the level, logger or handler. What is scrubbed:

- anything shaped like a Slack token (`xoxb-`, `xoxp-`, `xoxe.xoxp-1-`, `xoxe-1-` refresh tokens, `xapp-`), whatever
  characters follow the prefix;
- the value of a labelled secret (`client_secret=`, `"refresh_token": "`, `TOKEN_ENCRYPTION_KEYS=` and its whole
  list, `response_url=`, a Socket Mode `ticket=`), HTTP `Bearer` and `Basic` credentials and the password of a URL;
- the path of `hooks.slack.com` URLs (response URLs and incoming webhooks are bearer credentials: whoever holds
  one may post with it) and of the sandbox's `/sandbox/response/<key>` URLs, also URL-encoded or JSON-escaped;
- every value given to `register_secrets` (the client secret, the signing secret, each encryption key), as it is
  or URL-encoded, wherever it appears and whatever labels it.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any
from urllib.parse import quote

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "install_log_redaction", "redact", "register_secrets"]

REDACTED = "(redacted)"
# Shorter values are left to the patterns: scrubbing every occurrence of "abc" would shred the logs, not protect them.
MIN_SECRET_LENGTH = 8

_TOKEN = re.compile(r"(?<![A-Za-z0-9])(?P<kind>xox[a-z]?(?:\.xox[a-z]?)?|xapp)[-.][A-Za-z0-9._-]+")
_KEY_RING = re.compile(
    r"""(?P<head>TOKEN_ENCRYPTION_KEYS['"]?\s*[:=]\s*['"]?)[A-Za-z0-9_=+/-]+(?:\s*,\s*[A-Za-z0-9_=+/-]+)*"""
)
# Labels whose value is a secret; the short, common words only count at the start of a word.
_SECRET_LABELS = ("client_secret", "signing_secret", "refresh_token", "access_token", "response_url")
_SECRET_WORDS = ("ticket", "token", "code")
_FIELD_NAMES = _SECRET_LABELS + _SECRET_WORDS  # any of these in a line is the cue to run _SECRET_FIELD
_SECRET_FIELD = re.compile(
    rf"""(?P<name>{"|".join(_SECRET_LABELS)}|\b(?:{"|".join(_SECRET_WORDS)}))"""
    r"""(?P<sep>['"]?\s*[:=]\s*['"]?)(?P<value>[^'"&\s,}\]]+)""",
    re.IGNORECASE,
)
_AUTHORIZATION_HEADER = re.compile(
    r"""(?P<head>\bAuthorization['"]?\s*[:=]\s*['"]?)(?:(?:Bearer|Basic)\s+)?[^'"\s,}&]+""", re.IGNORECASE
)
# A credential after the scheme has a digit somewhere, which keeps "Basic Information" readable.
_CREDENTIAL = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{16,}", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>://[^/\s:@'\"]+:)[^/\s@'\"]+@")
_SLASH = r"(?:/|\\/|%2F)"
_HOOK_PATH = re.compile(rf"(?P<host>hooks\.slack\.com){_SLASH}[^\s'\"<>&]+", re.IGNORECASE)
_SANDBOX_RESPONSE = re.compile(rf"(?P<path>sandbox{_SLASH}response{_SLASH})[A-Za-z0-9_-]+", re.IGNORECASE)

_registered: set[str] = set()
_literal: re.Pattern[str] | None = None
_guard = threading.Lock()


def register_secrets(*values: str | None) -> None:
    """Scrub these values (and their URL-encoded forms) from every log record from now on; None and empty are ignored."""
    global _literal
    forms = set()
    for value in values:
        if value and len(value.strip()) >= MIN_SECRET_LENGTH:
            forms.update({value.strip(), quote(value.strip(), safe="")})
    with _guard:
        if forms <= _registered:
            return
        _registered.update(forms)
        # Longest first, so that a secret containing another is scrubbed whole.
        ordered = sorted(_registered, key=len, reverse=True)
        _literal = re.compile("|".join(re.escape(form) for form in ordered))


def redact(text: str) -> str:
    """Replace anything that looks like a Slack token, a webhook path or a registered or named secret with (redacted)."""
    literal = _literal
    if literal is not None:
        text = literal.sub(REDACTED, text)
    # Each pattern runs only when a plain substring shows it might match: most lines need none (a 331-character
    # slack_sdk request line went from 66 to 19 microseconds).
    lowered = text.lower()
    if "xox" in lowered or "xapp" in lowered:
        text = _TOKEN.sub(lambda m: f"{m.group('kind')}-{REDACTED}", text)
    if "token_encryption_keys" in lowered:
        text = _KEY_RING.sub(lambda m: f"{m.group('head')}{REDACTED}", text)
    if any(name in lowered for name in _FIELD_NAMES):
        text = _SECRET_FIELD.sub(lambda m: f"{m.group('name')}{m.group('sep')}{REDACTED}", text)
    if "authorization" in lowered:
        text = _AUTHORIZATION_HEADER.sub(lambda m: f"{m.group('head')}{REDACTED}", text)
    if "bearer" in lowered or "basic" in lowered:
        text = _CREDENTIAL.sub(lambda m: f"{m.group('scheme')} {REDACTED}", text)
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{REDACTED}@", text)
    if "hooks.slack.com" in lowered:
        text = _HOOK_PATH.sub(lambda m: f"{m.group('host')}/{REDACTED}", text)
    if "response" in lowered:
        text = _SANDBOX_RESPONSE.sub(lambda m: f"{m.group('path')}{REDACTED}", text)
    return text


_installed = False


def install_log_redaction() -> None:
    """Make every log record in this process carry only redacted text (idempotent)."""
    global _installed
    with _guard:
        if _installed:
            return
        _installed = True
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
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    logging.setLogRecordFactory(factory)
