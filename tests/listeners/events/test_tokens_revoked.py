"""tokens_revoked: idempotent deletes that keep a grant saved after the event, on a fake and on the real store."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from slack_bolt import App, BoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.oauth.installation_store import Installation

from listeners import register_listeners
from listeners.events.tokens_revoked import tokens_revoked_ack, tokens_revoked_callback
from stores import SQLAlchemyInstallationStore
from tests.support.slack_requests import event_request

from ..fakes import TEAM, Calls, FakeRevocationStore, world

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


def test_deletes_each_user_and_the_bot_up_to_the_event_time() -> None:
    w, store = world(), FakeRevocationStore()
    event = revoked(["U1", "U2"], bot=True)
    tokens_revoked_callback(body=envelope(event, T0), event=event, context=w.context, store=store)
    moment = datetime.fromtimestamp(T0 + 0.999999, tz=UTC)  # the end of Slack's whole second
    key = {"enterprise_id": None, "team_id": TEAM, "installed_at_or_before": moment}
    assert store.deleted == [
        ("installation", {**key, "user_id": "U1"}),
        ("installation", {**key, "user_id": "U2"}),
        ("bot", key),
    ]
    assert w.bot.calls == []


def test_org_wide_installs_are_keyed_without_a_team() -> None:
    w, store = world(), FakeRevocationStore()
    w.context["enterprise_id"], w.context["is_enterprise_install"] = "E1", True
    event = revoked(["U1"])
    tokens_revoked_callback(body=envelope(event, T0), event=event, context=w.context, store=store)
    assert store.deleted[0][1]["enterprise_id"] == "E1" and store.deleted[0][1]["team_id"] is None


def test_a_failing_delete_is_logged_and_the_others_still_happen(caplog) -> None:  # type: ignore[no-untyped-def]
    w = world()

    class Flaky(FakeRevocationStore):
        def delete_installation(self, **kwargs: object) -> None:
            if kwargs["user_id"] == "U1":
                raise RuntimeError("database is locked")
            super().delete_installation(**kwargs)

    store = Flaky()
    event = revoked(["U1", "U2"])
    tokens_revoked_callback(body=envelope(event, T0), event=event, context=w.context, store=store)
    assert [kwargs["user_id"] for _, kwargs in store.deleted] == ["U2"]
    assert "deleting the revoked tokens of U1 failed" in caplog.text


def test_an_event_older_than_a_reconnect_leaves_the_new_tokens(store: SQLAlchemyInstallationStore) -> None:
    grant(store, "U1", T0, "xoxp-old-grant")
    grant(store, "U1", T0 + 20, "xoxp-reconnected")  # the person reconnected after Slack revoked at T0 + 10
    event = revoked(["U1"])
    tokens_revoked_callback(body=envelope(event, T0 + 10), event=event, context=world().context, store=store)
    found = store.find_installation(enterprise_id=None, team_id=TEAM, user_id="U1")
    assert found is not None and found.user_token == "xoxp-reconnected"


def test_an_event_after_the_grant_deletes_it_and_a_redelivery_changes_nothing(store: SQLAlchemyInstallationStore) -> None:
    grant(store, "U1", T0, "xoxp-granted")
    event = revoked(["U1"], bot=True)
    for _ in range(3):  # Slack retries a delivery it thinks failed
        tokens_revoked_callback(body=envelope(event, T0 + 10), event=event, context=world().context, store=store)
    assert store.find_installation(enterprise_id=None, team_id=TEAM, user_id="U1") is None
    assert store.find_bot(enterprise_id=None, team_id=TEAM) is None


def test_through_bolt_the_event_is_answered_200_and_acted_on(store: SQLAlchemyInstallationStore) -> None:
    grant(store, "U3", time.time() - 60, "xoxp-granted")

    def authorize(enterprise_id: str | None, team_id: str | None, context: BoltContext) -> AuthorizeResult:
        context["user_client"], context["user_token_error"] = None, None
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token="xoxb-bot")

    app = App(signing_secret="s", authorize=authorize, installation_store=store, process_before_response=True)
    register_listeners(app)
    response = app.dispatch(event_request("s", revoked(["U3"]), team_id=TEAM))
    assert response.status == 200
    deadline = time.monotonic() + 3
    while store.find_installation(enterprise_id=None, team_id=TEAM, user_id="U3") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.find_installation(enterprise_id=None, team_id=TEAM, user_id="U3") is None
    assert "xoxp" not in json.dumps(response.body)


def test_a_grant_made_within_the_second_of_the_event_counts_as_before_it(store: SQLAlchemyInstallationStore) -> None:
    grant(store, "U1", T0 + 0.7, "xoxp-granted")  # Slack's event_time says T0 for a revoke at, say, T0 + 0.9
    event = revoked(["U1"])
    tokens_revoked_callback(body=envelope(event, T0), event=event, context=world().context, store=store)
    assert store.find_installation(enterprise_id=None, team_id=TEAM, user_id="U1") is None
