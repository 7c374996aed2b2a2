"""`tokens refresh|revoke`: act on tokens through the token manager, with the app's own locking and error handling.

`refresh --team --user` forces one rotation now; `refresh --all-due` runs one sweep of the Refresher (the same claim
without waiting, the same pacing), so it can run beside the app's refreshers and nothing is refreshed twice. Each
refusal becomes the state the app would record (needs_reauth on invalid_refresh_token, ...) and is reported by
Slack's error name. `revoke` is the token manager's disconnect, except that Delegate's copy stays when Slack could
not confirm (an outage), so that the operator can run it again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from ops.cli_support import PROGRESS, Duration, open_token_stores
from ops.progress import Interrupted, Progress, interrupted_exit, progress_mode, run_interruptibly
from ops.tokens_cli import ENTERPRISE, TEAM, iso, relative

if TYPE_CHECKING:
    from stores.rotation import TokenKey, TokenManager

__all__ = ["tokens_refresh", "tokens_revoke"]


@dataclass
class _Outcomes:
    """What the sweep did to each token, filled from its worker threads."""

    failures: list[tuple[TokenKey, str]] = field(default_factory=list)  # (key, Slack's error name or the error's kind)
    deferred: list[tuple[TokenKey, str]] = field(default_factory=list)  # Slack did not rotate it now; retried later
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Watched:
    """The token manager as the Refresher sees it, reporting the outcome of each refresh_if_due and each token found
    not due (all else passes)."""

    def __init__(self, manager: TokenManager, outcomes: _Outcomes, bar: Progress):
        self._manager = manager
        self._outcomes = outcomes
        self._bar = bar

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)

    def due_snapshot(self, key: TokenKey, window: timedelta) -> Any:
        snapshot = self._manager.due_snapshot(key, window)
        if snapshot is None:  # not due (any more): the sweep passes it by, without a turn of the budget
            self._bar.advance()
        return snapshot

    def refresh_if_due(self, key: TokenKey, window: timedelta, snapshot: Any = None) -> bool:
        from stores.errors import TokenError

        try:
            refreshed = self._manager.refresh_if_due(key, window, snapshot)
        except TokenError as error:
            self._record(self._outcomes.failures, key, error.reason or type(error).__name__)
            raise
        except Exception as error:
            self._record(self._outcomes.failures, key, type(error).__name__)
            raise
        if not refreshed:  # not due any more, claimed by another refresher, or Slack asked to wait (a retry time)
            row = self._manager.rows.read_row(key)  # the columns as stored: nothing is decrypted for this
            retry_at = None if row is None else getattr(row, key.slot.retry_at)
            if retry_at is not None and retry_at > self._manager.clock():
                outcome = getattr(row, key.slot.outcome) or "retry_later"
                self._record(self._outcomes.deferred, key, outcome, advance=False)
        self._bar.advance()
        return refreshed

    def _record(self, into: list[tuple[TokenKey, str]], key: TokenKey, reason: str, *, advance: bool = True) -> None:
        with self._outcomes.lock:
            into.append((key, reason))
        if advance:
            self._bar.advance()


def _state_of(manager: TokenManager, key: TokenKey) -> str:
    row = manager.rows.read_row(key)
    return "deleted" if row is None else str(row.status if key.user_id else row.bot_status)


@click.command("refresh")
@click.option("--team", "team_id", default=None, help="Team (workspace) id, T... (with --user).")
@click.option("--enterprise", "enterprise_id", default=None, help="Enterprise (org) id, E..., if any.")
@click.option("--user", "user_id", default=None, help="Refresh this person's token now, even if it is not due.")
@click.option("--all-due", is_flag=True, help="Refresh every token due now, through the Refresher's sweep.")
@click.option("--window", type=Duration(), default="2h", show_default=True, help="With --all-due: due within this.")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True, help="Refreshes in flight.")
@click.option("--max-per-minute", default=500, show_default=True, help="Pace under oauth.v2.access's 600/minute.")
@PROGRESS
def tokens_refresh(
    team_id: str | None, enterprise_id: str | None, user_id: str | None, all_due: bool, window: timedelta,
    concurrency: int, max_per_minute: int, progress: bool | None,
) -> None:  # fmt: skip
    """Refresh one person's token now (--team T --user U) and report its new expiry, or every token due within the
    window (--all-due). Refusals are named by Slack's error and recorded as the app does; exits 1 when any failed.
    Safe to interrupt (Ctrl-C) and run again: what was refreshed is not due any more."""
    if all_due == bool(user_id):
        raise click.UsageError("give either --team and --user (one person) or --all-due")
    if user_id and not team_id:
        raise click.UsageError("--user needs --team")
    stores = open_token_stores()
    try:
        if all_due:
            _refresh_all_due(stores.manager, window, concurrency, max_per_minute, progress_mode(progress))
        else:
            assert team_id and user_id
            _refresh_one(stores.manager, enterprise_id, team_id, user_id)
    finally:
        stores.close()


def _refresh_one(manager: TokenManager, enterprise_id: str | None, team_id: str, user_id: str) -> None:
    from stores.errors import TokenError
    from stores.rotation import TokenKey

    key = TokenKey.of(enterprise_id, team_id, user_id)
    who = f"{user_id} of {team_id}"
    before = manager.read(key)
    if before is None:
        raise click.ClickException(f"no token stored for {who}")
    if not before.rotating:
        raise click.ClickException(f"the token of {who} does not rotate (no refresh token): see `tokens exchange`")
    try:
        after = run_interruptibly(lambda _stop: manager.refresh(key, before, force=True, wait=timedelta(seconds=30)))
    except Interrupted:
        raise interrupted_exit(0, "token(s)") from None
    except TokenError as error:
        click.echo(f"{who}: not refreshed: {error.reason or type(error).__name__}; now {_state_of(manager, key)}", err=True)
        raise click.exceptions.Exit(1) from None
    if after.generation == before.generation:
        current = manager.read(key)
        reason = (current.outcome if current is not None else None) or "not rotated"
        click.echo(f"{who}: not refreshed now: {reason}; the old token stays in use until it expires", err=True)
        raise click.exceptions.Exit(1)
    assert after.expires_at is not None
    how = "refreshed" if after.refreshed_here else "refreshed meanwhile by another worker"
    click.echo(f"{who}: {how}; new token expires {iso(after.expires_at)} ({relative(after.expires_at, manager.clock())})")


def _refresh_all_due(manager: TokenManager, window: timedelta, concurrency: int, max_per_minute: int, mode: str) -> None:
    from stores.refresher import Refresher

    outcomes = _Outcomes()
    jitter = timedelta(minutes=10)
    total = manager.count_due_for_refresh(window + jitter)  # one count per table
    bar = Progress("refreshing", total, mode)
    refresher = Refresher(
        _Watched(manager, outcomes, bar),  # type: ignore[arg-type]
        window=window,
        jitter=jitter,
        concurrency=concurrency,
        max_per_minute=max_per_minute,
    )
    try:
        with bar:
            result = run_interruptibly(lambda _stop: refresher.sweep_once(), on_interrupt=refresher.stop)
    except Interrupted:
        raise interrupted_exit(bar.done, "token(s)") from None
    failed = len(outcomes.failures) + len(outcomes.deferred)
    click.echo(
        f"{result.due} due, {result.refreshed} refreshed, {result.skipped - len(outcomes.deferred)} skipped "
        f"(refreshed elsewhere meanwhile), {len(outcomes.deferred)} deferred, {len(outcomes.failures)} failed"
    )
    for key, reason in outcomes.failures:
        click.echo(f"failed: {key.describe()}: {reason}; now {_state_of(manager, key)}", err=True)
    for key, reason in outcomes.deferred:
        click.echo(f"deferred: {key.describe()}: {reason}; the old token stays in use, retried later", err=True)
    if failed:
        raise click.exceptions.Exit(1)


@click.command("revoke")
@TEAM
@ENTERPRISE
@click.option("--user", "user_id", required=True, help="The person's user id, U...")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--delete-anyway", is_flag=True, help="Delete Delegate's copy even when Slack does not confirm the revoke.")
def tokens_revoke(team_id: str, enterprise_id: str | None, user_id: str, yes: bool, delete_anyway: bool) -> None:
    """Revoke one person's grant at Slack (auth.revoke), then delete Delegate's copy. A token Slack already considers
    revoked is deleted too; when Slack cannot confirm (an outage), the copy stays and the command exits 1."""
    who = f"{user_id} of {team_id}" + (f" (enterprise {enterprise_id})" if enterprise_id else "")
    if not yes:
        click.confirm(f"Revoke the token of {who} at Slack and delete it here?", abort=True)
    stores = open_token_stores()
    try:
        result = run_interruptibly(
            lambda _stop: stores.manager.disconnect(
                enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, keep_unless_confirmed=not delete_anyway
            )
        )
    except Interrupted:
        raise interrupted_exit(0, "token(s)") from None
    finally:
        stores.close()
    if not result.had_connection:
        raise click.ClickException(f"no token stored for {who}")
    if result.revoked_at_slack and result.deleted:
        click.echo(f"{who}: revoked at Slack and deleted")
        return
    if result.deleted:
        click.echo(
            f"{who}: deleted; Slack did not confirm the revoke ({result.slack_error}): the grant may be live", err=True
        )
        raise click.exceptions.Exit(1)
    if not result.revoked_at_slack:
        click.echo(
            f"{who}: Slack did not confirm the revoke ({result.slack_error}); the token is kept: run again, or add "
            "--delete-anyway",
            err=True,
        )
    else:
        click.echo(f"{who}: revoked at Slack, but deleting Delegate's copy failed: run again", err=True)
    raise click.exceptions.Exit(1)
