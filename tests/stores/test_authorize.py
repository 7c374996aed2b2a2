"""Bolt integration: our authorize, and a stock Bolt app given only our store."""

from __future__ import annotations

import time
from datetime import timedelta

from slack_bolt import App, BoltContext
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Installation

from stores.authorize import DelegateAuthorize
from stores.rotation import TokenKey, TokenManager
from tests.conftest import CLIENT_ID
from tests.stores.test_rotation import CLIENT_SECRET, connect, manager, token_server  # noqa: F401
from tests.support.concurrency import in_threads
from tests.support.slack_requests import command_request

__all__ = ["manager", "token_server"]

SIGNING_SECRET = "test-signing-secret"


def delegate_app(manager: TokenManager, seen: list[dict]) -> App:  # type: ignore[type-arg]
    app = App(
        signing_secret=SIGNING_SECRET,
        authorize=DelegateAuthorize(manager),
        client=WebClient(base_url=manager.api_url),
        process_before_response=True,
    )

    @app.command("/whoami")
    def whoami(ack, context: BoltContext) -> None:  # type: ignore[no-untyped-def]
        ack()
        client = context["user_client"]
        seen.append(
            {
                "user_id": context.user_id,
                "user_token": context.user_token,
                "bot_token": context.bot_token,
                "client_user": client.user_id if client else None,
                "error": type(context["user_token_error"]).__name__ if context["user_token_error"] else None,
                "bot_user_id": context.bot_user_id,
                "stale": bool(client and client._fresh and client._fresh.stale),
                "client": client,
            }
        )

    return app


def test_each_person_gets_only_their_own_token_and_no_slack_call(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    token_a, _ = connect(store, state, "UA")
    token_b, _ = connect(store, state, "UB")
    seen: list[dict] = []  # type: ignore[type-arg]
    app = delegate_app(manager, seen)
    for user in ("UA", "UB", "UC", "UA"):
        assert app.dispatch(command_request(SIGNING_SECRET, "/whoami", user_id=user)).status == 200
    assert [s["user_token"] for s in seen] == [token_a, token_b, None, token_a]
    assert [s["client_user"] for s in seen] == ["UA", "UB", None, "UA"]
    assert seen[2]["error"] == "NotConnected" and seen[2]["bot_token"] == "xoxb-static-bot"
    assert all(s["bot_user_id"] == "UBOT" for s in seen)
    assert state.api_calls == [] and state.refresh_calls == 0  # no auth.test, no Slack call at all


def test_actor_resolution_uses_the_actor_token(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    connect(store, state, "UA")
    token_b, _ = connect(store, state, "UB")
    context = BoltContext()
    context["is_enterprise_install"] = False
    result = DelegateAuthorize(manager)(
        context=context, enterprise_id=None, team_id="T1", user_id="UA", actor_team_id="T1", actor_user_id="UB"
    )
    assert result.user_token == token_b and result.user_id == "UB"
    assert context["user_client"].user_id == "UB"


def org_wide(store, enterprise_id: str, user_id: str, token: str) -> None:  # type: ignore[no-untyped-def]
    """An org-wide installation's row for a person: keyed by the org, no workspace (an org-level token)."""
    store.save(
        Installation(
            app_id="A1",
            enterprise_id=enterprise_id,
            team_id=None,
            is_enterprise_install=True,
            bot_token="xoxb-org-bot",
            bot_id="B1",
            bot_user_id="UBOT",
            bot_scopes="commands",
            user_id=user_id,
            user_token=token,
            user_scopes="chat:write",
            installed_at=time.time(),
        )
    )


def test_on_an_org_wide_install_the_actor_is_keyed_by_the_org_not_the_workspace_acted_in(store, manager) -> None:  # type: ignore[no-untyped-def]
    org_wide(store, "E1", "UB", "xoxp-org-ub")
    context = BoltContext({"is_enterprise_install": True})
    # What Bolt passes with user_token_resolution="actor" for a command typed in workspace T2 of org E1.
    result = DelegateAuthorize(manager)(
        context=context,
        enterprise_id="E1",
        team_id="T2",
        user_id="UB",
        actor_enterprise_id="E1",
        actor_team_id="T2",
        actor_user_id="UB",
    )
    assert result is not None and result.user_token == "xoxp-org-ub" and result.bot_token == "xoxb-org-bot"
    assert context["acting_person"] == ("E1", None, "UB") and context["user_client"].user_id == "UB"


def test_an_actor_from_another_org_acts_with_their_own_orgs_token_never_the_installations(
    store, manager, token_server
) -> None:  # type: ignore[no-untyped-def]
    _, state = token_server
    token_a, _ = connect(store, state, "UA")  # the installation the event came to: T1, its person UA
    org_wide(store, "E9", "UX", "xoxp-e9-ux")  # the actor's own org installed Delegate org-wide
    context = BoltContext({"is_enterprise_install": False})
    result = DelegateAuthorize(manager)(
        context=context,
        enterprise_id=None,
        team_id="T1",
        user_id="UA",
        actor_enterprise_id="E9",
        actor_team_id="T9",
        actor_user_id="UX",
    )
    assert result is not None and result.user_token == "xoxp-e9-ux" and result.user_id == "UX"
    assert context["acting_person"] == ("E9", None, "UX")
    stranger = BoltContext({"is_enterprise_install": False})
    unknown = DelegateAuthorize(manager)(
        context=stranger,
        enterprise_id=None,
        team_id="T1",
        user_id="UA",
        actor_enterprise_id="E8",
        actor_team_id="T8",
        actor_user_id="UY",
    )
    assert unknown is not None and unknown.user_token is None and token_a != unknown.user_token
    assert stranger["user_client"] is None and stranger["acting_person"] == ("E8", "T8", "UY")


def test_unknown_workspace_is_not_authorized(manager) -> None:  # type: ignore[no-untyped-def]
    context = BoltContext()
    assert DelegateAuthorize(manager)(context=context, enterprise_id=None, team_id="T404", user_id="U1") is None


def test_an_expired_token_never_holds_the_ack_and_is_refreshed_once_after_it(store, token_server) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    connect(store, state, "UA", stored_expires_in=-5)
    state.faults = ["429"]  # the first refresh is rate limited (Retry-After: 1): not the ack's problem
    manager = TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False)
    seen: list[dict] = []  # type: ignore[type-arg]
    app = delegate_app(manager, seen)
    responses = in_threads(lambda: app.dispatch(command_request(SIGNING_SECRET, "/whoami", user_id="UA")), 8)
    assert [r.status for r in responses] == [200] * 8
    assert state.refresh_calls == 0, "authorize and the ack never call Slack"
    assert len(seen) == 8 and all(s["stale"] and s["client_user"] == "UA" for s in seen)
    # The work after each ack uses the person's client: its first call refreshes, once for all of them.
    clients = iter([s["client"] for s in seen])
    users = in_threads(lambda: next(clients).auth_test()["user_id"], 8)
    assert users == ["UA"] * 8
    assert state.refresh_calls == 2 and state.rejected_refreshes == 0  # the 429, then one rotation
    assert len(state.api_calls) == 8


def test_stock_bolt_with_only_our_store_is_safe_from_refresh_races(store, token_server) -> None:  # type: ignore[no-untyped-def]
    api_url, state = token_server
    connect(store, state, "UA", stored_expires_in=-5)
    state.latency = 0.1
    TokenManager(store, client_secret=CLIENT_SECRET, api_url=api_url, background_refresh=False).attach()
    app = App(
        signing_secret=SIGNING_SECRET,
        client=WebClient(base_url=api_url),
        installation_store=store,
        oauth_settings=OAuthSettings(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, installation_store=store, scopes=["commands"]
        ),
    )
    user_tokens: list[str | None] = []

    @app.command("/whoami")
    def whoami(ack, context: BoltContext) -> None:  # type: ignore[no-untyped-def]
        ack()
        user_tokens.append(context.user_token)

    # Bolt's own rotator would refresh inline, unlocked, in every thread; with our store it finds nothing to do.
    in_threads(lambda: app.dispatch(command_request(SIGNING_SECRET, "/whoami", user_id="UA")), 6)
    assert state.refresh_calls == 1 and state.rejected_refreshes == 0
    assert len(user_tokens) == 6 and len(set(user_tokens)) == 1 and user_tokens[0] in state.access_tokens


def test_refresh_margin_is_jittered_per_token_within_bounds(manager) -> None:  # type: ignore[no-untyped-def]
    margins = {manager.margin_for(TokenKey.of(None, "T1", f"U{n}")) for n in range(50)}
    assert len(margins) > 40
    assert all(timedelta(minutes=110) <= m <= timedelta(minutes=130) for m in margins)


def test_without_a_bot_token_context_client_never_holds_the_persons_token(store, manager, token_server) -> None:  # type: ignore[no-untyped-def]
    from stores.authorize import no_person_token_in_bot_client

    _, state = token_server
    token_a, _ = connect(store, state, "UA")
    store.delete_bot(enterprise_id=None, team_id="T1")
    seen: list[dict] = []  # type: ignore[type-arg]
    app = delegate_app(manager, seen)
    clients: list[str | None] = []
    app.use(no_person_token_in_bot_client)

    @app.command("/client")
    def client_token(ack, context: BoltContext) -> None:  # type: ignore[no-untyped-def]
        ack()
        clients.append(context.client.token)
        seen.append({"user_token": context.user_token, "token": context.get("token")})

    assert app.dispatch(command_request(SIGNING_SECRET, "/client", user_id="UA")).status == 200
    assert clients == [None]  # Bolt alone would give the person's token here
    assert seen == [{"user_token": token_a, "token": None}]
