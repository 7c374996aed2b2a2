"""The Connect / Reconnect link buttons: Slack opens the URL and still sends the click, which only needs an ack."""

from __future__ import annotations

from slack_bolt import Ack


def connect_callback(ack: Ack) -> None:
    ack()
