"""The Web API at `/api/<method>`: token and scope checks, then the methods Delegate's listeners call."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox import oauth
from sandbox.config import SandboxChannel
from sandbox.emoji import emoji_problem
from sandbox.errors import SlackError
from sandbox.links import permalink
from sandbox.state import SandboxState, Token, UserState, View

logger = logging.getLogger(__name__)


@dataclass
class Call:
    """One Web API call: the state, the caller's token (if any), the merged parameters and the sandbox's URL."""

    state: SandboxState
    params: dict[str, Any]
    base_url: str
    token: Token | None = None
    authorization: str | None = None

    @property
    def caller(self) -> Token:
        """The authenticated token (methods that need one always have it)."""
        assert self.token is not None
        return self.token

    def text(self, name: str, default: str = "") -> str:
        """A parameter as a string."""
        value = self.params.get(name, default)
        return value if isinstance(value, str) else json.dumps(value) if value is not None else default

    def json(self, name: str) -> Any:
        """A parameter that may arrive as a JSON string (form) or as JSON already (JSON body)."""
        value = self.params.get(name)
        if isinstance(value, str):
            if not value:
                return None
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise SlackError(
                    "invalid_arguments", response_metadata={"messages": [f"[ERROR] bad JSON in {name}"]}
                ) from None
        return value

    def integer(self, name: str, default: int) -> int:
        """A parameter as an integer, or `invalid_arguments`."""
        value = self.params.get(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None


Handler = Callable[[Call], dict[str, Any]]


@dataclass(frozen=True)
class Method:
    """A Web API method: its handler, who may call it and the scopes it needs per token kind."""

    handler: Handler
    auth: str = "token"
    bot: list[str] | None = field(default_factory=list)
    user: list[str] | None = field(default_factory=list)


def _check_access(method: Method, token: Token) -> None:
    needed = method.bot if token.kind == "bot" else method.user
    if needed is None:
        raise SlackError("not_allowed_token_type")
    missing = [scope for scope in needed if scope not in token.scopes]
    if missing:
        raise SlackError("missing_scope", needed=",".join(needed), provided=",".join(token.scopes))


# ----- auth -----


def auth_test(call: Call) -> dict[str, Any]:
    """auth.test: who the token belongs to; on Grid with the org's enterprise_id ("Look for enterprise_id in
    auth.test", https://api.slack.com/enterprise/grid/developing), and for an org-level token the org itself in place
    of a workspace (its id as team_id, its enterprise.slack.com URL, is_enterprise_install: true)."""
    token = call.caller
    name = call.state.user_json(token.user_id)["name"]
    if token.team_id is None:
        org = call.state.enterprises[token.enterprise_id or ""]
        place = {"url": f"https://{org.domain}.enterprise.slack.com/", "team": org.name, "team_id": org.id}
    else:
        team = call.state.team(token.team_id)
        place = {"url": f"https://{team.domain}.slack.com/", "team": team.name, "team_id": team.id}
    answer: dict[str, Any] = {
        "ok": True,
        **place,
        "user": name,
        "user_id": token.user_id,
        "enterprise_id": token.enterprise_id,
        "is_enterprise_install": token.is_enterprise_install,
    }
    if token.kind == "bot":
        answer["bot_id"] = call.state.config.bot_id
    return answer


def auth_revoke(call: Call) -> dict[str, Any]:
    """auth.revoke: kill the token and its refresh token (not with `test`), and tell the app."""
    if call.params.get("test") in ("1", "true", True, 1):
        return {"ok": True, "revoked": False}
    token = call.caller
    call.state.revoke_token(token, "auth.revoke")
    tokens = {
        "oauth": [token.user_id] if token.kind == "user" else [],
        "bot": [token.user_id] if token.kind == "bot" else [],
    }
    call.state.emit_event(token.team_id or token.enterprise_id or "", {"type": "tokens_revoked", "tokens": tokens})
    return {"ok": True, "revoked": True}


# ----- chat -----


def _author(call: Call) -> tuple[str, str | None]:
    token = call.caller
    return (token.user_id, None) if token.kind == "user" else (call.state.config.bot_user_id, call.state.config.bot_id)


def _acting_team(call: Call, channel: SandboxChannel) -> str:
    """The workspace a call on this channel acts from: the token's own, or (org-level) the first it reaches there."""
    token = call.caller
    if token.team_id is not None:
        return token.team_id
    return next(team for team in call.state.token_teams(token) if channel.in_team(team))


def post_message(call: Call) -> dict[str, Any]:
    """chat.postMessage: as the person with a user token, as the app with a bot token; in any channel of a workspace
    the token reaches (a channel shared into it included), else channel_not_found."""
    token = call.caller
    channel = call.state.channel_for(token, call.text("channel")) if call.text("channel") else None
    if channel is None:
        raise SlackError("channel_not_found")
    text, blocks = call.text("text"), call.json("blocks")
    if not text and not blocks and not call.params.get("attachments"):
        raise SlackError("no_text")
    user_id, bot_id = _author(call)
    message = call.state.record_message(
        team_id=_acting_team(call, channel),
        channel_id=channel.id,
        user_id=user_id,
        text=text,
        blocks=blocks,
        thread_ts=call.text("thread_ts") or None,
        bot_id=bot_id,
        via="chat.postMessage",
        as_kind=token.kind,
    )
    public = {key: value for key, value in message.items() if key not in ("via", "as", "channel")}
    return {"ok": True, "channel": channel.id, "ts": message["ts"], "message": public}


def post_ephemeral(call: Call) -> dict[str, Any]:
    """chat.postEphemeral: a message only `user` sees."""
    token = call.caller
    channel = call.state.channel_for(token, call.text("channel")) if call.text("channel") else None
    if channel is None:
        raise SlackError("channel_not_found")
    target = call.state.users.get(call.text("user"))
    if target is None or target.deleted or not any(channel.in_team(team) for team in target.user.workspaces):
        raise SlackError("user_not_in_channel")
    text, blocks = call.text("text"), call.json("blocks")
    if not text and not blocks and not call.params.get("attachments"):
        raise SlackError("no_text")
    message = call.state.record_ephemeral(
        team_id=_acting_team(call, channel),
        channel_id=channel.id,
        user_id=target.user.id,
        text=text,
        blocks=blocks,
        via="chat.postEphemeral",
        posted_by=_author(call)[0],
    )
    return {"ok": True, "message_ts": message["ts"]}


# ----- users -----


def _sees(call: Call, person: UserState) -> bool:
    """Whether the caller's token may look this person up: they share a workspace, or (Grid) an org."""
    state, token = call.state, call.caller
    if any(state.reaches(token, team) for team in person.user.workspaces):
        return True
    theirs = state.enterprise_of(person.user.team_id)
    ours = token.enterprise_id or (org.id if (org := state.enterprise_of(token.team_id)) is not None else None)
    return theirs is not None and theirs.id == ours


def users_info(call: Call) -> dict[str, Any]:
    """users.info: a user of the token's team (on Grid, of its org)."""
    user_id = call.text("user")
    if user_id != call.state.config.bot_user_id:
        person = call.state.user(user_id)
        if not _sees(call, person):
            raise SlackError("user_not_found")
    return {"ok": True, "user": call.state.user_json(user_id)}


def profile_get(call: Call) -> dict[str, Any]:
    """users.profile.get: the caller's (or `user`'s) profile."""
    user_id = call.text("user") or call.caller.user_id
    if user_id == call.state.config.bot_user_id:
        return {"ok": True, "profile": call.state.user_json(user_id)["profile"]}
    person = call.state.user(user_id)
    if not _sees(call, person):
        raise SlackError("user_not_found")
    return {"ok": True, "profile": call.state.profile_json(user_id)}


EDITABLE_PROFILE_FIELDS = {"status_text", "status_emoji", "status_expiration", "display_name"}


def profile_set(call: Call) -> dict[str, Any]:
    """users.profile.set: `profile` (JSON) or `name`/`value`; only admins may set someone else's."""
    token = call.caller
    user_id = call.text("user") or token.user_id
    person = call.state.user(user_id)
    if user_id != token.user_id and not call.state.users[token.user_id].user.is_admin:
        raise SlackError("not_admin")
    changes = call.json("profile")
    if changes is None and call.text("name"):
        changes = {call.text("name"): call.text("value")}
    if not isinstance(changes, dict) or not changes:
        raise SlackError("invalid_profile")
    unknown = set(changes) - EDITABLE_PROFILE_FIELDS
    if unknown:
        raise SlackError("invalid_profile", response_metadata={"messages": [f"[ERROR] cannot set {sorted(unknown)}"]})
    if len(str(changes.get("status_text", ""))) > 100:
        raise SlackError("too_long")
    if problem := emoji_problem(str(changes.get("status_emoji") or ""), call.state.config.custom_emoji):
        raise SlackError(problem)
    for name, value in changes.items():
        if name == "status_expiration":
            person.status_expiration = int(value or 0)
        else:
            setattr(person, name, str(value or ""))
    return {"ok": True, "profile": call.state.profile_json(user_id)}


# ----- dnd -----


def _dnd_window(now: float) -> tuple[int, int]:
    start = int(now // 86400 * 86400 + 22 * 3600)
    return start, start + 9 * 3600


def set_snooze(call: Call) -> dict[str, Any]:
    """dnd.setSnooze: snooze notifications for `num_minutes`."""
    minutes = call.integer("num_minutes", 0)
    if minutes <= 0:
        raise SlackError("invalid_arguments")
    now = call.state.now()
    person = call.state.user(call.caller.user_id)
    person.snooze_endtime = now + minutes * 60
    return {
        "ok": True,
        "snooze_enabled": True,
        "snooze_endtime": int(person.snooze_endtime),
        "snooze_remaining": minutes * 60,
        "snooze_is_indefinite": False,
    }


def end_snooze(call: Call) -> dict[str, Any]:
    """dnd.endSnooze: end the current snooze."""
    now = call.state.now()
    person = call.state.user(call.caller.user_id)
    if person.snooze_endtime is None or person.snooze_endtime <= now:
        raise SlackError("snooze_not_active")
    person.snooze_endtime = None
    start, end = _dnd_window(now)
    return {"ok": True, "dnd_enabled": True, "next_dnd_start_ts": start, "next_dnd_end_ts": end, "snooze_enabled": False}


def dnd_info(call: Call) -> dict[str, Any]:
    """dnd.info: Do Not Disturb and snooze state."""
    now = call.state.now()
    person = call.state.user(call.text("user") or call.caller.user_id)
    start, end = _dnd_window(now)
    answer: dict[str, Any] = {"ok": True, "dnd_enabled": True, "next_dnd_start_ts": start, "next_dnd_end_ts": end}
    snoozing = person.snooze_endtime is not None and person.snooze_endtime > now
    answer["snooze_enabled"] = snoozing
    if snoozing and person.user.id == call.caller.user_id:
        answer["snooze_endtime"] = int(person.snooze_endtime)  # type: ignore[arg-type]
        answer["snooze_remaining"] = int(person.snooze_endtime - now)  # type: ignore[operator]
    return answer


# ----- search -----


def _matches(message: dict[str, Any], terms: list[str], state: SandboxState) -> bool:
    text = message["text"].lower()
    for term in terms:
        if term.startswith("in:"):
            wanted = term[3:].lstrip("#")
            channel = state.channels.get(message["channel"])
            if channel is None or wanted not in (channel.name.lower(), channel.id.lower()):
                return False
        elif term.startswith("from:"):
            wanted = term[5:].lstrip("@").strip("<>").lstrip("@")
            author = state.users.get(message["user"])
            names = {message["user"].lower()} | ({author.user.name.lower()} if author else set())
            if wanted not in names:
                return False
        elif term not in text:
            return False
    return True


def _team_argument(call: Call) -> str:
    """The workspace a team-scoped method acts on: the token's own (a `team_id` is ignored, as Slack ignores it with a
    workspace-level token), or with an org-level token the `team_id` it must name ("team_id ... required if org
    token is used", https://api.slack.com/methods/search.messages)."""
    token = call.caller
    if token.team_id is not None:
        return token.team_id
    team_id = call.text("team_id")
    if not team_id:
        raise SlackError(
            "missing_argument", response_metadata={"messages": ["[ERROR] team_id is required with an org token"]}
        )
    if not call.state.reaches(token, team_id):
        raise SlackError("team_access_not_granted")
    return team_id


def search_messages(call: Call) -> dict[str, Any]:
    """search.messages: the messages of the team's channels (shared ones included) containing every term, newest
    first, paginated."""
    query = call.text("query").strip()
    if not query:
        raise SlackError("no_query")
    team_id = _team_argument(call)
    count = max(1, min(call.integer("count", 20), 100))
    page = max(1, call.integer("page", 1))
    terms = [term.lower() for term in query.split()]
    state = call.state
    found = [
        message
        for message in reversed(state.messages)
        if state.channels[message["channel"]].in_team(team_id) and _matches(message, terms, state)
    ]
    total = len(found)
    pages = max(1, math.ceil(total / count))
    window = found[(page - 1) * count : page * count]
    matches = []
    for message in window:
        channel = state.channels[message["channel"]]
        author = state.users.get(message["user"])
        matches.append(
            {
                "iid": hashlib.sha256(message["ts"].encode()).hexdigest()[:32],
                "team": message["team"],
                "type": "message",
                "channel": {
                    "id": channel.id,
                    "name": channel.name,
                    "is_channel": channel.id.startswith("C"),
                    "is_private": False,
                    "is_im": channel.id.startswith("D"),
                },
                "user": message["user"],
                "username": author.user.name if author else state.config.app_name.lower(),
                "ts": message["ts"],
                "text": message["text"],
                "permalink": permalink(call.base_url, channel.id, message["ts"]),
            }
        )
    first = (page - 1) * count + 1 if window else 0
    return {
        "ok": True,
        "query": query,
        "messages": {
            "total": total,
            "matches": matches,
            "pagination": {
                "total_count": total,
                "page": page,
                "per_page": count,
                "page_count": pages,
                "first": first,
                "last": first + len(window) - 1 if window else 0,
            },
            "paging": {"count": count, "total": total, "page": page, "pages": pages},
        },
    }


# ----- views -----


def _view_hash(state: SandboxState) -> str:
    return f"{int(state.now())}.{secrets.token_hex(6)}"


def _view_definition(call: Call, allowed: tuple[str, ...]) -> dict[str, Any]:
    view = call.json("view")
    if not isinstance(view, dict) or view.get("type") not in allowed:
        raise SlackError(
            "invalid_arguments", response_metadata={"messages": ["[ERROR] view must be an object of a known type"]}
        )
    if len(view.get("blocks", [])) > 100:
        raise SlackError("invalid_arguments")
    return view


def _open_modals(state: SandboxState, user_id: str) -> list[View]:
    return [view for view in state.views.values() if view.user_id == user_id and view.type == "modal" and not view.closed]


def views_open(call: Call) -> dict[str, Any]:
    """views.open: open a modal for the person whose trigger_id this is."""
    definition = _view_definition(call, ("modal",))
    team_id, user_id = call.state.use_trigger(call.text("trigger_id"))
    for stale in _open_modals(call.state, user_id):
        stale.closed = True
    view = View(
        id=call.state.new_id("V"),
        team_id=team_id,
        user_id=user_id,
        view=definition,
        hash=_view_hash(call.state),
        type="modal",
        created_at=call.state.now(),
        external_id=definition.get("external_id"),
    )
    call.state.views[view.id] = view
    return {"ok": True, "view": view.to_payload(call.state.config.app_id)}


def views_push(call: Call) -> dict[str, Any]:
    """views.push: push a modal onto the open stack (at most 3)."""
    definition = _view_definition(call, ("modal",))
    team_id, user_id = call.state.use_trigger(call.text("trigger_id"))
    stack = _open_modals(call.state, user_id)
    if not stack:
        raise SlackError("invalid_trigger_id")
    if len(stack) >= 3:
        raise SlackError("push_limit_reached")
    view = View(
        id=call.state.new_id("V"),
        team_id=team_id,
        user_id=user_id,
        view=definition,
        hash=_view_hash(call.state),
        type="modal",
        created_at=call.state.now(),
        external_id=definition.get("external_id"),
        root_view_id=stack[0].id,
        previous_view_id=stack[-1].id,
    )
    call.state.views[view.id] = view
    return {"ok": True, "view": view.to_payload(call.state.config.app_id)}


def views_update(call: Call) -> dict[str, Any]:
    """views.update: replace a view by `view_id` or `external_id`, checking `hash` when given."""
    definition = _view_definition(call, ("modal", "home"))
    view_id, external_id = call.text("view_id"), call.text("external_id")
    if not view_id and not external_id:
        raise SlackError("invalid_arguments")
    view = (
        call.state.views.get(view_id)
        if view_id
        else next((view for view in call.state.views.values() if view.external_id == external_id), None)
    )
    if view is None or not call.state.reaches(call.caller, view.team_id):
        raise SlackError("not_found")
    given_hash = call.text("hash")
    if given_hash and given_hash != view.hash:
        raise SlackError("hash_conflict")
    view.view = definition
    view.hash = _view_hash(call.state)
    view.errors = {}
    view.external_id = definition.get("external_id", view.external_id)
    return {"ok": True, "view": view.to_payload(call.state.config.app_id)}


def views_publish(call: Call) -> dict[str, Any]:
    """views.publish: create or replace a person's App Home view."""
    definition = _view_definition(call, ("home",))
    user_id = call.text("user_id")
    person = call.state.user(user_id)
    reached = [team for team in person.user.workspaces if call.state.reaches(call.caller, team)]
    if not reached:
        raise SlackError("user_not_found")
    home = next((view for view in call.state.views.values() if view.user_id == user_id and view.type == "home"), None)
    given_hash = call.text("hash")
    if home is not None and given_hash and given_hash != home.hash:
        raise SlackError("hash_conflict")
    if home is None:
        home = View(
            id=call.state.new_id("V"),
            team_id=reached[0],
            user_id=user_id,
            view=definition,
            hash=_view_hash(call.state),
            type="home",
            created_at=call.state.now(),
        )
        call.state.views[home.id] = home
    else:
        home.view, home.hash = definition, _view_hash(call.state)
    return {"ok": True, "view": home.to_payload(call.state.config.app_id)}


# ----- conversations -----


def _channel_json(state: SandboxState, channel_id: str) -> dict[str, Any]:
    channel = state.channels[channel_id]
    members = sum(1 for person in state.users.values() if person.user.team_id == channel.team_id and not person.deleted)
    return {
        "id": channel.id,
        "name": channel.name,
        "is_channel": True,
        "is_group": False,
        "is_im": False,
        "is_private": False,
        "is_archived": False,
        "is_general": channel.name == "general",
        "is_member": True,
        "context_team_id": channel.team_id,
        "is_shared": bool(channel.shared_team_ids),
        "is_org_shared": bool(channel.shared_team_ids),
        "is_ext_shared": False,
        "topic": {"value": channel.topic, "creator": "", "last_set": 0},
        "purpose": {"value": "", "creator": "", "last_set": 0},
        "num_members": members,
    }


def conversations_list(call: Call) -> dict[str, Any]:
    """conversations.list: the team's public channels (shared ones included)."""
    state = call.state
    team_id = _team_argument(call)
    channels = [
        _channel_json(state, channel.id)
        for channel in state.channels.values()
        if channel.in_team(team_id) and channel.id.startswith("C")
    ]
    return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}


def conversations_history(call: Call) -> dict[str, Any]:
    """conversations.history: a channel's messages, newest first."""
    channel = call.state.channel_for(call.caller, call.text("channel"))
    limit = max(1, min(call.integer("limit", 100), 1000))
    found = [message for message in reversed(call.state.messages) if message["channel"] == channel.id]
    public = [{key: value for key, value in message.items() if key not in ("via", "as", "channel")} for message in found]
    return {
        "ok": True,
        "messages": public[:limit],
        "has_more": len(public) > limit,
        "response_metadata": {"next_cursor": ""},
    }


# ----- non-token methods -----


def api_test(call: Call) -> dict[str, Any]:
    """api.test: echo the arguments (or the `error` asked for)."""
    args = {key: value for key, value in call.params.items() if key != "token"}
    if "error" in args:
        raise SlackError(str(args["error"]), args=args)
    return {"ok": True, "args": args}


def oauth_access(call: Call) -> dict[str, Any]:
    """oauth.v2.access: see sandbox.oauth.access."""
    return oauth.access(call.state, {key: call.text(key) for key in call.params}, call.authorization)


def oauth_exchange(call: Call) -> dict[str, Any]:
    """oauth.v2.exchange: see sandbox.oauth.exchange."""
    return oauth.exchange(call.state, {key: call.text(key) for key in call.params}, call.authorization)


def connections_open(call: Call) -> dict[str, Any]:
    """apps.connections.open: answered by server.api_method, which knows the Socket Mode hub."""
    raise AssertionError("served by the socket mode hub")  # pragma: no cover - dispatched in server.py


METHODS: dict[str, Method] = {
    "api.test": Method(api_test, auth="none"),
    "auth.test": Method(auth_test),
    "auth.revoke": Method(auth_revoke),
    "chat.postMessage": Method(post_message, bot=["chat:write"], user=["chat:write"]),
    "chat.postEphemeral": Method(post_ephemeral, bot=["chat:write"], user=["chat:write"]),
    "users.info": Method(users_info, bot=["users:read"], user=["users:read"]),
    "users.profile.get": Method(profile_get, bot=["users.profile:read"], user=["users.profile:read"]),
    "users.profile.set": Method(profile_set, bot=None, user=["users.profile:write"]),
    "dnd.setSnooze": Method(set_snooze, bot=None, user=["dnd:write"]),
    "dnd.endSnooze": Method(end_snooze, bot=None, user=["dnd:write"]),
    "dnd.info": Method(dnd_info, bot=["dnd:read"], user=["dnd:read"]),
    "search.messages": Method(search_messages, bot=None, user=["search:read"]),
    "views.open": Method(views_open),
    "views.push": Method(views_push),
    "views.update": Method(views_update),
    "views.publish": Method(views_publish),
    "conversations.list": Method(conversations_list, bot=["channels:read"], user=["channels:read"]),
    "conversations.history": Method(conversations_history, bot=["channels:history"], user=["channels:history"]),
    "oauth.v2.access": Method(oauth_access, auth="client"),
    "oauth.v2.exchange": Method(oauth_exchange, auth="client"),
    "apps.connections.open": Method(connections_open, auth="app"),
}


def bearer_token(request: web.Request) -> str | None:
    """The token from `Authorization: Bearer ...`, if any."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def check_app_token(state: SandboxState, value: str | None) -> None:
    """Raise unless `value` is the configured app-level token."""
    if not value:
        raise SlackError("not_authed")
    if not value.startswith("xapp-"):
        raise SlackError("not_allowed_token_type")
    if not hmac.compare_digest(value.encode(), state.config.app_token.encode()):
        raise SlackError("invalid_auth")


def dispatch(
    state: SandboxState, name: str, params: dict[str, Any], *, bearer: str | None, authorization: str | None, base_url: str
) -> dict[str, Any]:
    """Run one Web API call against the state and return its JSON answer (raises SlackError on failure)."""
    method = METHODS.get(name)
    if method is None:
        raise SlackError("unknown_method", req_method=name)
    call = Call(state=state, params=params, base_url=base_url, authorization=authorization)
    with state.lock:
        if method.auth == "token":
            value = bearer or (params.get("token") if isinstance(params.get("token"), str) else None)
            if value and value.startswith("xapp-"):
                raise SlackError("not_allowed_token_type")
            call.token = state.authenticate(value)
            state.record_call(name, call.token)
            _check_access(method, call.token)
        return method.handler(call)


async def read_params(request: web.Request) -> dict[str, Any]:
    """Query string merged with the form or JSON body (JSON needs a Bearer token, as on Slack)."""
    params: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.body_exists:
        return params
    if request.content_type == "application/json":
        if bearer_token(request) is None:
            raise SlackError("not_authed")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SlackError("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        params.update(body)
    else:
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params


def json_answer(body: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response the way Slack sends them."""
    return web.json_response(body, status=status, headers=headers)


async def apply_fault_before(state: SandboxState, name: str) -> tuple[web.Response | None, bool]:
    """Apply an injected fault's latency and status; returns (response to send instead, drop after acting)."""
    fault = state.take_fault(name)
    if fault is None:
        return None, False
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    if fault.status == 429:
        body = {"ok": False, "error": "ratelimited"}
        return json_answer(body, status=429, headers={"Retry-After": str(fault.retry_after)}), False
    if fault.status:
        return json_answer({"ok": False, "error": fault.error or "internal_error"}, status=fault.status), False
    if fault.error:
        return json_answer({"ok": False, "error": fault.error}), False
    return None, fault.drop_after_action
