"""Many stored people at once: user token rows written in one statement, tokens sealed as the store seals them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert

from stores import SQLAlchemyInstallationStore
from stores.database import write_transaction
from stores.schema import NONE


def seed_people(
    store: SQLAlchemyInstallationStore,
    count: int,
    *,
    now: datetime,
    expires_in: timedelta,
    lifetime: int = 43200,
    team_id: str = "T1",
    prefix: str = "U",
    installed_at: datetime | None = None,
    last_used_at: datetime | None = None,
) -> list[str]:
    """Store `count` people with rotating tokens expiring `expires_in` from now; returns their user ids."""
    users = [f"{prefix}{n:06d}" for n in range(count)]
    rows = [
        {
            "client_id": store.client_id,
            "enterprise_id": NONE,
            "team_id": team_id,
            "user_id": user,
            "is_enterprise_install": False,
            "user_token_enc": store.seal(f"xoxe.xoxp-1-seeded-{user}", NONE, team_id, user, "user_token_enc"),
            "user_refresh_token_enc": store.seal(f"xoxe-1-seeded-{user}", NONE, team_id, user, "user_refresh_token_enc"),
            "user_token_expires_at": now + expires_in,
            "user_scopes": "chat:write",
            "status": "active",
            "refresh_failures": 0,
            "lifetime_seconds": lifetime,
            "generation": 1,
            "installed_at": installed_at or now,
            "updated_at": now,
        }
        for user in users
    ]
    if last_used_at is not None:
        for row in rows:
            row["last_used_at"] = last_used_at
    with write_transaction(store.engine) as conn:
        conn.execute(insert(store.installations), rows)
    return users
