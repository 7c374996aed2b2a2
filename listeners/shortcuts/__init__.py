"""Shortcuts: each acknowledges at once, then opens its modal (trigger ids live 3 seconds)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import App

from ..deferred import after_ack
from .reply_as_me import reply_as_me_ack, reply_as_me_callback
from .set_my_status import set_my_status_ack, set_my_status_callback

__all__ = ["SHORTCUTS", "register"]

# callback_id -> (ack function, work done after the ack)
SHORTCUTS: dict[str, tuple[Callable[..., Any], Sequence[Callable[..., Any]]]] = {
    "set_my_status": (set_my_status_ack, [set_my_status_callback]),
    "reply_as_me": (reply_as_me_ack, [reply_as_me_callback]),
}


def register(app: App) -> None:
    for callback_id, (ack, work) in SHORTCUTS.items():
        app.shortcut(callback_id)(after_ack(app, ack, work))
