"""`tokens list|show`: what an operator sees of the connections; no secret is read, so no key ring is needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from ops.cli_support import CLIENT_ID, Duration, load_settings

if TYPE_CHECKING:
    from stores.listing import TokenSummary

__all__ = ["ENTERPRISE", "TEAM", "iso", "relative", "tokens_list", "tokens_show"]

TEAM = click.option("--team", "team_id", required=True, help="Team (workspace) id, T...")
ENTERPRISE = click.option("--enterprise", "enterprise_id", default=None, help="Enterprise (org) id, E..., if any.")


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def relative(moment: datetime, now: datetime) -> str:
    """How far a moment is from now, as a person says it: in 3 h, in 25 min, expired 2 h ago."""
    seconds = (moment - now).total_seconds()
    size = abs(seconds)
    if size < 90:
        amount = f"{int(size)} s"
    elif size < 90 * 60:
        amount = f"{round(size / 60)} min"
    elif size < 48 * 3600:
        amount = f"{round(size / 3600)} h"
    else:
        amount = f"{round(size / 86400)} d"
    return f"in {amount}" if seconds >= 0 else f"expired {amount} ago"


def _expiry(summary: TokenSummary, now: datetime) -> str:
    if summary.expires_at is None:
        return "never expires" if summary.has_token else "-"
    return f"{iso(summary.expires_at)} ({relative(summary.expires_at, now)})"


def _state(summary: TokenSummary) -> str:
    return f"{summary.status} ({summary.status_reason})" if summary.status_reason else summary.status


def _who(summary: TokenSummary) -> tuple[str, str]:
    team = summary.team_id or "-"
    if summary.enterprise_id:
        team = f"{team}/{summary.enterprise_id}"
    return summary.user_id or "(bot)", team


def _as_json(summary: TokenSummary, now: datetime) -> dict[str, Any]:
    return {
        "kind": summary.kind,
        "user_id": summary.user_id,
        "team_id": summary.team_id,
        "enterprise_id": summary.enterprise_id,
        "scopes": list(summary.scopes),
        "expires_at": iso(summary.expires_at),
        "expires_in_seconds": None if summary.expires_at is None else int((summary.expires_at - now).total_seconds()),
        "state": summary.status,
        "state_reason": summary.status_reason,
        "rotating": summary.rotating,
        "last_refreshed_at": iso(summary.last_refreshed_at),
        "last_refresh_outcome": summary.last_refresh_outcome,
    }


def _line(summary: TokenSummary, now: datetime) -> str:
    person, team = _who(summary)
    refreshed = iso(summary.last_refreshed_at) or "never"
    if summary.last_refresh_outcome:
        refreshed += f" ({summary.last_refresh_outcome})"
    return (
        f"{summary.kind:<4}  {person:<12}  {team:<14}  {_state(summary):<38}  {_expiry(summary, now):<40}  "
        f"last refresh {refreshed:<44}  scopes {','.join(summary.scopes) or '-'}"
    )


def _tables_and_engine() -> tuple[Any, Any, str | None]:
    from stores.database import create_database_engine
    from stores.schema import default_tables

    settings = load_settings()
    engine = create_database_engine(settings.database_url, pgbouncer=settings.database_pgbouncer)
    return default_tables, engine, settings.client_id


@click.command("list")
@CLIENT_ID
@click.option(
    "--state", type=click.Choice(["active", "needs_reauth", "revoked"]), default=None, help="Only tokens in this state."
)
@click.option("--team", "team_id", default=None, help="Only this team (workspace) id, T...")
@click.option("--user", "user_id", default=None, help="Only this person's user id, U...")
@click.option("--expiring-within", type=Duration(), default=None, help="Only tokens expiring within this (2h, 30m, 1d).")
@click.option("--bots", is_flag=True, help="Bot tokens too (kind bot, after the user tokens).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (JSON Lines), for jq and scripts.")
def tokens_list(
    client_id: str | None, state: str | None, team_id: str | None, user_id: str | None,
    expiring_within: timedelta | None, bots: bool, as_json: bool,
) -> None:  # fmt: skip
    """One line per user token: person, team, state (with reason), expiry, last refresh and outcome, scopes. Never a
    token: no secret is read (no key is needed), and rows are streamed a page at a time."""
    from stores.listing import TokenFilter, iter_tokens
    from stores.schema import utcnow

    tables, engine, default_client = _tables_and_engine()
    client_id = client_id or default_client
    if not client_id:
        raise click.ClickException("SLACK_CLIENT_ID is not set (or pass --client-id): the tokens listed are that app's")
    now = utcnow()
    wanted = TokenFilter(
        status=state,
        team_id=team_id,
        user_id=user_id,
        expires_before=now + expiring_within if expiring_within is not None else None,
    )
    count = 0
    try:
        for summary in iter_tokens(engine, tables, client_id, wanted, bots=bots):
            click.echo(json.dumps(_as_json(summary, now)) if as_json else _line(summary, now))
            count += 1
    finally:
        engine.dispose()
    if not as_json:
        click.echo(f"{count} token(s)", err=True)


@click.command("show")
@CLIENT_ID
@TEAM
@ENTERPRISE
@click.option("--user", "user_id", default=None, help="The person's user id, U... [default: the workspace's bot token].")
@click.option("--events", type=click.IntRange(min=0), default=10, show_default=True, help="How many audit events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def tokens_show(
    client_id: str | None, team_id: str, enterprise_id: str | None, user_id: str | None, events: int, as_json: bool
) -> None:
    """Everything `list` shows for one token, plus its generation, lifetime, failures, retry time, a refresh in
    flight, the scopes a call lacked, and its last audit events. Exits 1 when there is no such token."""
    from stores.listing import read_detail
    from stores.schema import utcnow

    tables, engine, default_client = _tables_and_engine()
    client_id = client_id or default_client
    if not client_id:
        raise click.ClickException("SLACK_CLIENT_ID is not set (or pass --client-id)")
    try:
        detail = read_detail(
            engine, tables, client_id, enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, events=events
        )
    finally:
        engine.dispose()
    if detail is None:
        raise click.ClickException(f"no token stored for {user_id or 'the bot'} of team {team_id}")
    now = utcnow()
    s = detail.summary
    fields: dict[str, Any] = {
        **_as_json(s, now),
        "generation": detail.generation,
        "lifetime_seconds": detail.lifetime_seconds,
        "refresh_failures": detail.failures,
        "retry_at": iso(detail.retry_at),
        "refresh_in_flight": None
        if detail.refresh_sent_at is None
        else {"owner": detail.refresh_owner, "sent_at": iso(detail.refresh_sent_at)},
        "needed_scopes": list(detail.needed_scopes),
        "provided_scopes": list(detail.provided_scopes),
        "installed_at": iso(detail.installed_at),
        "updated_at": iso(detail.updated_at),
        "last_used_at": iso(detail.last_used_at),
        "refresh_ahead": detail.refresh_ahead,
        "claimed": None
        if detail.claimed_until is None or detail.claimed_until <= now
        else {"by": detail.claimed_by, "until": iso(detail.claimed_until)},
        "events": [{"at": iso(e.occurred_at), "event": e.event, "detail": e.detail} for e in detail.events],
    }
    if as_json:
        click.echo(json.dumps(fields))
        return
    person, team = _who(s)
    click.echo(f"{s.kind} token of {person} in {team}")
    click.echo(f"  state:        {_state(s)}")
    click.echo(f"  expires:      {_expiry(s, now)}; rotating: {'yes' if s.rotating else 'no'}")
    outcome = f" ({s.last_refresh_outcome})" if s.last_refresh_outcome else ""
    click.echo(f"  last refresh: {iso(s.last_refreshed_at) or 'never'}{outcome}")
    click.echo(f"  scopes:       {','.join(s.scopes) or '-'}")
    click.echo(f"  generation:   {detail.generation}; lifetime {detail.lifetime_seconds or '-'} s")
    click.echo(f"  failures:     {detail.failures}; retry at {iso(detail.retry_at) or '-'}")
    in_flight = f"sent {iso(detail.refresh_sent_at)} by {detail.refresh_owner}" if detail.refresh_sent_at else "no"
    click.echo(f"  in flight:    {in_flight}")
    if s.kind == "user":
        ahead = "yes" if detail.refresh_ahead else "no (unused for the activity window: renewed on its next use)"
        click.echo(f"  last used:    {iso(detail.last_used_at) or 'not since it was granted'}; refreshed ahead: {ahead}")
    if detail.claimed_until is not None and detail.claimed_until > now:
        click.echo(f"  claimed:      by refresher {detail.claimed_by} until {iso(detail.claimed_until)}")
    if detail.needed_scopes:
        click.echo(f"  missing:      needed {','.join(detail.needed_scopes)}; provided {','.join(detail.provided_scopes)}")
    click.echo(f"  installed:    {iso(detail.installed_at) or '-'}; row updated {iso(detail.updated_at) or '-'}")
    click.echo(f"  last {len(detail.events)} event(s):")
    for e in detail.events:
        click.echo(f"    {iso(e.occurred_at)}  {e.event:<14} {e.detail or ''}".rstrip())
