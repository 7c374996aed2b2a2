"""The list of everything Delegate can do, built from the manifest so it never drifts from what is declared."""

from __future__ import annotations

from . import manifest
from .replies import Reply, context_line, escape, section

__all__ = ["command_lines", "help_reply", "SHORTCUTS_TEXT"]

SHORTCUTS_TEXT = (
    "*Set my status* (shortcuts menu, or the lightning bolt): a form that sets your status as you.\n"
    "*Reply as me* (a message's \u22ee menu): replies in that message's thread as you."
)


def command_lines() -> str:
    """One line per slash command: its syntax and what it does."""
    lines = []
    for entry in manifest.slash_command_details():
        syntax = f"{entry.command} {entry.usage_hint}".strip()
        lines.append(f"`{escape(syntax)}` — {escape(entry.description)}")
    return "\n".join(lines)


def help_reply() -> Reply:
    """The answer to /delegate help."""
    text = f"*Delegate acts as you, with your own Slack token, only when you ask it to.*\n\n{command_lines()}"
    return {
        "text": "Delegate: " + ", ".join(manifest.slash_commands()),
        "blocks": [
            section(text),
            section(f"*Shortcuts*\n{SHORTCUTS_TEXT}"),
            context_line(
                "Examples: `/post-as-me #general Back at 2`, `/set-my-status :coffee: Break for 15m`, `/snooze-me 1h`, "
                "`/search-mine quarterly report`. Everything Delegate answers is visible to you only."
            ),
        ],
    }
