"""Bolt's OAuth flow with our stores, a user-scopes-only connect flow, and explicit failure pages.

Bolt's flow reports every oauth.v2.access failure as "invalid_code" and lets a connection error escape as a 500;
DelegateOAuthFlow keeps Slack's own error name (e.g. invalid_team_for_non_distributed_app) and turns an unreachable
Slack into a page that says so.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from slack_bolt.oauth import OAuthFlow
from slack_bolt.oauth.callback_options import CallbackOptions, FailureArgs, SuccessArgs
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.oauth import AuthorizeUrlGenerator
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.web import SlackResponse

from stores import SQLAlchemyInstallationStore, SQLAlchemyOAuthStateStore

from .pages import failure_page, success_page

__all__ = ["CONNECT_PATH", "DelegateOAuthFlow", "ErrorRecordingClient", "build_oauth_settings", "connect_url"]

logger = logging.getLogger(__name__)

CONNECT_PATH = "/slack/connect"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
_ID = re.compile(r"^[A-Z0-9]{2,32}$")
_SCOPE = re.compile(r"^[a-z][a-z0-9._:-]{1,63}$")

_last_error = threading.local()


def _html(status: int, body: str, cookie: str | None = None) -> BoltResponse:
    headers: dict[str, str | Sequence[str]] = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
    if cookie:
        headers["Set-Cookie"] = cookie
    return BoltResponse(status=status, body=body, headers=headers)


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
) -> OAuthSettings:
    """OAuth settings for "Add to Slack" (bot and user scopes) with Delegate's result pages."""

    def success(args: SuccessArgs) -> BoltResponse:
        installation: Installation = args.installation
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
                home_url=slack_home_url,
            ),
            args.settings.state_utils.build_set_cookie_for_deletion(),
        )

    def failure(args: FailureArgs) -> BoltResponse:
        reason = args.reason
        if reason == "invalid_code":
            reason = getattr(_last_error, "code", None) or reason
        _last_error.code = None
        if args.error is not None:
            logger.warning("OAuth callback failed: %s (%s)", reason, type(args.error).__name__)
        else:
            logger.info("OAuth callback failed: %s", reason)
        status, body = failure_page(reason, "/")
        return _html(status, body, args.settings.state_utils.build_set_cookie_for_deletion())

    return OAuthSettings(
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
    )


class DelegateOAuthFlow(OAuthFlow):
    """Bolt's OAuth flow, plus the connect flow and Slack's real error names on the failure page."""

    def run_installation(self, code: str) -> Installation | None:
        _last_error.code = None
        try:
            installation = super().run_installation(code)
        except (SlackClientError, OSError) as error:  # Slack unreachable, connection dropped, timed out
            logger.warning("oauth.v2.access could not be completed: %s", type(error).__name__)
            _last_error.code = "slack_unreachable"
            return None
        return installation

    def handle_connect(self, request: BoltRequest) -> BoltResponse:
        """Start a user-scopes-only authorization ("Connect my Slack account"), optionally asking for more scopes."""
        requested = list(self.settings.user_scopes or [])
        extra = request.query.get("scopes", [""])[0]
        for scope in (s.strip() for s in extra.split(",") if s.strip()):
            if not _SCOPE.match(scope):
                return _html(400, failure_page("bad_scope_parameter", "/")[1])
            if scope not in requested:
                requested.append(scope)
        team = request.query.get("team", [None])[0]
        if team is not None and not _ID.match(team):
            team = None
        state = self.settings.state_store.issue()
        url = AuthorizeUrlGenerator(
            client_id=self.settings.client_id,
            redirect_uri=self.settings.redirect_uri,
            scopes=[],
            user_scopes=requested,
            authorization_url=self.settings.authorize_url_generator.authorization_url,
        ).generate(state, team=team)
        return BoltResponse(
            status=302,
            body="",
            headers={
                "Location": url,
                "Set-Cookie": self.settings.state_utils.build_set_cookie_for_new_state(state),
                "Cache-Control": "no-store",
            },
        )


class ErrorRecordingClient(WebClient):
    """A WebClient for the OAuth flow that remembers Slack's error name, which Bolt's flow would otherwise drop."""

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        try:
            return super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            status = error.response.status_code
            _last_error.code = "slack_unreachable" if status >= 500 else str(error.response.get("error") or "unknown_error")
            raise


def connect_url(base_url: str, *, team_id: str | None, user_scopes: Sequence[str] | None = None) -> str:
    """The link a person opens to connect, or to reconnect asking for more scopes."""
    url = f"{base_url.rstrip('/')}{CONNECT_PATH}"
    params = []
    if team_id:
        params.append(f"team={quote(team_id)}")
    if user_scopes:
        params.append(f"scopes={quote(','.join(user_scopes), safe=',')}")
    return url + ("?" + "&".join(params) if params else "")
