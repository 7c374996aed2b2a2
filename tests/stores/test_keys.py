"""Key rotation survives a rolling restart: re-encryption is scoped, resumable, fenced by generations, and reported."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Row, select, update
from sqlalchemy.engine import Engine

from app import cli
from stores import DecryptionError, KeyRing, SQLAlchemyInstallationStore, generate_key
from stores import keys as keys_module
from stores.keys import NOT_A_CIPHERTEXT, ReencryptProgress, key_usage, reencrypt
from stores.schema import NONE
from tests.conftest import CLIENT_ID
from tests.stores.test_crypto import save_two_users
from tests.stores.test_installation_store import T0, workspace_install

OTHER_CLIENT_ID = "999.888"


def key_id(key: str) -> str:
    return KeyRing.from_string(key).primary_key_id


def store_with(engine: Engine, keys: Sequence[str], client_id: str = CLIENT_ID) -> SQLAlchemyInstallationStore:
    store = SQLAlchemyInstallationStore(client_id, engine, encryption_keys=list(keys))
    store.create_tables()
    return store


def save_users(store: SQLAlchemyInstallationStore, users: Sequence[str], *, bot: bool = True) -> None:
    """Save each user in team T1 with a token and a refresh token; the first one also installs the bot."""
    for i, user in enumerate(users):
        installation = workspace_install(user, bot=bot and i == 0, installed_at=T0 + i)
        installation.user_refresh_token = f"xoxe-1-refresh-{user}"
        store.save(installation)


def stored_rows(engine: Engine, store: SQLAlchemyInstallationStore) -> dict[tuple[str, int], dict[str, Any]]:
    """Every row of both tables, every client id, as stored."""
    rows = {}
    with engine.connect() as conn:
        for table in (store.bots, store.installations):
            for row in conn.execute(select(table)).mappings():
                rows[(table.name, row["id"])] = dict(row)
    return rows


def user_token(store: SQLAlchemyInstallationStore, user: str) -> str | None:
    return store.find_installation(enterprise_id=None, team_id="T1", user_id=user).user_token


def test_reencrypt_moves_only_this_client_and_other_apps_rows_do_not_stop_it(engine: Engine) -> None:
    old, new, theirs = generate_key(), generate_key(), generate_key()
    # Another app shares the tables, same team, and holds the lowest ids under a key we do not have.
    other = store_with(engine, [theirs], OTHER_CLIENT_ID)
    save_users(other, ["U1", "U2"])
    save_users(store_with(engine, [old]), ["U1", "U2", "U3"])
    before = stored_rows(engine, other)

    rotating = store_with(engine, [new, old])
    report = reencrypt(rotating, batch_size=1)

    assert (report.fields_rewritten, report.rows_rewritten, report.rows_skipped) == (7, 4, 0)  # bot + 3 x (token, refresh)
    assert report.undecryptable == () and report.rows_remaining == 0
    after = stored_rows(engine, other)
    for key, row in before.items():
        if row["client_id"] == OTHER_CLIENT_ID:
            assert after[key] == row
        else:
            generation = "generation" if "user_id" in row else "bot_generation"
            assert after[key][generation] == row[generation], "re-encryption changes no token: the generation stays"
    assert user_token(other, "U2") == "xoxp-user-U2"
    only_new = store_with(engine, [new])
    assert [user_token(only_new, u) for u in ("U1", "U2", "U3")] == ["xoxp-user-U1", "xoxp-user-U2", "xoxp-user-U3"]
    assert key_usage(rotating)[key_id(old)].ciphertexts == 0
    assert rotating.reencrypt_all() == 0


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_and_the_second_run_only_touches_what_is_left(engine: Engine) -> None:
    old, new = generate_key(), generate_key()
    save_users(store_with(engine, [old]), ["U1", "U2", "U3", "U4", "U5", "U6"])
    rotating = store_with(engine, [new, old])
    seen: list[ReencryptProgress] = []

    def stop_after_two_batches(progress: ReencryptProgress) -> None:
        seen.append(progress)
        if len(seen) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        reencrypt(rotating, batch_size=2, on_progress=stop_after_two_batches)
    # the bot row (one batch of its own), then U1 and U2
    assert [(p.table, p.rows_done, p.rows_to_do) for p in seen] == [
        ("delegate_workspaces", 1, 7),
        ("delegate_user_tokens", 3, 7),
    ]
    assert seen[-1].report.rows_rewritten == 3
    moved = stored_rows(engine, rotating)
    assert key_usage(rotating)[key_id(old)].ciphertexts == 8  # U3..U6, token and refresh token

    progress: list[ReencryptProgress] = []
    report = reencrypt(rotating, batch_size=2, on_progress=progress.append)
    assert (report.fields_rewritten, report.rows_rewritten, report.rows_remaining) == (8, 4, 0)
    assert [(p.table, p.rows_done, p.rows_to_do) for p in progress] == [
        ("delegate_user_tokens", 2, 4),
        ("delegate_user_tokens", 4, 4),
    ]
    after = stored_rows(engine, rotating)
    for key, row in moved.items():
        if row.get("user_id") in ("U1", "U2") or "user_id" not in row:
            assert after[key] == row, "a row already under the new key is not rewritten"

    again = reencrypt(rotating, batch_size=2)
    assert (again.fields_rewritten, again.rows_rewritten, again.rows_skipped, again.rows_remaining) == (0, 0, 0, 0)


def test_an_undecryptable_field_is_reported_by_key_id_and_the_rest_still_move(engine: Engine) -> None:
    old, new, lost = generate_key(), generate_key(), generate_key()
    writer = store_with(engine, [old])
    save_users(writer, ["U1"])
    save_users(store_with(engine, [lost]), ["U2"], bot=False)  # sealed with a key since dropped from the ring
    save_users(writer, ["U3", "U4"], bot=False)
    u = writer.installations.c
    with engine.begin() as conn:  # U3's token replaced by U1's: it no longer opens for U3's row
        stolen = conn.execute(select(u.user_token_enc).where(u.user_id == "U1")).scalar_one()
        conn.execute(update(writer.installations).where(u.user_id == "U3").values(user_token_enc=stolen))
    everything = repr(stored_rows(engine, writer))

    rotating = store_with(engine, [new, old])
    report = reencrypt(rotating, batch_size=1)

    failures = {(f.user_id, f.field): f for f in report.undecryptable}
    assert set(failures) == {("U2", "user_token_enc"), ("U2", "user_refresh_token_enc"), ("U3", "user_token_enc")}
    assert failures[("U2", "user_token_enc")].key_id == key_id(lost)
    assert not failures[("U2", "user_token_enc")].key_in_ring
    assert failures[("U3", "user_token_enc")].key_id == key_id(old) and failures[("U3", "user_token_enc")].key_in_ring
    assert key_id(lost) in failures[("U2", "user_token_enc")].describe()
    for failure in report.undecryptable:
        text = failure.describe()
        assert "enc1." not in text and "xox" not in text
        assert not any(len(part) > 20 and part in everything for part in text.split())
    # bot, U1 (token, refresh), U3's refresh token, U4 (token, refresh): the run went on past every failure
    assert (report.fields_rewritten, report.rows_rewritten, report.rows_remaining) == (6, 4, 2)
    assert user_token(store_with(engine, [new]), "U4") == "xoxp-user-U4"
    with pytest.raises(DecryptionError):
        user_token(rotating, "U3")


@pytest.mark.parametrize("slot", ["user", "bot"])
@pytest.mark.parametrize("writer", ["refresh", "generation only"])
def test_a_write_committed_between_the_read_and_the_write_wins(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, slot: str, writer: str
) -> None:
    old, new = generate_key(), generate_key()
    save_users(store_with(engine, [old]), ["U1"])
    rotating = store_with(engine, [new, old])
    table, generation, user = (
        (rotating.installations, "generation", "U1") if slot == "user" else (rotating.bots, "bot_generation", NONE)
    )
    token, refresh = ("user_token_enc", "user_refresh_token_enc") if slot == "user" else ("bot_token_enc", None)
    real_read = keys_module._read_batch
    interfered: list[int] = []

    def read_then_another_host_writes(*args: Any) -> Sequence[Row[Any]]:
        rows = real_read(*args)
        if args[1].table is table and rows and not interfered:
            # Another host's refresh commits on its own connection after we read and before we write.
            values: dict[str, Any] = {generation: table.c[generation] + 1}
            if writer == "refresh":
                values[token] = rotating.seal("xoxp-refreshed", NONE, "T1", user, token)
                if refresh:
                    values[refresh] = rotating.seal("xoxe-1-refreshed", NONE, "T1", user, refresh)
            with engine.begin() as conn:
                conn.execute(update(table).where(table.c.id == rows[0].id).values(**values))
            interfered.append(rows[0].id)
        return rows

    monkeypatch.setattr(keys_module, "_read_batch", read_then_another_host_writes)
    with engine.connect() as conn:
        generation_before = conn.execute(select(table.c[generation])).scalar_one()
    report = reencrypt(rotating)

    assert interfered and report.rows_skipped == 1
    with engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == interfered[0])).one()
    assert getattr(row, generation) == generation_before + 1, "re-encryption neither overwrote nor bumped the generation"
    if writer == "refresh":
        assert rotating.unseal(row, token, user) == "xoxp-refreshed"
        if refresh:
            assert rotating.unseal(row, refresh, user) == "xoxe-1-refreshed"
        assert report.rows_remaining == 0
    else:
        assert report.rows_remaining == 1
        monkeypatch.setattr(keys_module, "_read_batch", real_read)
        next_run = reencrypt(rotating)
        assert (next_run.rows_rewritten, next_run.rows_skipped, next_run.rows_remaining) == (1, 0, 0)
    only_new = store_with(engine, [new])
    expected = "xoxp-refreshed" if writer == "refresh" else ("xoxp-user-U1" if slot == "user" else "xoxb-bot-T1")
    if slot == "user":
        assert user_token(only_new, "U1") == expected
    else:
        assert only_new.find_bot(enterprise_id=None, team_id="T1").bot_token == expected


def test_the_rolling_restart_order(engine: Engine) -> None:
    old, new = generate_key(), generate_key()
    before_roll = store_with(engine, [old])
    step_1 = store_with(engine, [old, new])  # new key appended last on every host
    step_2 = store_with(engine, [new, old])  # then moved first

    save_users(step_1, ["U1"])  # written under the old key: every host reads it
    assert user_token(before_roll, "U1") == user_token(step_2, "U1") == "xoxp-user-U1"
    save_users(step_2, ["U2"], bot=False)  # written under the new key by a host already at step 2...
    assert user_token(step_1, "U2") == "xoxp-user-U2"  # ...is read by a host still at step 1,
    with pytest.raises(DecryptionError, match="not in TOKEN_ENCRYPTION_KEYS"):
        user_token(before_roll, "U2")  # but not by one that skipped step 1: that is why step 1 comes first

    assert reencrypt(step_2).rows_remaining == 0
    usage = key_usage(step_2)
    assert usage[key_id(old)].ciphertexts == 0 and usage[key_id(new)].primary
    after_roll = store_with(engine, [new])  # the old key dropped
    assert [user_token(after_roll, u) for u in ("U1", "U2")] == ["xoxp-user-U1", "xoxp-user-U2"]
    assert after_roll.find_bot(enterprise_id=None, team_id="T1").bot_token == "xoxb-bot-T1"


def test_key_usage_counts_this_clients_ciphertexts_per_key_and_flags_keys_missing_from_the_ring(engine: Engine) -> None:
    old, new, lost, theirs = generate_key(), generate_key(), generate_key(), generate_key()
    save_two_users(store_with(engine, [old]))  # bot; U1 token, refresh, webhook; U2 token
    save_users(store_with(engine, [new, old]), ["U3"], bot=False)
    save_users(store_with(engine, [lost]), ["U4"], bot=False)
    save_users(store_with(engine, [theirs], OTHER_CLIENT_ID), ["U1", "U2"])
    rotating = store_with(engine, [new, old])
    u = rotating.installations.c
    with engine.begin() as conn:
        conn.execute(update(rotating.installations).where(u.user_id == "U2").values(user_token_enc="plain text"))

    usage = key_usage(rotating)

    assert list(usage)[:2] == [key_id(new), key_id(old)]
    assert {k: (v.ciphertexts, v.in_ring, v.primary) for k, v in usage.items()} == {
        key_id(new): (2, True, True),
        key_id(old): (4, True, False),
        key_id(lost): (2, False, False),
        NOT_A_CIPHERTEXT: (1, False, False),
    }


# -- the commands ----------------------------------------------------------------------------------------------


def use(monkeypatch: pytest.MonkeyPatch, database_url: str, keys: Sequence[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", ",".join(keys))


def test_keys_status_lists_the_ring_in_order_with_ciphertexts_per_key(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = generate_key(), generate_key()
    save_two_users(store_with(engine, [old]))
    use(monkeypatch, database_url, [new, old])

    result = CliRunner().invoke(cli, ["keys", "status"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["1.", key_id(new), "primary", "0", "ciphertext(s)"]
    assert lines[2].split() == ["2.", key_id(old), "5", "ciphertext(s)"]
    assert "run `keys reencrypt`" in result.stdout
    assert old not in result.output and new not in result.output and "enc1." not in result.output

    assert CliRunner().invoke(cli, ["keys", "reencrypt"]).exit_code == 0
    done = CliRunner().invoke(cli, ["keys", "status"])
    assert done.exit_code == 0
    assert done.stdout.splitlines()[2].split() == ["2.", key_id(old), "0", "ciphertext(s)"]
    assert f"No ciphertext under {key_id(old)}" in done.stdout


def test_keys_status_warns_and_fails_when_a_row_uses_a_key_missing_from_the_ring(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, lost = generate_key(), generate_key()
    save_users(store_with(engine, [kept]), ["U1"])
    save_users(store_with(engine, [lost]), ["U2"], bot=False)
    use(monkeypatch, database_url, [kept])

    result = CliRunner().invoke(cli, ["keys", "status"])

    assert result.exit_code == 1
    assert f"{key_id(lost)}  2 ciphertext(s)" in result.stdout
    assert "Warning: 2 stored ciphertext(s) use a key not in TOKEN_ENCRYPTION_KEYS" in result.stderr
    assert key_id(lost) in result.stderr
    assert lost not in result.output and kept not in result.output and "Traceback" not in result.output


def test_keys_reencrypt_prints_progress_per_batch_and_one_summary_line(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = generate_key(), generate_key()
    save_users(store_with(engine, [old]), ["U1", "U2", "U3"])
    use(monkeypatch, database_url, [new, old])

    result = CliRunner().invoke(cli, ["keys", "reencrypt", "--batch-size", "2", "--progress"])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"re-encrypted 7 token field(s) in 4 row(s) under key {key_id(new)}; 0 row(s) changed meanwhile, "
        "0 field(s) could not be decrypted, 0 row(s) left under other keys"
    ]
    assert result.stderr.splitlines() == [
        "delegate_workspaces: 1/4 row(s) read, 1 rewritten, 0 changed meanwhile, 0 field(s) undecryptable",
        "delegate_user_tokens: 3/4 row(s) read, 3 rewritten, 0 changed meanwhile, 0 field(s) undecryptable",
        "delegate_user_tokens: 4/4 row(s) read, 4 rewritten, 0 changed meanwhile, 0 field(s) undecryptable",
    ]
    quiet = CliRunner().invoke(cli, ["keys", "reencrypt"])  # stderr is no terminal here: no progress
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout.startswith("re-encrypted 0 token field(s) in 0 row(s)")


def test_keys_reencrypt_fails_when_rows_cannot_be_decrypted_and_names_their_key(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new, lost = generate_key(), generate_key(), generate_key()
    save_users(store_with(engine, [old]), ["U1"])
    save_users(store_with(engine, [lost]), ["U2"], bot=False)
    use(monkeypatch, database_url, [new, old])

    result = CliRunner().invoke(cli, ["keys", "reencrypt", "--client-id", CLIENT_ID])

    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 1
    assert "re-encrypted 3 token field(s) in 2 row(s)" in result.stdout
    assert "2 field(s) could not be decrypted, 1 row(s) left under other keys" in result.stdout
    assert f"sealed with key {key_id(lost)}, which is not in TOKEN_ENCRYPTION_KEYS" in result.stderr
    assert "user U2" in result.stderr
    assert "enc1." not in result.output and "xox" not in result.output
    assert not any(key in result.output for key in (old, new, lost))
