"""app_uninstalled: every token of the workspace is forgotten, unless the app was installed again since."""

from __future__ import annotations

from datetime import UTC, datetime

from slack_sdk.oauth.installation_store import Installation

from listeners.events.app_uninstalled import app_uninstalled_ack, app_uninstalled_callback
from stores import SQLAlchemyInstallationStore

from ..fakes import TEAM, Calls, FakeRevocationStore, world

T0 = 1_790_000_000.0


def test_acknowledged_at_once() -> None:
    ack = Calls()
    app_uninstalled_ack(ack=ack)
    assert ack.calls == [{}]


def test_forgets_the_workspace_up_to_the_event_time() -> None:
    store = FakeRevocationStore()
    app_uninstalled_callback(
        body={"event_time": T0, "event": {"type": "app_uninstalled"}}, context=world().context, store=store
    )
    moment = datetime.fromtimestamp(T0 + 0.999999, tz=UTC)  # the end of Slack's whole second
    assert store.deleted == [("all", {"enterprise_id": None, "team_id": TEAM, "installed_at_or_before": moment})]


def test_a_reinstall_after_the_uninstall_is_kept(store: SQLAlchemyInstallationStore) -> None:
    for user, installed_at in (("U1", T0), ("U2", T0 + 60)):
        store.save(
            Installation(
                app_id="A1", team_id=TEAM, bot_token=f"xoxb-{user}", bot_id="B1", bot_user_id="UBOT", user_id=user,
                user_token=f"xoxp-{user}", installed_at=installed_at,
            )
        )  # fmt: skip
    body = {"event_time": T0 + 30, "event": {"type": "app_uninstalled"}}
    for _ in range(2):
        app_uninstalled_callback(body=body, context=world().context, store=store)
    assert store.find_installation(enterprise_id=None, team_id=TEAM, user_id="U1") is None
    assert store.find_installation(enterprise_id=None, team_id=TEAM, user_id="U2") is not None
    assert store.find_bot(enterprise_id=None, team_id=TEAM) is not None  # the reinstall's bot
