"""What people see: slash commands, shortcuts, modals, buttons and events, all acting as the person who asked."""

from __future__ import annotations

from slack_bolt import App

from . import actions, commands, events, shortcuts, views

__all__ = ["register_listeners"]


def register_listeners(app: App) -> None:
    """Register every listener on a Bolt App built with process_before_response=True and DelegateAuthorize."""
    commands.register(app)
    shortcuts.register(app)
    views.register(app)
    actions.register(app)
    events.register(app)
