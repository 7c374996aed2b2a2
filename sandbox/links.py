"""Slack's links in the sandbox: message permalinks (`/archives/<channel>/p<ts>`) open the console on that message."""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode

from aiohttp import web

from sandbox.errors import SlackError
from sandbox.guard import ADMIN_GUARD
from sandbox.pages import render
from sandbox.runtime import RUNTIME

# Slack writes a message's ts without its dot: 1700000000.000123 -> p1700000000000123.
PERMALINK_TS = re.compile(r"p(\d{7,})")


def permalink(base_url: str, channel_id: str, ts: str) -> str:
    """The permalink of the message `ts` in `channel_id`, in Slack's `…/archives/C…/p…` form."""
    return f"{base_url}archives/{channel_id}/p{ts.replace('.', '')}"


def ts_from_permalink(part: str) -> str | None:
    """The message ts a permalink's last part (`p1700000000000123`) names, or None when it is not one."""
    found = PERMALINK_TS.fullmatch(part)
    if found is None:
        return None
    digits = found.group(1)
    return f"{digits[:-6]}.{digits[-6:]}"


def _not_found(detail: str) -> web.Response:
    body = render("not_found.html", title="Message not found", detail=html.escape(detail))
    return web.Response(status=404, text=body, content_type="text/html")


async def archives_page(request: web.Request) -> web.StreamResponse:
    """`/archives/<channel>/p<ts>`: the console on that channel with the message highlighted, or a 404 page saying why."""
    try:
        request.app[ADMIN_GUARD].check_host(request)  # the console answers only at a loopback Host, so does this
    except SlackError as error:
        return web.Response(status=error.status, text=f"{error.error}: {error.extra['detail']}\n")
    state = request.app[RUNTIME].state
    channel_id = request.match_info["channel"]
    ts = ts_from_permalink(request.match_info["message"])
    if ts is None:
        return _not_found("The link's last part is not a message timestamp (p followed by digits).")
    with state.lock:
        channel = state.channels.get(channel_id)
        found = channel is not None and any(m["channel"] == channel_id and m["ts"] == ts for m in state.messages)
    if channel is None:
        return _not_found("No channel in the sandbox has this id.")
    if not found:
        return _not_found(f"#{channel.name} has no message with this timestamp.")
    raise web.HTTPFound(f"/?{urlencode({'channel': channel_id, 'message': ts})}")
