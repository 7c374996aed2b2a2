"""Delegate's database schema."""

from .tables import (
    NONE,
    STATUS_ACTIVE,
    STATUS_NEEDS_REAUTH,
    STATUS_REVOKED,
    Tables,
    build_oauth_states_table,
    build_tables,
    default_tables,
    metadata,
    oauth_states,
)
from .types import UTCDateTime, utcnow

__all__ = [
    "NONE",
    "STATUS_ACTIVE",
    "STATUS_NEEDS_REAUTH",
    "STATUS_REVOKED",
    "Tables",
    "UTCDateTime",
    "build_oauth_states_table",
    "build_tables",
    "default_tables",
    "metadata",
    "oauth_states",
    "utcnow",
]
