"""The HTML pages of the OAuth flows: what happened, and what to do next. Every dynamic value is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "FAILURES",
    "REDIRECT_ERRORS",
    "STARTED_ELSEWHERE",
    "Failure",
    "Guide",
    "failure_for",
    "failure_page",
    "help_links",
    "malformed_link_page",
    "page",
    "success_page",
    "too_many_starts_page",
    "unknown_scope_page",
]


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
    from_slack: bool = False


# Slack sent the person back with a code but no state: the authorization was started on Slack's side (the Marketplace
# listing without direct install, or the "Add to Slack" button of the app's settings page), not from /slack/install.
STARTED_ELSEWHERE = "started_elsewhere"

FAILURES: dict[str, Failure] = {
    "access_denied": Failure(
        "You cancelled",
        "You chose Cancel on Slack's consent screen, so Delegate was not given access and nothing was changed. "
        "Start again whenever you like.",
        200,
        from_slack=True,
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
        from_slack=True,
    ),
    "invalid_team_for_non_distributed_app": Failure(
        "Delegate is not available to this workspace yet",
        "This Slack app is not distributed publicly, so it can only be installed in the workspace that created it. "
        "The fix is for the app's owner: at api.slack.com/apps, open the app, choose Manage Distribution and "
        "activate public distribution. Then start again.",
        400,
        from_slack=True,
    ),
    "bad_redirect_uri": Failure(
        "Delegate's redirect URL is misconfigured",
        "The redirect URL Delegate sent does not match any of the app's redirect URLs. The app's operator must make "
        "SLACK_REDIRECT_URI equal one of the redirect URLs in the Slack app settings (manifest.yml).",
        500,
        retry=False,
        from_slack=True,
    ),
    "invalid_client_id": Failure(
        "Delegate's Slack credentials are wrong",
        "Slack does not recognise Delegate's client id. The app's operator must check SLACK_CLIENT_ID.",
        500,
        retry=False,
        from_slack=True,
    ),
    "bad_client_secret": Failure(
        "Delegate's Slack credentials are wrong",
        "Slack refused Delegate's client secret. The app's operator must check SLACK_CLIENT_SECRET.",
        500,
        retry=False,
        from_slack=True,
    ),
    "slack_unreachable": Failure(
        "Slack could not be reached",
        "Delegate could not finish talking to Slack, so the connection was not saved. Wait a minute and start again.",
        502,
    ),
    STARTED_ELSEWHERE: Failure(
        "Please add Delegate from its install link",
        "Slack sent you here from an installation Delegate did not start, so Delegate cannot check that this browser "
        "began it, and nothing was changed. Start from Delegate's own install link: Slack asks you again, and it "
        "completes.",
        400,
    ),
    "storage_error": Failure(
        "Your connection could not be saved",
        "Slack approved the connection but Delegate could not store it. Nothing half-done was kept; try again, and "
        "if it keeps failing tell the app's operator.",
        500,
    ),
}

# Slack sends only this error name back to the redirect URL (the person pressed Cancel); every other name in the
# callback's query was written by whoever made the link, so it is neither explained nor shown.
REDIRECT_ERRORS = frozenset({"access_denied"})

UNKNOWN = Failure(
    "The authorization did not complete",
    "The authorization did not complete, so Delegate was given no access and nothing was changed. Start again.",
    400,
)


def failure_for(reason: str) -> Failure:
    """The explanation for a reason, or the generic one for a name Delegate does not know."""
    return FAILURES.get(reason, UNKNOWN)


def failure_page(reason: str, retry_url: str, guide: Guide | None = None) -> tuple[int, str]:
    """The status and page for a failed callback; only a known name is shown, never arbitrary text."""
    failure = failure_for(reason)
    body = f"<p>{escape(failure.explanation)}</p>"
    if failure.from_slack:
        body += f"<p><small>Slack's reason: <code>{escape(reason)}</code></small></p>"
    body += help_links(guide)
    links = [("Start again", retry_url)] if failure.retry else []
    return failure.status, page(failure.title, body, links=links)


def malformed_link_page() -> str:
    """The page for an install or connect link whose parameters are not ones Delegate makes."""
    body = (
        "<p>This link is malformed: its parameters are not ones Delegate creates, so nothing was requested from "
        "Slack. Start again from Delegate, or from the link Delegate sent you in Slack.</p>"
    )
    return page("This link is malformed", body, links=[("Start again", "/")])


def unknown_scope_page(allowed: list[str]) -> str:
    """The page for a connect link that asks for a permission Delegate does not use."""
    names = ", ".join(f"<code>{escape(s)}</code>" for s in allowed) or "none"
    body = (
        "<p>This link asks for a permission Delegate does not use, so nothing was requested from Slack. "
        f"Delegate only ever asks for these: {names}.</p>"
    )
    return page("That link asks for a permission Delegate does not use", body, links=[("Start again", "/")])


def too_many_starts_page(retry_after: int) -> str:
    """The page for a browser that opened too many install or connect links in a short time."""
    body = (
        "<p>Too many sign-in links were opened from your network in the last minute, so Delegate did not start "
        f"another. Wait {retry_after} seconds and try again.</p>"
    )
    return page("Please wait a moment", body)


@dataclass(frozen=True)
class Guide:
    """What the pages tell a new person to do next: the commands to try (from the manifest: `(syntax, what it does)`)
    and the operator's support and privacy pages (DELEGATE_SUPPORT_URL, DELEGATE_PRIVACY_URL)."""

    commands: Sequence[tuple[str, str]] = ()
    support_url: str | None = None
    privacy_url: str | None = None


def help_links(guide: Guide | None) -> str:
    """A line with the support and privacy links, or nothing when the operator set neither."""
    if guide is None:
        return ""
    links = [(label, url) for label, url in (("Get help", guide.support_url), ("Privacy policy", guide.privacy_url)) if url]
    if not links:
        return ""
    return "<p><small>" + " · ".join(f'<a href="{escape(url)}">{escape(label)}</a>' for label, url in links) + "</small></p>"


def success_page(
    *, team_name: str | None, user_scopes: list[str], bot_installed: bool, home_url: str, guide: Guide | None = None
) -> str:
    """What a person sees once installed or connected: what Delegate may now do, and what to do next."""
    guide = guide or Guide()
    what = "installed in" if bot_installed else "connected to your account in"
    scopes = ", ".join(f"<code>{escape(s)}</code>" for s in user_scopes) or "none"
    body = (
        f"<p>Delegate is {what} <strong>{escape(team_name or 'your workspace')}</strong>.</p>"
        f"<p>It may now act as you with these permissions: {scopes}.</p>"
        "<h2>What to do next</h2>"
    )
    if guide.commands:
        items = "".join(f"<li><code>{escape(syntax)}</code>: {escape(does)}</li>" for syntax, does in guide.commands)
        body += f"<p>Back in Slack, try these in any channel:</p><ul>{items}</ul>"
    body += (
        "<p>Type <code>/delegate help</code> to see what it can do for you. "
        "You can disconnect at any time with <code>/delegate disconnect</code>.</p>"
    )
    if bot_installed:
        body += (
            "<p>Everyone else in the workspace connects their own account: in Slack, open Delegate's <strong>Home</strong> "
            "tab and press <strong>Connect Delegate</strong>, or type <code>/delegate connect</code>. Delegate only ever "
            "acts as the person who asked, with their own permission.</p>"
        )
    body += help_links(guide)
    return page("You're connected", body, links=[("Open Slack", home_url)])
