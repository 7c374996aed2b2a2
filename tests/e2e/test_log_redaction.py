"""The whole flow at DEBUG, every logger included, leaves no secret the sandbox issued in any formatted log record."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from stores import generate_key
from tests.e2e.harness import Delegate, running_delegate, wait_for

ALICE, BOB = "U0ALICE001", "U0BOB00002"
GENERAL = "C0GENERAL1"
# Loggers that hold their own level elsewhere; each is opened to DEBUG for the test.
NOISY = ("slack_sdk", "slack_bolt", "urllib3", "aiohttp", "sandbox", "gunicorn", "alembic", "sqlalchemy", "delegate")


class Collect(logging.Handler):
    """Keeps every record it is handed, formatted as a plain text handler would write it (traceback included)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(threadName)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


H = TypeVar("H", bound=logging.Handler)


@contextmanager
def every_record_at_debug(handler: H) -> Iterator[H]:
    """`handler` on the root logger, with every logger that matters open to DEBUG; restored afterwards."""
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *NOISY)}
    root.addHandler(handler)
    for name in ("", *NOISY):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def issued_secrets(delegate: Delegate, keys: list[str], *, socket_mode: bool) -> dict[str, str]:
    """Every secret of this run, named: each token and refresh token the sandbox ever issued, its codes and
    response_url keys, the app's client and signing secrets, and every key of Delegate's ring."""
    state = delegate.sandbox.state
    with state.lock:
        found = {f"access token {t.kind} {t.user_id}": value for value, t in state.tokens.items()}
        found.update({f"refresh token {r.kind} {r.user_id}": value for value, r in state.refresh_tokens.items()})
        found.update({f"authorization code {c.user_id}": value for value, c in state.codes.items()})
        found.update({f"response_url key {r['source']}": key for key, r in state.response_urls.items()})
    found["client secret"] = state.config.client_secret
    found["signing secret"] = state.config.signing_secret
    if socket_mode:
        found["app-level token"] = state.config.app_token
    found.update({f"encryption key #{n}": key for n, key in enumerate(keys, start=1)})
    return found


_WELL_KNOWN_PREFIX = re.compile(r"^(?:xox[a-z]?\.)?(?:xox[a-z]?|xapp)-(?:1-)?")
WINDOW = 12


def fragments(secret: str, *, random: bool) -> set[str]:
    """What must not appear: the whole secret and, for a random one, every WINDOW characters of it past its
    well-known prefix (a token redacted only up to a `_` still leaks the rest)."""
    if not random:
        return {secret}
    body = _WELL_KNOWN_PREFIX.sub("", secret)
    return {secret} | {body[i : i + WINDOW] for i in range(max(1, len(body) - WINDOW + 1))}


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """The names of the secrets found in text, whole or in part."""
    return [
        name
        for name, secret in secrets.items()
        if any(part in text for part in fragments(secret, random=not name.endswith(" secret")))
    ]


@pytest.mark.parametrize("socket_mode", [False, True], ids=["http", "socket-mode"])
def test_a_debug_log_of_install_connect_commands_refresh_and_revoke_holds_no_secret(
    tmp_path: Path, socket_mode: bool
) -> None:
    keys = [generate_key(), generate_key()]
    with every_record_at_debug(Collect()) as log:
        env = {"LOG_LEVEL": "DEBUG", "TOKEN_ENCRYPTION_KEYS": ",".join(keys)}
        with running_delegate(tmp_path, env=env, socket_mode=socket_mode) as delegate:
            logging.getLogger().setLevel(logging.DEBUG)
            assert delegate.install(ALICE).status == 200
            assert delegate.connect(BOB).status == 200
            sandbox = delegate.sandbox
            sandbox.send_slash_command(ALICE, "/post-as-me", "hello from alice", channel_id=GENERAL)
            wait_for(lambda: any("hello from alice" in m.get("text", "") for m in sandbox.messages(GENERAL)))
            sandbox.send_slash_command(ALICE, "/set-my-status", ":coffee: Coffee", channel_id=GENERAL)
            wait_for(lambda: sandbox.state.profile_json(ALICE).get("status_text") == "Coffee")
            sandbox.send_slash_command(BOB, "/delegate", "connection", channel_id=GENERAL)
            wait_for(lambda: sandbox.ephemerals(BOB))
            sandbox.send_slash_command(ALICE, "/search-mine", "hello", channel_id=GENERAL)
            wait_for(lambda: len(sandbox.ephemerals(ALICE)) >= 1)

            sandbox.advance_clock(13 * 3600)  # every token has expired: the next command refreshes Alice's
            refreshes = sandbox.counters()["grants"].get("refresh_token", 0)
            sandbox.send_slash_command(ALICE, "/post-as-me", "after the refresh", channel_id=GENERAL)
            wait_for(lambda: any("after the refresh" in m.get("text", "") for m in sandbox.messages(GENERAL)))
            assert sandbox.counters()["grants"].get("refresh_token", 0) > refreshes

            sandbox.send_slash_command(ALICE, "/delegate", "disconnect", channel_id=GENERAL)
            [prompt] = wait_for(lambda: [m for m in sandbox.ephemerals(ALICE) if "isconnect" in str(m.get("blocks"))])
            sandbox.send_block_action(ALICE, "disconnect", value="disconnect", channel_id=GENERAL, message_ts=prompt["ts"])
            wait_for(lambda: delegate.user_row(ALICE) is None)
            sandbox.revoke_tokens(BOB)  # Slack's tokens_revoked event
            sandbox.wait_for_events()
            wait_for(lambda: delegate.user_row(BOB).user_token_enc is None)  # kept, marked revoked, no token
            secrets = issued_secrets(delegate, keys, socket_mode=socket_mode)

    text = "\n".join(log.lines)
    assert "oauth.v2.access" in text and "chat.postMessage" in text  # slack_sdk did log its requests at DEBUG
    assert "response_url" in text or "/sandbox/response/" in text or "hooks.slack.com" in text
    assert sum(name.startswith("refresh token") for name in secrets) >= 3  # the installs, and the refresh
    assert leaks(text, secrets) == [], "\n".join(line for line in log.lines if leaks(line, secrets))[:6000]
