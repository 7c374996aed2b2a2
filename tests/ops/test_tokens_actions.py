"""`tokens refresh` and `tokens revoke` against the sandbox's slack.com on real databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner, Result
from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from app import cli
from sandbox.server import SandboxServer
from stores import SQLAlchemyInstallationStore, generate_key
from tests.ops.support import ALICE, BOB, TEAM, connect, use_sandbox


@pytest.fixture
def key() -> str:
    return generate_key()


@pytest.fixture
def store(engine: Engine, slack: SandboxServer, key: str, database_url: str, monkeypatch) -> SQLAlchemyInstallationStore:  # type: ignore[no-untyped-def]
    store = SQLAlchemyInstallationStore(slack.config.client_id, engine, encryption_keys=key)
    store.create_tables()
    use_sandbox(monkeypatch, database_url, slack, key)
    return store


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def refreshes(slack: SandboxServer) -> dict[str, int]:
    return dict(slack.counters()["refreshes_by_user"])


def person(store: SQLAlchemyInstallationStore, user_id: str):  # type: ignore[no-untyped-def]
    return store.find_installation(enterprise_id=None, team_id=TEAM, user_id=user_id)


def test_refresh_one_person_now_even_if_not_due(store, slack) -> None:  # type: ignore[no-untyped-def]
    secrets = connect(store, slack, ALICE)  # 12 hours left: not due
    result = invoke("tokens", "refresh", "--team", TEAM, "--user", ALICE)
    assert result.exit_code == 0, result.output
    assert f"{ALICE} of {TEAM}: refreshed; new token expires " in result.stdout and "(in 12 h)" in result.stdout
    assert refreshes(slack) == {ALICE: 1}  # exactly one oauth.v2.access
    assert person(store, ALICE).user_token not in secrets
    assert not any(secret in result.output for secret in secrets)


def test_refresh_needs_a_person_or_all_due(store) -> None:  # type: ignore[no-untyped-def]
    assert invoke("tokens", "refresh").exit_code == 2
    assert invoke("tokens", "refresh", "--user", ALICE).exit_code == 2
    assert invoke("tokens", "refresh", "--all-due", "--team", TEAM, "--user", ALICE).exit_code == 2
    missing = invoke("tokens", "refresh", "--team", TEAM, "--user", ALICE)
    assert missing.exit_code == 1 and "no token stored" in missing.output


def test_a_spent_refresh_token_ends_needs_reauth_named_by_slacks_error(store, slack) -> None:  # type: ignore[no-untyped-def]
    _, refresh = connect(store, slack, ALICE)[:2]
    WebClient(base_url=slack.api_url).oauth_v2_access(
        client_id=slack.config.client_id, client_secret=slack.config.client_secret,
        grant_type="refresh_token", refresh_token=refresh,
    )  # fmt: skip
    result = invoke("tokens", "refresh", "--team", TEAM, "--user", ALICE)
    assert result.exit_code == 1
    assert "not refreshed: invalid_refresh_token; now needs_reauth" in result.stderr
    listed = invoke("tokens", "list", "--state", "needs_reauth")
    assert ALICE in listed.stdout and "needs_reauth (invalid_refresh_token)" in listed.stdout


def test_refresh_all_due_refreshes_only_the_due_token(store, slack) -> None:  # type: ignore[no-untyped-def]
    connect(store, slack, ALICE, left=timedelta(minutes=50))
    connect(store, slack, BOB)  # 12 hours left
    result = invoke("tokens", "refresh", "--all-due", "--window", "2h")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "1 due, 1 refreshed, 0 skipped (refreshed elsewhere meanwhile), 0 deferred, 0 failed"
    ]
    assert result.stderr == ""  # no terminal: a one-line summary, no progress bar
    assert refreshes(slack) == {ALICE: 1}
    again = invoke("tokens", "refresh", "--all-due")
    assert again.stdout.startswith("0 due, 0 refreshed") and refreshes(slack) == {ALICE: 1}


def test_refresh_all_due_reports_each_refusal_and_exits_1(store, slack) -> None:  # type: ignore[no-untyped-def]
    connect(store, slack, ALICE, left=timedelta(minutes=50))
    _, refresh = connect(store, slack, BOB, left=timedelta(minutes=40))[:2]
    WebClient(base_url=slack.api_url).oauth_v2_access(
        client_id=slack.config.client_id, client_secret=slack.config.client_secret,
        grant_type="refresh_token", refresh_token=refresh,
    )  # fmt: skip
    result = invoke("tokens", "refresh", "--all-due")
    assert result.exit_code == 1
    assert "2 due, 1 refreshed, 0 skipped (refreshed elsewhere meanwhile), 0 deferred, 1 failed" in result.stdout
    assert f"failed: user {BOB} of team {TEAM} (enterprise -): invalid_refresh_token; now needs_reauth" in result.stderr
    assert person(store, ALICE).user_token_expires_at is not None


def test_revoke_calls_auth_revoke_then_deletes(store, slack) -> None:  # type: ignore[no-untyped-def]
    connect(store, slack, ALICE)
    refused = invoke("tokens", "revoke", "--team", TEAM, "--user", ALICE, input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output and person(store, ALICE) is not None
    result = invoke("tokens", "revoke", "--team", TEAM, "--user", ALICE, input="y\n")
    assert result.exit_code == 0, result.output
    assert f"{ALICE} of {TEAM}: revoked at Slack and deleted" in result.stdout
    assert slack.counters()["api_calls"].get("auth.revoke") == 1
    assert person(store, ALICE) is None
    assert [t["status"] for t in slack.tokens(ALICE) if t["kind"] == "user"] == ["revoked"]
    gone = invoke("tokens", "revoke", "--team", TEAM, "--user", ALICE, "--yes")
    assert gone.exit_code == 1 and "no token stored" in gone.output


def test_revoke_when_slack_is_down_keeps_the_row_and_says_so(store, slack) -> None:  # type: ignore[no-untyped-def]
    connect(store, slack, ALICE)
    slack.add_fault("auth.revoke", status=503)
    result = invoke("tokens", "revoke", "--team", TEAM, "--user", ALICE, "--yes")
    assert result.exit_code == 1
    assert "Slack did not confirm the revoke (http_503" in result.stderr and "the token is kept" in result.stderr
    assert person(store, ALICE) is not None and person(store, ALICE).user_token
    slack.clear_faults()
    retried = invoke("tokens", "revoke", "--team", TEAM, "--user", ALICE, "--yes")
    assert retried.exit_code == 0 and person(store, ALICE) is None


def test_revoke_deletes_a_token_slack_already_revoked(store, slack) -> None:  # type: ignore[no-untyped-def]
    connect(store, slack, ALICE)
    slack.revoke_tokens(ALICE)  # Slack revoked it; Delegate has not heard
    result = invoke("tokens", "revoke", "--team", TEAM, "--user", ALICE, "--yes")
    assert result.exit_code == 0, result.output
    assert person(store, ALICE) is None


def test_refresh_all_due_defers_on_a_slack_outage_keeping_the_old_token(store, slack) -> None:  # type: ignore[no-untyped-def]
    connect(store, slack, ALICE, left=timedelta(minutes=50))
    slack.add_fault("oauth.v2.access", status=503)
    result = invoke("tokens", "refresh", "--all-due")
    assert result.exit_code == 1
    assert "1 due, 0 refreshed, 0 skipped (refreshed elsewhere meanwhile), 1 deferred, 0 failed" in result.stdout
    assert f"deferred: user {ALICE} of team {TEAM} (enterprise -): internal_error" in result.stderr  # Slack's error name
    assert "the old token stays in use" in result.stderr
    assert invoke("tokens", "list", "--state", "active", "--user", ALICE).stdout.count(ALICE) == 1
