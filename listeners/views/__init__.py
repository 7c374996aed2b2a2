"""Modal submissions: input errors answered in the acknowledgement, the action after it (listeners.deferred)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import App

from ..deferred import after_ack
from ..modals import REPLY_AS_ME_MODAL, SET_MY_STATUS_MODAL
from .reply_as_me_modal import reply_as_me_modal_ack, reply_as_me_modal_callback
from .set_my_status_modal import set_my_status_modal_ack, set_my_status_modal_callback

__all__ = ["VIEWS", "register"]

VIEWS: dict[str, tuple[Callable[..., Any], Sequence[Callable[..., Any]]]] = {
    SET_MY_STATUS_MODAL: (set_my_status_modal_ack, [set_my_status_modal_callback]),
    REPLY_AS_ME_MODAL: (reply_as_me_modal_ack, [reply_as_me_modal_callback]),
}


def register(app: App) -> None:
    for callback_id, (ack, work) in VIEWS.items():
        app.view_submission(callback_id)(after_ack(app, ack, work))
