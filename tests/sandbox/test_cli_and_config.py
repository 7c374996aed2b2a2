"""The command that runs the sandbox alone, and configs built from a Slack app manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sandbox.cli import sandbox_command
from sandbox.config import SandboxConfig
from sandbox.testing import running_sandbox
from tests.sandbox.httputil import admin, request

MANIFEST = {
    "display_information": {"name": "Helper"},
    "features": {
        "slash_commands": [{"command": "/help-me"}, {"command": "/other"}],
        "shortcuts": [{"type": "global", "callback_id": "g1"}, {"type": "message", "callback_id": "m1"}],
    },
    "settings": {"token_rotation_enabled": False},
}


def test_help_everywhere() -> None:
    runner = CliRunner()
    assert "serve" in runner.invoke(sandbox_command, ["--help"]).output
    output = runner.invoke(sandbox_command, ["serve", "--help"]).output
    for option in ("--port", "--request-url", "--redirect-url", "--client-id", "--manifest", "--no-rotation"):
        assert option in output


def test_print_config_hides_secrets(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yml"
    manifest.write_text(json.dumps(MANIFEST))
    result = CliRunner().invoke(
        sandbox_command,
        [
            "serve",
            "--print-config",
            "--port",
            "4999",
            "--client-id",
            "9.9",
            "--client-secret",
            "top-secret",
            "--redirect-url",
            "http://127.0.0.1:5000/cb",
            "--manifest",
            str(manifest),
        ],
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["url"] == "http://127.0.0.1:4999/" and shown["client_id"] == "9.9"
    assert shown["redirect_urls"] == ["http://127.0.0.1:5000/cb"] and shown["app_name"] == "Helper"
    assert shown["commands"] == ["/help-me", "/other"] and shown["token_rotation"] is False
    assert "top-secret" not in result.output


def test_config_from_manifest() -> None:
    config = SandboxConfig.from_manifest(MANIFEST, expires_in=60)
    assert config.app_name == "Helper" and config.commands == ["/help-me", "/other"]
    assert config.global_shortcuts == ["g1"] and config.message_shortcuts == ["m1"]
    assert config.token_rotation is False and config.expires_in == 60
    with running_sandbox(config) as sandbox:
        state = admin(sandbox, "GET", "state").json()
        assert state["config"]["commands"] == ["/help-me", "/other"]
        assert state["config"]["links"] == {"Add to Slack": "http://127.0.0.1:3000/slack/install"}
        assert request("GET", sandbox.url).headers["Content-Type"].startswith("text/html")
        assert request("GET", f"{sandbox.url}sandbox/static/console.js").status == 200


def test_the_projects_manifest_configures_the_console() -> None:
    manifest = Path(__file__).resolve().parents[2] / "manifest.yml"
    if not manifest.exists():
        pytest.skip("no manifest.yml at the repository root")
    config = SandboxConfig.from_manifest(manifest)
    assert config.commands and all(command.startswith("/") for command in config.commands)
    assert config.bot_events is not None and "tokens_revoked" in config.bot_events
    assert config.shortcut_names == {"set_my_status": "Set my status", "reply_as_me": "Reply as me"}
    with running_sandbox(config) as sandbox:
        assert admin(sandbox, "GET", "state").json()["config"]["shortcuts"] == [
            {"type": "global", "callback_id": "set_my_status", "name": "Set my status"},
            {"type": "message", "callback_id": "reply_as_me", "name": "Reply as me"},
        ]
