"""Whose tokens a request is about, and whether Delegate can act as them."""

from __future__ import annotations

import json
import time
from typing import Any

from slack_bolt import App, BoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.oauth.installation_store import InstallationStore

from listeners import register_listeners
from listeners.context import acting_problem, granted_scopes, person_of
from stores.errors import MissingScope, NeedsReauth, NotConnected
from tests.support.slack_requests import event_request

from .fakes import world


def test_person_is_keyed_like_the_token_store() -> None:
    w = world()
    assert person_of(w.context).key() == {"enterprise_id": None, "team_id": "T1", "user_id": "U1"}
    org = BoltContext({"enterprise_id": "E1", "team_id": "T1", "is_enterprise_install": True, "user_id": "U1"})
    assert person_of(org).key() == {"enterprise_id": "E1", "team_id": None, "user_id": "U1"}
    assert person_of(org).workspace_id == "T1"  # the connect URL still names the workspace


def test_the_actor_is_the_person_when_bolt_resolves_one() -> None:
    context = BoltContext(
        {"enterprise_id": None, "team_id": "T1", "user_id": "U1", "actor_user_id": "U5", "actor_team_id": "T5"}
    )
    assert person_of(context).key() == {"enterprise_id": None, "team_id": "T5", "user_id": "U5"}


def test_acting_problem() -> None:
    assert acting_problem(world().context, ["chat:write"]) is None
    assert isinstance(acting_problem(world(connected=False).context, ["chat:write"]), NotConnected)
    assert isinstance(acting_problem(world(connected=False, error=NeedsReauth("x")).context, []), NeedsReauth)
    missing = acting_problem(world(scopes=["chat:write"]).context, ["chat:write", "dnd:write", "search:read"])
    assert isinstance(missing, MissingScope) and missing.needed == ["dnd:write", "search:read"]
    unknown = world(scopes=None)
    assert granted_scopes(unknown.context) is None and acting_problem(unknown.context, ["dnd:write"]) is None


class RecordingStore(InstallationStore):
    def __init__(self) -> None:
        self.deleted: list[tuple[str, dict[str, Any]]] = []

    def save(self, installation: Any) -> None: ...

    def find_installation(self, **kwargs: Any) -> None:
        return None

    def delete_installation(self, **kwargs: Any) -> None:
        self.deleted.append(("installation", kwargs))

    def delete_bot(self, **kwargs: Any) -> None:
        self.deleted.append(("bot", kwargs))

    def delete_all(self, **kwargs: Any) -> None:
        self.deleted.append(("all", kwargs))


def test_bolt_revocation_listeners_work_beside_ours() -> None:
    store = RecordingStore()

    def authorize(enterprise_id: str | None, team_id: str | None, context: BoltContext) -> AuthorizeResult:
        context["user_client"], context["user_token_error"] = None, None
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token="xoxb-bot")

    app = App(signing_secret="s", authorize=authorize, installation_store=store, process_before_response=True)
    register_listeners(app)
    app.enable_token_revocation_listeners()
    event = {"type": "tokens_revoked", "tokens": {"oauth": ["U3"], "bot": []}}
    assert app.dispatch(event_request("s", event)).status == 200
    deadline = time.monotonic() + 3
    while not store.deleted and time.monotonic() < deadline:
        time.sleep(0.005)
    assert store.deleted == [("installation", {"enterprise_id": None, "team_id": "T1", "user_id": "U3"})]
    assert json.dumps(store.deleted)  # nothing but plain ids
