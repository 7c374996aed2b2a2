"""Bolt's OAuth flow with our stores, a user-scopes-only connect flow, and explicit failure pages.

Bolt's flow reports every oauth.v2.access failure as "invalid_code" and lets a connection error escape as a 500;
DelegateOAuthFlow keeps Slack's own error name (e.g. invalid_team_for_non_distributed_app) and turns an unreachable
Slack into a page that says so.

Bolt's handle_installation puts the `team` parameter into the authorize URL as it came, and slack_sdk's
AuthorizeUrlGenerator joins the URL without encoding anything, so `?team=X%0d%0aSet-Cookie:...` became a response
header and `?team=X%26user_scope%3Dadmin` a second scope parameter. Here both start pages accept only the parameters
Delegate's own links carry, in the shapes Slack gives them, and build the URL with urlencode.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from slack_bolt.oauth import OAuthFlow
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.oauth import OAuthStateUtils
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.web import SlackResponse

from stores import SQLAlchemyInstallationStore, SQLAlchemyOAuthStateStore
from stores.schema import utcnow

from .pages import (
    FAILURES,
    REDIRECT_ERRORS,
    STARTED_ELSEWHERE,
    Guide,
    failure_page,
    malformed_link_page,
    success_page,
    unknown_scope_page,
)

__all__ = [
    "CONNECT_PATH",
    "INSTALL_PATH",
    "REDIRECT_PATH",
    "DelegateOAuthFlow",
    "DelegateStateUtils",
    "ErrorRecordingClient",
    "MalformedLink",
    "OAuthObserver",
    "StartParameters",
    "UnknownScope",
    "app_home_link",
    "build_oauth_settings",
    "connect_url",
    "on_clock",
    "parse_start",
]

logger = logging.getLogger(__name__)

CONNECT_PATH = "/slack/connect"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# Slack's workspace ids start with T and org (Enterprise Grid) ids with E; both are uppercase letters and digits.
_TEAM = re.compile(r"[TE][A-Z0-9]{2,31}")
_APP = re.compile(r"A[A-Z0-9]{2,31}")  # a Slack app id
# Slack's codes are dot-separated digits and hex; anything else is not worth a call to oauth.v2.access.
_CODE = re.compile(r"[A-Za-z0-9._-]{1,256}")
_MAX_SCOPES_LENGTH = 1024
_MAX_QUERY_LENGTH = 4096
_MAX_PARAMETERS = 20

_last_error = threading.local()


def _html(status: int, body: str, cookie: str | None = None) -> BoltResponse:
    headers: dict[str, str | Sequence[str]] = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
    if cookie:
        headers["Set-Cookie"] = cookie
    return BoltResponse(status=status, body=body, headers=headers)


class OAuthObserver(Protocol):
    """Told of each OAuth callback's result (ops.metrics.PrometheusObserver counts them)."""

    def oauth_installed(self, flow: str) -> None:
        """A flow completed: "install" (Add to Slack, a bot token granted) or "connect" (a person's account only)."""

    def oauth_failed(self, reason: str) -> None:
        """A callback failed: a reason web/pages.py explains (access_denied, invalid_state, ...), or "other"."""


class MalformedLink(ValueError):
    """An install or connect link whose parameters Delegate never makes."""


class UnknownScope(ValueError):
    """A connect link asking for a scope that is not one of the app's user scopes."""


@dataclass(frozen=True)
class StartParameters:
    """What an install or connect link may say: the workspace or org to sign in to, and scopes to ask for again."""

    team: str | None = None
    scopes: tuple[str, ...] = ()


def parse_start(query: Mapping[str, Sequence[str]], *, allowed_scopes: Sequence[str] | None) -> StartParameters:
    """Validate a start link's query; scopes are read only when allowed_scopes is given (the connect page).

    Parameters Delegate does not know (a tracker's utm_source, say) are ignored and never forwarded; a known one
    given twice is ambiguous and makes the link malformed.
    """
    if len(query) > _MAX_PARAMETERS or sum(len(k) + sum(len(v) for v in vs) for k, vs in query.items()) > _MAX_QUERY_LENGTH:
        raise MalformedLink("too many or too long parameters")
    known = ("team", "scopes") if allowed_scopes is not None else ("team",)
    values: dict[str, str] = {}
    for name in known:
        given = list(query.get(name) or [])
        if len(given) > 1:
            raise MalformedLink(f"{name} given {len(given)} times")
        if given:
            values[name] = given[0]
    team = values.get("team")
    if team is not None and not _TEAM.fullmatch(team):
        raise MalformedLink("team is not a Slack workspace or org id")
    scopes: list[str] = []
    if allowed_scopes is not None and "scopes" in values:
        if len(values["scopes"]) > _MAX_SCOPES_LENGTH:
            raise MalformedLink("scopes is too long")
        for scope in (s.strip() for s in values["scopes"].split(",")):
            if not scope:
                continue
            if scope not in allowed_scopes:
                raise UnknownScope("a scope that is not one of the app's user scopes")
            if scope not in scopes:
                scopes.append(scope)
    return StartParameters(team=team, scopes=tuple(scopes))


def _loggable(name: str) -> str:
    """An untrusted error name made safe for one log line: short, and no characters but a name's."""
    return re.sub(r"[^A-Za-z0-9_.:-]", "?", name[:40]) + ("..." if len(name) > 40 else "")


class DelegateStateUtils(OAuthStateUtils):
    """slack_sdk's state cookie with SameSite=Lax, and Secure only where the redirect URI is https.

    slack_sdk's cookie has no SameSite (browsers then default to Lax, but not all of them) and is always Secure,
    which a browser on the sandbox's http://127.0.0.1 may drop. Lax, not Strict: Slack sends the person back with a
    top-level cross-site redirect, on which a Strict cookie would not be sent.
    """

    def __init__(self, *, secure: bool, **kwargs: Any):
        super().__init__(**kwargs)
        self.secure = secure

    def _attributes(self, cookie: str) -> str:
        parts = [part for part in cookie.split("; ") if part != "Secure" and not part.startswith("SameSite=")]
        parts.insert(1, "SameSite=Lax")
        if self.secure:
            parts.insert(1, "Secure")
        return "; ".join(parts)

    def build_set_cookie_for_new_state(self, state: str) -> str:
        return self._attributes(super().build_set_cookie_for_new_state(state))

    def build_set_cookie_for_deletion(self) -> str:
        return self._attributes(super().build_set_cookie_for_deletion())


def build_oauth_settings(
    *,
    client_id: str,
    client_secret: str,
    bot_scopes: Sequence[str],
    user_scopes: Sequence[str],
    redirect_uri: str | None,
    authorization_url: str,
    installation_store: SQLAlchemyInstallationStore,
    state_store: SQLAlchemyOAuthStateStore,
    slack_home_url: str = "slack://open",
    after_install: Callable[[Installation], None] | None = None,
    observer: OAuthObserver | None = None,
    guide: Guide | None = None,
) -> OAuthSettings:
    """OAuth settings for "Add to Slack" (bot and user scopes) with Delegate's result pages, which tell a new person
    what to do next from `guide` (the commands to try, the support and privacy links)."""

    def success(args: SuccessArgs) -> BoltResponse:
        installation: Installation = args.installation
        if observer is not None:
            observer.oauth_installed("install" if installation.bot_token is not None else "connect")
        if after_install is not None:
            try:
                after_install(installation)
            except Exception:  # noqa: BLE001 - the connection is saved; a follow-up that fails must not hide that
                logger.exception("after-install step failed")
        return _html(
            200,
            success_page(
                team_name=installation.team_name or installation.enterprise_name,
                user_scopes=list(installation.user_scopes or []),
                bot_installed=installation.bot_token is not None,
                home_url=app_home_link(slack_home_url, installation),
                guide=guide,
            ),
            args.settings.state_utils.build_set_cookie_for_deletion(),
        )

    def failure(args: FailureArgs) -> BoltResponse:
        reason = args.reason
        if reason == "invalid_code":
            reason = getattr(_last_error, "code", None) or reason
        _last_error.code = None
        if args.error is not None:
            logger.warning("OAuth callback failed: %s (%s)", _loggable(reason), type(args.error).__name__)
        else:
            logger.info("OAuth callback failed: %s", _loggable(reason))
        # Bolt reads the callback's own error parameter first: that one is the link's text, not Slack's answer.
        if "error" in args.request.query and reason not in REDIRECT_ERRORS:
            reason = "unknown"
        retry_url = "/"
        if reason == "invalid_browser" and not (args.request.query.get("state") or [""])[0]:
            # No state at all: Slack started this authorization, not Delegate's install link. The code is left unused.
            reason, retry_url = STARTED_ELSEWHERE, INSTALL_PATH
            logger.warning(
                "an authorization started on Slack's side reached the callback without a state and was refused; for the "
                "Slack Marketplace, turn on direct install with %s as the Direct Install URL",
                INSTALL_PATH,
            )
        if observer is not None:
            observer.oauth_failed(reason if reason in FAILURES or reason == "unknown" else "other")  # a bounded label
        status, body = failure_page(reason, retry_url, guide)
        return _html(status, body, args.settings.state_utils.build_set_cookie_for_deletion())

    settings = OAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(bot_scopes),
        user_scopes=list(user_scopes),
        redirect_uri=redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        install_page_rendering_enabled=False,
        authorization_url=authorization_url,
        installation_store=installation_store,
        state_store=state_store,
        callback_options=CallbackOptions(success=success, failure=failure),
        # Bolt then names the actor to authorize: in a Slack Connect channel the person acting, not the installer's
        # side (stores.authorize.DelegateAuthorize keys them; everywhere else the actor is the request's person).
        user_token_resolution="actor",
    )
    settings.state_utils = DelegateStateUtils(
        cookie_name=settings.state_cookie_name,
        expiration_seconds=settings.state_expiration_seconds,
        secure=redirect_uri is None or redirect_uri.startswith("https://"),
    )
    return settings


class DelegateOAuthFlow(OAuthFlow):
    """Bolt's OAuth flow, plus the connect flow, validated start links and Slack's real error names on failure."""

    def __init__(self, *, clock: Callable[[], datetime] = utcnow, **options: Any):
        super().__init__(**options)
        self.clock = clock

    def handle_installation(self, request: BoltRequest) -> BoltResponse:
        """Start "Add to Slack" (bot and user scopes), for the workspace or org the link names if any."""
        return self._start(request, bot_scopes=self.settings.scopes or [], allowed_scopes=None)

    def handle_connect(self, request: BoltRequest) -> BoltResponse:
        """Start a user-scopes-only authorization ("Connect my Slack account"), naming scopes to ask for again."""
        return self._start(request, bot_scopes=[], allowed_scopes=list(self.settings.user_scopes or []))

    def build_authorize_url(self, state: str, request: BoltRequest) -> str:
        """Bolt's hook, kept consistent with handle_installation: validated parameters, encoded URL."""
        start = parse_start(request.query, allowed_scopes=None)
        return self.authorize_url(state, bot_scopes=self.settings.scopes or [], team=start.team)

    def authorize_url(self, state: str, *, bot_scopes: Sequence[str], team: str | None) -> str:
        """Slack's authorize URL with every parameter encoded (slack_sdk's generator concatenates them raw)."""
        params = [
            ("state", state),
            ("client_id", self.settings.client_id),
            ("scope", ",".join(bot_scopes)),
            ("user_scope", ",".join(self.settings.user_scopes or [])),
        ]
        if self.settings.redirect_uri is not None:
            params.append(("redirect_uri", self.settings.redirect_uri))
        if team is not None:
            params.append(("team", team))
        base = self.settings.authorize_url_generator.authorization_url
        return base + ("&" if "?" in base else "?") + urlencode(params, quote_via=quote, safe=",:")

    def _start(self, request: BoltRequest, *, bot_scopes: Sequence[str], allowed_scopes: list[str] | None) -> BoltResponse:
        try:
            start = parse_start(request.query, allowed_scopes=allowed_scopes)
        except UnknownScope:
            logger.info("start link refused: a scope the app does not use")
            return _html(400, unknown_scope_page(allowed_scopes or []))
        except MalformedLink as error:
            logger.info("start link refused: %s", error)
            return _html(400, malformed_link_page())
        # Every scope a link may name is already one of the app's user scopes, all of which are asked for anyway.
        state = self.issue_new_state(request)
        return BoltResponse(
            status=302,
            body="",
            headers={
                "Content-Type": "text/html; charset=utf-8",
                "Location": self.authorize_url(state, bot_scopes=bot_scopes, team=start.team),
                "Set-Cookie": self.settings.state_utils.build_set_cookie_for_new_state(state),
                "Cache-Control": "no-store",
            },
        )

    def run_installation(self, code: str) -> Installation | None:
        _last_error.code = None
        if not _CODE.fullmatch(code):
            logger.info("oauth.v2.access not called: the code is not one Slack makes")
            _last_error.code = "invalid_code"
            return None
        try:
            installation = super().run_installation(code)
        except (SlackClientError, OSError) as error:  # Slack unreachable, connection dropped, timed out
            logger.warning("oauth.v2.access could not be completed: %s", type(error).__name__)
            _last_error.code = "slack_unreachable"
            return None
        return on_clock(installation, self.clock) if installation is not None else None


def on_clock(installation: Installation, clock: Callable[[], datetime]) -> Installation:
    """The installation with its issue and expiry times on `clock` (slack_sdk stamps them with the real time).

    In sandbox mode the sandbox's clock may be hours ahead of the real one: a token it issues "now" expires 12 hours
    after the sandbox's now, so the grant must be dated on that clock too, or Delegate would count it as expired.
    """
    shift = round(clock().timestamp() - installation.installed_at)
    if shift:
        installation.installed_at += shift
        if installation.user_token_expires_at is not None:
            installation.user_token_expires_at += shift
        if installation.bot_token_expires_at is not None:
            installation.bot_token_expires_at += shift
    return installation


class ErrorRecordingClient(WebClient):
    """A WebClient for the OAuth flow that remembers Slack's error name, which Bolt's flow would otherwise drop."""

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        try:
            return super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            status = error.response.status_code
            _last_error.code = "slack_unreachable" if status >= 500 else str(error.response.get("error") or "unknown_error")
            raise


def app_home_link(slack_home_url: str, installation: Installation) -> str:
    """Where "Open Slack" leads: Delegate's Home tab in the Slack client, where the next steps are, when Slack named the
    app and the workspace; else `slack_home_url` as configured (the sandbox's console in sandbox mode)."""
    app_id, team_id = installation.app_id or "", installation.team_id or ""
    if slack_home_url != "slack://open" or not _APP.fullmatch(app_id) or not _TEAM.fullmatch(team_id):
        return slack_home_url
    return f"slack://app?{urlencode({'team': team_id, 'id': app_id, 'tab': 'home'})}"


def connect_url(base_url: str, *, team_id: str | None, user_scopes: Sequence[str] | None = None) -> str:
    """The link a person opens to connect, or to reconnect asking for more scopes."""
    url = f"{base_url.rstrip('/')}{CONNECT_PATH}"
    params = []
    if team_id:
        params.append(f"team={quote(team_id)}")
    if user_scopes:
        params.append(f"scopes={quote(','.join(user_scopes), safe=',')}")
    return url + ("?" + "&".join(params) if params else "")
