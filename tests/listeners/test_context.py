"""Whose tokens a request is about, and whether Delegate can act as them."""

from __future__ import annotations

from datetime import UTC, datetime

from slack_bolt import BoltContext

from listeners.context import acting_problem, event_moment, granted_scopes, person_of
from stores.errors import MissingScope, NeedsReauth, NotConnected

from .fakes import world


def test_person_is_keyed_like_the_token_store() -> None:
    w = world()
    assert person_of(w.context).key() == {"enterprise_id": None, "team_id": "T1", "user_id": "U1"}
    org = BoltContext({"enterprise_id": "E1", "team_id": "T1", "is_enterprise_install": True, "user_id": "U1"})
    assert person_of(org).key() == {"enterprise_id": "E1", "team_id": None, "user_id": "U1"}
    assert person_of(org).workspace_id == "T1"  # the connect URL still names the workspace


def test_the_actor_is_the_person_authorize_resolved() -> None:
    context = BoltContext(
        {"enterprise_id": None, "team_id": "T1", "user_id": "U1", "actor_user_id": "U5", "actor_team_id": "T5"}
    )
    context["acting_person"] = (None, "T5", "U5")
    assert person_of(context).key() == {"enterprise_id": None, "team_id": "T5", "user_id": "U5"}
    # On an org-wide install Bolt's actor_team_id names the workspace acted in; the connection is the org's.
    org = BoltContext(
        {"enterprise_id": "E1", "team_id": "T2", "is_enterprise_install": True, "user_id": "W1", "actor_team_id": "T2"}
    )
    org["actor_user_id"], org["actor_enterprise_id"], org["acting_person"] = "W1", "E1", ("E1", None, "W1")
    assert person_of(org).key() == {"enterprise_id": "E1", "team_id": None, "user_id": "W1"}
    assert person_of(org).workspace_id == "T2"


def test_acting_problem() -> None:
    assert acting_problem(world().context, ["chat:write"]) is None
    assert isinstance(acting_problem(world(connected=False).context, ["chat:write"]), NotConnected)
    assert isinstance(acting_problem(world(connected=False, error=NeedsReauth("x")).context, []), NeedsReauth)
    missing = acting_problem(world(scopes=["chat:write"]).context, ["chat:write", "dnd:write", "search:read"])
    assert isinstance(missing, MissingScope) and missing.needed == ["dnd:write", "search:read"]
    unknown = world(scopes=None)
    assert granted_scopes(unknown.context) is None and acting_problem(unknown.context, ["dnd:write"]) is None


def test_event_moment_is_the_end_of_the_envelope_second_then_the_event_ts_then_now() -> None:
    end_of_second = datetime.fromtimestamp(1_790_000_000.999999, tz=UTC)
    assert event_moment({"event_time": 1_790_000_000, "event": {"event_ts": "1790000000.2"}}) == end_of_second
    assert event_moment({"event": {"event_ts": "1790000000.250000"}}).timestamp() == 1_790_000_000.25
    before = datetime.now(UTC)
    assert before <= event_moment({"event_time": "garbage", "event": {}}) <= datetime.now(UTC)
