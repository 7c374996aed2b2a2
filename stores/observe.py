"""What the stores report as they work, for an app to count: refreshes, lock waits, budget waits and Slack API errors.

`stores/` never imports a metrics library. It calls an `Observer` at a few narrow points (one call per refresh sent
to Slack, one per cross-process lock taken or given up, one per turn waited for in the refresh budget, one per Slack
API call that failed) and the app supplies the implementation (Delegate's is `ops.metrics.PrometheusObserver`).
The default, `NO_OBSERVER`, does nothing. Every label an observer is given comes from a small fixed set or from
Slack's own method and error names, never a token, a user or a team.

`ApiErrorCounter` is how a failed Web API call reaches `api_error` exactly once, whichever client made it: it sits
last in a WebClient's retry handlers (slack_sdk consults them after every attempt, and stops at the first that
retries), so it sees only an attempt no other handler retried, i.e. the call's final answer, and it never retries.
Bolt copies the app client's retry handlers into the client it builds for each request, so that one is counted too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

__all__ = ["NO_OBSERVER", "ApiErrorCounter", "NoObserver", "Observer", "with_api_error_counter"]

# Refresh outcomes (TokenManager, one per refresh sent to Slack, or found interrupted):
REFRESH_OUTCOMES = (
    "refreshed", "invalid_refresh_token", "invalid_auth", "revoked", "config_error", "ratelimited", "transient",
    "unreachable", "answer_lost", "interrupted", "other",
)  # fmt: skip
LOCK_RESULTS = ("acquired", "timeout", "busy")  # busy: only tried (the sweeper), someone else held it

_NAME = re.compile(r"[a-z0-9_]{1,48}")
_METHOD = re.compile(r"[A-Za-z0-9.]{1,64}")


class Observer(Protocol):
    """Receives what the stores did; every method must be cheap and must never raise."""

    def refresh_finished(self, kind: str, outcome: str, seconds: float) -> None:
        """A refresh of a `kind` ("user" or "bot") token ended with `outcome` (REFRESH_OUTCOMES) after `seconds`."""

    def lock_waited(self, result: str, seconds: float) -> None:
        """The cross-process refresh lock was `result` (LOCK_RESULTS) after waiting `seconds`."""

    def budget_waited(self, seconds: float) -> None:
        """A refresher waited `seconds` for its turn in the refresh budget."""

    def api_error(self, method: str, error: str) -> None:
        """A Slack Web API call to `method` failed with `error` (Slack's error name, or a transport failure)."""


class NoObserver:
    """The default observer: does nothing."""

    def refresh_finished(self, kind: str, outcome: str, seconds: float) -> None:
        pass

    def lock_waited(self, result: str, seconds: float) -> None:
        pass

    def budget_waited(self, seconds: float) -> None:
        pass

    def api_error(self, method: str, error: str) -> None:
        pass


NO_OBSERVER: Observer = NoObserver()


def error_name(status: int, body: object, data: bytes | None) -> str | None:
    """The error a Slack answer carries (None: it succeeded), as a bounded label: Slack's name, or http_<status>."""
    if status == 429:
        return "ratelimited"
    if status == 200 and isinstance(body, dict) and body.get("ok") is True:
        return None
    if status == 200 and not body and not (data or b"").lstrip().startswith(b"{"):
        return None  # not a JSON answer (a file download): not this counter's to judge
    if body is None and data and len(data) <= 4096:
        try:
            body = json.loads(data)  # slack_sdk parses only 200 answers for its retry handlers; a 5xx may be JSON too
        except ValueError:
            body = None
    name = body.get("error") if isinstance(body, dict) else None
    if isinstance(name, str) and _NAME.fullmatch(name):
        return name
    return f"http_{status}" if status != 200 else "unknown_error"


def method_name(url: str) -> str:
    """The Web API method a request URL names (chat.postMessage), or "other"."""
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    return name if _METHOD.fullmatch(name) else "other"


class ApiErrorCounter(RetryHandler):
    """Never retries; reports each Web API call's failure once to the observer (it must be the last retry handler)."""

    def __init__(self, observer: Observer):
        super().__init__(max_retry_count=0)
        self.observer = observer

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        try:
            if response is None:
                name: str | None = "connection_error" if error is not None else None
            else:
                name = error_name(response.status_code, response.body, response.data)
            if name is not None:
                self.observer.api_error(method_name(request.url), name)
        except Exception:  # noqa: BLE001 - counting must never change what the call does
            pass
        return False


def with_api_error_counter(handlers: Sequence[RetryHandler], observer: Observer) -> list[RetryHandler]:
    """The retry handlers with an ApiErrorCounter last (replacing one already there); unchanged for NO_OBSERVER."""
    kept = [handler for handler in handlers if not isinstance(handler, ApiErrorCounter)]
    return kept if observer is NO_OBSERVER else [*kept, ApiErrorCounter(observer)]
