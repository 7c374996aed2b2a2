"""The app's Slack Marketplace listing (`/apps/<app_id>`): its description, links and "Add to Slack" button.

Slack's listing starts an installation one of two ways: with direct install on, "Add to Slack" sends the person to
the app's own install URL (which redirects to Slack's authorize page with a state of its own); without it, straight to
Slack's authorize page with the app's scopes and no state, so the app's callback gets a code it did not ask for.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode

from aiohttp import web

from sandbox.pages import render
from sandbox.runtime import RUNTIME
from sandbox.state import SandboxState

_COLOR = re.compile(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?")  # Slack's manifest schema for background_color
DEFAULT_COLOR = "#4a154b"


def add_to_slack_url(state: SandboxState, base_url: str) -> str | None:
    """Where the listing's "Add to Slack" leads: the app's install URL, or Slack's authorize page without direct install."""
    config = state.config
    if config.direct_install:
        return state.install_url()
    if not config.bot_scopes and not config.user_scopes:
        return None
    query = {"client_id": config.client_id, "scope": ",".join(config.bot_scopes), "user_scope": ",".join(config.user_scopes)}
    return f"{base_url}oauth/v2/authorize?{urlencode(query)}"


async def listing_page(request: web.Request) -> web.StreamResponse:
    """GET /apps/<app_id>[-name]: the listing, as a person finds the app in the Slack Marketplace."""
    runtime = request.app[RUNTIME]
    config = runtime.state.config
    if request.match_info["app"].split("-", 1)[0] != config.app_id:
        body = render("not_found.html", title="App not found", detail="No app in the sandbox has this id.")
        return web.Response(status=404, text=body, content_type="text/html")
    install = add_to_slack_url(runtime.state, runtime.base_url)
    button = (
        f'<a class="button primary" id="add-to-slack" href="{html.escape(install)}">Add to Slack</a>'
        if install
        else '<p class="muted">This app has no install URL.</p>'
    )
    links = "".join(
        f'<li><a href="{html.escape(url)}">{html.escape(label)}</a></li>' for label, url in config.directory_links.items()
    )
    color = config.background_color if _COLOR.fullmatch(config.background_color) else DEFAULT_COLOR
    body = render(
        "directory.html",
        app_name=html.escape(config.app_name),
        description=html.escape(config.description),
        long_description=html.escape(config.long_description),
        background_color=color,
        button=button,
        links=f"<ul id='listing-links'>{links}</ul>" if links else "",
    )
    return web.Response(text=body, content_type="text/html", headers={"Cache-Control": "no-store"})
