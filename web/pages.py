"""The HTML pages of the OAuth flows: what happened, and what to do next. Every dynamic value is escaped."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

__all__ = ["FAILURES", "Failure", "failure_for", "page"]


def page(title: str, body_html: str, *, links: list[tuple[str, str]] | None = None) -> str:
    """A small self-contained page; body_html must already be escaped."""
    buttons = "".join(f'<a class="button" href="{escape(href)}">{escape(label)}</a>' for label, href in links or [])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · Delegate</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1d1c1d}}
h1{{font-size:1.5rem}} p{{line-height:1.5}} code{{background:#f4f4f4;padding:0 .2rem}}
.button{{display:inline-block;margin:.5rem .5rem 0 0;padding:.6rem 1rem;border-radius:6px;background:#4a154b;color:#fff;
text-decoration:none}}
</style></head>
<body><main><h1>{escape(title)}</h1>{body_html}<p>{buttons}</p></main></body></html>
"""


@dataclass(frozen=True)
class Failure:
    """How to explain one reason an OAuth callback failed."""

    title: str
    explanation: str
    status: int
    retry: bool = True


FAILURES: dict[str, Failure] = {
    "access_denied": Failure(
        "You cancelled",
        "You chose Cancel on Slack's consent screen, so Delegate was not given access and nothing was changed. "
        "Start again whenever you like.",
        200,
    ),
    "invalid_browser": Failure(
        "Please start again in this browser",
        "This sign-in was started in another browser or its cookie is gone, so it cannot be trusted. "
        "Start again from this browser.",
        400,
    ),
    "invalid_state": Failure(
        "This link has expired or was already used",
        "Each sign-in link works once and for ten minutes. Nothing was changed; start again for a fresh link.",
        400,
    ),
    "missing_code": Failure(
        "Slack did not send an authorization",
        "The page was opened without the authorization Slack adds after you approve. Start again from Delegate.",
        400,
    ),
    "invalid_code": Failure(
        "This authorization was already used or has expired",
        "Slack's authorization codes work once and for ten minutes. Nothing was changed; start again.",
        400,
    ),
    "invalid_team_for_non_distributed_app": Failure(
        "Delegate is not available to this workspace yet",
        "This Slack app is not distributed publicly, so it can only be installed in the workspace that created it. "
        "The fix is for the app's owner: at api.slack.com/apps, open the app, choose Manage Distribution and "
        "activate public distribution. Then start again.",
        400,
    ),
    "bad_redirect_uri": Failure(
        "Delegate's redirect URL is misconfigured",
        "The redirect URL Delegate sent does not match any of the app's redirect URLs. The app's operator must make "
        "SLACK_REDIRECT_URI equal one of the redirect URLs in the Slack app settings (manifest.yml).",
        500,
        retry=False,
    ),
    "invalid_client_id": Failure(
        "Delegate's Slack credentials are wrong",
        "Slack does not recognise Delegate's client id. The app's operator must check SLACK_CLIENT_ID.",
        500,
        retry=False,
    ),
    "bad_client_secret": Failure(
        "Delegate's Slack credentials are wrong",
        "Slack refused Delegate's client secret. The app's operator must check SLACK_CLIENT_SECRET.",
        500,
        retry=False,
    ),
    "slack_unreachable": Failure(
        "Slack could not be reached",
        "Delegate could not finish talking to Slack, so the connection was not saved. Wait a minute and start again.",
        502,
    ),
    "bad_scope_parameter": Failure(
        "That link asks for a permission Delegate does not know",
        "The link's list of permissions is malformed, so nothing was requested from Slack. Start again from Delegate.",
        400,
    ),
    "storage_error": Failure(
        "Your connection could not be saved",
        "Slack approved the connection but Delegate could not store it. Nothing half-done was kept; try again, and "
        "if it keeps failing tell the app's operator.",
        500,
    ),
}

UNKNOWN = Failure(
    "The connection did not complete",
    "Slack answered with an error Delegate does not know how to explain. Nothing was changed; start again.",
    400,
)


def failure_for(reason: str) -> Failure:
    return FAILURES.get(reason, UNKNOWN)


def failure_page(reason: str, retry_url: str) -> tuple[int, str]:
    failure = failure_for(reason)
    body = f"<p>{escape(failure.explanation)}</p><p><small>Slack's reason: <code>{escape(reason[:80])}</code></small></p>"
    links = [("Start again", retry_url)] if failure.retry else []
    return failure.status, page(failure.title, body, links=links)


def success_page(*, team_name: str | None, user_scopes: list[str], bot_installed: bool, home_url: str) -> str:
    what = "installed in" if bot_installed else "connected to your account in"
    scopes = ", ".join(f"<code>{escape(s)}</code>" for s in user_scopes) or "none"
    body = (
        f"<p>Delegate is {what} <strong>{escape(team_name or 'your workspace')}</strong>.</p>"
        f"<p>It may now act as you with these permissions: {scopes}.</p>"
        "<p>Go back to Slack and type <code>/delegate help</code> to see what it can do for you. "
        "You can disconnect at any time with <code>/delegate disconnect</code>.</p>"
    )
    return page("You're connected", body, links=[("Open Slack", home_url)])
