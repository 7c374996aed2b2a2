"""save_many writes what save() writes, a chunk per transaction: the same rows, tokens, fences and events."""

from __future__ import annotations

from typing import Any

from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import select
from sqlalchemy.engine import Engine

from stores import SQLAlchemyInstallationStore
from stores.crypto import KeyRing
from stores.token_rows import TokenKey, TokenRows
from tests.conftest import CLIENT_ID
from tests.stores.test_installation_store import T0, workspace_install

OTHER_CLIENT = "333.444"
SKIPPED = {"id", "client_id", "created_at", "updated_at", "generation", "bot_generation"}


def rotating(installation: Installation, refresh: str) -> Installation:
    installation.user_refresh_token = refresh
    installation.user_token_expires_at = int(T0) + 43200
    return installation


def history() -> tuple[list[Installation], list[Installation]]:
    """(saved first, one at a time; then saved again over them with new ones, duplicates and a blank user token)."""
    before = [workspace_install("U1"), workspace_install("U5", team_id="T2"), workspace_install("U9", bot=False)]
    blank = workspace_install("U1", user_token=False, installed_at=T0 + 30)  # Bolt saving a non-installer's request
    after = [
        rotating(workspace_install("U1", suffix="-rotated"), "xoxe-1-a"),
        workspace_install("U2", bot=False, installed_at=T0 + 60),
        blank,
        rotating(workspace_install("U3", suffix="-first"), "xoxe-1-b"),
        rotating(workspace_install("U3", suffix="-second"), "xoxe-1-c"),  # the same person twice in one chunk
        workspace_install("U7", team_id=None, enterprise_id="E1", is_enterprise_install=True),
        workspace_install("U8", team_id="T9", enterprise_id="E1"),
        workspace_install("U9", bot=False, suffix="-again"),
        workspace_install("U5", team_id="T2", suffix="-new"),
    ]
    return before, after


def rows(engine: Engine, store: SQLAlchemyInstallationStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the store's client id, without ids, stamps, generations or ciphertexts (bound to the client)."""
    out = {}
    with engine.connect() as conn:
        for table in (store.bots, store.installations):
            names = [c.name for c in table.c if c.name not in SKIPPED and not c.name.endswith("_enc")]
            found = conn.execute(select(*[table.c[n] for n in names]).where(table.c.client_id == store.client_id))
            out[table.name] = sorted(tuple(r) for r in found)
    return out


def generations(engine: Engine, store: SQLAlchemyInstallationStore) -> dict[tuple[str, ...], int]:
    with engine.connect() as conn:
        u, w = store.installations.c, store.bots.c
        people = conn.execute(select(u.team_id, u.user_id, u.generation).where(u.client_id == store.client_id))
        bots = conn.execute(select(w.team_id, w.bot_generation).where(w.client_id == store.client_id))
        return {**{(r[0], r[1]): r[2] for r in people}, **{(r[0],): r[1] for r in bots}}


def test_save_many_writes_what_save_writes(engine: Engine, keyring: KeyRing) -> None:
    one_by_one = SQLAlchemyInstallationStore(CLIENT_ID, engine, encryption_keys=keyring)
    one_by_one.create_tables()
    bulk = SQLAlchemyInstallationStore(OTHER_CLIENT, engine, encryption_keys=keyring)
    before, after = history()
    for store in (one_by_one, bulk):
        for installation in before:
            store.save(installation)
    generations_before = generations(engine, bulk)
    for installation in history()[1]:
        one_by_one.save(installation)
    assert bulk.save_many(after, chunk_size=4) == len(after)

    assert rows(engine, bulk) == rows(engine, one_by_one)
    for installation in after:
        query = {"enterprise_id": installation.enterprise_id, "team_id": installation.team_id}
        query |= {"is_enterprise_install": installation.is_enterprise_install}
        for user in (installation.user_id, None):
            mine, theirs = bulk.find_installation(**query, user_id=user), one_by_one.find_installation(**query, user_id=user)
            assert mine is not None and theirs is not None
            assert mine.to_dict() | {"installed_at": 0} == theirs.to_dict() | {"installed_at": 0}
    # The blank user token kept the stored one; the person saved twice in a chunk has the later token.
    found = bulk.find_installation(enterprise_id=None, team_id="T1", user_id="U1")
    assert found is not None and found.user_token == "xoxp-user-U1-rotated"
    found = bulk.find_installation(enterprise_id=None, team_id="T1", user_id="U3")
    assert found is not None and (found.user_token, found.user_refresh_token) == ("xoxp-user-U3-second", "xoxe-1-c")
    # Every row saved over has a newer generation: a writer that read it before is fenced off.
    generations_after = generations(engine, bulk)
    assert all(generations_after[key] > generation for key, generation in generations_before.items())
    rows_api = TokenRows(bulk)
    assert not rows_api.write(TokenKey.of(None, "T1", "U1"), generations_before[("T1", "U1")], {"status": "x"}, event="")
    # An event per token saved: issued for a new row, saved for one that was there.
    events = bulk.tables.token_events.c
    with engine.connect() as conn:
        recorded = conn.execute(
            select(events.team_id, events.user_id, events.event).where(events.client_id == OTHER_CLIENT, events.id > 0)
        ).all()
    assert ("T1", "U3", "issued") in recorded and ("T1", "U1", "saved") in recorded and ("T9", "U8", "issued") in recorded
    assert ("T1", "U2", "issued") in recorded
