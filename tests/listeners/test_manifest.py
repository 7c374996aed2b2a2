"""manifest.yml is the single declaration: scopes, commands, shortcuts and events, and each has its listener."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from listeners import manifest, register_listeners
from listeners.actions import ACTION_IDS
from listeners.commands import COMMANDS
from listeners.events import EVENTS
from listeners.shortcuts import SHORTCUTS
from listeners.views import VIEWS

PERSON = {"team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"}, "team_id": "T1", "api_app_id": "A1"}


def command_body(name: str) -> dict[str, Any]:
    return {"command": name, "text": "", "team_id": "T1", "user_id": "U1", "channel_id": "C1", "api_app_id": "A1"}


def shortcut_body(callback_id: str) -> dict[str, Any]:
    kind = {entry["callback_id"]: entry["type"] for entry in manifest.load()["features"]["shortcuts"]}[callback_id]
    return {**PERSON, "type": "shortcut" if kind == "global" else "message_action", "callback_id": callback_id}


def view_body(callback_id: str) -> dict[str, Any]:
    view = {"id": "V1", "type": "modal", "callback_id": callback_id, "state": {"values": {}}}
    return {**PERSON, "type": "view_submission", "view": view}


def action_body(action_id: str) -> dict[str, Any]:
    return {**PERSON, "type": "block_actions", "actions": [{"action_id": action_id, "type": "button", "block_id": "b"}]}


def event_body(name: str) -> dict[str, Any]:
    return {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event": {"type": name, "user": "U1"}}


def bolt_app() -> App:
    app = App(token="xoxb-test", signing_secret="s", token_verification_enabled=False, process_before_response=True)
    register_listeners(app)
    return app


def matching(app: App, body: dict[str, Any]) -> list[Any]:
    request = BoltRequest(body=body, mode="socket_mode")
    return [listener for listener in app._listeners if listener.matches(req=request, resp=BoltResponse(status=404))]


@pytest.fixture(scope="module")
def app() -> App:
    return bolt_app()


def test_the_registries_are_exactly_what_the_manifest_declares() -> None:
    assert sorted(COMMANDS) == sorted(manifest.slash_commands())
    assert sorted(SHORTCUTS) == sorted(manifest.shortcut_callback_ids())
    assert set(EVENTS) <= set(manifest.bot_events())


def test_every_manifest_command_and_shortcut_reaches_exactly_one_registered_listener(app: App) -> None:
    for name in manifest.slash_commands():
        assert len(matching(app, command_body(name))) == 1, name
    for callback_id in manifest.shortcut_callback_ids():
        assert len(matching(app, shortcut_body(callback_id))) == 1, callback_id


def test_every_registered_listener_answers_something_declared(app: App) -> None:
    declared = (
        [command_body(name) for name in manifest.slash_commands()]
        + [shortcut_body(callback_id) for callback_id in manifest.shortcut_callback_ids()]
        + [view_body(callback_id) for callback_id in VIEWS]
        + [action_body(action_id) for action_id in ACTION_IDS]
        + [event_body(name) for name in manifest.bot_events()]
    )
    requests = [BoltRequest(body=body, mode="socket_mode") for body in declared]
    for listener in app._listeners:
        assert any(listener.matches(req=request, resp=BoltResponse(status=404)) for request in requests), listener
    assert not matching(app, command_body("/not-declared")) and not matching(
        app, shortcut_body("reply_as_me") | {"callback_id": "x"}
    )


def test_commands_shortcuts_and_modals_acknowledge_first_and_act_lazily(app: App) -> None:
    for listener in app._listeners:
        if listener.ack_function.__name__.endswith("_ack"):
            work = listener.ack_function.work  # listeners.deferred.after_ack: acknowledge, then act on a thread
            assert work, listener.ack_function.__name__
            assert all(function.__name__.endswith("_callback") for function in work)


def test_scopes() -> None:
    assert manifest.bot_scopes() == ("commands", "chat:write", "users:read")  # users:read: user_change events
    # Least privilege: every user scope Delegate asks for is one some listener needs, and no more.
    assert set(manifest.user_scopes()) == {"chat:write", "users.profile:write", "dnd:write", "search:read", "users:read"}


def test_settings() -> None:
    data = manifest.load()
    settings = data["settings"]
    assert settings["token_rotation_enabled"] is True
    assert settings["socket_mode_enabled"] is False and settings["org_deploy_enabled"] is False
    assert settings["interactivity"]["is_enabled"] is True
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_home_opened", "app_uninstalled", "tokens_revoked", "user_change",
    }  # fmt: skip
    assert data["oauth_config"]["redirect_urls"] == ["https://example.invalid/slack/oauth_redirect"]
    assert data["features"]["app_home"]["home_tab_enabled"] is True
    assert data["display_information"]["name"] == "Delegate"
    for entry in data["features"]["slash_commands"]:
        assert entry["url"] == "https://example.invalid/slack/events" and entry["description"] and entry["usage_hint"]


def test_a_broken_manifest_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "manifest.yml"
    broken.write_text("- just\n- a list\n")
    with pytest.raises(manifest.ManifestError, match="not a mapping"):
        manifest.user_scopes(broken)
    with pytest.raises(manifest.ManifestError, match="cannot read"):
        manifest.user_scopes(tmp_path / "missing.yml")
    odd = tmp_path / "odd.yml"
    odd.write_text("oauth_config: {scopes: {user: chat:write}}\n")
    with pytest.raises(manifest.ManifestError, match="list of scope names"):
        manifest.user_scopes(odd)
