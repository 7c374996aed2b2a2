"""Block actions: the connect link buttons and the disconnect button."""

from __future__ import annotations

from slack_bolt import App

from ..connection import DISCONNECT_ACTION_ID
from ..deferred import after_ack
from ..replies import CONNECT_ACTION_ID
from .connect import connect_callback
from .disconnect import disconnect_ack, disconnect_callback

__all__ = ["ACTION_IDS", "register"]

ACTION_IDS = (CONNECT_ACTION_ID, DISCONNECT_ACTION_ID)


def register(app: App) -> None:
    app.action(CONNECT_ACTION_ID)(connect_callback)
    app.action(DISCONNECT_ACTION_ID)(after_ack(app, disconnect_ack, [disconnect_callback]))
