"""Signed requests as Slack sends them, for driving a Bolt app in tests and benchmarks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

from slack_bolt.request import BoltRequest


def sign(signing_secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Slack signs a request with."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(signing_secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "x-slack-request-timestamp": ts,
        "x-slack-signature": f"v0={digest}",
        "content-type": "application/x-www-form-urlencoded",
    }


def command_body(command: str, text: str, *, user_id: str, team_id: str = "T1", channel_id: str = "C1") -> str:
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": team_id,
            "team_domain": "acme",
            "channel_id": channel_id,
            "channel_name": "general",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A1",
            "is_enterprise_install": "false",
            "response_url": "http://127.0.0.1:9/response",
            "trigger_id": "1.2.3",
        }
    )


def command_request(signing_secret: str, command: str, text: str = "", **kwargs: str) -> BoltRequest:
    body = command_body(command, text, **kwargs)
    headers = {k: [v] for k, v in sign(signing_secret, body).items()}
    return BoltRequest(body=body, headers=headers)


def event_request(signing_secret: str, event: dict, *, team_id: str = "T1") -> BoltRequest:  # type: ignore[type-arg]
    body = json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": team_id,
            "api_app_id": "A1",
            "event": event,
            "type": "event_callback",
            "event_id": "Ev1",
            "event_time": int(time.time()),
        }
    )
    headers = {k: [v] for k, v in sign(signing_secret, body).items()}
    headers["content-type"] = ["application/json"]
    return BoltRequest(body=body, headers=headers)
