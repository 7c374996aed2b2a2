"""Delivery to the app: signed HTTP requests to its request URL, or envelopes over Socket Mode when connected."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp

from sandbox.config import is_loopback_url
from sandbox.errors import SlackError
from sandbox.escaping import escape_command_text, html_escape
from sandbox.socket_mode import NoAck, SocketHub
from sandbox.state import SandboxState, View

logger = logging.getLogger(__name__)

SLACK_ACK_DEADLINE_SECONDS = 3.0


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: `v0=` + HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def simple_values(values: dict[str, Any] | None) -> dict[str, Any]:
    """View state values in Slack's shape; `{block: {action: "text"}}` becomes a plain_text_input value."""
    shaped: dict[str, Any] = {}
    for block_id, actions in (values or {}).items():
        shaped[block_id] = {}
        for action_id, value in actions.items():
            shaped[block_id][action_id] = value if isinstance(value, dict) else {"type": "plain_text_input", "value": value}
    return shaped


class Delivery:
    """Builds Slack's payloads, sends them to the app and applies what the app answers."""

    def __init__(self, state: SandboxState, hub: SocketHub) -> None:
        self.state = state
        self.hub = hub
        self.base_url = ""
        self.session: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Open the HTTP client session."""
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Finish pending event deliveries and close the HTTP client session."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=2)
        for task in list(self.tasks):
            task.cancel()
        if self.session is not None:
            await self.session.close()
            self.session = None

    # ----- transport -----

    async def _post(self, body: bytes, content_type: str, retry: tuple[int, str]) -> tuple[int, str, str]:
        url = self.state.config.request_url
        if not url:
            raise SlackError("no_request_url")
        if not is_loopback_url(url):  # SandboxConfig is mutable: check again what __post_init__ and configure checked
            raise SlackError("request_url_not_loopback")
        assert self.session is not None
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(self.state.config.signing_secret, timestamp, body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if retry[0]:
            headers.update({"X-Slack-Retry-Num": str(retry[0]), "X-Slack-Retry-Reason": retry[1]})
        timeout = aiohttp.ClientTimeout(total=self.state.config.delivery_timeout_seconds)
        # A redirect could lead off the loopback interface, so a 3xx is an answer like any other non-200.
        async with self.session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False) as response:
            return response.status, await response.text(), response.headers.get("Content-Type", "")

    async def _send(
        self,
        kind: str,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        form: bool,
        accepts_response_payload: bool,
        retry: tuple[int, str] = (0, ""),
    ) -> dict[str, Any]:
        """Deliver a payload by Socket Mode (when connected) or HTTP; returns a record of what happened."""
        record: dict[str, Any] = {
            "id": self.state.new_id("D", 8),
            "kind": kind,
            "at": self.state.now(),
            "transport": "socket_mode" if self.hub.connected else "http",
            "status": None,
            "body": None,
            "error": None,
        }
        started = time.monotonic()
        try:
            if self.hub.connected:
                record["body"] = await self.hub.send_envelope(
                    envelope_type,
                    payload,
                    accepts_response_payload=accepts_response_payload,
                    timeout=self.state.config.delivery_timeout_seconds,
                    retry=retry,
                )
                record["status"] = 200
            else:
                if form:
                    fields = payload if kind == "slash_command" else {"payload": json.dumps(payload)}
                    body, content_type = urlencode(fields).encode(), "application/x-www-form-urlencoded"
                else:
                    body, content_type = json.dumps(payload).encode(), "application/json"
                status, text, response_type = await self._post(body, content_type, retry)
                record["status"] = status
                if status != 200:
                    record["error"] = "http_service_error"
                elif text.strip():
                    try:
                        record["body"] = json.loads(text)
                    except json.JSONDecodeError:
                        record["body"] = {"text": text} if "json" not in response_type else None
        except NoAck:
            record["error"] = "operation_timeout"
        except SlackError as error:
            record["error"] = error.error
        except TimeoutError:
            record["error"] = "operation_timeout"
        except aiohttp.ClientError as error:
            record["error"], record["detail"] = "dispatch_failed", type(error).__name__
        record["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
        record["late"] = record["elapsed_ms"] > SLACK_ACK_DEADLINE_SECONDS * 1000
        with self.state.lock:
            self.state.deliveries.append(record)
        return record

    # ----- common payload parts -----

    def _person(
        self, user_id: str, team_id: str | None = None, channel_id: str | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The `user` and `team` of a payload: the person, and the workspace they act in.

        That workspace is `team_id` (one of theirs), else the workspace of `channel_id` if they belong to it, else one
        of theirs the channel is shared into, else their home one. On Enterprise Grid `team` also carries
        `enterprise_id` and `enterprise_name` (https://docs.slack.dev/reference/interaction-payloads/block_suggestion-payload),
        and `user.team_id` is the workspace acted in, as in an org-wide app's shortcut payload reported to Bolt
        (`'user': {'id': 'Wxxx', 'team_id': 'Txxx', ...}`, https://github.com/slackapi/bolt-python/pull/23). Slack's
        block_suggestion page says `user.team_id` may instead be the org's id; the sandbox does not model that.
        """
        with self.state.lock:
            person = self.state.user(user_id)
            if person.deleted:
                raise SlackError("account_inactive")
            workspaces = person.user.workspaces
            if team_id is None and channel_id is not None and channel_id in self.state.channels:
                channel = self.state.channels[channel_id]
                shared_into = [team for team in workspaces if channel.in_team(team)]
                team_id = channel.team_id if channel.team_id in workspaces else next(iter(shared_into), None)
            team_id = team_id or person.user.team_id
            if team_id not in workspaces:
                raise SlackError("not_in_team")
            team = self.state.team(team_id)
            org = self.state.enterprise_of(team.id)
            user = {"id": person.user.id, "username": person.user.name, "name": person.user.name, "team_id": team.id}
            where: dict[str, Any] = {"id": team.id, "domain": team.domain}
            if org is not None:
                where.update({"enterprise_id": org.id, "enterprise_name": org.name})
            return user, where

    def _org(self, team_id: str) -> dict[str, Any]:
        """`enterprise` and `is_enterprise_install` of an interaction payload from this workspace: the org (None off
        Grid), and whether the app is installed org-wide there (Bolt's org-app support: "button gets
        is_enterprise_install & enterprise: {id, name}", https://github.com/slackapi/bolt/issues/521)."""
        org = self.state.enterprise_of(team_id)
        return {
            "enterprise": {"id": org.id, "name": org.name} if org is not None else None,
            "is_enterprise_install": self.state.org_installed(team_id),
        }

    def _default_channel(self, team_id: str) -> str:
        """Where a command typed with no channel named runs: the workspace's #general, else its first channel."""
        with self.state.lock:
            channels = [c for c in self.state.channels.values() if c.in_team(team_id) and not c.id.startswith("D")]
            return next((c.id for c in channels if c.name == "general" and c.team_id == team_id), channels[0].id)

    def _action_ts(self) -> str:
        return f"{self.state.now():.6f}"

    # ----- slash commands -----

    async def slash_command(
        self, user_id: str, command: str, text: str = "", channel_id: str | None = None, team_id: str | None = None
    ) -> dict[str, Any]:
        """Run `/command text` as a user in a channel (from `team_id`, a workspace of theirs, default the channel's);
        the app's answer is shown as Slack would show it.

        On Grid the payload carries `enterprise_id`, `enterprise_name` and `is_enterprise_install`, and `team_id` is the
        workspace the person typed in ("These IDs provide context about where the user was in Slack when they
        triggered your app's command", https://api.slack.com/interactivity/slash-commands#app_command_handling).
        """
        user, team = self._person(user_id, team_id, channel_id)
        channel = self.state.channel(team["id"], channel_id or self._default_channel(team["id"]))
        command = command if command.startswith("/") else f"/{command}"
        org: dict[str, Any] = {key: team[key] for key in ("enterprise_id", "enterprise_name") if key in team}
        payload = {
            "token": self.state.config.verification_token,
            "team_id": team["id"],
            "team_domain": team["domain"],
            **org,
            "channel_id": channel.id,
            "channel_name": channel.name,
            "user_id": user["id"],
            "user_name": user["username"],
            "command": command,
            "text": self.sent_text(team["id"], user["id"], command, text),
            "api_app_id": self.state.config.app_id,
            "is_enterprise_install": "true" if self.state.org_installed(team["id"]) else "false",
            "response_url": self.state.new_response_url(self.base_url, team["id"], channel.id, user["id"], command),
            "trigger_id": self.state.new_trigger(team["id"], user["id"]),
        }
        record = await self._send("slash_command", "slash_commands", payload, form=True, accepts_response_payload=True)
        record["trigger_id"] = payload["trigger_id"]
        if record["error"] is None and isinstance(record["body"], dict) and record["body"]:
            record["message"] = self.show_response(record["body"], team["id"], channel.id, user["id"], via="ack")
        return record

    def sent_text(self, team_id: str, user_id: str, command: str, text: str) -> str:
        """What Slack sends for `text` typed after `command`: escaped as the manifest's `should_escape` says."""
        if command not in self.state.config.escaped_commands:
            return html_escape(text)
        state = self.state

        def channel_id(name: str) -> str | None:
            with state.lock:
                for channel in state.channels.values():  # the workspace's own, and (Grid) those shared into it
                    if channel.in_team(team_id) and channel.name == name and not channel.id.startswith("D"):
                        return channel.id if channel.visible_to(user_id) else None
            return None

        def person_id(name: str) -> str | None:
            with state.lock:
                for person in state.users.values():
                    names = (person.user.name, person.display_name.lower())
                    if team_id in person.user.workspaces and not person.deleted and name in names:
                        return person.user.id
            return None

        return escape_command_text(text, channel_id=channel_id, user_id=person_id)

    def show_response(
        self, body: dict[str, Any], team_id: str, channel_id: str, user_id: str, *, via: str
    ) -> dict[str, Any]:
        """Record a command or response_url message: in the channel, or ephemeral to the user."""
        text, blocks = str(body.get("text", "")), body.get("blocks")
        if body.get("response_type") == "in_channel":
            return self.state.record_message(
                team_id=team_id,
                channel_id=channel_id,
                user_id=self.state.config.bot_user_id,
                text=text,
                blocks=blocks,
                bot_id=self.state.config.bot_id,
                via=via,
                as_kind="bot",
            )
        with self.state.lock:
            if body.get("replace_original"):
                for old in reversed(self.state.ephemerals):
                    if old["to_user"] == user_id and old["channel"] == channel_id:
                        old.update({"text": text, "blocks": blocks or [], "via": via, "replaced": True})
                        return dict(old)
            return self.state.record_ephemeral(
                team_id=team_id,
                channel_id=channel_id,
                user_id=user_id,
                text=text,
                blocks=blocks,
                via=via,
            )

    def response_url_post(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a POST to a response_url (5 uses within 30 minutes), as Slack does."""
        with self.state.lock:
            target = self.state.response_urls.get(key)
            if target is None:
                raise SlackError("invalid_url", status=404)
            if target["uses"] >= 5 or self.state.now() - target["created_at"] > 1800:
                raise SlackError("expired_url", status=404)
            target["uses"] += 1
            if body.get("delete_original"):
                return {"ok": True}
            return self.show_response(body, target["team_id"], target["channel_id"], target["user_id"], via="response_url")

    # ----- interactivity -----

    async def global_shortcut(self, user_id: str, callback_id: str, team_id: str | None = None) -> dict[str, Any]:
        """Run a global shortcut as a user (in `team_id`, a workspace of theirs; default their home one).

        For an org-wide installation `team` is null, and only `user.team_id` names the workspace, as in the org-wide
        shortcut payload reported to Bolt (https://github.com/slackapi/bolt-python/pull/23).
        """
        user, team = self._person(user_id, team_id)
        trigger_id = self.state.new_trigger(team["id"], user["id"])
        payload = {
            "type": "shortcut",
            "token": self.state.config.verification_token,
            "action_ts": self._action_ts(),
            "team": None if self.state.org_installed(team["id"]) else team,
            "user": user,
            **self._org(team["id"]),
            "callback_id": callback_id,
            "trigger_id": trigger_id,
        }
        record = await self._send("shortcut", "interactive", payload, form=True, accepts_response_payload=False)
        record["trigger_id"] = trigger_id
        return record

    async def message_shortcut(
        self, user_id: str, callback_id: str, channel_id: str, message_ts: str, team_id: str | None = None
    ) -> dict[str, Any]:
        """Run a message shortcut as a user on the message `message_ts` in `channel_id` (from `team_id`)."""
        user, team = self._person(user_id, team_id, channel_id)
        channel = self.state.channel(team["id"], channel_id)
        with self.state.lock:
            message = next((m for m in self.state.messages if m["channel"] == channel.id and m["ts"] == message_ts), None)
            if message is None:
                raise SlackError("message_not_found")
            public = {key: value for key, value in message.items() if key not in ("via", "as", "channel")}
        trigger_id = self.state.new_trigger(team["id"], user["id"])
        payload = {
            "type": "message_action",
            "token": self.state.config.verification_token,
            "action_ts": self._action_ts(),
            "team": team,
            "user": user,
            "channel": {"id": channel.id, "name": channel.name},
            **self._org(team["id"]),
            "callback_id": callback_id,
            "trigger_id": trigger_id,
            "response_url": self.state.new_response_url(self.base_url, team["id"], channel.id, user["id"], callback_id),
            "message_ts": message_ts,
            "message": public,
        }
        record = await self._send("message_shortcut", "interactive", payload, form=True, accepts_response_payload=False)
        record["trigger_id"] = trigger_id
        return record

    def _open_view(self, view_id: str, user_id: str) -> View:
        with self.state.lock:
            view = self.state.views.get(view_id)
            if view is None or view.closed or view.user_id != user_id:
                raise SlackError("view_not_found")
            return view

    async def view_submission(self, user_id: str, view_id: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """Submit an open modal with `values` and apply the app's response_action."""
        view = self._open_view(view_id, user_id)
        user, team = self._person(user_id, view.team_id)
        trigger_id = self.state.new_trigger(team["id"], user["id"])
        payload = {
            "type": "view_submission",
            "team": team,
            "user": user,
            "api_app_id": self.state.config.app_id,
            "token": self.state.config.verification_token,
            "trigger_id": trigger_id,
            "view": view.to_payload(self.state.config.app_id, simple_values(values)),
            "response_urls": [],
            **self._org(team["id"]),
        }
        record = await self._send("view_submission", "interactive", payload, form=True, accepts_response_payload=True)
        record["trigger_id"] = trigger_id
        if record["error"] is None:
            record["outcome"] = self._apply_response_action(view, record["body"] if isinstance(record["body"], dict) else {})
        return record

    def _apply_response_action(self, view: View, body: dict[str, Any]) -> str:
        with self.state.lock:
            action = body.get("response_action")
            if action == "errors":
                view.errors = dict(body.get("errors") or {})
                return "errors"
            if action == "update" and isinstance(body.get("view"), dict):
                view.view, view.errors = body["view"], {}
                view.hash = f"{int(self.state.now())}.{secrets.token_hex(6)}"
                return "updated"
            if action == "push" and isinstance(body.get("view"), dict):
                pushed = View(
                    id=self.state.new_id("V"),
                    team_id=view.team_id,
                    user_id=view.user_id,
                    view=body["view"],
                    hash=f"{int(self.state.now())}.{secrets.token_hex(6)}",
                    type="modal",
                    created_at=self.state.now(),
                    root_view_id=view.root_view_id or view.id,
                    previous_view_id=view.id,
                )
                self.state.views[pushed.id] = pushed
                return "pushed"
            if action == "clear":
                for other in self.state.views.values():
                    if other.user_id == view.user_id and other.type == "modal":
                        other.closed = True
                return "cleared"
            view.closed = True
            return "closed"

    async def view_closed(self, user_id: str, view_id: str) -> dict[str, Any]:
        """Close a modal as if the user pressed Cancel; tells the app when the view asked for it."""
        view = self._open_view(view_id, user_id)
        user, team = self._person(user_id, view.team_id)
        with self.state.lock:
            view.closed = True
        if not view.view.get("notify_on_close"):
            return {"kind": "view_closed", "transport": "none", "error": None, "status": None, "body": None, "elapsed_ms": 0}
        payload = {
            "type": "view_closed",
            "team": team,
            "user": user,
            "api_app_id": self.state.config.app_id,
            "token": self.state.config.verification_token,
            "view": view.to_payload(self.state.config.app_id),
            "is_cleared": False,
            **self._org(team["id"]),
        }
        return await self._send("view_closed", "interactive", payload, form=True, accepts_response_payload=False)

    async def block_action(
        self,
        user_id: str,
        action_id: str,
        *,
        value: str = "",
        block_id: str = "",
        view_id: str | None = None,
        channel_id: str | None = None,
        message_ts: str | None = None,
        text: str | None = None,
        url: str | None = None,
        team_id: str | None = None,
    ) -> dict[str, Any]:
        """Click a button in a view (modal or App Home) or a message; a link button (`url`) is sent too, as Slack does.

        The workspace is `team_id`, else the view's, else the message channel's (one of the person's)."""
        if team_id is None and view_id is not None and view_id in self.state.views:
            team_id = self.state.views[view_id].team_id
        user, team = self._person(user_id, team_id, channel_id)
        trigger_id = self.state.new_trigger(team["id"], user["id"])
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "type": "button",
            "value": value,
            "action_ts": self._action_ts(),
        }
        if text:
            action["text"] = {"type": "plain_text", "text": text, "emoji": True}
        if url:
            action["url"] = url
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": user,
            "api_app_id": self.state.config.app_id,
            "token": self.state.config.verification_token,
            "trigger_id": trigger_id,
            "team": team,
            **self._org(team["id"]),
            "actions": [action],
        }
        if view_id:
            with self.state.lock:
                view = self.state.views.get(view_id)
                if view is None or view.user_id != user_id:
                    raise SlackError("view_not_found")
                payload["container"] = {"type": "view", "view_id": view.id}
                payload["view"] = view.to_payload(self.state.config.app_id)
        elif channel_id and message_ts:
            channel = self.state.channel(team["id"], channel_id)
            with self.state.lock:
                message = next(
                    (
                        m
                        for m in self.state.messages + self.state.ephemerals
                        if m["channel"] == channel.id and m["ts"] == message_ts
                    ),
                    None,
                )
                if message is None:
                    raise SlackError("message_not_found")
                public = {key: value for key, value in message.items() if key not in ("via", "as", "channel")}
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel.id,
                "is_ephemeral": message["type"] == "ephemeral",
            }
            payload["channel"] = {"id": channel.id, "name": channel.name}
            payload["message"] = public
            payload["response_url"] = self.state.new_response_url(
                self.base_url, team["id"], channel.id, user["id"], action_id
            )
        else:
            raise SlackError("invalid_arguments")
        record = await self._send("block_actions", "interactive", payload, form=True, accepts_response_payload=False)
        record["trigger_id"] = trigger_id
        return record

    # ----- events -----

    def _event_place(self, team_id: str) -> dict[str, Any]:
        """The envelope fields that say which installation an event is for: `team_id`, and on Grid `enterprise_id`,
        `context_team_id`/`context_enterprise_id` and `authorizations` (one, the app's bot) with `is_enterprise_install`.

        An org-wide installation's authorization has no team (`"team_id": None`, as in Bolt's org-app event
        payloads), and an event about the org itself (an org id given here: its app_uninstalled, tokens_revoked) has
        `"team_id": null` in the envelope too, as Slack's team_access_granted sample does
        (https://api.slack.com/events/team_access_granted).
        """
        bot = self.state.config.bot_user_id
        org = self.state.enterprises.get(team_id)
        if org is not None:
            authorization = {"enterprise_id": org.id, "team_id": None, "is_enterprise_install": True}
            return {
                "team_id": None,
                "enterprise_id": org.id,
                "authorizations": [{**authorization, "user_id": bot, "is_bot": True}],
            }
        org = self.state.enterprise_of(team_id)
        org_wide = self.state.org_installed(team_id)
        place: dict[str, Any] = {"team_id": team_id}
        if org is not None:
            place.update({"enterprise_id": org.id, "context_team_id": team_id, "context_enterprise_id": org.id})
        place["authorizations"] = [
            {
                "enterprise_id": org.id if org is not None else None,
                "team_id": None if org_wide else team_id,
                "user_id": bot,
                "is_bot": True,
                "is_enterprise_install": org_wide,
            }
        ]
        return place

    async def event(self, team_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """Deliver one Events API event_callback for a team (or, on Grid, an org id: an event about the org-wide
        installation), retrying as configured (X-Slack-Retry-Num)."""
        now = self.state.now()
        event = {**event, "event_ts": event.get("event_ts", f"{now:.6f}")}
        kind = f"event:{event.get('type')}"
        subscribed = self.state.config.bot_events
        if subscribed is not None and event.get("type") not in subscribed:
            record: dict[str, Any] = {
                "id": self.state.new_id("D", 8),
                "kind": kind,
                "at": now,
                "transport": "none",
                "status": None,
                "body": None,
                "error": "not_subscribed",
                "elapsed_ms": 0,
                "late": False,
            }
            with self.state.lock:
                self.state.deliveries.append(record)
            return record
        place = self._event_place(team_id)
        envelope = {
            "token": self.state.config.verification_token,
            "team_id": place.pop("team_id"),
            "api_app_id": self.state.config.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": self.state.new_id("Ev", 10),
            "event_time": int(now),
            **place,
            "is_ext_shared_channel": False,
        }
        retry: tuple[int, str] = (0, "")
        for attempt, delay in enumerate([0.0, *self.state.config.event_retry_delays]):
            if delay:
                await asyncio.sleep(delay)
            record = await self._send(kind, "events_api", envelope, form=False, accepts_response_payload=False, retry=retry)
            record.update({"event_id": envelope["event_id"], "retry_attempt": attempt})
            if record["error"] is None:
                break
            reason = {"operation_timeout": "http_timeout", "dispatch_failed": "connection_failed"}
            retry = (attempt + 1, reason.get(record["error"], "http_error"))
        return record

    async def app_home_opened(self, user_id: str, team_id: str | None = None) -> dict[str, Any]:
        """The person opens the app's Home tab (in `team_id`, a workspace of theirs): app_home_opened, with the
        published view if there is one."""
        user, team = self._person(user_id, team_id)
        channel = self.state.channel(team["id"], user_id)
        event: dict[str, Any] = {"type": "app_home_opened", "user": user_id, "channel": channel.id, "tab": "home"}
        with self.state.lock:
            home = next((v for v in self.state.views.values() if v.user_id == user_id and v.type == "home"), None)
            if home is not None:
                event["view"] = home.to_payload(self.state.config.app_id)
        return await self.event(team["id"], event)

    def flush_events(self) -> None:
        """Start delivering every queued event in the background (call on the server's loop)."""
        for team_id, event in self.state.take_pending_events():
            task = asyncio.get_running_loop().create_task(self.event(team_id, event))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until queued events are delivered."""
        self.flush_events()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
