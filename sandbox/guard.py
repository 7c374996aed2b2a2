"""Who may drive the admin API and open the console: a loopback Host, the sandbox's own Origin, JSON, the admin token.

The admin API issues tokens and sets the URL the sandbox posts to and reads answers from, so a web page open in
the same browser must not be able to drive it. Four checks, each answering `{"ok": false, "error": ...}`:

- `Host` must be 127.0.0.1, localhost or [::1] with the sandbox's port (421 `bad_host`): a page on a name that a
  DNS rebinding points at 127.0.0.1 is same-origin with itself, not with the sandbox, and says so in `Host`;
- an `Origin` header, when there is one, must be the sandbox's own, and `Sec-Fetch-Site` must not say another
  site sent the request (403 `bad_origin`); clients that are not browsers send neither;
- the per-run admin token in `X-Sandbox-Admin-Token`, compared in constant time (401 `admin_token_required` or
  `invalid_admin_token`); the console gets it inside its page, which only the sandbox's own origin can read;
- a body must be `application/json` (415 `unsupported_content_type`): browsers send `text/plain` across sites
  without asking first, but never `application/json`.

aiohttp has no such middleware, and `secrets.token_urlsafe` with `hmac.compare_digest` is all the token needs.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from yarl import URL

from sandbox.errors import SlackError

ADMIN_TOKEN_HEADER = "X-Sandbox-Admin-Token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SAME_SITE_FETCHES = ("same-origin", "none")


def new_admin_token() -> str:
    """A fresh random admin token."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class AdminGuard:
    """The admin token of one sandbox run and the ports its loopback `Host` may name."""

    token: str = field(repr=False)
    ports: frozenset[int]

    @classmethod
    def create(cls, base_url: str, *, port: int | None = None, token: str | None = None) -> AdminGuard:
        """A guard for a sandbox listening on `port` (default: the port of `base_url`)."""
        ports = {port} if port else set()
        url_port = URL(base_url).port
        if url_port is not None and URL(base_url).host in ("127.0.0.1", "localhost", "::1"):
            ports.add(url_port)
        if not ports:
            raise ValueError("the admin guard needs the sandbox's port")
        return cls(token=token or new_admin_token(), ports=frozenset(ports))

    def allowed_hosts(self) -> frozenset[str]:
        """Every `Host` value the admin API and the console answer."""
        hosts = {f"{name}:{port}" for name in LOOPBACK_NAMES for port in self.ports}
        if 80 in self.ports:
            hosts.update(LOOPBACK_NAMES)
        return frozenset(hosts)

    def check_host(self, request: web.BaseRequest) -> str:
        """The request's loopback `Host`, lowercased; raises 421 `bad_host` for any other."""
        host = request.host.lower()
        if host not in self.allowed_hosts():
            raise SlackError(
                "bad_host",
                status=421,
                detail="the sandbox's console and admin API answer only at 127.0.0.1, localhost or [::1] with its port",
            )
        return host

    def check(self, request: web.BaseRequest) -> None:
        """Refuse an admin request that is not from the sandbox's own origin, lacks the token, or is not JSON."""
        host = self.check_host(request)
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{host}":
            raise SlackError("bad_origin", status=403, detail="the admin API answers only the sandbox's own pages")
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site.lower() not in SAME_SITE_FETCHES:
            raise SlackError("bad_origin", status=403, detail="the admin API answers only the sandbox's own pages")
        given = request.headers.get(ADMIN_TOKEN_HEADER)
        if not given:
            raise SlackError("admin_token_required", status=401, detail=f"send the admin token in {ADMIN_TOKEN_HEADER}")
        # aiohttp decodes header bytes that are not UTF-8 as surrogates; surrogateescape gives those bytes back.
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.token.encode()):
            raise SlackError("invalid_admin_token", status=401, detail=f"{ADMIN_TOKEN_HEADER} is not this run's token")
        if request.body_exists and request.content_type != "application/json":
            raise SlackError("unsupported_content_type", status=415, detail="admin requests send application/json")


ADMIN_GUARD = web.AppKey("sandbox_admin_guard", AdminGuard)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guarded(handler: Handler) -> Handler:
    """`handler`, answering only requests that pass the app's AdminGuard."""

    async def checked(request: web.Request) -> web.StreamResponse:
        request.app[ADMIN_GUARD].check(request)
        return await handler(request)

    checked.__name__ = handler.__name__
    checked.__doc__ = handler.__doc__
    return checked
