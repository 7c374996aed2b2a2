"""Admin operations (clock, tokens, users, faults, deliveries) and their JSON API under `/sandbox/admin/`."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.typedefs import Handler

from sandbox import oauth
from sandbox.config import check_request_url
from sandbox.errors import SlackError
from sandbox.guard import guarded
from sandbox.runtime import RUNTIME, Runtime
from sandbox.state import Fault

CONFIG_KNOBS = {
    "token_rotation": bool,
    "expires_in": int,
    "refresh_grace_seconds": float,
    "refresh_error_name": str,
    "trigger_ttl_seconds": float,
    "code_ttl_seconds": float,
    "delivery_timeout_seconds": float,
    "request_url": str,
    "event_retry_delays": list,
    "rate_limits": dict,
}
logger = logging.getLogger(__name__)
FAULT_FIELDS = {"method", "latency_ms", "status", "retry_after", "error", "drop_after_action", "times"}


# ----- operations (call on the server's event loop) -----


def advance_clock(runtime: Runtime, seconds: float) -> dict[str, Any]:
    """Move the sandbox clock forward."""
    now = runtime.state.clock.advance(float(seconds))
    return {"ok": True, "now": now, "offset": runtime.state.clock.offset}


def expire_tokens(runtime: Runtime, user_id: str, kind: str | None = None) -> dict[str, Any]:
    """Make a user's rotating tokens expire now (the next call gets token_expired)."""
    return {"ok": True, "expired": runtime.state.expire_user_tokens(user_id, kind)}


def revoke_tokens(runtime: Runtime, user_id: str) -> dict[str, Any]:
    """Revoke every token of a user and send the app a tokens_revoked event."""
    state = runtime.state
    with state.lock:
        team_id = state.config.default_team.id if user_id == state.config.bot_user_id else state.user(user_id).user.team_id
        # Each installation whose tokens these were hears of it: a workspace, or (an org-level token) the org.
        places = {t.team_id or t.enterprise_id or team_id for t in state.user_tokens(user_id) if t.revoked_at is None}
        tokens = state.revoke_user_tokens(user_id)
        if tokens["oauth"] or tokens["bot"]:
            for place in sorted(places or {team_id}):
                state.emit_event(place, {"type": "tokens_revoked", "tokens": tokens})
    runtime.delivery.flush_events()
    return {"ok": True, "tokens": tokens}


def deactivate_user(runtime: Runtime, user_id: str) -> dict[str, Any]:
    """Deactivate a user: their tokens answer account_inactive, and the app gets user_change with deleted."""
    state = runtime.state
    with state.lock:
        person = state.user(user_id)
        person.deleted = True
        state.emit_event(person.user.team_id, {"type": "user_change", "user": state.user_json(user_id)})
    runtime.delivery.flush_events()
    return {"ok": True, "user": state.user_json(user_id)}


def reactivate_user(runtime: Runtime, user_id: str) -> dict[str, Any]:
    """Undo a deactivation."""
    state = runtime.state
    with state.lock:
        person = state.user(user_id)
        person.deleted = False
        state.emit_event(person.user.team_id, {"type": "user_change", "user": state.user_json(user_id)})
    runtime.delivery.flush_events()
    return {"ok": True, "user": state.user_json(user_id)}


def uninstall(runtime: Runtime, team_id: str | None = None) -> dict[str, Any]:
    """Uninstall the app from a team: revoke its tokens, then send tokens_revoked and app_uninstalled."""
    state = runtime.state
    with state.lock:
        team_id = team_id or state.config.default_team.id  # or an org id: the app's org-wide installation
        tokens = state.uninstall(team_id)
        state.emit_event(team_id, {"type": "tokens_revoked", "tokens": tokens})
        state.emit_event(team_id, {"type": "app_uninstalled"})
    runtime.delivery.flush_events()
    return {"ok": True, "team_id": team_id, "tokens": tokens}


def add_fault(runtime: Runtime, spec: dict[str, Any]) -> dict[str, Any]:
    """Inject a fault into a method: latency_ms, status (429 with retry_after, 5xx), error, drop_after_action, times."""
    unknown = set(spec) - FAULT_FIELDS
    if unknown or not spec.get("method"):
        raise SlackError("invalid_arguments", status=400, detail=f"fault needs a method; unknown fields: {sorted(unknown)}")
    fault = Fault(**spec)
    runtime.state.add_fault(fault)
    return {"ok": True, "fault": fault.to_dict()}


def clear_faults(runtime: Runtime, method: str | None = None) -> dict[str, Any]:
    """Stop injecting faults."""
    runtime.state.clear_faults(method)
    return {"ok": True}


def _converted(name: str, value: Any) -> Any:
    kind = CONFIG_KNOBS[name]
    if name == "request_url":
        if value is not None and not isinstance(value, str):
            raise ValueError("request_url must be a string or null")
        check_request_url(value)
        return value
    if kind is dict:
        return {str(method): int(limit) for method, limit in dict(value).items()}
    if kind is list:
        return [float(item) for item in value]
    if kind is bool and isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return kind(value)


def configure(runtime: Runtime, changes: dict[str, Any]) -> dict[str, Any]:
    """Change the knobs that may change at run time (rotation, expires_in, grace, error name, TTLs, request URL)."""
    unknown = set(changes) - set(CONFIG_KNOBS)
    if unknown:
        raise SlackError("invalid_arguments", status=400, detail=f"unknown settings: {sorted(unknown)}")
    converted: dict[str, Any] = {}
    for name, value in changes.items():
        try:
            converted[name] = _converted(name, value)
        except (TypeError, ValueError) as error:
            detail = str(error) if name == "request_url" else f"{name} must be a {CONFIG_KNOBS[name].__name__}"
            raise SlackError("invalid_arguments", status=400, detail=detail) from None
    with runtime.state.lock:
        for name, value in converted.items():
            setattr(runtime.config, name, value)
        return {"ok": True, "config": runtime.state.snapshot()["config"]}


def install(
    runtime: Runtime,
    user_id: str,
    scope: str = "",
    user_scope: str = "",
    team_id: str | None = None,
    org_wide: bool = False,
) -> dict[str, Any]:
    """Install (or connect) as `user_id` without the browser, into `team_id` (default: their home workspace) or their
    whole org; returns what oauth.v2.access would."""
    with runtime.state.lock:
        answer = oauth.install(
            runtime.state,
            user_id=user_id,
            bot_scopes=oauth.split_scopes(scope),
            user_scopes=oauth.split_scopes(user_scope),
            team_id=team_id,
            org_wide=org_wide,
        )
        runtime.state.grants["direct_install"] += 1
        return answer


def approve(
    runtime: Runtime,
    user_id: str,
    scope: str = "",
    user_scope: str = "",
    redirect_uri: str | None = None,
    state: str = "",
    team_id: str | None = None,
    org_wide: bool = False,
) -> dict[str, Any]:
    """Press Allow on the consent page as `user_id` (for `team_id`, or their whole org); returns the code and the
    redirect URL."""
    if redirect_uri is not None and redirect_uri not in runtime.config.redirect_urls:
        raise SlackError("bad_redirect_uri", status=400)
    target = redirect_uri or (runtime.config.redirect_urls[0] if runtime.config.redirect_urls else None)
    if target is None:
        raise SlackError("bad_redirect_uri", status=400)
    code = oauth.issue_code(
        runtime.state,
        user_id=user_id,
        bot_scopes=oauth.split_scopes(scope),
        user_scopes=oauth.split_scopes(user_scope),
        redirect_uri=redirect_uri,
        team_id=team_id,
        org_wide=org_wide,
    )
    separator = "&" if "?" in target else "?"
    return {"ok": True, "code": code, "redirect_url": f"{target}{separator}{urlencode({'code': code, 'state': state})}"}


def say(runtime: Runtime, user_id: str, channel_id: str, text: str) -> dict[str, Any]:
    """Post a message as a person typing in Slack (for the console and message shortcuts); no API token needed."""
    state = runtime.state
    with state.lock:
        person = state.user(user_id)
        if person.deleted:
            raise SlackError("account_inactive")
        channel = state.channel(person.user.team_id, channel_id)
        message = state.record_message(
            team_id=person.user.team_id, channel_id=channel.id, user_id=user_id, text=text, via="console", as_kind="user"
        )
        return {"ok": True, "channel": channel.id, "ts": message["ts"], "message": message}


async def start_over(runtime: Runtime) -> dict[str, Any]:
    """Forget everything: first the app's data (the `on_reset` hook), then the sandbox's tokens, messages and users'
    changes; when the hook fails, nothing is forgotten, so the two never disagree."""
    if runtime.on_reset is not None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, runtime.on_reset)
        except Exception:
            logger.exception("starting over: the app's data could not be emptied, so the sandbox kept its state too")
            raise SlackError(
                "reset_failed", status=500, detail="the app's data could not be emptied, so nothing was reset; see its log"
            ) from None
    runtime.state.reset()
    return {"ok": True, "now": runtime.state.now()}


async def deliver(runtime: Runtime, kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run one delivery to the app by name (slash_command, global_shortcut, message_shortcut, ...)."""
    delivery = runtime.delivery
    try:
        if kind == "slash_command":
            record = await delivery.slash_command(
                args["user_id"], args["command"], args.get("text", ""), args.get("channel_id"), args.get("team_id")
            )
        elif kind == "global_shortcut":
            record = await delivery.global_shortcut(args["user_id"], args["callback_id"], args.get("team_id"))
        elif kind == "message_shortcut":
            record = await delivery.message_shortcut(
                args["user_id"], args["callback_id"], args["channel_id"], args["message_ts"], args.get("team_id")
            )
        elif kind == "view_submission":
            record = await delivery.view_submission(args["user_id"], args["view_id"], args.get("values"))
        elif kind == "view_closed":
            record = await delivery.view_closed(args["user_id"], args["view_id"])
        elif kind == "block_action":
            record = await delivery.block_action(
                args["user_id"],
                args["action_id"],
                value=args.get("value", ""),
                block_id=args.get("block_id", ""),
                view_id=args.get("view_id"),
                channel_id=args.get("channel_id"),
                message_ts=args.get("message_ts"),
                text=args.get("text"),
                url=args.get("url"),
                team_id=args.get("team_id"),
            )
        elif kind == "app_home_opened":
            record = await delivery.app_home_opened(args["user_id"], args.get("team_id"))
        elif kind == "event":
            record = await delivery.event(args.get("team_id") or runtime.config.default_team.id, args["event"])
        else:
            raise SlackError("unknown_delivery", status=404)
    except KeyError as missing:
        raise SlackError("invalid_arguments", status=400, detail=f"missing {missing}") from None
    return {"ok": True, **record}


# ----- HTTP: thin handlers over the operations above; add_routes() is the table of endpoints -----


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise SlackError("invalid_json", status=400) from None
    if not isinstance(body, dict):
        raise SlackError("invalid_json", status=400)
    return body


def _json(body: dict[str, Any]) -> web.Response:
    return web.json_response(body)


@web.middleware
async def admin_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer admin and console requests that fail with `{"ok": false, "error": ...}`."""
    try:
        return await handler(request)
    except SlackError as error:
        if not request.path.startswith("/sandbox/"):
            raise
        return web.json_response(error.body(), status=error.status if error.status != 200 else 400)


async def get_state(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    return _json({"ok": True, **runtime.state.snapshot(), "socket_mode": runtime.hub.connected})


async def get_messages(request: web.Request) -> web.Response:
    state = request.app[RUNTIME].state
    channel = request.query.get("channel")
    with state.lock:
        messages = [m for m in state.messages if not channel or m["channel"] == channel]
        ephemerals = [m for m in state.ephemerals if not channel or m["channel"] == channel]
    return _json({"ok": True, "messages": messages, "ephemerals": ephemerals})


async def get_tokens(request: web.Request) -> web.Response:
    state = request.app[RUNTIME].state
    user_id = request.query.get("user_id")
    tokens = [token for token in state.token_summary() if not user_id or token["user_id"] == user_id]
    return _json({"ok": True, "tokens": tokens})


async def get_refreshes(request: web.Request) -> web.Response:
    state = request.app[RUNTIME].state
    return _json({"ok": True, "now": state.now(), "refreshes": state.refresh_history(request.query.get("user_id") or None)})


async def get_counters(request: web.Request) -> web.Response:
    return _json({"ok": True, **request.app[RUNTIME].state.counters()})


async def get_deliveries(request: web.Request) -> web.Response:
    state = request.app[RUNTIME].state
    with state.lock:
        return _json({"ok": True, "deliveries": list(state.deliveries)})


async def post_advance(request: web.Request) -> web.Response:
    body = await _body(request)
    try:
        seconds = float(body.get("seconds", 0))
    except (TypeError, ValueError):
        raise SlackError("invalid_arguments", status=400, detail="seconds must be a number") from None
    return _json(advance_clock(request.app[RUNTIME], seconds))


async def post_expire(request: web.Request) -> web.Response:
    body = await _body(request)
    return _json(expire_tokens(request.app[RUNTIME], request.match_info["user_id"], body.get("kind")))


async def post_revoke(request: web.Request) -> web.Response:
    return _json(revoke_tokens(request.app[RUNTIME], request.match_info["user_id"]))


async def post_deactivate(request: web.Request) -> web.Response:
    return _json(deactivate_user(request.app[RUNTIME], request.match_info["user_id"]))


async def post_reactivate(request: web.Request) -> web.Response:
    return _json(reactivate_user(request.app[RUNTIME], request.match_info["user_id"]))


async def post_uninstall(request: web.Request) -> web.Response:
    return _json(uninstall(request.app[RUNTIME], request.match_info["team_id"]))


async def get_faults(request: web.Request) -> web.Response:
    state = request.app[RUNTIME].state
    with state.lock:
        return _json({"ok": True, "faults": [fault.to_dict() for fault in state.faults]})


async def post_fault(request: web.Request) -> web.Response:
    return _json(add_fault(request.app[RUNTIME], await _body(request)))


async def delete_faults(request: web.Request) -> web.Response:
    return _json(clear_faults(request.app[RUNTIME], request.query.get("method")))


async def post_config(request: web.Request) -> web.Response:
    return _json(configure(request.app[RUNTIME], await _body(request)))


async def post_install(request: web.Request) -> web.Response:
    body = await _body(request)
    return _json(
        install(
            request.app[RUNTIME],
            body.get("user_id", ""),
            body.get("scope", ""),
            body.get("user_scope", ""),
            body.get("team_id") or None,
            bool(body.get("org_wide", False)),
        )
    )


async def post_say(request: web.Request) -> web.Response:
    body = await _body(request)
    return _json(say(request.app[RUNTIME], body.get("user_id", ""), body.get("channel_id", ""), str(body.get("text", ""))))


async def post_deliver(request: web.Request) -> web.Response:
    return _json(await deliver(request.app[RUNTIME], request.match_info["kind"], await _body(request)))


async def post_start_over(request: web.Request) -> web.Response:
    return _json(await start_over(request.app[RUNTIME]))


async def post_socket_disconnect(request: web.Request) -> web.Response:
    count = await request.app[RUNTIME].hub.request_disconnect()
    return _json({"ok": True, "connections": count})


async def post_response_url(request: web.Request) -> web.Response:
    """POST /sandbox/response/<key>: the response_url the app answers commands and actions through."""
    runtime = request.app[RUNTIME]
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return web.Response(status=400, text="invalid_payload")
    try:
        runtime.delivery.response_url_post(request.match_info["key"], body if isinstance(body, dict) else {})
    except SlackError as error:
        return web.Response(status=error.status, text=error.error)
    return web.Response(text="ok")


def add_routes(app: web.Application) -> None:
    """Mount the admin API (every endpoint behind the AdminGuard) and the response_url endpoint."""
    prefix = "/sandbox/admin"
    app.router.add_get(f"{prefix}/state", guarded(get_state))
    app.router.add_get(f"{prefix}/messages", guarded(get_messages))
    app.router.add_get(f"{prefix}/tokens", guarded(get_tokens))
    app.router.add_get(f"{prefix}/refreshes", guarded(get_refreshes))
    app.router.add_get(f"{prefix}/counters", guarded(get_counters))
    app.router.add_get(f"{prefix}/deliveries", guarded(get_deliveries))
    app.router.add_post(f"{prefix}/clock/advance", guarded(post_advance))
    app.router.add_post(f"{prefix}/users/{{user_id}}/expire_tokens", guarded(post_expire))
    app.router.add_post(f"{prefix}/users/{{user_id}}/revoke_tokens", guarded(post_revoke))
    app.router.add_post(f"{prefix}/users/{{user_id}}/deactivate", guarded(post_deactivate))
    app.router.add_post(f"{prefix}/users/{{user_id}}/reactivate", guarded(post_reactivate))
    app.router.add_post(f"{prefix}/teams/{{team_id}}/uninstall", guarded(post_uninstall))
    app.router.add_get(f"{prefix}/faults", guarded(get_faults))
    app.router.add_post(f"{prefix}/faults", guarded(post_fault))
    app.router.add_delete(f"{prefix}/faults", guarded(delete_faults))
    app.router.add_post(f"{prefix}/config", guarded(post_config))
    app.router.add_post(f"{prefix}/install", guarded(post_install))
    app.router.add_post(f"{prefix}/deliver/{{kind}}", guarded(post_deliver))
    app.router.add_post(f"{prefix}/say", guarded(post_say))
    app.router.add_post(f"{prefix}/socket_mode/disconnect", guarded(post_socket_disconnect))
    app.router.add_post(f"{prefix}/start_over", guarded(post_start_over))
    app.router.add_post("/sandbox/response/{key}", post_response_url)
