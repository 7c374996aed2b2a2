"""How a person's connection is shown (App Home and /delegate connection), and the controls that change it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stores.disconnect import DisconnectResult
from stores.rotation import ConnectionInfo

from .context import Delegate, Person
from .replies import connect_button, context_line, escape, lost_connection, section

__all__ = [
    "DISCONNECT_ACTION_ID",
    "MANAGE_APPS",
    "connection_blocks",
    "disconnect_button",
    "disconnect_outcome",
    "missing_scopes",
    "slack_date",
]

DISCONNECT_ACTION_ID = "disconnect"

MANAGE_APPS = (
    "remove Delegate yourself in Slack: open *Manage apps* (<https://slack.com/apps/manage|slack.com/apps/manage>), "
    "pick Delegate, and remove its access to your account"
)

_STATES = {
    "active": ":large_green_circle: Connected",
    "needs_reauth": ":warning: Needs reconnecting",
    "revoked": ":red_circle: Revoked",
}
_OUTCOMES = {"refreshed": "renewed"}


def slack_date(moment: datetime | None) -> str:
    """A date Slack shows in each reader's own time zone."""
    if moment is None:
        return "never"
    stamp = int(moment.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} at {{time}}|{moment.isoformat(timespec='minutes')}>"


def missing_scopes(info: ConnectionInfo, delegate: Delegate) -> list[str]:
    """Scopes Slack said a call needed, then Delegate's own scopes the connection lacks, without repeats."""
    wanted = list(info.needed_scopes) + [scope for scope in delegate.user_scopes if scope not in info.scopes]
    return [scope for index, scope in enumerate(wanted) if scope not in wanted[:index] and scope not in info.scopes]


def disconnect_button() -> dict[str, Any]:
    """A button that revokes and deletes the person's token, after Slack's own confirmation dialog."""
    return {
        "type": "button",
        "action_id": DISCONNECT_ACTION_ID,
        "text": {"type": "plain_text", "text": "Disconnect"},
        "style": "danger",
        "value": "disconnect",
        "confirm": {
            "title": {"type": "plain_text", "text": "Disconnect Delegate?"},
            "text": {
                "type": "mrkdwn",
                "text": "Delegate will ask Slack to revoke its access to your account and delete your token. "
                "You can connect again at any time.",
            },
            "confirm": {"type": "plain_text", "text": "Disconnect"},
            "deny": {"type": "plain_text", "text": "Keep it"},
            "style": "danger",
        },
    }


def connection_blocks(info: ConnectionInfo | None, delegate: Delegate, person: Person) -> list[dict[str, Any]]:
    """The person's connection: who, state, scopes, expiry, last renewal; and connect, reconnect or disconnect."""
    if info is None:
        url = delegate.connect_url(team_id=person.workspace_id, user_scopes=None)
        return [
            section(
                f"*Delegate is not connected to your account* (<@{person.user_id}>).\n"
                "Connect it to post, set your status, snooze notifications and search your messages as you."
            ),
            context_line("It will ask for: " + ", ".join(f"`{scope}`" for scope in delegate.user_scopes)),
            {"type": "actions", "elements": [connect_button(url, "Connect Delegate")]},
        ]
    state = _STATES.get(info.status, escape(info.status))
    if info.status_reason and info.status != "active":
        state += f" (`{escape(info.status_reason)}`)"
    outcome = info.last_refresh_outcome
    renewal = slack_date(info.last_refreshed_at) if info.last_refreshed_at else "not yet"
    if outcome:
        renewal += f" — {escape(_OUTCOMES.get(outcome, outcome))}"
    scopes = ", ".join(f"`{scope}`" for scope in info.scopes) or "none recorded"
    fields = [
        f"*Account*\n<@{info.user_id}>",
        f"*State*\n{state}",
        f"*Token expires*\n{slack_date(info.expires_at) if info.status == 'active' else 'no usable token'}",
        f"*Last renewal*\n{renewal}",
        f"*Connected since*\n{slack_date(info.installed_at)}",
        f"*Rotating token*\n{'yes' if info.rotating else 'no'}",
    ]
    blocks: list[dict[str, Any]] = [section("*Your Delegate connection*")]
    if info.status != "active":
        again = "Reconnect to carry on." if info.status == "needs_reauth" else "Connect again to use Delegate."
        lost = lost_connection(info.status, info.status_reason, info.status_changed_at)
        blocks.append(section(f":warning: {lost}. {again}"))
    blocks += [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": field} for field in fields]},
        section(f"*Permissions*\n{scopes}"),
    ]
    elements: list[dict[str, Any]] = []
    lacking = missing_scopes(info, delegate)
    if info.status != "active":
        url = delegate.connect_url(team_id=person.workspace_id, user_scopes=None)
        elements.append(connect_button(url, "Reconnect" if info.status == "needs_reauth" else "Connect again"))
    elif lacking:
        blocks.append(context_line("Missing: " + ", ".join(f"`{scope}`" for scope in lacking)))
        url = delegate.connect_url(team_id=person.workspace_id, user_scopes=lacking)
        elements.append(connect_button(url, "Reconnect"))
    elements.append(disconnect_button())
    blocks.append({"type": "actions", "elements": elements})
    return blocks


def disconnect_outcome(result: DisconnectResult) -> str:
    """What a disconnect did, in plain words: including when Slack did not confirm and the grant may still be live."""
    again = "`/delegate connect` connects you again."
    if not result.had_connection:
        return "Delegate was not connected to your account: there was nothing to disconnect."
    why = f" (`{escape(result.slack_error)}`)" if result.slack_error else ""
    if result.revoked_at_slack and result.deleted:
        return (
            "Disconnected: Slack revoked Delegate's access to your account and Delegate deleted its copy of your token. "
            + again
        )
    if result.revoked_at_slack:
        return (
            "Slack revoked Delegate's access to your account, so your token no longer works anywhere, but Delegate could "
            "not delete its now useless copy. Try `/delegate disconnect` again in a minute."
        )
    if result.deleted:
        return (
            "Delegate deleted its copy of your token, so it can no longer act as you. But Slack did not confirm that it "
            f"revoked Delegate's access{why}, so the grant may still be live. To be sure, {MANAGE_APPS}. {again}"
        )
    return (
        f"Delegate could not disconnect you: Slack did not confirm the revoke{why} and Delegate could not delete its copy "
        f"of your token. Try again in a minute, or to cut its access now, {MANAGE_APPS}."
    )
