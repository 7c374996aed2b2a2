"""What can go wrong with a person's or a workspace's token, as the token manager reports it.

    TokenError
    ├── TokenUnavailable          there is no usable token; the person must connect or reconnect
    │   ├── NotConnected          nothing stored for this person
    │   ├── NeedsReauth           Slack rejected the refresh token or the token; reconnecting fixes it
    │   └── TokenRevoked          the token was revoked or the account deactivated
    ├── MissingScope              the token lacks scopes a call needs (needed, provided)
    ├── SlackUnavailable          Slack could not be reached or kept failing, and no still-valid token is left
    ├── RefreshTimeout            another worker's refresh did not finish in time
    ├── StoreUnavailable          Delegate's own database did not answer (restarting, connection lost)
    └── TokenManagerConfigError   the app's own credentials are wrong (invalid_client_id, bad_client_secret)

No message ever carries a token, refresh token or client secret.
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "MissingScope",
    "NeedsReauth",
    "NotConnected",
    "RefreshTimeout",
    "SlackUnavailable",
    "StoreUnavailable",
    "TokenError",
    "TokenManagerConfigError",
    "TokenRevoked",
    "TokenUnavailable",
]


class TokenError(Exception):
    """Base class of the token manager's errors."""

    def __init__(
        self, message: str, *, user_id: str | None = None, reason: str | None = None, since: datetime | None = None
    ):
        super().__init__(message)
        self.user_id = user_id
        self.reason = reason
        self.since = since  # when the token became unusable (revoked, refused), when known

    def __deepcopy__(self, memo: dict[int, object]) -> TokenError:
        # Bolt deep-copies the context for lazy listeners; an error is never mutated, so share it.
        return self


class TokenUnavailable(TokenError):
    """There is no usable token; the person must connect or reconnect."""


class NotConnected(TokenUnavailable):
    """Nothing is stored for this person."""


class NeedsReauth(TokenUnavailable):
    """Slack rejected the refresh token (or the token itself); reconnecting fixes it."""


class TokenRevoked(TokenUnavailable):
    """The token was revoked, or the person's account was deactivated."""


class MissingScope(TokenError):
    """The token lacks scopes a call needs."""

    def __init__(self, message: str, *, needed: list[str], provided: list[str], user_id: str | None = None):
        super().__init__(message, user_id=user_id, reason="missing_scope")
        self.needed = needed
        self.provided = provided


class SlackUnavailable(TokenError):
    """Slack could not be reached, rate-limited us or failed, and no still-valid token is left."""


class RefreshTimeout(TokenError):
    """Another worker's refresh of the same token did not finish within the wait limit."""


class StoreUnavailable(TokenError):
    """Delegate's own database did not answer; nothing was changed, and trying again shortly should work."""


class TokenManagerConfigError(TokenError):
    """Slack refused the app's own client credentials."""
