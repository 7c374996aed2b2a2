"""What Slack's answer to a refresh means for the stored token, and the fenced write each answer calls for.

Each answer that is not a rotation ends in one of three ways: a pause (`Backoff`: a 429's Retry-After, a 5xx or an
unreachable Slack, an error we do not know yet), after which the caller may try again outside the lock; a raised
`TokenError` once the token cannot be renewed (needs_reauth, revoked, the app's own credentials); or `row_changed`
when the write over the generation that was refreshed finds a newer one (a reconnect), which then stands.
"""

from __future__ import annotations

import logging
import socket
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from .errors import NeedsReauth, TokenManagerConfigError, TokenRevoked
from .schema import STATUS_NEEDS_REAUTH, STATUS_REVOKED
from .token_rows import Snapshot, TokenKey, TokenRows

__all__ = ["ANSWER_LOST", "INTERRUPTED", "Backoff", "RefreshAnswers", "refusal_outcome", "unanswered_outcome"]

logger = logging.getLogger(__name__)

REAUTH_ERRORS = frozenset({"invalid_refresh_token", "invalid_grant", "invalid_auth", "not_authed"})
REVOKED_ERRORS = frozenset({"token_revoked", "account_inactive", "tokens_revoked", "app_uninstalled", "user_not_found"})
CONFIG_ERRORS = frozenset({"invalid_client_id", "bad_client_secret", "invalid_client", "invalid_grant_type"})
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})
# Outcomes that mean the refresh token may be spent although no new one was stored.
INTERRUPTED = "refresh_interrupted"
ANSWER_LOST = "refresh_answer_lost"
ROW_CHANGED = "row_changed"


@dataclass(frozen=True)
class Backoff:
    """Slack answered without rotating; try again after this many seconds (outside the lock)."""

    seconds: float
    reason: str


class RefreshAnswers:
    """Turns a refresh that Slack refused, or did not answer, into the row's new state and the caller's next step."""

    def __init__(
        self,
        rows: TokenRows,
        *,
        clock: Callable[[], datetime],
        max_failures: int,
        failure_backoff: timedelta,
        max_backoff: timedelta,
        on_rate_limited: Callable[[float], None] | None = None,
    ):
        self.rows = rows
        self.on_rate_limited = on_rate_limited  # a 429 pauses every refresher of the app, not only this caller
        self.clock = clock
        self.max_failures = max_failures
        self.failure_backoff = failure_backoff
        self.max_backoff = max_backoff

    def backoff_for(self, failures: int) -> timedelta:
        """Pause after an unknown error: failure_backoff, doubling per failure in a row, at most max_backoff."""
        backoff: timedelta = self.failure_backoff * (2 ** min(max(0, failures), 20))
        return min(self.max_backoff, backoff)

    def transient_delay(self, failures: int) -> timedelta:
        """Pause after a 5xx or an unreachable Slack: 2 s, doubling, at most max_backoff; never a reconnect."""
        delay: timedelta = timedelta(seconds=2) * (2 ** min(failures, 10))
        return min(self.max_backoff, delay)

    def refused(self, key: TokenKey, current: Snapshot, error: SlackApiError) -> Backoff:
        """Slack answered with an error: record it over the refreshed generation; pause, or raise."""
        code = str(error.response.get("error") or "unknown_error")
        status = error.response.status_code
        now = self.clock()
        who = key.user_id or "the bot"
        if code in REAUTH_ERRORS:
            if not self.rows.set_status(key, current.generation, STATUS_NEEDS_REAUTH, code, drop_refresh=True, now=now):
                return Backoff(0.0, ROW_CHANGED)  # the person reconnected meanwhile: that newer token stands
            raise NeedsReauth(
                f"Slack refused to refresh the token of {who} ({code}); reconnect to continue",
                user_id=key.user_id,
                reason=code,
            )
        if code in REVOKED_ERRORS:
            if not self.rows.set_status(
                key, current.generation, STATUS_REVOKED, code, drop_refresh=True, drop_token=True, now=now
            ):
                return Backoff(0.0, ROW_CHANGED)  # a reconnect after the revocation: it must not be erased
            raise TokenRevoked(f"the token of {who} was revoked ({code})", user_id=key.user_id, reason=code)
        if code in CONFIG_ERRORS:
            self.rows.refresh_failed(key, current.generation, outcome=code, retry_at=None, count_failure=False)
            logger.error("Slack refused the app's client credentials while refreshing a token: %s", code)
            raise TokenManagerConfigError(f"Slack refused the app's client credentials ({code})", reason=code)
        if status == 429:
            pause = retry_after(error)
            self.rows.refresh_failed(
                key, current.generation, outcome="ratelimited", retry_at=now + timedelta(seconds=pause), count_failure=False
            )
            logger.warning("refresh of %s rate limited by Slack: retrying after %.0f s", key.describe(), pause)
            if self.on_rate_limited is not None:
                self.on_rate_limited(pause)
            return Backoff(pause, "ratelimited")
        if status >= 500 or code in TRANSIENT_ERRORS:
            # Slack failed: transient, never a reason to ask the person to reconnect.
            delay = self.transient_delay(current.failures)
            self.rows.refresh_failed(key, current.generation, outcome=code, retry_at=now + delay, count_failure=True)
            logger.warning("refresh of %s failed for a transient reason: %s (HTTP %s)", key.describe(), code, status)
            return Backoff(min(delay.total_seconds(), 1.0), code)
        # An error we do not know: permanent or not, retried with exponential backoff a bounded number of times.
        failures = current.failures + 1
        if failures >= self.max_failures:
            self.rows.set_status(key, current.generation, STATUS_NEEDS_REAUTH, code, drop_refresh=True, now=now)
            raise NeedsReauth(
                f"Slack kept refusing to refresh the token of {who} ({code}, {failures} times); reconnect to continue",
                user_id=key.user_id,
                reason=code,
            )
        retry_at = now + self.backoff_for(current.failures)
        self.rows.refresh_failed(key, current.generation, outcome=code, retry_at=retry_at, count_failure=True)
        logger.warning("refresh of %s refused with %s (%d of %d): backing off", key.describe(), code, failures,
                       self.max_failures)  # fmt: skip
        return Backoff((retry_at - now).total_seconds(), code)

    def unanswered(self, key: TokenKey, current: Snapshot, error: Exception) -> Backoff:
        """No answer: a pause if the request never left, else the refresh token is presumed spent (never resent)."""
        now = self.clock()
        if never_sent(error):
            delay = self.transient_delay(current.failures)
            self.rows.refresh_failed(
                key, current.generation, outcome=f"unreachable:{type(error).__name__}", retry_at=now + delay,
                count_failure=True,
            )  # fmt: skip
            logger.warning("Slack could not be reached to refresh %s: %s", key.describe(), type(error).__name__)
            return Backoff(min(delay.total_seconds(), 1.0), "slack_unreachable")
        # The request may have reached Slack and rotated the token: sending it again could only be refused.
        logger.error("Slack's answer to the refresh of %s was lost (%s)", key.describe(), type(error).__name__)
        self.rows.set_status(key, current.generation, STATUS_NEEDS_REAUTH, ANSWER_LOST, drop_refresh=True, now=now)
        raise NeedsReauth(
            f"Slack's answer to the refresh of the token of {key.user_id or 'the bot'} was lost; reconnect to continue",
            user_id=key.user_id,
            reason=ANSWER_LOST,
        )

    def interrupted(self, key: TokenKey, current: Snapshot) -> None:
        """A refresh of this generation reached Slack and its holder is gone: presumed spent, the person is told."""
        self.rows.set_status(key, current.generation, STATUS_NEEDS_REAUTH, INTERRUPTED, bump=False, now=self.clock())
        raise NeedsReauth(
            f"a refresh of the token of {key.user_id or 'the bot'} was interrupted after it reached Slack; "
            "reconnect to continue",
            user_id=key.user_id,
            reason=INTERRUPTED,
        )


def refusal_outcome(error: SlackApiError) -> str:
    """What a refused refresh counts as (one of stores.observe.REFRESH_OUTCOMES), by the same rules as `refused`."""
    code = str(error.response.get("error") or "unknown_error")
    status = error.response.status_code
    if code in ("invalid_refresh_token", "invalid_grant"):
        return "invalid_refresh_token"
    if code in REAUTH_ERRORS:
        return "invalid_auth"
    if code in REVOKED_ERRORS:
        return "revoked"
    if code in CONFIG_ERRORS:
        return "config_error"
    if status == 429:
        return "ratelimited"
    if status >= 500 or code in TRANSIENT_ERRORS:
        return "transient"
    return "other"


def unanswered_outcome(error: Exception) -> str:
    """What a refresh that got no answer counts as: never sent (unreachable), or sent and its answer lost."""
    return "unreachable" if never_sent(error) else "answer_lost"


def retry_after(error: SlackApiError) -> float:
    """Seconds from a 429's Retry-After header (1 when it is missing or unreadable)."""
    headers = error.response.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


def never_sent(error: Exception) -> bool:
    """Whether a transport error happened before the request could reach Slack (refused, no route, bad name)."""
    reason: Any = error.reason if isinstance(error, urllib.error.URLError) else error
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)
