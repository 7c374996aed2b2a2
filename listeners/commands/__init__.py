"""Slash commands: each acknowledges at once (usage and connect prompts included), then acts after the ack."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import App

from ..deferred import after_ack
from .delegate import delegate_ack, delegate_callback
from .post_as_me import post_as_me_ack, post_as_me_callback
from .search_mine import search_mine_ack, search_mine_callback
from .set_my_status import set_my_status_ack, set_my_status_callback
from .snooze_me import snooze_me_ack, snooze_me_callback

__all__ = ["COMMANDS", "register"]

# command -> (ack function, work done after the ack)
COMMANDS: dict[str, tuple[Callable[..., Any], Sequence[Callable[..., Any]]]] = {
    "/delegate": (delegate_ack, [delegate_callback]),
    "/post-as-me": (post_as_me_ack, [post_as_me_callback]),
    "/set-my-status": (set_my_status_ack, [set_my_status_callback]),
    "/snooze-me": (snooze_me_ack, [snooze_me_callback]),
    "/search-mine": (search_mine_ack, [search_mine_callback]),
}


def register(app: App) -> None:
    for command, (ack, work) in COMMANDS.items():
        app.command(command)(after_ack(app, ack, work))
