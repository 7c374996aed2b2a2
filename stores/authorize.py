"""Bolt's authorize, from the store alone: one indexed read, no Slack call, no lock, and only the acting person's token."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.authorize import Authorize
from slack_bolt.context import BoltContext
from slack_bolt.response import BoltResponse

from .errors import TokenError, TokenUnavailable
from .rotation import TokenKey, TokenManager
from .user_client import UserClient

__all__ = ["DelegateAuthorize", "no_person_token_in_bot_client"]

logger = logging.getLogger(__name__)


class DelegateAuthorize(Authorize):
    """Resolves the bot token and the acting person's user token; puts a UserClient in context["user_client"].

    When the person has no usable token, context["user_client"] is None and context["user_token_error"] says why
    (not connected, needs reauth, revoked), so listeners can ask them to connect instead of acting as someone else.
    """

    def __init__(self, manager: TokenManager, *, services: Any = None):
        self.manager = manager
        self.services = services  # what listeners reach as context["delegate"] (app.py's DelegateServices)

    def __call__(
        self,
        *,
        context: BoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        is_org = bool(context.is_enterprise_install)
        workspace_team = None if is_org else team_id
        # The installation the request came to: an org-wide one is keyed by the org alone (no workspace), whichever
        # workspace of the org the person acted in; the person acting is looked up under it.
        key = TokenKey.of(enterprise_id, workspace_team, user_id)
        acting_key = key
        # With user_token_resolution="actor", Bolt names the actor. Outside a Slack Connect channel the actor is the
        # request's own person (their ids are the same: the installation's key above). Only an actor from another
        # installation is looked up elsewhere: under their workspace, else their org's org-wide installation.
        elsewhere = actor_user_id is not None and (actor_enterprise_id, actor_team_id, actor_user_id) != (
            enterprise_id,
            team_id,
            user_id,
        )
        bot, person, workspace = self.manager.read_for_request(
            TokenKey.of(enterprise_id, workspace_team) if elsewhere else key
        )
        if elsewhere:
            candidates = [TokenKey.of(actor_enterprise_id, actor_team_id, actor_user_id)]
            if actor_enterprise_id and actor_team_id:
                candidates.append(TokenKey.of(actor_enterprise_id, None, actor_user_id))
            person, acting_key = None, candidates[0]
            for candidate in candidates:
                person = self.manager.read(candidate)
                if person is not None:
                    acting_key = candidate
                    break
        acting_enterprise = acting_key.enterprise_id or None
        acting_team = acting_key.team_id or None
        acting_user = acting_key.user_id or None
        # Whose token this request acts with, keyed as stored (listeners.context.person_of reads it).
        context["acting_person"] = (acting_enterprise, acting_team, acting_user) if acting_user else None

        bot_token = None
        context["bot_token_stale"] = False
        if bot is not None:
            try:
                # Never a refresh here: a stale bot token is renewed by the work after the ack (listeners.deferred).
                bot_fresh = self.manager.token_for_request(TokenKey(key.enterprise_id, key.team_id), bot)
                bot_token = bot_fresh.token
                context["bot_token_stale"] = bot_fresh.stale
            except TokenError:
                logger.exception("the bot token of team %s is unusable", team_id)

        user_token: str | None = None
        user_scopes: list[str] | None = None
        context["user_client"] = None
        context["user_token_error"] = None
        if self.services is not None:
            context["delegate"] = self.services
        if acting_user:
            try:
                # Read and decrypt only: a token due for renewal is refreshed after the ack, by the UserClient.
                fresh = self.manager.token_for_request(acting_key, person)
                user_token, user_scopes = fresh.token, list(fresh.scopes)
                context["user_client"] = UserClient(
                    self.manager,
                    enterprise_id=acting_enterprise,
                    team_id=acting_team,
                    user_id=acting_user,
                    fresh=fresh,
                    base_url=self.manager.api_url,
                )
            except TokenUnavailable as error:
                context["user_token_error"] = error
            except TokenError as error:  # Slack unreachable and the old token expired, or a wait timed out
                logger.warning("no fresh token for user %s: %s", acting_user, error)
                context["user_token_error"] = error
        if bot_token is None and user_token is None:
            if workspace is None and person is None:
                return None
        w: Any = workspace
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=bot_token,
            bot_id=w.bot_id if w is not None and bot_token else None,
            bot_user_id=w.bot_user_id if w is not None and bot_token else None,
            bot_scopes=(w.bot_scopes or "") if w is not None and bot_token else None,
            user_id=acting_user,
            user_token=user_token,
            user_scopes=user_scopes,
        )


def no_person_token_in_bot_client(context: BoltContext, next: Callable[[], BoltResponse]) -> BoltResponse:  # noqa: A002
    """A Bolt middleware: context.client never holds the person's token, even when the workspace has no bot token.

    Bolt gives context.client the bot token, or else the user token: a listener calling context.client would then
    act as the person without knowing it, and without the refresh and error handling of context["user_client"].
    Register it with app.use() on an App whose authorize is DelegateAuthorize; context.user_token stays readable.
    """
    if context.bot_token is None and context.get("token") is not None:
        context["token"] = None
        if context.client is not None:
            context.client.token = None
    return next()
