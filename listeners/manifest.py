"""Read manifest.yml, the single declaration of Delegate's scopes, commands, shortcuts and events."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "MANIFEST_PATH",
    "ManifestError",
    "SlashCommand",
    "bot_events",
    "bot_scopes",
    "load",
    "shortcut_callback_ids",
    "slash_command_details",
    "slash_commands",
    "user_scopes",
]

MANIFEST_PATH = Path(__file__).resolve().parent.parent / "manifest.yml"


class ManifestError(Exception):
    """manifest.yml is missing or does not have the shape Delegate expects."""


@dataclass(frozen=True)
class SlashCommand:
    """One slash command as declared in the manifest."""

    command: str
    description: str
    usage_hint: str


@lru_cache(maxsize=4)
def load(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    """The parsed manifest (cached; pass another path to read another file)."""
    try:
        with open(path, encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    except (OSError, yaml.YAMLError) as error:
        raise ManifestError(f"cannot read the Slack app manifest at {path}: {error}") from error
    if not isinstance(data, dict):
        raise ManifestError(f"the Slack app manifest at {path} is not a mapping")
    return data


def _section(data: dict[str, Any], *names: str) -> Any:
    value: Any = data
    for name in names:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _scopes(kind: str, path: Path) -> tuple[str, ...]:
    scopes = _section(load(path), "oauth_config", "scopes", kind) or []
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        raise ManifestError(f"oauth_config.scopes.{kind} in {path} must be a list of scope names")
    return tuple(scopes)


def bot_scopes(path: Path = MANIFEST_PATH) -> tuple[str, ...]:
    """The bot scopes Delegate asks for when a workspace installs it."""
    return _scopes("bot", path)


def user_scopes(path: Path = MANIFEST_PATH) -> tuple[str, ...]:
    """The user scopes Delegate asks for when a person connects."""
    return _scopes("user", path)


def slash_command_details(path: Path = MANIFEST_PATH) -> tuple[SlashCommand, ...]:
    """Every slash command with its description and usage hint, in manifest order."""
    entries = _section(load(path), "features", "slash_commands") or []
    return tuple(
        SlashCommand(
            command=str(entry["command"]),
            description=str(entry.get("description", "")),
            usage_hint=str(entry.get("usage_hint", "")),
        )
        for entry in entries
    )


def slash_commands(path: Path = MANIFEST_PATH) -> tuple[str, ...]:
    """The slash command names, with their leading slash."""
    return tuple(entry.command for entry in slash_command_details(path))


def shortcut_callback_ids(path: Path = MANIFEST_PATH) -> tuple[str, ...]:
    """The callback_id of every global and message shortcut."""
    entries = _section(load(path), "features", "shortcuts") or []
    return tuple(str(entry["callback_id"]) for entry in entries)


def bot_events(path: Path = MANIFEST_PATH) -> tuple[str, ...]:
    """The events Delegate subscribes to."""
    return tuple(_section(load(path), "settings", "event_subscriptions", "bot_events") or [])
