"""The WSGI application: Bolt's request URL and OAuth paths, the connect flow, a landing page, health and metrics."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse
from slack_bolt.context import BoltContext
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import build_context
from slack_bolt.response import BoltResponse

from stores.log_context import log_context

from .guard import PARSED_BODY, RequestGuard
from .oauth import CONNECT_PATH, INSTALL_PATH, DelegateOAuthFlow
from .pages import Guide, help_links, page, too_many_starts_page
from .ratelimit import StartLimiter, client_address

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

__all__ = ["DelegateWSGI", "MetricsEndpoint"]

logger = logging.getLogger(__name__)

HTML: dict[str, Sequence[str]] = {"content-type": ["text/html; charset=utf-8"]}
TEXT: dict[str, Sequence[str]] = {"content-type": ["text/plain; charset=utf-8"]}
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is legal in a header value; CR, LF and the rest are not
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=-]{1,64}")  # a proxy's X-Request-Id worth keeping: short, and safe in a log


def request_id(environ: WSGIEnvironment, trusted_proxies: Collection[str] = ()) -> str:
    """The id of this request in the logs: a trusted proxy's short, safe X-Request-Id, else a new random one.

    Slack's own headers (X-Slack-Retry-Num, X-Slack-Request-Timestamp) say nothing unique about a request: never ids.
    """
    given = environ.get("HTTP_X_REQUEST_ID")
    if given and environ.get("REMOTE_ADDR") in trusted_proxies and _REQUEST_ID.fullmatch(given):
        return str(given)
    return secrets.token_hex(8)


def unexpected_error_page() -> str:
    """What a person sees when Delegate fails on its own side: no detail, and the assurance that nothing changed."""
    return page("Something went wrong", "<p>Delegate hit an unexpected error. Nothing was changed; try again.</p>")


def _header_safe(response: BoltResponse) -> BoltResponse:
    """The response, or a 500 page if a header carries a control character (a CR/LF would split the header)."""
    headers = response.headers.items()
    if not any(_CONTROL.search(name) or any(_CONTROL.search(value) for value in values) for name, values in headers):
        return response
    logger.error("refused to send a response header with a control character (status %s)", response.status)
    return BoltResponse(status=500, body=unexpected_error_page(), headers={"content-type": "text/html; charset=utf-8"})


class ParsedRequest(BoltRequest):
    """A BoltRequest in HTTP mode built from its raw body and the body already parsed from it (by the request guard,
    exactly as Bolt's parse_body would): Bolt does not parse the same bytes again (about 20 us of a 400 us ack)."""

    def __init__(self, raw_body: str, body: dict[str, Any], *, query: str, headers: dict[str, Any]):
        super().__init__(body="", query=query, headers=headers)  # an empty body parses to {} at no cost
        self.raw_body = raw_body
        self.body = body
        self.context = build_context(BoltContext(), body)


class MetricsEndpoint(Protocol):
    """What serves /metrics (ops.metrics.MetricsPage): an optional bearer check, and the scrape itself."""

    def allowed(self, authorization: str | None) -> bool: ...

    def render(self) -> tuple[str, bytes]: ...


# Where the Slack Marketplace listing and the pages link the operator's privacy policy and support page.
PRIVACY_PATH = "/privacy"
SUPPORT_PATH = "/support"


def landing_page(guide: Guide | None = None) -> str:
    body = (
        "<p>Delegate acts as you in Slack: it posts as you, sets your status, snoozes your notifications and "
        "searches your messages, with your own token, refreshed safely.</p>"
        "<p>A workspace admin adds it once; everyone else connects their own account.</p>"
    ) + help_links(guide)
    return page("Delegate", body, links=[("Add to Slack", INSTALL_PATH), ("Connect my Slack account", CONNECT_PATH)])


class DelegateWSGI(SlackRequestHandler):
    """Routes every request behind the request guard; nothing that goes wrong inside reaches a person as a traceback."""

    def __init__(
        self,
        app: App,
        *,
        signing_secret: str,
        health_check: Callable[[], bool] | None = None,
        readiness: Callable[[], tuple[int, str]] | None = None,
        metrics: MetricsEndpoint | None = None,
        path: str = "/slack/events",
        start_limiter: StartLimiter | None = None,
        trusted_proxies: Collection[str] = (),
        guide: Guide | None = None,
    ):
        super().__init__(app, path=path)
        self.health_check = health_check  # /healthz: the process answers (and whatever this adds; app.py adds nothing)
        self.readiness = readiness  # /readyz: (status, plain-text body naming each check)
        self.metrics = metrics  # /metrics: Prometheus text format; 404 when None
        self.stores: Any = None  # set by the composition root, for operations and tests
        self.refresher: Any = None  # the refresh-ahead sweeper of this process, when the composition root started one
        self.guard = RequestGuard(self._serve, signing_secret=signing_secret, slack_path=path)
        # Each install or connect start writes a state row: limited per client address (see web/ratelimit.py).
        self.start_limiter = start_limiter if start_limiter is not None else StartLimiter()
        self.trusted_proxies = frozenset(trusted_proxies)
        self.guide = guide  # the landing page's help links; /privacy and /support lead to them

    def stop(self, timeout: float = 10) -> None:
        """Stop this process's refresher (a refresh in flight finishes and is saved), waiting at most timeout seconds."""
        if self.refresher is not None:
            self.refresher.stop(timeout)

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        """Hand Bolt the request with the body the guard has parsed (Bolt still verifies the signature on the raw body)."""
        parsed = request.environ.get(PARSED_BODY)
        if not isinstance(parsed, dict):
            return super().dispatch(request)
        raw = request.get_body()
        return self.app.dispatch(ParsedRequest(raw, parsed, query=request.query_string, headers=request.get_headers()))

    def handle_installation(self, request: WsgiHttpRequest) -> BoltResponse:
        return _header_safe(super().handle_installation(request))

    def handle_callback(self, request: WsgiHttpRequest) -> BoltResponse:
        return _header_safe(super().handle_callback(request))

    def _start(self, request: WsgiHttpRequest) -> WsgiHttpResponse | None:
        """Answer an install or connect start, or None for Bolt's own routing; both are limited per client address."""
        if request.path not in (INSTALL_PATH, CONNECT_PATH) or not isinstance(self.app.oauth_flow, DelegateOAuthFlow):
            return None
        retry_after = self.start_limiter.acquire(client_address(request.environ, self.trusted_proxies))
        if retry_after is not None:
            headers = {**HTML, "retry-after": [str(retry_after)], "cache-control": ["no-store"]}
            return WsgiHttpResponse(status=429, headers=headers, body=too_many_starts_page(retry_after))
        if request.path == INSTALL_PATH:
            return None  # Bolt's routing calls handle_installation
        bolt = BoltRequest(body=request.get_body(), query=request.query_string, headers=request.get_headers())
        redirect = _header_safe(self.app.oauth_flow.handle_connect(bolt))
        return WsgiHttpResponse(status=redirect.status, headers=redirect.headers, body=redirect.body)

    def _get_http_response(self, request: WsgiHttpRequest) -> WsgiHttpResponse:
        if request.method == "GET":
            if request.path in ("/", ""):
                return WsgiHttpResponse(status=200, headers=HTML, body=landing_page(self.guide))
            link = self._public_link(request.path)
            if link is not None:
                return WsgiHttpResponse(status=302, headers={**HTML, "location": [link]}, body="")
            if request.path == "/healthz":
                healthy = self.health_check() if self.health_check is not None else True
                return WsgiHttpResponse(status=200 if healthy else 503, headers=TEXT, body="ok" if healthy else "unhealthy")
            if request.path == "/readyz":
                status, text = self.readiness() if self.readiness is not None else (200, "ready\n")
                return WsgiHttpResponse(status=status, headers={**TEXT, "cache-control": ["no-store"]}, body=text)
            if request.path == "/metrics" and self.metrics is not None:
                return self._metrics(request)
            started = self._start(request)
            if started is not None:
                return started
        response = super()._get_http_response(request)
        if response.status == 404:
            return WsgiHttpResponse(status=404, headers=HTML, body=page("Not found", "<p>There is nothing here.</p>"))
        return response

    def _public_link(self, path: str) -> str | None:
        """Where /privacy or /support lead (DELEGATE_PRIVACY_URL, DELEGATE_SUPPORT_URL); None when not set (a 404)."""
        if self.guide is None:
            return None
        return {PRIVACY_PATH: self.guide.privacy_url, SUPPORT_PATH: self.guide.support_url}.get(path)

    def _metrics(self, request: WsgiHttpRequest) -> WsgiHttpResponse:
        assert self.metrics is not None
        if not self.metrics.allowed(request.environ.get("HTTP_AUTHORIZATION")):
            headers = {**TEXT, "www-authenticate": ['Bearer realm="metrics"']}
            return WsgiHttpResponse(status=401, headers=headers, body="a bearer token (METRICS_TOKEN) is required\n")
        content_type, body = self.metrics.render()
        headers = {"content-type": [content_type], "cache-control": ["no-store"]}
        return WsgiHttpResponse(status=200, headers=headers, body=body.decode())

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # Every line logged while serving it names the request (work after the ack too: ops.logs.ContextExecutor).
        with log_context(fresh=True, request=request_id(environ, self.trusted_proxies)):
            try:
                return self.guard(environ, start_response)
            except Exception:  # noqa: BLE001 - the person gets a page, the operator gets the traceback in the log
                logger.exception("unhandled error serving %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
                start_response("500 Internal Server Error", [("content-type", "text/html; charset=utf-8")])
                return [unexpected_error_page().encode()]

    def _serve(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """What a request that passed the guard gets: Bolt, the OAuth pages, the landing page or the health check."""
        return super().__call__(environ, start_response)
