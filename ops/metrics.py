"""Delegate's Prometheus metrics: what the stores observe, acknowledgements, OAuth, and the tokens held, at /metrics.

Under gunicorn every worker is a process of its own, so a counter in one worker's memory would be a fraction of the
truth, different on every scrape. prometheus_client's multiprocess mode keeps each process's values in files under
PROMETHEUS_MULTIPROC_DIR and sums them at scrape time; `python app.py run` points that variable at a fresh,
owner-only folder before any worker starts (`prepare_multiprocess_dir`), and gunicorn's child_exit hook marks a dead
worker's files (`worker_exited`). Without the variable (tests, sandbox mode, Socket Mode: one process) the values live
in memory. The variable must be set before prometheus_client is imported, which is why nothing imports this module
before the composition root has decided (app.py imports it inside functions only).

The token gauges are not kept by any process: each scrape runs one grouped COUNT (`stores.token_counts`) in the process
answering it, so they are counted once, never summed across workers. No label carries a token, a user or a team.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stores.errors import TokenUnavailable
from stores.token_counts import count_tokens

from .metrics_dir import MULTIPROC_ENV

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_bolt.request import BoltRequest
    from slack_bolt.response import BoltResponse

    from stores.installation_store import SQLAlchemyInstallationStore

__all__ = ["MetricsPage", "PrometheusObserver", "TokenCollector", "ack_outcome", "instrument_acks", "request_kind"]

logger = logging.getLogger(__name__)

REFRESH_AHEAD_WINDOW = timedelta(hours=2)  # the refresher's default window (stores.refresher.Refresher)
ACK_FAILED = "delegate_ack_failed"  # set in the context by the app's error handler when the ack path raised

# The classic text format every Prometheus reads (generate_latest writes it; newer clients announce version 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
disable_created_metrics()  # no *_created series: a timestamp per label set doubles the output and no alert uses it

# The registry the metrics below belong to: this module's own, not prometheus_client's global one.
REGISTRY = CollectorRegistry(auto_describe=True)

REFRESHES = Counter(
    "delegate_token_refreshes", "Token refreshes sent to Slack, by token kind and outcome.", ["kind", "outcome"],
    registry=REGISTRY,
)  # fmt: skip
REFRESH_SECONDS = Histogram(
    "delegate_token_refresh_seconds", "Time from sending a refresh to Slack to its outcome being stored.", ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=REGISTRY,
)  # fmt: skip
LOCK_WAITS = Counter(
    "delegate_refresh_lock_waits", "Cross-process refresh lock attempts: acquired, timeout (gave up), busy (only tried).",
    ["result"], registry=REGISTRY,
)  # fmt: skip
LOCK_WAIT_SECONDS = Histogram(
    "delegate_refresh_lock_wait_seconds", "Time waited for the cross-process refresh lock.",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10), registry=REGISTRY,
)  # fmt: skip
BUDGET_WAIT_SECONDS = Histogram(
    "delegate_refresh_budget_wait_seconds", "Time a refresher waited for its turn in the refresh budget.",
    buckets=(0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60), registry=REGISTRY,
)  # fmt: skip
API_ERRORS = Counter(
    "delegate_slack_api_errors", "Slack Web API calls that failed, by method and Slack's error name.", ["method", "error"],
    registry=REGISTRY,
)  # fmt: skip
ACKS = Counter("delegate_acks", "Requests from Slack answered, by kind and outcome.", ["kind", "outcome"], registry=REGISTRY)
ACK_SECONDS = Histogram(
    "delegate_ack_seconds", "Time from a request reaching Bolt to its acknowledgement, by kind.", ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5), registry=REGISTRY,
)  # fmt: skip
OAUTH_INSTALLS = Counter(
    "delegate_oauth_installs", "Completed OAuth flows: install (Add to Slack) or connect (a person's account).", ["flow"],
    registry=REGISTRY,
)  # fmt: skip
OAUTH_FAILURES = Counter("delegate_oauth_failures", "OAuth callbacks that failed, by reason.", ["reason"], registry=REGISTRY)

# Request kinds, from the payload Bolt has already parsed; anything else is "other".
_KINDS = {
    "event_callback": "event",
    "block_actions": "block_actions",
    "shortcut": "shortcut",
    "message_action": "message_action",
    "view_submission": "view_submission",
    "view_closed": "view_closed",
    "block_suggestion": "options",
    "interactive_message": "interactive_message",
    "url_verification": "url_verification",
}
_NO_AUTHORIZE = frozenset({"url_verification", "other"})


class PrometheusObserver:
    """The stores' observer (stores.observe.Observer), acknowledgements and OAuth results, as Prometheus metrics."""

    def __init__(self) -> None:
        self._ack_series: dict[tuple[str, str], tuple[Any, Any]] = {}  # labels() costs more than the update itself

    def refresh_finished(self, kind: str, outcome: str, seconds: float) -> None:
        REFRESHES.labels(kind, outcome).inc()
        REFRESH_SECONDS.labels(kind).observe(seconds)

    def lock_waited(self, result: str, seconds: float) -> None:
        LOCK_WAITS.labels(result).inc()
        LOCK_WAIT_SECONDS.observe(seconds)

    def budget_waited(self, seconds: float) -> None:
        BUDGET_WAIT_SECONDS.observe(seconds)

    def api_error(self, method: str, error: str) -> None:
        API_ERRORS.labels(method, error).inc()

    def ack_finished(self, kind: str, outcome: str, seconds: float) -> None:
        series = self._ack_series.get((kind, outcome))
        if series is None:
            series = self._ack_series[(kind, outcome)] = (ACKS.labels(kind, outcome), ACK_SECONDS.labels(kind))
        series[0].inc()
        series[1].observe(seconds)

    def oauth_installed(self, flow: str) -> None:
        OAUTH_INSTALLS.labels(flow).inc()

    def oauth_failed(self, reason: str) -> None:
        OAUTH_FAILURES.labels(reason).inc()


def request_kind(body: Any) -> str:
    """What kind of request Slack sent (command, event, block_actions, ...), from Bolt's parsed body."""
    if not isinstance(body, dict):
        return "other"
    if "command" in body:
        return "command"
    kind = body.get("type")
    return _KINDS.get(kind, "other") if isinstance(kind, str) else "other"


def ack_outcome(kind: str, request: BoltRequest, response: BoltResponse) -> str:
    """How the request was answered: ok, not_connected, not_installed, unhandled, rejected, unauthorized or error."""
    context = request.context
    status = response.status
    if status >= 500 or context.get(ACK_FAILED):
        return "error"
    if status == 401:
        return "unauthorized"
    if status == 404:
        return "unhandled"
    if status >= 400:
        return "rejected"
    if context.authorize_result is None and kind not in _NO_AUTHORIZE:
        return "not_installed"  # authorize found no installation: Bolt answered with the "not installed" message
    if isinstance(context.get("user_token_error"), TokenUnavailable):
        return "not_connected"  # the acting person has no usable token: the answer asked them to connect
    return "ok"


def instrument_acks(app: App, observer: PrometheusObserver) -> None:
    """Time every request Bolt dispatches (HTTP and Socket Mode alike) to its acknowledgement: two clock reads and
    two metric updates per request, no parsing (Bolt's request already holds the parsed body), no database."""
    dispatch = app.dispatch

    def timed_dispatch(req: BoltRequest) -> BoltResponse:
        started = time.perf_counter()
        try:
            response = dispatch(req)
        except BaseException:
            observer.ack_finished(request_kind(req.body), "error", time.perf_counter() - started)
            raise
        try:
            kind = request_kind(req.body)
            observer.ack_finished(kind, ack_outcome(kind, req, response), time.perf_counter() - started)
        except Exception:  # noqa: BLE001 - counting must never change an answer
            logger.exception("could not count an acknowledgement")
        return response

    app.dispatch = timed_dispatch  # type: ignore[method-assign]


class TokenCollector(Collector):
    """delegate_tokens{kind,state} and delegate_tokens_expiring{kind}, from one grouped COUNT per scrape."""

    def __init__(self, store: SQLAlchemyInstallationStore, *, window: timedelta = REFRESH_AHEAD_WINDOW):
        self.store = store
        self.window = window

    def collect(self) -> Iterator[Metric]:
        tokens = GaugeMetricFamily("delegate_tokens", "Stored tokens by kind and state.", labels=["kind", "state"])
        expiring = GaugeMetricFamily(
            "delegate_tokens_expiring",
            "Active rotating tokens expiring within the refresh-ahead window (expired ones included).",
            labels=["kind"],
        )
        try:
            counts = count_tokens(self.store, now=self.store.clock(), window=self.window)
        except Exception as error:  # noqa: BLE001 - the other metrics still answer when the database does not
            logger.warning("token gauges skipped: the database did not answer (%s)", type(error).__name__)
            return
        due = {"user": 0, "bot": 0}
        for count in counts:
            tokens.add_metric([count.kind, count.state], count.tokens)
            due[count.kind] = due.get(count.kind, 0) + count.expiring
        for kind, value in due.items():
            expiring.add_metric([kind], value)
        yield tokens
        yield expiring

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no database query when the collector is registered


class _Own(Collector):
    """This process's own metrics (plain mode)."""

    def collect(self) -> Iterator[Metric]:
        return iter(REGISTRY.collect())

    def describe(self) -> Iterator[Metric]:
        return iter(())


class MetricsPage:
    """The /metrics answer: every process's metrics (multiprocess mode) or this one's, plus the token gauges.

    With `token` set (METRICS_TOKEN), a request must carry `Authorization: Bearer <token>`.
    """

    def __init__(self, store: SQLAlchemyInstallationStore, *, token: str | None = None):
        self.registry = CollectorRegistry(auto_describe=False)
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            from prometheus_client import multiprocess, values

            if values.ValueClass.__name__ != "MmapedValue":  # imported before the variable was set: per process
                logger.error("%s is set, but prometheus_client was imported before it: counts are wrong", MULTIPROC_ENV)
            multiprocess.MultiProcessCollector(self.registry, path=directory)
        else:
            self.registry.register(_Own())
        self.registry.register(TokenCollector(store))
        self._token = token

    def __repr__(self) -> str:
        return f"MetricsPage(protected={self._token is not None})"

    def allowed(self, authorization: str | None) -> bool:
        if self._token is None:
            return True
        expected = f"Bearer {self._token}".encode()
        return hmac.compare_digest((authorization or "").encode(), expected)

    def render(self) -> tuple[str, bytes]:
        """The content type and the body of a scrape."""
        return CONTENT_TYPE, generate_latest(self.registry)
