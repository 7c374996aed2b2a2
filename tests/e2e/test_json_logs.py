"""LOG_FORMAT=json end to end: every line parses, the work after the ack and the refresher's work carry their context,
and at DEBUG (slack_sdk logging request bodies) no line holds a secret."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ops.logs import JsonFormatter
from stores import generate_key
from tests.e2e.harness import running_delegate, wait_for
from tests.e2e.test_log_redaction import every_record_at_debug, issued_secrets, leaks

ALICE = "U0ALICE001"
GENERAL = "C0GENERAL1"
HOUR = 3600


class JsonLines(logging.Handler):
    """Keeps every record as the JSON line LOG_FORMAT=json writes, with the thread it was logged on."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.threadName or "", self.format(record)))

    def entries(self) -> list[tuple[str, dict[str, Any]]]:
        return [(thread, json.loads(line)) for thread, line in self.lines]  # each line parses, or the test fails


def test_json_lines_name_the_request_person_and_command_after_the_ack_and_the_token_owner_in_the_refresher(
    tmp_path: Path,
) -> None:
    keys = [generate_key(), generate_key()]
    with every_record_at_debug(JsonLines()) as log:
        env = {"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json", "TOKEN_ENCRYPTION_KEYS": ",".join(keys)}
        with running_delegate(tmp_path, env=env, sandbox_mode=True) as delegate:
            logging.getLogger().setLevel(logging.DEBUG)
            sandbox = delegate.sandbox
            assert delegate.install(ALICE).status == 200
            team = delegate.user_row(ALICE).team_id
            sandbox.send_slash_command(ALICE, "/post-as-me", "hello in json", channel_id=GENERAL)
            wait_for(lambda: any("hello in json" in m.get("text", "") for m in sandbox.messages(GENERAL)))
            wait_for(lambda: any("chat.postMessage" in line for thread, line in log.lines if "listener" in thread))
            posted_at = len(log.lines)
            sandbox.advance_clock(11 * HOUR)  # inside the refresh-ahead window: the refresher renews Alice's token
            wait_for(lambda: any(r["kind"] == "user" for r in sandbox.refreshes(ALICE)), timeout=30)
            wait_for(lambda: any("refresher sweep" in line for _, line in log.lines[posted_at:]), timeout=30)
            secrets = issued_secrets(delegate, keys, socket_mode=False)

    entries = log.entries()
    assert {"time", "level", "logger", "message"} <= set(entries[0][1])
    # The work after the ack (a lazy listener thread) calls chat.postMessage: its lines carry the ack's context.
    after_ack = [e for thread, e in entries if thread.startswith("delegate-listener") and "chat.postMessage" in e["message"]]
    assert after_ack, "no line from the work after the ack"
    for entry in after_ack:
        assert (entry.get("team"), entry.get("user"), entry.get("command")) == (team, ALICE, "/post-as-me"), entry
    request = after_ack[0]["request"]
    handled = [e for thread, e in entries if e.get("request") == request]
    on_the_ack = [e for thread, e in entries if e.get("request") == request and not thread.startswith("delegate-listener")]
    assert on_the_ack, "the ack's own lines carry the same request id"
    assert {e.get("command") for e in handled if "command" in e} == {"/post-as-me"}
    assert len({e["request"] for thread, e in entries if "request" in e}) >= 3  # one id per request, not one for all

    # The refresher's lines (its sweep threads) name the token's team and user, and no request.
    refreshing = [e for thread, e in entries if thread.startswith("delegate-sweep") and "oauth.v2.access" in e["message"]]
    assert refreshing, "no line from the refresher's refresh"
    for entry in refreshing:
        assert entry.get("team") == team and "request" not in entry, entry
    assert {entry.get("user") for entry in refreshing} == {ALICE, None}  # Alice's token, and the bot's (no user)

    text = "\n".join(line for _, line in log.lines)
    assert "oauth.v2.access" in text and "refresh_token" in text  # slack_sdk logged the refresh request body
    assert sum(name.startswith("refresh token") for name in secrets) >= 2
    assert leaks(text, secrets) == [], "\n".join(line for _, line in log.lines if leaks(line, secrets))[:6000]
