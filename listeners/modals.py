"""The modals Delegate opens: forms, a moment of "working", and results or connect prompts."""

from __future__ import annotations

import json
from typing import Any

from .replies import Reply, context_line, escape, section

__all__ = [
    "REPLY_AS_ME_MODAL",
    "SET_MY_STATUS_MODAL",
    "EXPIRY_CHOICES",
    "notice_modal",
    "reply_form",
    "status_form",
    "working_modal",
]

SET_MY_STATUS_MODAL = "set_my_status_modal"
REPLY_AS_ME_MODAL = "reply_as_me_modal"

# value -> (label, minutes); "never" keeps the status until it is changed
EXPIRY_CHOICES: dict[str, tuple[str, int | None]] = {
    "never": ("Don't clear", None),
    "30m": ("30 minutes", 30),
    "1h": ("1 hour", 60),
    "2h": ("2 hours", 120),
    "4h": ("4 hours", 240),
    "1d": ("1 day", 1440),
    "1w": ("1 week", 10080),
}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def notice_modal(title: str, reply: Reply) -> dict[str, Any]:
    """A modal that only tells something (a result, or a connect prompt with its button)."""
    return {"type": "modal", "title": _plain(title[:24]), "close": _plain("Close"), "blocks": reply["blocks"]}


def working_modal(title: str, text: str) -> dict[str, Any]:
    """Shown between a submission and its result."""
    return {
        "type": "modal",
        "title": _plain(title[:24]),
        "close": _plain("Close"),
        "blocks": [section(f":hourglass_flowing_sand: {text}")],
    }


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": _plain(label), "value": value}


def status_form() -> dict[str, Any]:
    """The Set my status form."""
    options = [_option(value, label) for value, (label, _) in EXPIRY_CHOICES.items()]
    return {
        "type": "modal",
        "callback_id": SET_MY_STATUS_MODAL,
        "title": _plain("Set my status"),
        "submit": _plain("Set status"),
        "close": _plain("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": "emoji",
                "optional": True,
                "label": _plain("Emoji"),
                "hint": _plain("An emoji code, like :palm_tree: or :spiral_calendar_pad:"),
                "element": {"type": "plain_text_input", "action_id": "value", "placeholder": _plain(":palm_tree:")},
            },
            {
                "type": "input",
                "block_id": "text",
                "optional": True,
                "label": _plain("What's your status?"),
                "element": {"type": "plain_text_input", "action_id": "value", "max_length": 100},
            },
            {
                "type": "input",
                "block_id": "expiry",
                "label": _plain("Clear after"),
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": options,
                    "initial_option": options[0],
                },
            },
            {
                "type": "input",
                "block_id": "clear_at",
                "optional": True,
                "label": _plain("Or clear at"),
                "element": {"type": "datetimepicker", "action_id": "value"},
            },
            context_line("Delegate sets it as you, with your own token. To clear your status: `/set-my-status clear`."),
        ],
    }


def reply_form(*, channel_id: str, thread_ts: str, author: str | None, text: str) -> dict[str, Any]:
    """The Reply as me form; the message's channel and thread travel in private_metadata."""
    preview = escape(text[:280] + ("…" if len(text) > 280 else "")) or "_(no text)_"
    who = f"<@{author}>" if author else "the message"
    return {
        "type": "modal",
        "callback_id": REPLY_AS_ME_MODAL,
        "private_metadata": json.dumps({"channel": channel_id, "thread_ts": thread_ts}),
        "title": _plain("Reply as me"),
        "submit": _plain("Reply"),
        "close": _plain("Cancel"),
        "blocks": [
            context_line(f"Replying to {who}: {preview}"),
            {
                "type": "input",
                "block_id": "message",
                "label": _plain("Your reply"),
                "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 3000},
            },
            context_line("Delegate posts it in the message's thread as you, with your own token."),
        ],
    }
