"""A WebClient bound to one person: it takes their token from the token manager and never falls back to another."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.web import SlackResponse, WebClient

from .observe import with_api_error_counter
from .rotation import FreshToken, TokenKey, TokenManager

__all__ = ["UserClient"]

# Errors about the token itself: before acting on one, check whether the stored token has moved on since the call.
TOKEN_ERRORS = frozenset({"token_expired", "invalid_auth", "not_authed", "token_revoked"})


class UserClient(WebClient):
    """Calls Slack as (enterprise, team, user); on token_expired it refreshes once and retries the call once.

    slack_sdk's WebClient falls back to its default token when a call passes token=None; this one has no default
    token to fall back to, so an action without the person's own token fails with a TokenError instead.
    """

    def __init__(
        self,
        manager: TokenManager,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str,
        fresh: FreshToken | None = None,
        **kwargs: Any,
    ):
        handlers = kwargs.get("retry_handlers")
        if handlers is None:
            handlers = [ConnectionErrorRetryHandler(max_retry_count=1), RateLimitErrorRetryHandler(max_retry_count=2)]
        kwargs["retry_handlers"] = with_api_error_counter(handlers, manager.observer)  # every failed call counted once
        super().__init__(token=None, **kwargs)
        self.manager = manager
        self.key = TokenKey.of(enterprise_id, team_id, user_id)
        self.user_id = user_id
        # The token authorize just read: used while it stays clear of the refresh margin, sparing a read per call.
        self._fresh: FreshToken | None = fresh

    def __deepcopy__(self, memo: dict[int, object]) -> UserClient:
        # Bolt deep-copies the context for lazy listeners; the client is bound to the same person and shareable.
        return self

    def __repr__(self) -> str:
        return f"UserClient(user_id={self.user_id!r}, team_id={self.key.team_id!r})"

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        """Make the call with the person's fresh token; on a token error, retry once with a newer token (refreshed now
        on token_expired, or rotated by another worker meanwhile), else record what Slack said and raise."""
        for key in ("data", "params", "json"):
            if isinstance(kwargs.get(key), dict):
                # A token smuggled into the arguments would bypass the person's own token: drop it.
                kwargs[key] = {k: v for k, v in kwargs[key].items() if k != "token"}
        fresh = self._token()
        try:
            return self._call_with(fresh.token, api_method, kwargs)
        except SlackApiError as error:
            code = str(error.response.get("error") or "")
            if code not in TOKEN_ERRORS:
                self.manager.record_api_error(self.key, code, error.response.data, generation=fresh.generation)
                raise
            if code == "token_expired":
                renewed: FreshToken | None = self.manager.refresh_after_expired(self.key, fresh.token)
            else:
                # Another worker may have rotated or reconnected the token we used: then it is not ours to condemn.
                renewed = self.manager.newer_token(self.key, fresh.token)
                if renewed is None and code in ("invalid_auth", "not_authed") and self.manager.token_still_accepted(fresh):
                    raise  # Slack still accepts the token (an IP allow-list refusing this host, say): drop nothing
            if renewed is None:
                self.manager.record_api_error(self.key, code, error.response.data, generation=fresh.generation)
                raise
        self._fresh = renewed
        try:
            return self._call_with(renewed.token, api_method, kwargs)
        except SlackApiError as error:
            self.manager.record_api_error(
                self.key, str(error.response.get("error") or ""), error.response.data, generation=renewed.generation
            )
            raise

    def _token(self) -> FreshToken:
        known = self._fresh
        if known is not None and not known.stale:
            if known.expires_at is None or known.expires_at > self.manager.clock():
                return known
        # Stale or expired: refreshed here, after the ack (this may wait for another worker's refresh).
        self._fresh = self.manager.fresh_token(self.key)
        return self._fresh

    def _call_with(self, token: str, api_method: str, kwargs: dict[str, Any]) -> SlackResponse:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {token}"
        return super().api_call(api_method, headers=headers, **kwargs)
