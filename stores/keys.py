"""Key rotation: move one app's stored ciphertexts to the ring's first key, and count ciphertexts per key.

A rotation must survive a rolling restart, where hosts on the old ring and hosts on the new ring serve at once.
A host can only read what a key in its own ring sealed, so the new key is first added last everywhere (every host can
read it, nobody writes with it), then moved first everywhere (new writes use it, hosts still on the previous step can
read them), and only then does ``reencrypt`` move the old rows; ``key_usage`` says when the old key holds nothing.

``reencrypt`` runs under live traffic. It reads a batch without locks, seals the stale fields under the first key,
then writes each row in a short write transaction only if the row still holds the slot generation and the
ciphertexts it read. It never bumps the generation (it changes no token), so a refresh, save or revoke that
commits meanwhile wins: that row is counted as skipped and the next run picks it up. It only selects rows of
``store.client_id`` that still hold a field under another key, so a second run resumes where the first stopped and
the rows of other apps sharing the tables are neither read nor written. A field that does not decrypt is reported
by table, row, field and key id (never its ciphertext) and the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, and_, func, or_, select, union_all, update
from sqlalchemy.engine import Row

from .crypto import ENV_NAME, SEALED_HEAD_LENGTH, DecryptionError, key_id_of_head, sealed_prefix
from .database import write_transaction
from .schema import NONE

if TYPE_CHECKING:
    from .installation_store import SQLAlchemyInstallationStore

__all__ = [
    "NOT_A_CIPHERTEXT",
    "KeyCount",
    "ReencryptProgress",
    "ReencryptReport",
    "UndecryptableField",
    "key_ring_problem",
    "key_usage",
    "reencrypt",
]

# The key_usage entry for stored values that are not Delegate ciphertexts at all.
NOT_A_CIPHERTEXT = "(not a Delegate ciphertext)"


@dataclass(frozen=True)
class _Slot:
    """One table's encrypted columns and the generation counter that fences writes to them."""

    table: Table
    columns: Sequence[str]
    generation: str
    user_bound: bool


def _slots(store: SQLAlchemyInstallationStore) -> list[_Slot]:
    from .installation_store import USER_SECRET_COLUMNS, WORKSPACE_SECRET_COLUMNS

    return [
        _Slot(store.bots, WORKSPACE_SECRET_COLUMNS, "bot_generation", user_bound=False),
        _Slot(store.installations, USER_SECRET_COLUMNS, "generation", user_bound=True),
    ]


@dataclass(frozen=True)
class UndecryptableField:
    """A stored field that would not decrypt: where it is and which key sealed it, never the ciphertext."""

    table: str
    row_id: int
    enterprise_id: str
    team_id: str
    user_id: str
    field: str
    key_id: str | None
    key_in_ring: bool

    def describe(self) -> str:
        where = f"{self.table} row {self.row_id} (team {self.team_id or '-'}, user {self.user_id or '-'}), {self.field}"
        if self.key_id is None:
            return f"{where}: not a Delegate ciphertext"
        if not self.key_in_ring:
            return f"{where}: sealed with key {self.key_id}, which is not in {ENV_NAME}"
        return f"{where}: does not open under key {self.key_id} (altered, or copied from another row or field)"


@dataclass(frozen=True)
class ReencryptReport:
    """What one run of ``reencrypt`` did, and what is left for the next one."""

    fields_rewritten: int = 0
    rows_rewritten: int = 0
    rows_skipped: int = 0  # changed by another writer between our read and our write; the next run picks them up
    undecryptable: tuple[UndecryptableField, ...] = field(default_factory=tuple)
    rows_remaining: int = 0  # rows of this client_id still holding a field under another key after the run


@dataclass(frozen=True)
class ReencryptProgress:
    """Where a run stands after a batch has committed."""

    table: str
    last_id: int
    rows_to_do: int  # rows under another key when the run started
    rows_done: int  # rows read so far, whatever became of them
    report: ReencryptReport  # running totals (rows_remaining is only known at the end)


def _stale(slot: _Slot, primary_prefix: str) -> Any:
    """Rows whose encrypted fields include one not sealed with the primary key."""
    c = slot.table.c
    return or_(*(and_(c[col].is_not(None), ~c[col].startswith(primary_prefix, autoescape=True)) for col in slot.columns))


def _count_stale(store: SQLAlchemyInstallationStore, slots: Sequence[_Slot], primary_prefix: str) -> int:
    counts = [
        select(func.count()).select_from(s.table).where(s.table.c.client_id == store.client_id, _stale(s, primary_prefix))
        for s in slots
    ]
    with store.engine.connect() as conn:
        return sum(int(conn.execute(query).scalar_one()) for query in counts)


def _read_batch(
    store: SQLAlchemyInstallationStore, slot: _Slot, after_id: int, batch_size: int, primary_prefix: str
) -> Sequence[Row[Any]]:
    """The next rows of this client_id, by id, that hold a field under another key (read without locks)."""
    c = slot.table.c
    columns = [c.id, c.enterprise_id, c.team_id, c[slot.generation], *(c[col] for col in slot.columns)]
    if slot.user_bound:
        columns.append(c.user_id)
    query = (
        select(*columns)
        .where(c.client_id == store.client_id, c.id > after_id, _stale(slot, primary_prefix))
        .order_by(c.id)
        .limit(batch_size)
    )
    with store.engine.connect() as conn:
        return conn.execute(query).all()


@dataclass
class _Plan:
    """The new ciphertexts for one row, and what the row must still hold for them to be written."""

    row: Row[Any] = field(repr=False)  # ciphertexts: not secrets, but no reason to print them
    values: dict[str, str] = field(repr=False)


def _plan_row(
    store: SQLAlchemyInstallationStore, slot: _Slot, row: Row[Any], failures: list[UndecryptableField]
) -> _Plan | None:
    keyring = store.keyring
    user = row.user_id if slot.user_bound else NONE
    values: dict[str, str] = {}
    for column in slot.columns:
        ciphertext = getattr(row, column)
        if ciphertext is None:
            continue
        try:
            if not keyring.needs_reencryption(ciphertext):
                continue
            context = store.field_context(row.enterprise_id, row.team_id, user, column)
            sealed = keyring.encrypt(keyring.decrypt(ciphertext, context), context)
        except DecryptionError:
            key_id = key_id_of_head(ciphertext[:SEALED_HEAD_LENGTH])
            failures.append(
                UndecryptableField(
                    table=slot.table.name,
                    row_id=row.id,
                    enterprise_id=row.enterprise_id,
                    team_id=row.team_id,
                    user_id=user,
                    field=column,
                    key_id=key_id,
                    key_in_ring=key_id in keyring.key_ids,
                )
            )
            continue
        assert sealed is not None
        values[column] = sealed
    return _Plan(row, values) if values else None


def _write_batch(store: SQLAlchemyInstallationStore, slot: _Slot, plans: Sequence[_Plan]) -> tuple[int, int, int]:
    """Write the planned rows that nobody changed since we read them; returns (fields, rows written, rows skipped)."""
    c = slot.table.c
    fields = written = skipped = 0
    with write_transaction(store.engine) as conn:
        for plan in plans:
            row = plan.row
            # The generation fences token writes; the ciphertexts too, for fields a save may change without bumping
            # it (the incoming webhook URL). The generation is not bumped: re-encryption changes no token.
            guard = and_(
                c.id == row.id,
                c[slot.generation] == getattr(row, slot.generation),
                *(c[col] == getattr(row, col) for col in plan.values),
            )
            if conn.execute(update(slot.table).where(guard).values(**plan.values)).rowcount:
                fields += len(plan.values)
                written += 1
            else:
                skipped += 1
    return fields, written, skipped


def reencrypt(
    store: SQLAlchemyInstallationStore,
    *,
    batch_size: int = 200,
    on_progress: Callable[[ReencryptProgress], None] | None = None,
) -> ReencryptReport:
    """Re-seal every field of store.client_id that is not under the ring's first key, batch by batch.

    on_progress is called after each batch commits; an exception it raises stops the run, and what was committed
    stays, so running again resumes.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    primary_prefix = sealed_prefix(store.keyring.primary_key_id)
    slots = _slots(store)
    rows_to_do = _count_stale(store, slots, primary_prefix)
    report = ReencryptReport()
    failures: list[UndecryptableField] = []
    rows_done = 0
    for slot in slots:
        last_id = 0
        while True:
            rows = _read_batch(store, slot, last_id, batch_size, primary_prefix)
            if not rows:
                break
            plans = [plan for row in rows if (plan := _plan_row(store, slot, row, failures)) is not None]
            fields, written, skipped = _write_batch(store, slot, plans) if plans else (0, 0, 0)
            last_id = rows[-1].id
            rows_done += len(rows)
            report = replace(
                report,
                fields_rewritten=report.fields_rewritten + fields,
                rows_rewritten=report.rows_rewritten + written,
                rows_skipped=report.rows_skipped + skipped,
                undecryptable=tuple(failures),
            )
            if on_progress is not None:
                on_progress(ReencryptProgress(slot.table.name, last_id, rows_to_do, rows_done, report))
            if len(rows) < batch_size:
                break
    return replace(report, rows_remaining=_count_stale(store, slots, primary_prefix))


@dataclass(frozen=True)
class KeyCount:
    """How many stored ciphertexts of this client_id a key sealed, and whether the ring can open them."""

    ciphertexts: int
    in_ring: bool
    primary: bool = False


def key_usage(store: SQLAlchemyInstallationStore) -> dict[str, KeyCount]:
    """Ciphertexts per key id for store.client_id: every key of the ring in order (zero included), then key ids
    found in the tables that the ring lacks (and NOT_A_CIPHERTEXT for values that are no ciphertext at all)."""
    heads = [
        select(func.substr(s.table.c[col], 1, SEALED_HEAD_LENGTH).label("head")).where(
            s.table.c.client_id == store.client_id, s.table.c[col].is_not(None)
        )
        for s in _slots(store)
        for col in s.columns
    ]
    stored = union_all(*heads).subquery()
    query = select(stored.c.head, func.count()).group_by(stored.c.head)
    with store.engine.connect() as conn:
        counted = conn.execute(query).all()
    ring = store.keyring.key_ids
    per_key: dict[str, int] = dict.fromkeys(ring, 0)
    for head, count in counted:
        key_id = key_id_of_head(head) or NOT_A_CIPHERTEXT
        per_key[key_id] = per_key.get(key_id, 0) + int(count)
    return {
        key_id: KeyCount(ciphertexts=count, in_ring=key_id in ring, primary=key_id == store.keyring.primary_key_id)
        for key_id, count in per_key.items()
    }


CANARY = "delegate-key-canary"  # sealed and opened under a context no token row can have, to prove the ring works


def key_ring_problem(store: SQLAlchemyInstallationStore) -> str | None:
    """Why the ring cannot serve this store's tokens, or None: it must seal and open a canary, and open the newest
    stored ciphertext of each table (two reads by primary key), so a ring lacking the key now in use shows at once.
    The answer names a table, a field and a key id, never a token or a ciphertext."""
    context = store.field_context(NONE, NONE, NONE, "readiness-canary")
    try:
        if store.keyring.decrypt(store.keyring.encrypt(CANARY, context), context) != CANARY:
            return "the key ring does not give back what it sealed"
    except DecryptionError:
        return "the key ring cannot open what it sealed"
    for slot in _slots(store):
        column = slot.columns[0]  # the token itself: every other field of the row was sealed by the same write
        c = slot.table.c
        user = [c.user_id] if slot.user_bound else []
        with store.engine.connect() as conn:
            row = conn.execute(
                select(c.enterprise_id, c.team_id, *user, c[column].label("cipher"))
                .where(c.client_id == store.client_id, c[column].is_not(None))
                .order_by(c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            continue
        user_id = row.user_id if slot.user_bound else NONE
        try:
            store.keyring.decrypt(row.cipher, store.field_context(row.enterprise_id, row.team_id, user_id, column))
        except DecryptionError:
            key_id = key_id_of_head(str(row.cipher)[:SEALED_HEAD_LENGTH])
            if key_id is not None and key_id not in store.keyring.key_ids:
                return f"the newest {column} is sealed with key {key_id}, which is not in {ENV_NAME}"
            return f"the newest {column} does not open under key {key_id or '?'} (altered, or not written for its row)"
    return None
