"""The HTTP side of a refresher run as its own process (`python app.py tokens refresher --metrics-port`).

With DELEGATE_REFRESHER=off the web workers refresh nothing, so every refresh outcome, lock wait and budget wait is
this process's: without an endpoint of its own they would be counted nowhere. It answers `/metrics` (this process's
counters and the token gauges, behind METRICS_TOKEN when set), `/readyz` (database, schema, keys and this
refresher's thread) and `/healthz`, on the same small server as Socket Mode's OAuth pages (web.server).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from .health import Readiness
    from .metrics import MetricsPage

__all__ = ["refresher_endpoints"]

_TEXT = ("content-type", "text/plain; charset=utf-8")
_NO_STORE = ("cache-control", "no-store")


def refresher_endpoints(
    metrics: MetricsPage, readiness: Readiness
) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """A WSGI application answering GET /metrics, /readyz and /healthz; 404 for anything else."""

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [_TEXT, ("allow", "GET, HEAD")])
            return [b"only GET\n"]
        if path == "/metrics":
            if not metrics.allowed(environ.get("HTTP_AUTHORIZATION")):
                start_response("401 Unauthorized", [_TEXT, ("www-authenticate", 'Bearer realm="metrics"')])
                return [b"a bearer token (METRICS_TOKEN) is required\n"]
            content_type, body = metrics.render()
            start_response("200 OK", [("content-type", content_type), _NO_STORE])
            return [body]
        if path == "/readyz":
            status, text = readiness.answer()
            start_response("200 OK" if status == 200 else "503 Service Unavailable", [_TEXT, _NO_STORE])
            return [text.encode()]
        if path == "/healthz":
            start_response("200 OK", [_TEXT])
            return [b"ok"]
        start_response("404 Not Found", [_TEXT])
        return [b"not found\n"]

    return application
