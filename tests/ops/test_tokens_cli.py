"""`tokens list` and `tokens show` on real databases: every field, the filters, JSON Lines, and never a secret."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from app import cli
from sandbox.server import SandboxServer
from stores import KeyRing, SQLAlchemyInstallationStore, generate_key
from stores.rotation import TokenKey
from stores.schema import STATUS_NEEDS_REAUTH, utcnow
from stores.token_rows import TokenRows
from tests.ops.support import ALICE, BOB, CAROL, TEAM, connect


@pytest.fixture
def seeded(engine: Engine, slack: SandboxServer) -> tuple[SQLAlchemyInstallationStore, list[str]]:
    """Alice due in 1 hour, Bob needing reauth, Carol fresh; returns the store and every secret Slack issued."""
    store = SQLAlchemyInstallationStore(slack.config.client_id, engine, encryption_keys=KeyRing.from_string(generate_key()))
    store.create_tables()
    secrets = connect(store, slack, ALICE, left=timedelta(hours=1))
    secrets += connect(store, slack, BOB, left=timedelta(hours=-2))
    secrets += connect(store, slack, CAROL)
    TokenRows(store).set_status(
        TokenKey.of(None, TEAM, BOB), None, STATUS_NEEDS_REAUTH, "invalid_refresh_token", now=utcnow()
    )
    return store, secrets


def run(args: list[str], database_url: str, slack: SandboxServer, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SLACK_CLIENT_ID", slack.config.client_id)
    monkeypatch.delenv("TOKEN_ENCRYPTION_KEYS", raising=False)  # nothing is decrypted, so no key is needed
    return CliRunner().invoke(cli, args)


def assert_no_secret(output: str, secrets: list[str]) -> None:
    assert len(secrets) == 12 and all(secrets)
    for secret in secrets:
        assert secret not in output
        assert secret[:12] not in output  # not even a prefix (xoxe.xoxp-1- alone is no prefix of a token)


def test_list_shows_every_user_token_without_a_secret_or_a_key(seeded, database_url, slack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, secrets = seeded
    result = run(["tokens", "list", "--bots"], database_url, slack, monkeypatch)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and result.stderr == "4 token(s)\n"
    alice = next(line for line in lines if ALICE in line)
    assert TEAM in alice and "active" in alice and "(in 60 min)" in alice and "chat:write" in alice
    bob = next(line for line in lines if BOB in line)
    assert "needs_reauth (invalid_refresh_token)" in bob and "(expired 2 h ago)" in bob
    assert sum(line.startswith("bot") for line in lines) == 1
    assert_no_secret(result.output, secrets)


def test_list_filters_by_state_team_user_and_expiry(seeded, database_url, slack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def users(*args: str) -> list[str]:
        result = run(["tokens", "list", "--json", *args], database_url, slack, monkeypatch)
        assert result.exit_code == 0, result.output
        return sorted(json.loads(line)["user_id"] for line in result.stdout.splitlines())

    assert users() == [ALICE, BOB, CAROL]
    assert users("--state", "needs_reauth") == [BOB]
    assert users("--state", "active") == [ALICE, CAROL]
    assert users("--user", CAROL) == [CAROL]
    assert users("--team", TEAM) == [ALICE, BOB, CAROL]
    assert users("--team", "T0ELSEWHR2") == []
    assert users("--expiring-within", "2h") == [ALICE, BOB]  # the expired one too: it is past due
    assert users("--expiring-within", "30m") == [BOB]
    bad = run(["tokens", "list", "--expiring-within", "soon"], database_url, slack, monkeypatch)
    assert bad.exit_code == 2 and "not a duration" in bad.output


def test_list_json_lines_parse_and_carry_each_field(seeded, database_url, slack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, secrets = seeded
    result = run(["tokens", "list", "--json", "--user", ALICE], database_url, slack, monkeypatch)
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["kind"] == "user" and record["team_id"] == TEAM and record["enterprise_id"] is None
    assert record["state"] == "active" and record["rotating"] is True and record["scopes"] == ["chat:write"]
    assert 3500 < record["expires_in_seconds"] <= 3600 and record["expires_at"].endswith("Z")
    assert record["last_refreshed_at"] is None and record["last_refresh_outcome"] is None
    assert_no_secret(result.output, secrets)


def test_list_pages_through_more_rows_than_a_page(seeded, database_url, slack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from stores.listing import iter_tokens

    store, _ = seeded
    listed = [s.user_id for s in iter_tokens(store.engine, store.tables, store.client_id, page_size=1)]
    assert sorted(listed) == [ALICE, BOB, CAROL]  # three pages of one, each a query of its own


def test_show_prints_the_details_and_the_last_events(seeded, database_url, slack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, secrets = seeded
    result = run(["tokens", "show", "--team", TEAM, "--user", BOB, "--events", "5"], database_url, slack, monkeypatch)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"user token of {BOB} in {TEAM}" in out and "needs_reauth (invalid_refresh_token)" in out
    assert "generation:   2" in out and "lifetime 43200 s" in out and "in flight:    no" in out
    assert "last used:    not since it was granted; refreshed ahead: yes" in out
    assert "issued" in out and "needs_reauth   invalid_refresh_token" in out
    data = json.loads(
        run(["tokens", "show", "--team", TEAM, "--user", BOB, "--json"], database_url, slack, monkeypatch).stdout
    )
    assert [e["event"] for e in data["events"]] == ["issued", "needs_reauth"]
    assert data["generation"] == 2 and data["refresh_failures"] == 0 and data["refresh_in_flight"] is None
    assert (data["last_used_at"], data["refresh_ahead"], data["claimed"]) == (None, True, None)
    bot = run(["tokens", "show", "--team", TEAM], database_url, slack, monkeypatch)
    assert bot.exit_code == 0 and "bot token of (bot)" in bot.stdout and "rotating: yes" in bot.stdout
    assert_no_secret(result.output + bot.output, secrets)
    missing = run(["tokens", "show", "--team", TEAM, "--user", "U0NOBODY99"], database_url, slack, monkeypatch)
    assert missing.exit_code == 1 and "no token stored for U0NOBODY99" in missing.output
