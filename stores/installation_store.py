"""A drop-in replacement for slack_sdk's SQLAlchemyInstallationStore, with encrypted tokens and current-state rows.

It keeps one row per workspace or org install (bot side) and one row per authorized user (user side); saving
rotated tokens updates those rows in place, and every token event is appended to an audit table without secrets.

Where slack_sdk's store is wrong, this one differs on purpose:
- saving an Installation whose user token is blank (Bolt does this when the person making a request is not the
  installer) keeps the stored user token instead of erasing it;
- after ``delete_bot``, ``find_installation`` no longer returns the bot token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from slack_sdk.oauth.installation_store.installation_store import InstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlalchemy import Connection, Row, and_, delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .crypto import FieldContext, KeyRing
from .database import write_transaction
from .schema import NONE, STATUS_ACTIVE, Tables, build_tables, utcnow

__all__ = ["SQLAlchemyInstallationStore"]

KeyRingSource = KeyRing | str | Sequence[str] | None

# Encrypted columns per table; the name of the column is the "field" bound into the ciphertext.
WORKSPACE_SECRET_COLUMNS = ("bot_token_enc", "bot_refresh_token_enc")
USER_SECRET_COLUMNS = ("user_token_enc", "user_refresh_token_enc", "incoming_webhook_url_enc")
# Each slot's generation counter: bumped by every save, and 1 on a row's first insert.
GENERATION_COLUMNS = ("generation", "bot_generation")


def to_key(value: str | None) -> str:
    """Map an absent enterprise or team id to the stored sentinel."""
    return value or NONE


def from_key(value: str | None) -> str | None:
    """Map the stored sentinel back to None."""
    return value or None


def from_timestamp(value: float | int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def to_timestamp(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def issued_lifetime(expires_at: float | int | None, issued_at: float | None) -> int | None:
    """How long Slack gave a token to live, in seconds, or None when it does not expire (or is unknown)."""
    if expires_at is None or issued_at is None:
        return None
    lifetime = int(expires_at - issued_at)
    # An installation re-saved long after it was issued (an import) says nothing about the lifetime.
    return lifetime if 0 < lifetime <= 7 * 86400 else None


def join_scopes(scopes: Sequence[str] | str | None) -> str | None:
    if scopes is None:
        return None
    if isinstance(scopes, str):
        return scopes
    return ",".join(scopes)


def _keyring_from(source: KeyRingSource) -> KeyRing:
    if isinstance(source, KeyRing):
        return source
    if source is None:
        return KeyRing.from_env()
    if isinstance(source, str):
        return KeyRing.from_string(source)
    return KeyRing.from_keys(source)


class SQLAlchemyInstallationStore(InstallationStore):
    """Installation store on SQLAlchemy 2.x; change one import to switch a Bolt app over from slack_sdk's."""

    default_bots_table_name: str = "delegate_workspaces"
    default_installations_table_name: str = "delegate_user_tokens"
    default_token_events_table_name: str = "delegate_token_events"

    def __init__(
        self,
        client_id: str,
        engine: Engine,
        *,
        bots_table_name: str = default_bots_table_name,
        installations_table_name: str = default_installations_table_name,
        token_events_table_name: str = default_token_events_table_name,
        logger: logging.Logger | None = None,
        encryption_keys: KeyRingSource = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.client_id = client_id
        self.clock = clock  # the time rows and audit events are stamped with (the sandbox's, in sandbox mode)
        self.engine = engine
        self.keyring = _keyring_from(encryption_keys)
        self.tables: Tables = build_tables(
            workspaces_name=bots_table_name,
            user_tokens_name=installations_table_name,
            token_events_name=token_events_table_name,
        )
        self.metadata = self.tables.metadata
        self.bots = self.tables.workspaces
        self.installations = self.tables.user_tokens
        self._logger = logger or logging.getLogger(__name__)
        # Set by the token manager: called with each Installation about to be returned, may refresh its tokens.
        self.before_return: Callable[[Installation], Installation] | None = None
        self.before_return_bot: Callable[[Bot], Bot | None] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id!r}, engine={self.engine.url!r}, keyring={self.keyring!r})"

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    def create_tables(self) -> None:
        """Create the tables if they do not exist (Alembic migrations do the same for the default names)."""
        from .schema.tables import refresh_budget

        self.metadata.create_all(self.engine)
        refresh_budget.create(self.engine, checkfirst=True)  # the refresh budget its token manager draws from

    # -- encryption helpers -------------------------------------------------------------------------------

    def field_context(self, enterprise_key: str, team_key: str, user_id: str, column: str) -> FieldContext:
        return FieldContext(self.client_id, enterprise_key, team_key, user_id, column)

    def seal(self, value: str | None, enterprise_key: str, team_key: str, user_id: str, column: str) -> str | None:
        return self.keyring.encrypt(value, self.field_context(enterprise_key, team_key, user_id, column))

    def unseal(self, row: Any, column: str, user_id: str | None = None) -> str | None:
        """Decrypt one encrypted column of a workspace or user row."""
        user = row.user_id if user_id is None and "user_id" in row._fields else (user_id or NONE)
        return self.keyring.decrypt(getattr(row, column), self.field_context(row.enterprise_id, row.team_id, user, column))

    # -- audit --------------------------------------------------------------------------------------------

    def record_event(
        self,
        conn: Connection,
        *,
        enterprise_key: str,
        team_key: str,
        user_id: str | None,
        token_kind: str,
        event: str,
        detail: str | None = None,
    ) -> None:
        """Append one token event to the audit table (never a secret)."""
        conn.execute(
            insert(self.tables.token_events).values(
                occurred_at=self.clock(),
                client_id=self.client_id,
                enterprise_id=enterprise_key,
                team_id=team_key,
                user_id=user_id or NONE,
                token_kind=token_kind,
                event=event,
                detail=(detail or None) and detail[:200],
            )
        )

    # -- save ---------------------------------------------------------------------------------------------

    def save(self, installation: Installation) -> None:
        """Upsert the workspace row and the installing user's row; a blank user token never erases a stored one."""
        with write_transaction(self.engine) as conn:
            self._upsert_workspace(conn, installation.to_bot() if installation.bot_token else None, installation)
            self._upsert_user(conn, installation)

    def save_bot(self, bot: Bot) -> None:
        """Upsert the bot side of a workspace or org install."""
        with write_transaction(self.engine) as conn:
            self._upsert_workspace(conn, bot if bot.bot_token else None, None)

    def _workspace_where(self, enterprise_key: str, team_key: str) -> Any:
        c = self.bots.c
        return and_(c.client_id == self.client_id, c.enterprise_id == enterprise_key, c.team_id == team_key)

    def _user_where(self, enterprise_key: str, team_key: str, user_id: str | None = None) -> Any:
        c = self.installations.c
        clause = and_(c.client_id == self.client_id, c.enterprise_id == enterprise_key, c.team_id == team_key)
        return clause if user_id is None else and_(clause, c.user_id == user_id)

    def _upsert(self, conn: Connection, table: Any, where: Any, changes: dict[str, Any], new_row: dict[str, Any]) -> bool:
        """Update the row matching where, or insert it; returns True when a row was inserted."""
        if conn.execute(update(table).where(where).values(**changes)).rowcount:
            return False
        try:
            with conn.begin_nested():
                first = {k: (1 if k in GENERATION_COLUMNS else v) for k, v in changes.items()}
                conn.execute(insert(table).values(**new_row, **first))
            return True
        except IntegrityError:  # another process inserted it between our update and insert
            conn.execute(update(table).where(where).values(**changes))
            return False

    def _upsert_workspace(self, conn: Connection, bot: Bot | None, installation: Installation | None) -> None:
        source: Any = bot if bot is not None else installation
        if source is None:
            return
        ent, team = to_key(source.enterprise_id), to_key(source.team_id)
        now = self.clock()
        changes: dict[str, Any] = {"updated_at": now, "is_enterprise_install": bool(source.is_enterprise_install)}
        for name in ("app_id", "enterprise_name", "team_name"):
            if getattr(source, name, None) is not None:
                changes[name] = getattr(source, name)
        if installation is not None and installation.enterprise_url is not None:
            changes["enterprise_url"] = installation.enterprise_url
        if bot is not None:
            changes.update(
                bot_token_enc=self.seal(bot.bot_token, ent, team, NONE, "bot_token_enc"),
                bot_refresh_token_enc=self.seal(bot.bot_refresh_token, ent, team, NONE, "bot_refresh_token_enc"),
                bot_token_expires_at=from_timestamp(bot.bot_token_expires_at),
                bot_id=bot.bot_id,
                bot_user_id=bot.bot_user_id,
                bot_scopes=join_scopes(bot.bot_scopes),
                bot_installed_at=from_timestamp(bot.installed_at),
                bot_status=STATUS_ACTIVE,
                bot_lifetime_seconds=issued_lifetime(bot.bot_token_expires_at, bot.installed_at),
                bot_refresh_failures=0,
                bot_refresh_retry_at=None,
                bot_refresh_owner=None,
                bot_refresh_sent_at=None,
                # A save is the newest truth: it fences off every writer that read the row before it.
                bot_generation=self.bots.c.bot_generation + 1,
            )
            if installation is not None:
                changes["installer_user_id"] = installation.user_id
        inserted = self._upsert(
            conn,
            self.bots,
            self._workspace_where(ent, team),
            changes,
            {"client_id": self.client_id, "enterprise_id": ent, "team_id": team, "created_at": now},
        )
        if bot is not None:
            self.record_event(
                conn,
                enterprise_key=ent,
                team_key=team,
                user_id=None,
                token_kind="bot",
                event="issued" if inserted else "saved",
            )

    def _upsert_user(self, conn: Connection, installation: Installation) -> None:
        ent, team, user = to_key(installation.enterprise_id), to_key(installation.team_id), installation.user_id
        now = self.clock()
        changes: dict[str, Any] = {
            "updated_at": now,
            "installed_at": from_timestamp(installation.installed_at),
            "is_enterprise_install": bool(installation.is_enterprise_install),
        }
        for name in ("app_id", "token_type", "enterprise_url"):
            if getattr(installation, name, None) is not None:
                changes[name] = getattr(installation, name)
        if installation.incoming_webhook_url is not None:
            changes.update(
                incoming_webhook_url_enc=self.seal(
                    installation.incoming_webhook_url, ent, team, user, "incoming_webhook_url_enc"
                ),
                incoming_webhook_channel=installation.incoming_webhook_channel,
                incoming_webhook_channel_id=installation.incoming_webhook_channel_id,
                incoming_webhook_configuration_url=installation.incoming_webhook_configuration_url,
            )
        has_user_token = installation.user_token is not None
        if has_user_token:
            changes.update(
                user_token_enc=self.seal(installation.user_token, ent, team, user, "user_token_enc"),
                user_refresh_token_enc=self.seal(installation.user_refresh_token, ent, team, user, "user_refresh_token_enc"),
                user_token_expires_at=from_timestamp(installation.user_token_expires_at),
                user_scopes=join_scopes(installation.user_scopes),
                status=STATUS_ACTIVE,
                status_reason=None,
                needed_scopes=None,
                provided_scopes=None,
                refresh_failures=0,
                refresh_retry_at=None,
                refresh_owner=None,
                refresh_sent_at=None,
                lifetime_seconds=issued_lifetime(installation.user_token_expires_at, installation.installed_at),
                refresh_ahead=True,  # a grant counts as a use (stores.sweep_claims)
                # A save (a new grant, a reconnect) is the newest truth: it fences off every writer that read before it.
                generation=self.installations.c.generation + 1,
            )
        inserted = self._upsert(
            conn,
            self.installations,
            self._user_where(ent, team, user),
            changes,
            {"client_id": self.client_id, "enterprise_id": ent, "team_id": team, "user_id": user},
        )
        if has_user_token:
            self.record_event(
                conn,
                enterprise_key=ent,
                team_key=team,
                user_id=user,
                token_kind="user",
                event="issued" if inserted else "saved",
            )

    # -- find ---------------------------------------------------------------------------------------------

    @staticmethod
    def _team_key(team_id: str | None, is_enterprise_install: bool | None) -> str:
        return NONE if is_enterprise_install or team_id is None else team_id

    def find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        """Return the workspace's (or org's) bot, or None when there is none or it was deleted."""
        ent, team = to_key(enterprise_id), self._team_key(team_id, is_enterprise_install)
        query = select(self.bots).where(self._workspace_where(ent, team), self.bots.c.bot_token_enc.is_not(None))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        bot = self.bot_from_row(row)
        return bot if self.before_return_bot is None else self.before_return_bot(bot)

    def find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """Return the user's installation, or without user_id the latest one in the workspace, with its bot."""
        ent, team = to_key(enterprise_id), self._team_key(team_id, is_enterprise_install)
        u, w = self.installations, self.bots
        joined = u.outerjoin(
            w, and_(w.c.client_id == u.c.client_id, w.c.enterprise_id == u.c.enterprise_id, w.c.team_id == u.c.team_id)
        )
        query = (
            select(u, *[col.label(f"w_{col.name}") for col in w.c])
            .select_from(joined)
            .where(self._user_where(ent, team, user_id))
            .order_by(u.c.installed_at.desc(), u.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        installation = self.installation_from_row(row)
        if self.before_return is not None:
            installation = self.before_return(installation)
        return installation

    def bot_from_row(self, row: Row[Any]) -> Bot:
        return Bot(
            app_id=row.app_id,
            enterprise_id=from_key(row.enterprise_id),
            enterprise_name=row.enterprise_name,
            team_id=from_key(row.team_id),
            team_name=row.team_name,
            bot_token=self.unseal(row, "bot_token_enc", NONE),  # type: ignore[arg-type]
            bot_refresh_token=self.unseal(row, "bot_refresh_token_enc", NONE),
            bot_token_expires_at=to_timestamp(row.bot_token_expires_at),
            bot_id=row.bot_id,
            bot_user_id=row.bot_user_id,
            bot_scopes=row.bot_scopes or "",
            is_enterprise_install=row.is_enterprise_install,
            installed_at=row.bot_installed_at or row.created_at,
        )

    def installation_from_row(self, row: Row[Any]) -> Installation:
        """Build an Installation from a user row joined with its workspace row (columns prefixed w_)."""
        m = row._mapping
        has_bot = m.get("w_bot_token_enc") is not None
        ent, team, user = row.enterprise_id, row.team_id, row.user_id

        def bot_secret(column: str) -> str | None:
            if not has_bot:
                return None
            return self.keyring.decrypt(m[f"w_{column}"], self.field_context(ent, team, NONE, column))

        active = row.status == STATUS_ACTIVE
        return Installation(
            app_id=row.app_id or m.get("w_app_id"),
            enterprise_id=from_key(ent),
            enterprise_name=m.get("w_enterprise_name"),
            enterprise_url=row.enterprise_url or m.get("w_enterprise_url"),
            team_id=from_key(team),
            team_name=m.get("w_team_name"),
            bot_token=bot_secret("bot_token_enc"),
            bot_id=m.get("w_bot_id") if has_bot else None,
            bot_user_id=m.get("w_bot_user_id") if has_bot else None,
            bot_scopes=(m.get("w_bot_scopes") or "") if has_bot else "",
            bot_refresh_token=bot_secret("bot_refresh_token_enc"),
            bot_token_expires_at=to_timestamp(m.get("w_bot_token_expires_at")) if has_bot else None,
            user_id=user,
            user_token=self.unseal(row, "user_token_enc"),
            user_scopes=row.user_scopes or "",
            # A refresh token that Slack no longer honours is not handed out, so no caller retries it.
            user_refresh_token=self.unseal(row, "user_refresh_token_enc") if active else None,
            user_token_expires_at=to_timestamp(row.user_token_expires_at),
            incoming_webhook_url=self.unseal(row, "incoming_webhook_url_enc"),
            incoming_webhook_channel=row.incoming_webhook_channel,
            incoming_webhook_channel_id=row.incoming_webhook_channel_id,
            incoming_webhook_configuration_url=row.incoming_webhook_configuration_url,
            is_enterprise_install=row.is_enterprise_install,
            token_type=row.token_type,
            installed_at=row.installed_at,
        )

    # -- delete -------------------------------------------------------------------------------------------
    #
    # Every delete is one conditional statement in a write transaction, so it is idempotent (a second delete, or a
    # delete racing a revocation event, changes nothing and never fails) and on SQLite never upgrades a read lock.
    # `installed_at_or_before` keeps a grant saved after the moment given: a revocation event that arrives after the
    # person reconnected must not erase the new connection.

    def delete_bot(
        self, *, enterprise_id: str | None, team_id: str | None, installed_at_or_before: datetime | None = None
    ) -> None:
        """Forget the bot token of a workspace or org (unless installed after the given moment); its users' tokens stay."""
        ent, team = to_key(enterprise_id), to_key(team_id)
        c = self.bots.c
        cleared = {
            "bot_token_enc": None,
            "bot_refresh_token_enc": None,
            "bot_token_expires_at": None,
            "bot_status": "revoked",
            "bot_refresh_owner": None,
            "bot_refresh_sent_at": None,
            "bot_generation": c.bot_generation + 1,
            "updated_at": self.clock(),
        }
        where = [self._workspace_where(ent, team), c.bot_token_enc.is_not(None)]
        if installed_at_or_before is not None:
            where.append(func.coalesce(c.bot_installed_at, c.created_at) <= installed_at_or_before)
        with write_transaction(self.engine) as conn:
            result = conn.execute(update(self.bots).where(*where).values(**cleared))
            if result.rowcount:
                self.record_event(conn, enterprise_key=ent, team_key=team, user_id=None, token_kind="bot", event="deleted")

    def delete_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        installed_at_or_before: datetime | None = None,
    ) -> None:
        """Delete one user's tokens, or without user_id every user's tokens in the workspace or org."""
        self.delete_user_tokens(
            enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, installed_at_or_before=installed_at_or_before
        )

    def delete_user_tokens(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        installed_at_or_before: datetime | None = None,
        reason: str | None = None,
    ) -> list[str]:
        """Delete user rows as delete_installation does; returns the ids of the users this call deleted."""
        ent, team = to_key(enterprise_id), to_key(team_id)
        u = self.installations
        where = [self._user_where(ent, team, user_id)]
        if installed_at_or_before is not None:
            where.append(u.c.installed_at <= installed_at_or_before)
        with write_transaction(self.engine) as conn:
            users = list(conn.execute(delete(u).where(*where).returning(u.c.user_id)).scalars().all())
            for user in users:
                self.record_event(
                    conn, enterprise_key=ent, team_key=team, user_id=user, token_kind="user", event="deleted", detail=reason
                )
        return users

    def delete_all(
        self, *, enterprise_id: str | None, team_id: str | None, installed_at_or_before: datetime | None = None
    ) -> None:
        """Forget the bot and every user of a workspace or org (keeping grants saved after the given moment)."""
        self.delete_bot(enterprise_id=enterprise_id, team_id=team_id, installed_at_or_before=installed_at_or_before)
        self.delete_installation(enterprise_id=enterprise_id, team_id=team_id, installed_at_or_before=installed_at_or_before)

    def prune_events(self, older_than: datetime) -> int:
        """Delete audit events that occurred before the given moment; returns how many were deleted."""
        events = self.tables.token_events
        with write_transaction(self.engine) as conn:
            deleted = conn.execute(
                delete(events).where(events.c.client_id == self.client_id, events.c.occurred_at < older_than)
            )
        return int(deleted.rowcount)

    # -- adoption ---------------------------------------------------------------------------------------------

    def import_from_slack_sdk(self, source: Any) -> tuple[int, int]:
        """Copy everything a slack_sdk SQLAlchemyInstallationStore holds for this client id into this store, never
        over a token Delegate holds newer (``stores.slack_sdk_import``); returns (installations, bots) imported."""
        from .slack_sdk_import import import_from_slack_sdk

        report = import_from_slack_sdk(self, source)
        return report.installations, report.bots

    # -- key rotation ---------------------------------------------------------------------------------------

    def reencrypt_all(self, batch_size: int = 200) -> int:
        """Re-encrypt every token of this client id not sealed with the primary key; returns how many fields were
        rewritten (``stores.keys.reencrypt`` gives the full report)."""
        from .keys import reencrypt

        return reencrypt(self, batch_size=batch_size).fields_rewritten
