from __future__ import annotations

from listeners.events.user_change import user_change_ack, user_change_callback

from ..fakes import TEAM, connection, text_of, world


def test_a_deactivated_user_has_their_tokens_revoked_and_their_home_tab_says_so() -> None:
    w = world(user_id="U1", info=connection("revoked", status_reason="user_deactivated"))
    user_change_ack(ack=w.ack)
    user_change_callback(event={"type": "user_change", "user": {"id": "U9", "deleted": True}}, context=w.context)
    assert w.delegate.manager.forgotten == [
        {"enterprise_id": None, "team_id": TEAM, "user_id": "U9", "reason": "user_deactivated"}
    ]
    published = w.bot.last("views_publish")
    assert published["user_id"] == "U9" and "revoked when your Slack account was deactivated" in text_of(published["view"])
    assert w.user.calls == []  # type: ignore[union-attr]


def test_other_profile_changes_leave_tokens_alone() -> None:
    w = world()
    user_change_callback(event={"type": "user_change", "user": {"id": "U9", "deleted": False}}, context=w.context)
    assert w.delegate.manager.forgotten == []
    assert w.bot.calls == []  # a profile edit (or a reactivation) publishes nothing


def test_org_wide_installs_key_the_person_without_a_team() -> None:
    w = world()
    w.context["enterprise_id"] = "E1"
    w.context["is_enterprise_install"] = True
    user_change_callback(event={"type": "user_change", "user": {"id": "U9", "deleted": True}}, context=w.context)
    assert w.delegate.manager.forgotten[0]["enterprise_id"] == "E1" and w.delegate.manager.forgotten[0]["team_id"] is None
