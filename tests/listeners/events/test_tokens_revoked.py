"""tokens_revoked: idempotent revocations that keep a grant saved after the event and republish the Home tab, on
fakes and on the real store and token manager."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App, BoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Installation

from listeners import register_listeners
from listeners.events.tokens_revoked import tokens_revoked_ack, tokens_revoked_callback
from stores import SQLAlchemyInstallationStore
from stores.rotation import TokenKey, TokenManager
from tests.support.slack_requests import event_request

from ..fakes import TEAM, Calls, FakeRevocationStore, World, connection, text_of, world

T0 = 1_790_000_000.0


def revoked(users: list[str], bot: bool = False) -> dict[str, object]:
    return {"type": "tokens_revoked", "tokens": {"oauth": users, "bot": ["UBOT"] if bot else []}}


def envelope(event: dict[str, object], event_time: float) -> dict[str, object]:
    return {"type": "event_callback", "event": event, "event_time": event_time, "team_id": TEAM}


def grant(store: SQLAlchemyInstallationStore, user_id: str, installed_at: float, token: str) -> None:
    store.save(
        Installation(
            app_id="A1",
            team_id=TEAM,
            bot_token="xoxb-bot",
            bot_id="B1",
            bot_user_id="UBOT",
            user_id=user_id,
            user_token=token,
            user_scopes="chat:write",
            installed_at=installed_at,
        )
    )


def test_acknowledged_at_once() -> None:
    ack = Calls()
    tokens_revoked_ack(ack=ack)
    assert ack.calls == [{}]


def test_revokes_each_user_up_to_the_event_time_and_republishes_their_home_tab() -> None:
    w, store = world(info=connection()), FakeRevocationStore()
    event = revoked(["U1", "U2"])
    tokens_revoked_callback(body=envelope(event, T0), event=event, context=w.context, store=store)
    moment = datetime.fromtimestamp(T0 + 0.999999, tz=UTC)  # the end of Slack's whole second
    key = {"enterprise_id": None, "team_id": TEAM, "installed_at_or_before": moment, "reason": "tokens_revoked"}
    assert w.delegate.manager.forgotten == [{**key, "user_id": "U1"}, {**key, "user_id": "U2"}]
    assert [kwargs["user_id"] for method, kwargs in w.bot.calls if method == "views_publish"] == ["U1", "U2"]
    assert store.deleted == []


def test_with_the_bot_revoked_too_the_bot_token_is_deleted_and_nothing_is_published() -> None:
    w, store = world(info=connection()), FakeRevocationStore()
    event = revoked(["U1"], bot=True)  # an uninstall: the bot token is gone, and the Home tab with it
    tokens_revoked_callback(body=envelope(event, T0), event=event, context=w.context, store=store)
    moment = datetime.fromtimestamp(T0 + 0.999999, tz=UTC)
    assert store.deleted == [("bot", {"enterprise_id": None, "team_id": TEAM, "installed_at_or_before": moment})]
    assert [f["user_id"] for f in w.delegate.manager.forgotten] == ["U1"]
    assert w.bot.calls == []


def test_nothing_revoked_publishes_nothing() -> None:
    w = world(info=None)  # a redelivery, or Delegate's own disconnect already deleted the row
    event = revoked(["U1"])
    tokens_revoked_callback(body=envelope(event, T0), event=event, context=w.context, store=FakeRevocationStore())
    assert w.bot.calls == []


def test_org_wide_installs_are_keyed_without_a_team() -> None:
    w, store = world(), FakeRevocationStore()
    w.context["enterprise_id"], w.context["is_enterprise_install"] = "E1", True
    event = revoked(["U1"], bot=True)
    tokens_revoked_callback(body=envelope(event, T0), event=event, context=w.context, store=store)
    assert store.deleted[0][1]["enterprise_id"] == "E1" and store.deleted[0][1]["team_id"] is None
    forgotten = w.delegate.manager.forgotten[0]
    assert forgotten["enterprise_id"] == "E1" and forgotten["team_id"] is None


def test_a_failing_revocation_is_logged_and_the_others_still_happen(caplog) -> None:  # type: ignore[no-untyped-def]
    w = world(info=connection())
    forget = w.delegate.manager.forget_user

    def flaky(**kwargs: object) -> bool:
        if kwargs["user_id"] == "U1":
            raise RuntimeError("database is locked")
        return forget(**kwargs)  # type: ignore[arg-type]

    w.delegate.manager.forget_user = flaky  # type: ignore[method-assign]
    event = revoked(["U1", "U2"])
    tokens_revoked_callback(body=envelope(event, T0), event=event, context=w.context, store=FakeRevocationStore())
    assert [f["user_id"] for f in w.delegate.manager.forgotten] == ["U2"]
    assert "deleting the revoked tokens of U1 failed" in caplog.text


def real(store: SQLAlchemyInstallationStore) -> World:
    """A context whose token manager is the real one on this store (no Slack behind it: nothing here calls it)."""
    w = world()
    w.delegate.manager = TokenManager(store, client_secret="unused", background_refresh=False)  # type: ignore[assignment]
    return w


def no_user_token(store: SQLAlchemyInstallationStore, user_id: str) -> bool:
    """Delegate holds no token of the person any more."""
    found = store.find_installation(enterprise_id=None, team_id=TEAM, user_id=user_id)
    return found is None or (found.user_token is None and found.user_refresh_token is None)


def _row(store: SQLAlchemyInstallationStore, user_id: str) -> object:
    from sqlalchemy import select

    table = store.installations
    with store.engine.connect() as conn:
        return conn.execute(select(table).where(table.c.user_id == user_id)).first()


def test_an_event_older_than_a_reconnect_leaves_the_new_tokens(store: SQLAlchemyInstallationStore) -> None:
    grant(store, "U1", T0, "xoxp-old-grant")
    grant(store, "U1", T0 + 20, "xoxp-reconnected")  # the person reconnected after Slack revoked at T0 + 10
    event = revoked(["U1"])
    w = real(store)
    tokens_revoked_callback(body=envelope(event, T0 + 10), event=event, context=w.context, store=store)
    found = store.find_installation(enterprise_id=None, team_id=TEAM, user_id="U1")
    assert found is not None and found.user_token == "xoxp-reconnected"
    assert w.bot.calls == []


def test_an_event_after_the_grant_revokes_it_and_a_redelivery_changes_nothing(store: SQLAlchemyInstallationStore) -> None:
    grant(store, "U1", T0, "xoxp-granted")
    event = revoked(["U1"], bot=True)
    w = real(store)
    for _ in range(3):  # Slack retries a delivery it thinks failed
        tokens_revoked_callback(body=envelope(event, T0 + 10), event=event, context=w.context, store=store)
    assert no_user_token(store, "U1")
    assert store.find_bot(enterprise_id=None, team_id=TEAM) is None
    row: Any = _row(store, "U1")  # kept, with no token in it, so that the person can be told why
    assert row.status == "revoked" and row.status_reason == "tokens_revoked"
    assert row.user_token_enc is None and row.user_refresh_token_enc is None
    events = store.tables.token_events
    from sqlalchemy import select

    with store.engine.connect() as conn:
        kinds = conn.execute(select(events.c.event).where(events.c.user_id == "U1")).scalars().all()
    assert kinds.count("revoked") == 1  # the redeliveries wrote nothing


def test_the_person_is_told_it_was_revoked_in_slack_and_when(store: SQLAlchemyInstallationStore) -> None:
    grant(store, "U1", T0, "xoxp-granted")
    event = revoked(["U1"])
    w = real(store)
    tokens_revoked_callback(body=envelope(event, T0 + 10), event=event, context=w.context, store=store)
    home = text_of(w.bot.last("views_publish")["view"])
    assert "revoked in Slack on <!date^" in home and "`tokens_revoked`" in home and "Connect again" in home
    manager: Any = w.delegate.manager
    info = manager.connection_info(enterprise_id=None, team_id=TEAM, user_id="U1")
    assert info.status == "revoked" and info.status_changed_at is not None
    _, person, _ = manager.read_for_request(TokenKey.of(None, TEAM, "U1"))
    assert person is not None and person.changed_at == info.status_changed_at


def test_through_bolt_the_event_is_answered_200_and_acted_on(store: SQLAlchemyInstallationStore) -> None:
    grant(store, "U3", time.time() - 60, "xoxp-granted")
    manager = TokenManager(store, client_secret="unused", background_refresh=False)
    delegate = world().delegate
    delegate.manager = manager  # type: ignore[assignment]

    def authorize(enterprise_id: str | None, team_id: str | None, context: BoltContext) -> AuthorizeResult:
        context["user_client"], context["user_token_error"] = None, None
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token="xoxb-bot")

    nowhere = WebClient(base_url="http://127.0.0.1:9/", timeout=1, retry_handlers=[])  # the republish is refused locally
    app = App(
        signing_secret="s", authorize=authorize, installation_store=store, process_before_response=True, client=nowhere
    )

    @app.use
    def provide_delegate(context: BoltContext, next: Any) -> Any:  # noqa: A002 - Bolt's name for it
        context["delegate"] = delegate  # what DelegateAuthorize provides in the app
        return next()

    register_listeners(app)
    response = app.dispatch(event_request("s", revoked(["U3"]), team_id=TEAM))
    assert response.status == 200
    deadline = time.monotonic() + 3
    while not no_user_token(store, "U3") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert no_user_token(store, "U3")
    assert "xoxp" not in json.dumps(response.body)


def test_a_grant_made_within_the_second_of_the_event_counts_as_before_it(store: SQLAlchemyInstallationStore) -> None:
    grant(store, "U1", T0 + 0.7, "xoxp-granted")  # Slack's event_time says T0 for a revoke at, say, T0 + 0.9
    event = revoked(["U1"])
    tokens_revoked_callback(body=envelope(event, T0), event=event, context=real(store).context, store=store)
    assert no_user_token(store, "U1")
