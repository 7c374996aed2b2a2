"""The store behaves like slack_sdk's SQLAlchemyInstallationStore, case by case, except where that one is wrong."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore as StockStore
from sqlalchemy import select
from sqlalchemy.engine import Engine

from stores import SQLAlchemyInstallationStore
from stores.schema import NONE
from tests.conftest import CLIENT_ID

T0 = 1_700_000_000.0


def workspace_install(
    user_id: str = "U1",
    *,
    team_id: str | None = "T1",
    enterprise_id: str | None = None,
    bot: bool = True,
    user_token: bool = True,
    installed_at: float = T0,
    is_enterprise_install: bool = False,
    suffix: str = "",
) -> Installation:
    return Installation(
        app_id="A1",
        enterprise_id=enterprise_id,
        enterprise_name="Acme Grid" if enterprise_id else None,
        team_id=team_id,
        team_name="Acme" if team_id else None,
        bot_token=f"xoxb-bot-{team_id}{suffix}" if bot else None,
        bot_id="B1" if bot else None,
        bot_user_id="UBOT" if bot else None,
        bot_scopes="commands,chat:write" if bot else "",
        user_id=user_id,
        user_token=f"xoxp-user-{user_id}{suffix}" if user_token else None,
        user_scopes="chat:write,users.profile:write" if user_token else "",
        is_enterprise_install=is_enterprise_install,
        token_type="bot" if bot else "user",
        installed_at=installed_at,
    )


def comparable(obj: Installation | Bot | None) -> dict[str, Any] | None:
    """Fields both stores must agree on (installed_at to the second; slack_sdk stores naive datetimes)."""
    if obj is None:
        return None
    data = obj.to_dict()
    data.pop("custom_values", None)
    for key, value in list(data.items()):
        if isinstance(value, datetime):
            data[key] = int(value.replace(tzinfo=value.tzinfo or UTC).timestamp())
    return data


@pytest.fixture
def stock(engine: Engine) -> StockStore:
    stock = StockStore(client_id=CLIENT_ID, engine=engine)
    stock.create_tables()
    return stock


QUERIES: list[dict[str, Any]] = [
    {"enterprise_id": None, "team_id": "T1"},
    {"enterprise_id": None, "team_id": "T1", "user_id": "U1"},
    {"enterprise_id": None, "team_id": "T1", "user_id": "U2"},
    {"enterprise_id": None, "team_id": "T1", "user_id": "U3"},
    {"enterprise_id": None, "team_id": "T2"},
    {"enterprise_id": "E1", "team_id": "T9"},
    {"enterprise_id": "E1", "team_id": "T9", "user_id": "U1"},
    {"enterprise_id": "E1", "team_id": None, "is_enterprise_install": True},
    {"enterprise_id": "E1", "team_id": "T5", "is_enterprise_install": True},
    {"enterprise_id": "E1", "team_id": "T5", "user_id": "U2", "is_enterprise_install": True},
]

SCENARIOS: dict[str, list[tuple[str, Any]]] = {
    "workspace install": [("save", workspace_install())],
    "bot-only install": [("save", workspace_install(user_token=False))],
    "user connects after the install": [
        ("save", workspace_install()),
        ("save", workspace_install("U2", bot=False, installed_at=T0 + 60)),
    ],
    "user-only connect with no bot anywhere": [("save", workspace_install("U2", bot=False))],
    "reinstall by another user": [
        ("save", workspace_install()),
        ("save", workspace_install("U2", installed_at=T0 + 60, suffix="-new")),
    ],
    "same installation saved again with rotated tokens": [
        ("save", workspace_install()),
        ("save", workspace_install(suffix="-rotated")),
    ],
    "enterprise grid workspace install": [("save", workspace_install(team_id="T9", enterprise_id="E1"))],
    "org-wide install": [
        ("save", workspace_install(team_id=None, enterprise_id="E1", is_enterprise_install=True)),
        (
            "save",
            workspace_install(
                "U2", team_id=None, enterprise_id="E1", bot=False, is_enterprise_install=True, installed_at=T0 + 60
            ),
        ),
    ],
    "save_bot alone": [("save_bot", workspace_install().to_bot())],
    "delete one user": [
        ("save", workspace_install()),
        ("save", workspace_install("U2", bot=False, installed_at=T0 + 60)),
        ("delete_installation", {"enterprise_id": None, "team_id": "T1", "user_id": "U2"}),
    ],
    "delete every installation of a workspace": [
        ("save", workspace_install()),
        ("save", workspace_install("U2", bot=False, installed_at=T0 + 60)),
        ("delete_installation", {"enterprise_id": None, "team_id": "T1"}),
    ],
    "delete_all": [
        ("save", workspace_install()),
        ("save", workspace_install(team_id="T2")),
        ("delete_all", {"enterprise_id": None, "team_id": "T1"}),
    ],
}


def apply(store: Any, steps: list[tuple[str, Any]]) -> None:
    for method, argument in steps:
        if isinstance(argument, dict):
            getattr(store, method)(**argument)
        else:
            getattr(store, method)(argument)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_same_observable_behaviour_as_slack_sdk_store(
    scenario: str, store: SQLAlchemyInstallationStore, stock: StockStore
) -> None:
    apply(store, SCENARIOS[scenario])
    apply(stock, SCENARIOS[scenario])
    for query in QUERIES:
        assert comparable(store.find_installation(**query)) == comparable(stock.find_installation(**query)), query
        bot_query = {k: v for k, v in query.items() if k != "user_id"}
        assert comparable(store.find_bot(**bot_query)) == comparable(stock.find_bot(**bot_query)), bot_query


def test_blanked_installation_saved_by_bolt_keeps_the_installer_token(
    store: SQLAlchemyInstallationStore, stock: StockStore
) -> None:
    """Bolt blanks the installer's user fields when someone else makes the request, then saves after rotation."""
    for s in (store, stock):
        s.save(workspace_install())
        latest = s.find_installation(enterprise_id=None, team_id="T1")
        latest.user_token = None
        latest.user_refresh_token = None
        latest.user_token_expires_at = None
        latest.user_scopes = None
        latest.bot_token = "xoxb-bot-rotated"
        s.save(latest)

    stock_found = stock.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert stock_found.user_token is None  # slack_sdk's store loses the installer's token here
    ours = store.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert ours.user_token == "xoxp-user-U1"
    assert ours.user_scopes == ["chat:write", "users.profile:write"]
    assert ours.bot_token == "xoxb-bot-rotated"


def test_delete_bot_removes_the_bot_token_from_find_installation(
    store: SQLAlchemyInstallationStore, stock: StockStore
) -> None:
    for s in (store, stock):
        s.save(workspace_install())
        s.delete_bot(enterprise_id=None, team_id="T1")
        assert s.find_bot(enterprise_id=None, team_id="T1") is None

    assert stock.find_installation(enterprise_id=None, team_id="T1").bot_token == "xoxb-bot-T1"  # slack_sdk's bug
    ours = store.find_installation(enterprise_id=None, team_id="T1")
    assert ours is not None
    assert ours.bot_token is None and ours.bot_id is None and ours.bot_user_id is None
    assert ours.user_token == "xoxp-user-U1"  # the users' tokens stay


def test_rotated_tokens_update_rows_in_place(store: SQLAlchemyInstallationStore, engine: Engine) -> None:
    for n in range(3):
        installation = workspace_install(suffix=f"-{n}")
        installation.user_refresh_token = f"xoxe-1-refresh-{n}"
        installation.user_token_expires_at = int(time.time()) + 43200
        store.save(installation)
    with engine.connect() as conn:
        assert conn.execute(select(store.installations)).all().__len__() == 1
        assert conn.execute(select(store.bots)).all().__len__() == 1
        events = conn.execute(select(store.tables.token_events.c.event, store.tables.token_events.c.token_kind)).all()
    assert [e for e in events if e.token_kind == "user"] == [("issued", "user"), ("saved", "user"), ("saved", "user")]
    found = store.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert found.user_token == "xoxp-user-U1-2"
    assert found.user_refresh_token == "xoxe-1-refresh-2"


def test_refresh_tokens_are_decrypted_only_when_read(
    store: SQLAlchemyInstallationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    installation = workspace_install()
    installation.user_refresh_token, installation.bot_refresh_token = "xoxe-1-user", "xoxe-1-bot"
    installation.user_token_expires_at = installation.bot_token_expires_at = int(time.time()) + 43200
    installation.incoming_webhook_url = "https://hooks.slack.com/services/T1/B1/secret"
    store.save(installation)
    opened: list[str] = []
    decrypt = store.keyring.decrypt
    monkeypatch.setattr(
        store.keyring, "decrypt", lambda cipher, context: opened.append(context.field) or decrypt(cipher, context)
    )
    found = store.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert found is not None
    assert sorted(opened) == ["bot_token_enc", "user_token_enc"]
    assert (found.user_refresh_token, found.bot_refresh_token) == ("xoxe-1-user", "xoxe-1-bot")
    assert found.incoming_webhook_url == "https://hooks.slack.com/services/T1/B1/secret"
    assert found.user_refresh_token == "xoxe-1-user"  # opened once, then kept
    assert sorted(opened) == sorted(
        ["bot_token_enc", "user_token_enc", "user_refresh_token_enc", "bot_refresh_token_enc", "incoming_webhook_url_enc"]
    )
    found.user_refresh_token = None  # Bolt blanks fields of an installation it passes on
    assert found.user_refresh_token is None
    assert Installation(**found.to_dict_for_copying()).bot_refresh_token == "xoxe-1-bot"


def test_absent_keys_are_stored_as_sentinels_not_null(store: SQLAlchemyInstallationStore, engine: Engine) -> None:
    store.save(workspace_install(team_id=None, enterprise_id="E1", is_enterprise_install=True))
    store.save(workspace_install(team_id=None, enterprise_id="E1", is_enterprise_install=True, suffix="-2"))
    store.save(workspace_install())
    with engine.connect() as conn:
        rows = conn.execute(select(store.installations.c.enterprise_id, store.installations.c.team_id)).all()
    assert sorted(rows) == [(NONE, "T1"), ("E1", NONE)]


def test_datetimes_are_timezone_aware(store: SQLAlchemyInstallationStore, engine: Engine) -> None:
    installation = workspace_install()
    installation.user_token_expires_at = int(T0) + 43200
    store.save(installation)
    with engine.connect() as conn:
        row = conn.execute(select(store.installations)).one()
    assert row.installed_at == datetime.fromtimestamp(T0, tz=UTC)
    assert row.user_token_expires_at.tzinfo is not None
    assert row.user_token_expires_at == datetime.fromtimestamp(T0 + 43200, tz=UTC)
    found = store.find_installation(enterprise_id=None, team_id="T1")
    assert found.user_token_expires_at == int(T0) + 43200


def test_store_is_an_installation_store_bolt_accepts(store: SQLAlchemyInstallationStore) -> None:
    from slack_bolt import App
    from slack_bolt.oauth.oauth_settings import OAuthSettings

    app = App(
        signing_secret="secret",
        oauth_settings=OAuthSettings(client_id=CLIENT_ID, client_secret="s", installation_store=store, scopes=["commands"]),
    )
    assert app.installation_store is store


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_importing_slack_sdk_tables_answers_the_same(
    scenario: str, store: SQLAlchemyInstallationStore, stock: StockStore
) -> None:
    apply(stock, SCENARIOS[scenario])
    store.import_from_slack_sdk(stock)
    for query in QUERIES:
        assert comparable(store.find_installation(**query)) == comparable(stock.find_installation(**query)), query
        bot_query = {k: v for k, v in query.items() if k != "user_id"}
        assert comparable(store.find_bot(**bot_query)) == comparable(stock.find_bot(**bot_query)), bot_query


def test_import_command_copies_and_encrypts(stock: StockStore, engine: Engine, database_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from app import cli
    from stores import generate_key

    apply(stock, SCENARIOS["user connects after the install"])
    key = generate_key()
    SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=key).create_tables()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", key)
    result = CliRunner().invoke(cli, ["db", "import-slack-sdk"])
    assert result.exit_code == 0, result.output
    assert "imported 2 installation row(s) and 0 bot row(s); 2 row(s) skipped" in result.output  # bots came with them
    ours = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=key)
    assert ours.find_installation(enterprise_id=None, team_id="T1", user_id="U2").user_token == "xoxp-user-U2"
    with engine.connect() as conn:
        assert "xoxp-user-U2" not in repr(conn.execute(select(ours.installations)).all())


def user_events(store: SQLAlchemyInstallationStore, engine: Engine, user_id: str = "U1") -> list[str]:
    e = store.tables.token_events.c
    with engine.connect() as conn:
        return list(conn.execute(select(e.event).where(e.user_id == user_id).order_by(e.id)).scalars())


def test_deleting_twice_is_a_no_op_not_an_error(store: SQLAlchemyInstallationStore, engine: Engine) -> None:
    store.save(workspace_install("U1"))
    store.save(workspace_install("U2"))
    assert store.delete_user_tokens(enterprise_id=None, team_id="T1", user_id="U1") == ["U1"]
    assert store.delete_user_tokens(enterprise_id=None, team_id="T1", user_id="U1") == []
    store.delete_installation(enterprise_id=None, team_id="T1", user_id="U1")
    store.delete_bot(enterprise_id=None, team_id="T1")
    store.delete_bot(enterprise_id=None, team_id="T1")
    store.delete_all(enterprise_id=None, team_id="T1")
    store.delete_all(enterprise_id=None, team_id="T1")
    assert user_events(store, engine, "U1") == ["issued", "deleted"]  # one deletion recorded, however many deletes
    assert user_events(store, engine, "U2") == ["issued", "deleted"]
    assert store.find_installation(enterprise_id=None, team_id="T1") is None
    assert store.find_bot(enterprise_id=None, team_id="T1") is None


def test_a_delete_for_an_older_moment_keeps_a_grant_saved_after_it(store: SQLAlchemyInstallationStore) -> None:
    store.save(workspace_install("U1", installed_at=T0))
    store.save(workspace_install("U1", installed_at=T0 + 60, suffix="-reconnected"))  # the person reconnected
    revoked_at = datetime.fromtimestamp(T0 + 30, tz=UTC)
    assert store.delete_user_tokens(enterprise_id=None, team_id="T1", user_id="U1", installed_at_or_before=revoked_at) == []
    store.delete_all(enterprise_id=None, team_id="T1", installed_at_or_before=revoked_at)
    found = store.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert found is not None and found.user_token == "xoxp-user-U1-reconnected"
    assert store.find_bot(enterprise_id=None, team_id="T1") is not None  # the bot was reinstalled after it too
    later = datetime.fromtimestamp(T0 + 90, tz=UTC)
    store.delete_all(enterprise_id=None, team_id="T1", installed_at_or_before=later)
    assert store.find_installation(enterprise_id=None, team_id="T1") is None
    assert store.find_bot(enterprise_id=None, team_id="T1") is None


def test_a_delete_at_the_very_moment_of_the_grant_deletes_it(store: SQLAlchemyInstallationStore) -> None:
    store.save(workspace_install("U1", installed_at=T0 + 0.25))
    moment = datetime.fromtimestamp(T0 + 0.25, tz=UTC)
    assert store.delete_user_tokens(enterprise_id=None, team_id="T1", user_id="U1", installed_at_or_before=moment) == ["U1"]
