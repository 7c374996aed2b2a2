"""A WebClient holding a workspace's bot token that renews it through the token manager when Slack says it expired.

With token rotation on, the bot token expires after 12 hours like every user token. Authorize and the work after
the ack renew it ahead of time by Delegate's own clock; this client covers the case that clock cannot see (Slack's
clock ahead of Delegate's, a token renewed by hand, a clock moved in the sandbox): on `token_expired` it asks the
token manager, which sends the refresh token at most once however many ask, and retries the call once.
"""

from __future__ import annotations

from typing import Any, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import default_retry_handlers
from slack_sdk.web import SlackResponse, WebClient

from .observe import NO_OBSERVER, with_api_error_counter
from .rotation import FreshToken, TokenKey

__all__ = ["BotClient", "BotTokenRenewer"]


class BotTokenRenewer(Protocol):
    """The part of stores.rotation.TokenManager a BotClient uses."""

    def refresh_after_expired(self, key: TokenKey, used_token: str) -> FreshToken: ...


class BotClient(WebClient):
    """Calls Slack as the workspace's bot; on token_expired it renews the bot token once and retries the call once."""

    def __init__(self, manager: BotTokenRenewer, *, key: TokenKey, **kwargs: Any):
        handlers = kwargs.get("retry_handlers")
        handlers = default_retry_handlers() if handlers is None else handlers
        kwargs["retry_handlers"] = with_api_error_counter(handlers, getattr(manager, "observer", NO_OBSERVER))
        super().__init__(**kwargs)
        self.manager = manager
        self.key = key  # the bot's: TokenKey.of(enterprise_id, team_id, None), team None for an org-wide install

    @classmethod
    def like(cls, client: WebClient, manager: BotTokenRenewer, key: TokenKey) -> BotClient:
        """A BotClient with the token and settings of `client` (Bolt's per-request client)."""
        return cls(
            manager,
            key=key,
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            ssl=client.ssl,
            proxy=client.proxy,
            headers=client.headers,
            team_id=client.default_params.get("team_id"),
            logger=client.logger,
            retry_handlers=client.retry_handlers,
        )

    def __deepcopy__(self, memo: dict[int, object]) -> BotClient:
        # Bolt deep-copies the context for lazy listeners; the client is bound to the same bot and shareable.
        return self

    def __repr__(self) -> str:
        return f"BotClient(team_id={self.key.team_id!r}, enterprise_id={self.key.enterprise_id!r})"

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        """Make the call with the bot token; when Slack answers token_expired, renew it and make the call again."""
        used = self.token
        try:
            return super().api_call(api_method, **_copied(kwargs))
        except SlackApiError as error:
            if error.response.get("error") != "token_expired" or not used or _names_a_token(kwargs):
                raise
        # Raises a TokenError (no secret in it) when Slack will not renew it: the caller logs and goes on.
        self.token = self.manager.refresh_after_expired(self.key, used).token
        return super().api_call(api_method, **_copied(kwargs))


def _copied(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments with their dicts copied: slack_sdk adds to them, and a retry must start from the original."""
    return {name: dict(value) if isinstance(value, dict) else value for name, value in kwargs.items()}


def _names_a_token(kwargs: dict[str, Any]) -> bool:
    """Whether the call passes a token of its own (then its expiry is not the bot token's to renew)."""
    return any(isinstance(kwargs.get(name), dict) and "token" in kwargs[name] for name in ("params", "json", "data"))
