"""Events: the Home tab, deactivated users, and revoked tokens or uninstalls (Delegate's own listeners instead of
Bolt's enable_token_revocation_listeners(): see tokens_revoked.py for why)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial, update_wrapper

from slack_bolt import App

from stores.installation_store import SQLAlchemyInstallationStore

from ..deferred import after_ack
from .app_home_opened import app_home_opened_ack, app_home_opened_callback
from .app_uninstalled import app_uninstalled_ack, app_uninstalled_callback
from .tokens_revoked import tokens_revoked_ack, tokens_revoked_callback
from .user_change import user_change_ack, user_change_callback

__all__ = ["EVENTS", "register"]

EVENTS = ("app_home_opened", "user_change", "tokens_revoked", "app_uninstalled")


def register(app: App) -> None:
    # Bolt's handlers reach the store the same way; only Delegate's store can keep a grant saved after the event.
    store = app.installation_store if isinstance(app.installation_store, SQLAlchemyInstallationStore) else None
    app.event("app_home_opened")(after_ack(app, app_home_opened_ack, [app_home_opened_callback]))
    app.event("user_change")(after_ack(app, user_change_ack, [user_change_callback]))
    app.event("tokens_revoked")(after_ack(app, tokens_revoked_ack, [_with_store(tokens_revoked_callback, store)]))
    app.event("app_uninstalled")(after_ack(app, app_uninstalled_ack, [_with_store(app_uninstalled_callback, store)]))


def _with_store(callback: Callable[..., None], store: SQLAlchemyInstallationStore | None) -> Callable[..., None]:
    """The callback with the store bound (Bolt passes no store to listeners), still named after the callback."""
    return update_wrapper(partial(callback, store=store), callback)
