"""Slash-command text as Slack sends it: `&`, `<`, `>` as HTML entities, and with `should_escape: true` in the
manifest, `#channel`, `@person`, `@here` and links turned into Slack's `<#C…|name>`, `<@U…|name>`, `<!here>`, `<url>`.

Slack's client escapes the three control characters in every message it sends, commands included; the manifest's
`should_escape` only decides whether names become mentions. A `#word` or `@word` that names nothing the person can see
stays as typed, exactly the case an app must not mistake for a channel.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["escape_command_text", "html_escape"]

_SPECIAL = {"here": "<!here>", "channel": "<!channel>", "everyone": "<!everyone>"}

# A mention starts a word: not after a letter, digit, `&` (an entity such as `&#39;`), `/` (a URL) or `\` (escaped).
_CHANNEL = re.compile(r"(?<![\w&/\\#])#([a-z0-9][a-z0-9_\-]*)", re.IGNORECASE)
_PERSON = re.compile(r"(?<![\w&/\\@])@([a-z0-9][a-z0-9._\-]*[a-z0-9]|[a-z0-9])", re.IGNORECASE)
_LINK = re.compile(r"(?<![\w<|])(?:https?://|mailto:)[^\s<>]+?(?=[.,;:!?)]*(?:\s|$))", re.IGNORECASE)


def html_escape(text: str) -> str:
    """`&`, `<` and `>` as the entities Slack's client sends for them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_command_text(
    text: str,
    *,
    channel_id: Callable[[str], str | None],
    user_id: Callable[[str], str | None],
) -> str:
    """The text of an escaping command: `channel_id(name)` and `user_id(name)` say what the person can mention."""
    escaped = html_escape(text)
    escaped = _LINK.sub(lambda match: f"<{match[0]}>", escaped)
    pieces = re.split(r"(<[^>]*>)", escaped)  # never look for mentions inside a link just made
    for index in range(0, len(pieces), 2):
        pieces[index] = _CHANNEL.sub(lambda match: _channel(match, channel_id), pieces[index])
        pieces[index] = _PERSON.sub(lambda match: _person(match, user_id), pieces[index])
    return "".join(pieces)


def _channel(match: re.Match[str], channel_id: Callable[[str], str | None]) -> str:
    name = match[1].lower()
    found = channel_id(name)
    return f"<#{found}|{name}>" if found else match[0]


def _person(match: re.Match[str], user_id: Callable[[str], str | None]) -> str:
    name = match[1].lower()
    if name in _SPECIAL:
        return _SPECIAL[name]
    found = user_id(name)
    return f"<@{found}|{name}>" if found else match[0]
