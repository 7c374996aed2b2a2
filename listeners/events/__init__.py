"""Events: the Home tab, and deactivated users. tokens_revoked and app_uninstalled are Bolt's own listeners
(app.enable_token_revocation_listeners(), on our installation store)."""

from __future__ import annotations

from slack_bolt import App

from ..deferred import after_ack
from .app_home_opened import app_home_opened_ack, app_home_opened_callback
from .user_change import user_change_ack, user_change_callback

__all__ = ["EVENTS", "register"]

EVENTS = ("app_home_opened", "user_change")


def register(app: App) -> None:
    app.event("app_home_opened")(after_ack(app, app_home_opened_ack, [app_home_opened_callback]))
    app.event("user_change")(after_ack(app, user_change_ack, [user_change_callback]))
