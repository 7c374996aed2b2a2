"""Slash-command text as Slack sends it: HTML entities always, mentions only for `should_escape: true` commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from slack_bolt import Ack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.config import SandboxChannel, SandboxConfig
from sandbox.emoji import emoji_problem
from sandbox.escaping import escape_command_text
from sandbox.server import SandboxServer
from sandbox.testing import sandbox_fixture
from tests.sandbox.conftest import ALICE, BOB, GENERAL, RANDOM, BoltHarness

SECRET = "C0SECRET04"  # private to Bob


def escaping_config() -> SandboxConfig:
    config = SandboxConfig(commands=["/post", "/plain"], escaped_commands=["/post"], custom_emoji=["partyparrot"])
    config.channels.append(SandboxChannel(SECRET, "secret", "T0SANDBOX1", is_private=True, members=(BOB,)))
    return config


sandbox = sandbox_fixture(escaping_config)

Start = Callable[[Callable[[BoltHarness], None]], BoltHarness]
CHANNELS = {"general": GENERAL, "random": RANDOM}
PEOPLE = {"bob": BOB}


def escaped(text: str) -> str:
    return escape_command_text(text, channel_id=CHANNELS.get, user_id=PEOPLE.get)


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("#random hi", f"<#{RANDOM}|random> hi"),
        ("#rnadom hi", "#rnadom hi"),
        ("hi @bob, see #general.", f"hi <@{BOB}|bob>, see <#{GENERAL}|general>."),
        ("@here @channel @everyone @nobody", "<!here> <!channel> <!everyone> @nobody"),
        ("Tom & Jerry <3 > 2", "Tom &amp; Jerry &lt;3 &gt; 2"),
        ("a#random and x@bob and \\#random", "a#random and x@bob and \\#random"),
        ("see https://example.com/a?b=1&c=#random.", "see <https://example.com/a?b=1&amp;c=#random>."),
        ("in:#random hello", f"in:<#{RANDOM}|random> hello"),
    ],
)
def test_escaping_turns_only_known_names_into_mentions(typed: str, sent: str) -> None:
    assert escaped(typed) == sent


def command_recorder(harness: BoltHarness) -> None:
    for name in ("/post", "/plain"):

        @harness.app.command(name)
        def record(ack: Ack, command: dict[str, Any]) -> None:
            harness.record(command)
            ack()


def text_sent(sandbox: SandboxServer, harness: BoltHarness, user_id: str, command: str, text: str) -> str:
    harness.seen.clear()
    record = sandbox.send_slash_command(user_id, command, text, channel_id=GENERAL)
    assert record["error"] is None
    return str(harness.seen[-1]["text"])


def test_should_escape_commands_get_mentions_over_http(sandbox: SandboxServer, bolt_app: Start) -> None:
    harness = bolt_app(command_recorder)
    typed = "#random #rnadom #secret @bob @here a<b & c"
    assert text_sent(sandbox, harness, ALICE, "/post", typed) == (
        f"<#{RANDOM}|random> #rnadom #secret <@{BOB}|bob> <!here> a&lt;b &amp; c"
    )
    # A private channel becomes a mention only for its members, as in Slack.
    assert text_sent(sandbox, harness, BOB, "/post", "#secret hi") == f"<#{SECRET}|secret> hi"


def test_other_commands_get_the_text_as_typed_with_entities(sandbox: SandboxServer, bolt_app: Start) -> None:
    harness = bolt_app(command_recorder)
    assert text_sent(sandbox, harness, ALICE, "/plain", "#random @bob a<b & c") == "#random @bob a&lt;b &amp; c"


def test_the_manifest_says_which_commands_escape() -> None:
    config = SandboxConfig.from_manifest("manifest.yml")
    assert "/post-as-me" in config.escaped_commands and "/set-my-status" not in config.escaped_commands


def test_emoji_check_knows_slack_names_and_custom_ones() -> None:
    for known in (":palm_tree:", ":coffee:", ":+1::skin-tone-3:", ":hot_beverage:", ""):
        assert emoji_problem(known) is None
    assert emoji_problem(":notanemoji:") == "profile_status_set_failed_not_valid_emoji"
    assert emoji_problem("coffee") == "profile_status_set_failed_not_emoji_syntax"
    assert emoji_problem(":partyparrot:", ["partyparrot"]) is None


def test_profile_set_rejects_an_unknown_emoji_and_changes_nothing(sandbox: SandboxServer, user_token: str) -> None:
    client = WebClient(base_url=sandbox.api_url, token=user_token)
    client.users_profile_set(profile={"status_text": "Lunch", "status_emoji": ":partyparrot:"})
    with pytest.raises(SlackApiError) as raised:
        client.users_profile_set(profile={"status_text": "Nope", "status_emoji": ":notanemoji:"})
    assert raised.value.response["error"] == "profile_status_set_failed_not_valid_emoji"
    profile = client.users_profile_get()["profile"]
    assert (profile["status_text"], profile["status_emoji"]) == ("Lunch", ":partyparrot:")
