"""Parse what people type after a slash command: durations, clock times, channel mentions, statuses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

__all__ = [
    "ClearStatus",
    "PostRequest",
    "SearchRequest",
    "SetStatus",
    "SnoozeRequest",
    "StatusExpiry",
    "UsageError",
    "parse_channel_mention",
    "parse_clock",
    "parse_duration",
    "parse_post",
    "parse_search",
    "parse_snooze",
    "parse_status",
    "SNOOZE_LIMIT",
    "SNOOZE_USAGE",
    "STATUS_TEXT_LIMIT",
    "STATUS_USAGE",
    "describe_duration",
    "parse_emoji",
    "readable",
    "unescape",
]

STATUS_TEXT_LIMIT = 100  # Slack's limit on status_text
SNOOZE_LIMIT = timedelta(days=7)

_UNITS = {
    "d": 1440, "day": 1440, "days": 1440,
    "h": 60, "hr": 60, "hrs": 60, "hour": 60, "hours": 60,
    "m": 1, "min": 1, "mins": 1, "minute": 1, "minutes": 1,
}  # fmt: skip
_DURATION_PART = re.compile(r"(\d+)\s*([a-z]+)")
_DURATION = re.compile(r"(?:\d+\s*[a-z]+\s*)+")
_CLOCK_24 = re.compile(r"([01]?\d|2[0-3])[:h.]([0-5]\d)")
_CLOCK_12 = re.compile(r"(1[0-2]|0?[1-9])(?::([0-5]\d))?\s*(am|pm)")
_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>")
_LABELLED_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_PERSON = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_MENTION = re.compile(r"<([#@!])([^>|]*)(?:\|([^>]*))?>")
_EXPIRY_SHAPE = re.compile(r"\d")  # an expiry starting with a digit is meant as one, even when it does not parse
_EMOJI = re.compile(r":[a-z0-9_+'\-]+:(?::skin-tone-[2-6]:)?")
_EXPIRY_TAIL = re.compile(r"(?P<head>.*)(?:^|\s)(?P<word>for|until)\s+(?P<value>\S.*)", re.IGNORECASE | re.DOTALL)


class UsageError(ValueError):
    """What the person typed does not fit the command; the message (mrkdwn) says what does."""


def _shown(text: str) -> str:
    """The person's own words, quoted back in mrkdwn without turning into mentions or links."""
    return text.strip()[:60].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def unescape(text: str) -> str:
    """Command text as the person typed it: Slack sends `&`, `<` and `>` as HTML entities in every command."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def readable(text: str) -> str:
    """Slack-formatted text as a person reads it, for plain_text: `<#C1|random>` -> `#random`, `&amp;` -> `&`."""

    def shown(match: re.Match[str]) -> str:
        sign, target, label = match[1], match[2], match[3]
        if sign == "!":
            return f"@{label or target}"
        return f"{sign}{label or target}"

    return unescape(_MENTION.sub(shown, text))


def parse_duration(text: str) -> timedelta:
    """`45m`, `2h`, `1h30m`, `1 day`, or a bare number of minutes; raises UsageError otherwise."""
    value = text.strip().lower()
    if value.isdigit():
        minutes = int(value)
    elif _DURATION.fullmatch(value):
        minutes = 0
        for amount, unit in _DURATION_PART.findall(value):
            if unit not in _UNITS:
                raise UsageError(f"`{_shown(text)}` is not a duration: use units m, h or d, like `45m` or `1h30m`.")
            minutes += int(amount) * _UNITS[unit]
    else:
        raise UsageError(f"`{_shown(text)}` is not a duration: try `45m`, `2h` or `1h30m`.")
    if minutes <= 0:
        raise UsageError("The duration must be at least one minute.")
    return timedelta(minutes=minutes)


def parse_clock(text: str) -> time:
    """`17:00`, `9:30`, `5pm`, `5:30pm`; raises UsageError otherwise."""
    value = text.strip().lower()
    if match := _CLOCK_24.fullmatch(value):
        return time(int(match[1]), int(match[2]))
    if match := _CLOCK_12.fullmatch(value):
        hour = int(match[1]) % 12 + (12 if match[3] == "pm" else 0)
        return time(hour, int(match[2] or 0))
    if value == "noon":
        return time(12, 0)
    if value == "midnight":
        return time(0, 0)
    raise UsageError(f"`{_shown(text)}` is not a time of day: try `17:00` or `5pm`.")


def parse_channel_mention(text: str) -> str | None:
    """The channel id of a mention like `<#C123|general>` (what Slack sends for an escaped #channel), or None."""
    match = _CHANNEL.fullmatch(text.strip())
    return match[1] if match else None


@dataclass(frozen=True)
class PostRequest:
    """Post `text` into `channel_id` as the person."""

    channel_id: str
    text: str
    named_channel: bool  # True when the person named another channel than the one they typed in


def no_channel_error(word: str, nothing_done: str, example: str) -> UsageError:
    """A `#word` Slack did not turn into a channel mention: no channel by that name the person can see."""
    return UsageError(
        f"There is no channel `{_shown(unescape(word))}` that you can see, so {nothing_done}. Check the name: Slack "
        f"offers the channels you can use as you type `#`. {example}"
    )


def parse_post(text: str, *, current_channel: str) -> PostRequest:
    """`[#channel] message` as Slack escapes it: an escaped channel, or none for here; a plain `#word` is refused."""
    stripped = text.strip()
    channel, named = current_channel, False
    match = _CHANNEL.match(stripped)
    first = stripped.split(maxsplit=1)[0] if stripped else ""
    if match:
        channel, named = match[1], True
        stripped = stripped[match.end() :].strip()
    elif first.startswith("#") and len(first) > 1:
        # Slack sends a channel the person can see as <#C…|name>; a plain #word is a typo or a channel they cannot see.
        raise no_channel_error(
            first, "nothing was posted", "To start a message with #, put a backslash before it: `/post-as-me \\#1 is done`."
        )
    elif first.startswith("\\#"):
        stripped = stripped[1:]
    if not stripped:
        raise UsageError("Say what to post: `/post-as-me Hello all` or `/post-as-me #general Hello all`.")
    return PostRequest(channel_id=channel, text=stripped, named_channel=named)


@dataclass(frozen=True)
class SearchRequest:
    """Search the person's messages for `query` (in search.messages' own syntax)."""

    query: str


def parse_search(text: str) -> SearchRequest:
    """`words [in:#channel]` as Slack escapes it: `in:<#C…|name>` becomes `in:#name`; an unknown channel is refused."""
    terms = []
    for term in text.split():
        if term.lower().startswith("in:"):
            target = term[3:]
            if channel := _LABELLED_CHANNEL.fullmatch(target):
                terms.append(f"in:#{channel[2]}" if channel[2] else f"in:<#{channel[1]}>")
                continue
            if person := _PERSON.fullmatch(target):
                terms.append(f"in:<@{person[1]}>")  # the direct messages with that person
                continue
            word = target if target.startswith("#") else f"#{target}"
            raise no_channel_error(word, "nothing was searched", "Add the channel as `in:#channel`, picked from that list.")
        terms.append(_PERSON.sub(lambda match: f"<@{match[1]}>", term))
    return SearchRequest(query=" ".join(terms))


@dataclass(frozen=True)
class StatusExpiry:
    """When a status clears: after a duration, or at the next occurrence of a time of day."""

    after: timedelta | None = None
    at: time | None = None

    def resolve(self, now: datetime, zone: tzinfo) -> datetime:
        """The moment the status clears, for a person whose clock runs in `zone`."""
        if self.after is not None:
            return now + self.after
        assert self.at is not None
        local = now.astimezone(zone)
        moment = datetime.combine(local.date(), self.at, tzinfo=zone)
        if moment <= local:
            moment = datetime.combine(local.date() + timedelta(days=1), self.at, tzinfo=zone)
        return moment

    def describe(self) -> str:
        """Human words for the expiry as typed."""
        if self.after is not None:
            return f"for {describe_duration(self.after)}"
        assert self.at is not None
        return f"until {self.at.strftime('%H:%M')}"


@dataclass(frozen=True)
class SetStatus:
    """Set the person's status."""

    emoji: str
    text: str
    expiry: StatusExpiry | None
    not_expiry: str = ""  # a trailing `for …` / `until …` that is not a duration or time, so is part of the text


@dataclass(frozen=True)
class ClearStatus:
    """Clear the person's status."""


STATUS_USAGE = (
    "Usage: `/set-my-status :emoji: text [for 2h | until 17:00]` or `/set-my-status clear`.\n"
    "Examples: `/set-my-status :palm_tree: On holiday for 3d`, `/set-my-status :coffee: Break until 15:30`."
)


def parse_emoji(text: str) -> str | None:
    """A Slack emoji code like `:palm_tree:` (also accepted without colons), or None when it is not one."""
    value = text.strip().lower()
    if value and not value.startswith(":"):
        value = f":{value}:"
    return value if _EMOJI.fullmatch(value) else None


def parse_status(text: str) -> SetStatus | ClearStatus:
    """`:emoji: text [for <duration> | until <time>]`, or `clear`; raises UsageError with the usage otherwise."""
    rest = text.strip()
    if rest.lower() in ("clear", "off", "none", "reset"):
        return ClearStatus()
    if not rest or rest.lower() == "help":
        raise UsageError(STATUS_USAGE)
    expiry: StatusExpiry | None = None
    not_expiry = ""
    if tail := _EXPIRY_TAIL.fullmatch(rest):
        word, value = tail["word"].lower(), tail["value"].strip()
        try:
            expiry = StatusExpiry(after=parse_duration(value)) if word == "for" else StatusExpiry(at=parse_clock(value))
            rest = tail["head"].strip()
        except UsageError as error:
            if _EXPIRY_SHAPE.match(value):
                raise UsageError(f"{error}\n{STATUS_USAGE}") from None
            not_expiry = f"{word} {value}"  # "waiting for Godot": part of the text, not an expiry
    emoji = ""
    first, _, remainder = rest.partition(" ")
    if first.startswith(":") and (code := parse_emoji(first)):
        emoji, rest = code, remainder.strip()
    elif first.startswith(":") and first.endswith(":") and len(first) > 2:
        raise UsageError(f"`{_shown(first)}` is not an emoji code Slack knows the shape of.\n{STATUS_USAGE}")
    if not emoji and not rest:
        raise UsageError(f"Give an emoji, a text or both.\n{STATUS_USAGE}")
    if len(rest) > STATUS_TEXT_LIMIT:
        raise UsageError(f"A status text can be {STATUS_TEXT_LIMIT} characters at most; yours has {len(rest)}.")
    return SetStatus(emoji=emoji, text=rest, expiry=expiry, not_expiry=not_expiry)


@dataclass(frozen=True)
class SnoozeRequest:
    """Snooze for `duration`, or end the snooze when it is None."""

    duration: timedelta | None

    @property
    def minutes(self) -> int:
        assert self.duration is not None
        return int(self.duration.total_seconds() // 60)


SNOOZE_USAGE = "Usage: `/snooze-me 45m` (or `2h`, `1h30m`, `1d`) to pause notifications, `/snooze-me off` to end it."


def parse_snooze(text: str) -> SnoozeRequest:
    """`<duration>` or `off`; raises UsageError with the usage otherwise."""
    value = text.strip()
    if value.lower() in ("off", "end", "stop", "cancel"):
        return SnoozeRequest(duration=None)
    if not value or value.lower() == "help":
        raise UsageError(SNOOZE_USAGE)
    if value.lower().startswith("for "):
        value = value[4:]
    try:
        duration = parse_duration(value)
    except UsageError as error:
        raise UsageError(f"{error}\n{SNOOZE_USAGE}") from None
    if duration > SNOOZE_LIMIT:
        raise UsageError(f"Snoozes are for at most {describe_duration(SNOOZE_LIMIT)}.\n{SNOOZE_USAGE}")
    return SnoozeRequest(duration=duration)


def describe_duration(duration: timedelta) -> str:
    """`1 h 30 min`-style words for a duration."""
    minutes = int(duration.total_seconds() // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    return " ".join(parts)
