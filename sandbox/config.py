"""Configuration of the sandbox: the Slack app it pretends to host and the workspace it seeds."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from yarl import URL


@dataclass(frozen=True)
class SandboxUser:
    """A person in a sandbox workspace."""

    id: str
    name: str
    real_name: str
    team_id: str
    is_admin: bool = False
    email: str = ""
    tz: str = "Europe/London"
    # Enterprise Grid: the other workspaces of the org the person is also a member of (one user id for all of them,
    # as on Grid, where "a user ... becomes a cross-referenced entity you can recognize consistently across
    # workspaces"), and whether they are an org admin (only those may install an app for the whole org).
    other_teams: tuple[str, ...] = ()
    is_org_admin: bool = False

    @property
    def workspaces(self) -> tuple[str, ...]:
        """Every workspace the person belongs to, their home one first."""
        return (self.team_id, *self.other_teams)


@dataclass(frozen=True)
class SandboxChannel:
    """A channel in a sandbox workspace: public, or private to its `members`."""

    id: str
    name: str
    team_id: str
    topic: str = ""
    is_private: bool = False
    members: tuple[str, ...] = ()
    # Enterprise Grid: the other workspaces of the org this channel is shared with (a multi-workspace channel; its
    # id is the same in each, and it is not "externally shared": is_ext_shared_channel stays false).
    shared_team_ids: tuple[str, ...] = ()

    def visible_to(self, user_id: str) -> bool:
        """Whether the person can see (and so mention) the channel: any public one, a private one they are in."""
        return not self.is_private or user_id in self.members

    def in_team(self, team_id: str) -> bool:
        """Whether the channel is part of this workspace: its own, or one it is shared with."""
        return team_id == self.team_id or team_id in self.shared_team_ids


@dataclass(frozen=True)
class SandboxTeam:
    """A sandbox workspace; `distributed` says whether the app may be installed into it."""

    id: str
    name: str
    domain: str
    distributed: bool = True
    enterprise_id: str | None = None  # the Enterprise Grid org the workspace belongs to, if any


@dataclass(frozen=True)
class SandboxEnterprise:
    """An Enterprise Grid organisation: its workspaces are the SandboxTeams naming it."""

    id: str
    name: str
    domain: str


def is_loopback_url(url: str) -> bool:
    """Whether `url` is plain http(s) to 127.0.0.0/8, ::1 or localhost, with no user info.

    Parsed with yarl, as aiohttp parses the URL when the sandbox posts to it, so the two cannot disagree on the host.
    """
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return False
    if parsed.scheme not in ("http", "https") or parsed.user is not None or parsed.password is not None:
        return False
    host = (parsed.host or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_request_url(url: str | None) -> None:
    """Raise ValueError unless `url` is None or a loopback http(s) URL: the sandbox posts there and reads the answer."""
    if url is not None and not is_loopback_url(url):
        raise ValueError(
            "request_url must be an http(s) URL on a loopback address (127.0.0.1, ::1) or localhost, without user info: "
            "the sandbox posts to it and shows what it answers"
        )


def _default_teams() -> list[SandboxTeam]:
    return [
        SandboxTeam(id="T0SANDBOX1", name="Sandbox Inc", domain="sandbox-inc"),
        SandboxTeam(id="T0ELSEWHR2", name="Elsewhere Ltd", domain="elsewhere", distributed=False),
    ]


def _default_users() -> list[SandboxUser]:
    return [
        SandboxUser("U0ALICE001", "alice", "Alice Admin", "T0SANDBOX1", is_admin=True, email="alice@sandbox.test"),
        SandboxUser("U0BOB00002", "bob", "Bob Builder", "T0SANDBOX1", email="bob@sandbox.test"),
        SandboxUser("U0CAROL003", "carol", "Carol Cook", "T0SANDBOX1", email="carol@sandbox.test"),
        SandboxUser("U0DAVE0004", "dave", "Dave Elsewhere", "T0ELSEWHR2", is_admin=True, email="dave@elsewhere.test"),
    ]


def _default_channels() -> list[SandboxChannel]:
    return [
        SandboxChannel("C0GENERAL1", "general", "T0SANDBOX1", topic="Company-wide announcements"),
        SandboxChannel("C0RANDOM02", "random", "T0SANDBOX1", topic="Non-work banter"),
        SandboxChannel("C0OTHER003", "general", "T0ELSEWHR2", topic="Elsewhere's general"),
    ]


GRID_ENTERPRISE = "E0SANDBOXG"
GRID_NORTH, GRID_SOUTH = "T0GRIDNRT1", "T0GRIDSTH2"


def organisation() -> dict[str, Any]:
    """The Enterprise Grid preset's people and places, as SandboxConfig fields (`SandboxConfig.grid()` uses them).

    One org, "Sandbox Grid", with two workspaces, North and South; Olivia is an org admin in both, Nora is only in
    North, Sam only in South, Cleo in both; #north-general and #south-general belong to one workspace each and
    #shared-launch (home North) is shared with South. User ids start with W, as Grid's do.
    """
    return {
        "enterprises": [SandboxEnterprise(GRID_ENTERPRISE, "Sandbox Grid", "sandbox-grid")],
        "teams": [
            SandboxTeam(GRID_NORTH, "Grid North", "grid-north", enterprise_id=GRID_ENTERPRISE),
            SandboxTeam(GRID_SOUTH, "Grid South", "grid-south", enterprise_id=GRID_ENTERPRISE),
        ],
        "users": [
            SandboxUser(
                "W0OLIVIA01",
                "olivia",
                "Olivia Org-Admin",
                GRID_NORTH,
                is_admin=True,
                email="olivia@grid.test",
                other_teams=(GRID_SOUTH,),
                is_org_admin=True,
            ),
            SandboxUser("W0NORA0002", "nora", "Nora North", GRID_NORTH, email="nora@grid.test"),
            SandboxUser("W0SAM00003", "sam", "Sam South", GRID_SOUTH, email="sam@grid.test"),
            SandboxUser("W0CLEO0004", "cleo", "Cleo Both", GRID_NORTH, email="cleo@grid.test", other_teams=(GRID_SOUTH,)),
        ],
        "channels": [
            SandboxChannel("C0NORTHGN1", "north-general", GRID_NORTH, topic="North's announcements"),
            SandboxChannel("C0SOUTHGN2", "south-general", GRID_SOUTH, topic="South's announcements"),
            SandboxChannel(
                "C0SHARED03", "shared-launch", GRID_NORTH, topic="North and South together", shared_team_ids=(GRID_SOUTH,)
            ),
        ],
    }


@dataclass
class SandboxConfig:
    """Everything the sandbox needs to know about the app it hosts; the defaults make a working demo."""

    app_name: str = "Delegate"
    app_id: str = "A0SANDBOXAP"
    client_id: str = "1111111111.2222222222"
    client_secret: str = field(default="sandbox-client-secret", repr=False)
    signing_secret: str = field(default="sandbox-signing-secret", repr=False)
    app_token: str = field(default="xapp-1-A0SANDBOXAP-1-sandboxapptoken", repr=False)
    verification_token: str = field(default="sandbox-verification-token", repr=False)
    redirect_urls: list[str] = field(default_factory=lambda: ["http://127.0.0.1:3000/slack/oauth_redirect"])
    request_url: str | None = "http://127.0.0.1:3000/slack/events"
    install_url: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    token_rotation: bool = True
    expires_in: int = 43200
    refresh_grace_seconds: float = 0.0
    refresh_error_name: str = "invalid_refresh_token"
    code_ttl_seconds: float = 600.0
    trigger_ttl_seconds: float = 30.0
    delivery_timeout_seconds: float = 10.0
    event_retry_delays: list[float] = field(default_factory=list)
    rate_limits: dict[str, int] = field(default_factory=dict)  # calls per minute of the sandbox clock, per method
    bot_events: list[str] | None = None
    bot_user_id: str = "U0DELEGATB"
    bot_id: str = "B0DELEGATB"
    teams: list[SandboxTeam] = field(default_factory=_default_teams)
    users: list[SandboxUser] = field(default_factory=_default_users)
    channels: list[SandboxChannel] = field(default_factory=_default_channels)
    enterprises: list[SandboxEnterprise] = field(default_factory=list)
    commands: list[str] = field(default_factory=lambda: ["/delegate"])
    escaped_commands: list[str] = field(default_factory=list)  # the manifest's `should_escape: true` commands
    custom_emoji: list[str] = field(default_factory=list)  # names a workspace added, accepted beside Slack's own
    global_shortcuts: list[str] = field(default_factory=list)
    message_shortcuts: list[str] = field(default_factory=list)
    # The names people see for the shortcuts above (callback_id -> name); a shortcut not named here shows its id.
    shortcut_names: dict[str, str] = field(default_factory=dict)
    # The app's Slack Marketplace listing (/apps/<app_id>): the manifest's display_information, the listing's links
    # (label -> URL), and whether "Add to Slack" starts at the app's install URL (direct install) or, as Slack does
    # without it, at Slack's own authorize page with the manifest's scopes and no state.
    description: str = ""
    long_description: str = ""
    background_color: str = "#4a154b"
    directory_links: dict[str, str] = field(default_factory=dict)
    direct_install: bool = True
    bot_scopes: list[str] = field(default_factory=list)
    user_scopes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_request_url(self.request_url)

    @property
    def default_team(self) -> SandboxTeam:
        """The first team: the one the app is normally installed into."""
        return self.teams[0]

    @classmethod
    def grid(cls, **overrides: Any) -> SandboxConfig:
        """A config whose workspace is an Enterprise Grid organisation (`organisation()`), not the default workspace."""
        return cls(**{**organisation(), **overrides})

    @property
    def is_grid(self) -> bool:
        """Whether the sandbox models an Enterprise Grid organisation."""
        return bool(self.enterprises)

    @classmethod
    def from_manifest(cls, manifest: str | Path | dict[str, Any], **overrides: Any) -> SandboxConfig:
        """A config whose app name, commands, shortcuts and token rotation come from a Slack app manifest."""
        if not isinstance(manifest, dict):
            import yaml

            manifest = yaml.safe_load(Path(manifest).read_text(encoding="utf-8")) or {}
        features = manifest.get("features") or {}
        settings = manifest.get("settings") or {}
        values: dict[str, Any] = {}
        display = manifest.get("display_information") or {}
        if display.get("name"):
            values["app_name"] = display["name"]
        for key in ("description", "long_description", "background_color"):
            if display.get(key):
                values[key] = str(display[key])
        scopes = (manifest.get("oauth_config") or {}).get("scopes") or {}
        values["bot_scopes"] = [str(scope) for scope in scopes.get("bot") or []]
        values["user_scopes"] = [str(scope) for scope in scopes.get("user") or []]
        entries = [entry for entry in features.get("slash_commands") or [] if entry.get("command")]
        if entries:
            values["commands"] = [entry["command"] for entry in entries]
            values["escaped_commands"] = [entry["command"] for entry in entries if entry.get("should_escape") is True]
        shortcuts = features.get("shortcuts") or []
        values["global_shortcuts"] = [entry["callback_id"] for entry in shortcuts if entry.get("type") == "global"]
        values["message_shortcuts"] = [entry["callback_id"] for entry in shortcuts if entry.get("type") == "message"]
        values["shortcut_names"] = {
            entry["callback_id"]: str(entry["name"]) for entry in shortcuts if entry.get("callback_id") and entry.get("name")
        }
        events = (settings.get("event_subscriptions") or {}).get("bot_events")
        if events is not None:
            values["bot_events"] = list(events)
        if "token_rotation_enabled" in settings:
            values["token_rotation"] = bool(settings["token_rotation_enabled"])
        known = {item.name for item in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown SandboxConfig fields: {sorted(unknown)}")
        return cls(**{**values, **overrides})
