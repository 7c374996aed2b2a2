"""`python app.py sandbox ...`: run the sandbox alone, so any Slack app can be tried and tested against it."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import click

from sandbox.config import SandboxConfig, check_request_url, organisation


@click.group("sandbox")
def sandbox_command() -> None:
    """An offline stand-in for slack.com: OAuth, the Web API, event delivery, Socket Mode and a console."""


@sandbox_command.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=4000, show_default=True, help="Port to listen on.")
@click.option("--public-url", default=None, help="URL the app reaches the sandbox at [default: http://HOST:PORT/].")
@click.option(
    "--request-url",
    default="http://127.0.0.1:3000/slack/events",
    show_default=True,
    help="The app's request URL for commands, interactivity and events ('' for none).",
)
@click.option(
    "--redirect-url",
    "redirect_urls",
    multiple=True,
    help="Allowed OAuth redirect URL, matched exactly (repeatable) [default: http://127.0.0.1:3000/slack/oauth_redirect].",
)
@click.option("--client-id", envvar="SLACK_CLIENT_ID", default=None, help="The app's client id [SLACK_CLIENT_ID].")
@click.option(
    "--client-secret", envvar="SLACK_CLIENT_SECRET", default=None, help="The app's client secret [SLACK_CLIENT_SECRET]."
)
@click.option(
    "--signing-secret",
    envvar="SLACK_SIGNING_SECRET",
    default=None,
    help="The secret requests to the app are signed with [SLACK_SIGNING_SECRET].",
)
@click.option(
    "--app-token", envvar="SLACK_APP_TOKEN", default=None, help="The xapp- token for Socket Mode [SLACK_APP_TOKEN]."
)
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A Slack app manifest (YAML or JSON): app name, slash commands, shortcuts, token rotation.",
)
@click.option("--app-name", default=None, help="Name on the consent page [default: the manifest's, or Delegate].")
@click.option("--command", "commands", multiple=True, help="Slash command the console suggests (repeatable).")
@click.option("--rotation/--no-rotation", default=None, help="Token rotation on or off [default: the manifest's, or on].")
@click.option("--expires-in", type=int, default=43200, show_default=True, help="Lifetime of rotating tokens, seconds.")
@click.option(
    "--refresh-grace", type=float, default=0.0, show_default=True, help="Seconds a used refresh token keeps working."
)
@click.option(
    "--rate-limit",
    "rate_limits",
    multiple=True,
    metavar="METHOD=N",
    help="Answer 429 past N calls a minute to METHOD, e.g. oauth.v2.access=600 (repeatable).",
)
@click.option("--invalid-grant", is_flag=True, help="Answer invalid_grant instead of invalid_refresh_token.")
@click.option(
    "--grid", is_flag=True, help="An Enterprise Grid organisation (two workspaces, a shared channel), not one workspace."
)
@click.option(
    "--admin-token-file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write this run's admin API token to this file (owner-only), for scripts that call /sandbox/admin/.",
)
@click.option("--print-config", is_flag=True, help="Print the effective settings (secrets hidden) and exit.")
def serve(
    host: str,
    port: int,
    public_url: str | None,
    request_url: str,
    redirect_urls: tuple[str, ...],
    client_id: str | None,
    client_secret: str | None,
    signing_secret: str | None,
    app_token: str | None,
    manifest: str | None,
    app_name: str | None,
    commands: tuple[str, ...],
    rotation: bool | None,
    expires_in: int,
    refresh_grace: float,
    rate_limits: tuple[str, ...],
    invalid_grant: bool,
    grid: bool,
    admin_token_file: Path | None,
    print_config: bool,
) -> None:
    """Serve slack.com's paths (/api/<method>, /oauth/v2/authorize, Socket Mode) and the console at http://HOST:PORT/."""
    from aiohttp import web

    from sandbox.guard import new_admin_token
    from sandbox.server import RedactedAccessLogger, create_app

    try:
        check_request_url(request_url or None)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--request-url") from None
    settings: dict[str, Any] = {
        "request_url": request_url or None,
        "expires_in": expires_in,
        "refresh_grace_seconds": refresh_grace,
    }
    optional = {
        "app_name": app_name,
        "token_rotation": rotation,
        "client_id": client_id,
        "client_secret": client_secret,
        "signing_secret": signing_secret,
        "app_token": app_token,
    }
    settings.update({name: value for name, value in optional.items() if value is not None})
    if redirect_urls:
        settings["redirect_urls"] = list(redirect_urls)
    if commands:
        settings["commands"] = list(commands)
    if invalid_grant:
        settings["refresh_error_name"] = "invalid_grant"
    if grid:
        settings.update(organisation())
    if rate_limits:
        try:
            settings["rate_limits"] = {
                method: int(limit) for method, _, limit in (item.partition("=") for item in rate_limits)
            }
        except ValueError:
            raise click.BadParameter("use METHOD=N, e.g. oauth.v2.access=600", param_hint="--rate-limit") from None
    config = SandboxConfig.from_manifest(manifest, **settings) if manifest else SandboxConfig(**settings)
    base_url = public_url or f"http://{host}:{port}/"
    if print_config:
        shown = {
            "url": base_url,
            "app_name": config.app_name,
            "app_id": config.app_id,
            "client_id": config.client_id,
            "redirect_urls": config.redirect_urls,
            "request_url": config.request_url,
            "token_rotation": config.token_rotation,
            "expires_in": config.expires_in,
            "commands": config.commands,
            "rate_limits": config.rate_limits,
            "global_shortcuts": config.global_shortcuts,
            "message_shortcuts": config.message_shortcuts,
        }
        click.echo(json.dumps(shown, indent=2))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    admin_token = new_admin_token()
    if admin_token_file is not None:
        write_owner_only(admin_token_file, admin_token)
    click.echo(f"Slack sandbox: console {base_url}, Web API {base_url}api/, client id {config.client_id}")
    if admin_token_file is not None:
        click.echo(f"Admin API token written to {admin_token_file}")
    app = create_app(config, base_url=base_url, port=port, admin_token=admin_token)
    web.run_app(app, host=host, port=port, print=None, access_log_class=RedactedAccessLogger)


def write_owner_only(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable and writable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
