"""What the web tests share: a running Delegate without the start limit, and counts of what the database holds."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select

from tests.e2e.harness import Delegate, Page


def state_rows(delegate: Delegate) -> int:
    table = delegate.stores.state_store.oauth_states
    with delegate.stores.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def token_tables(delegate: Delegate) -> tuple[list[tuple[object, ...]], ...]:
    """Every row of the installation tables (workspaces, user tokens, token events), to compare before and after."""
    tables = delegate.stores.installation_store.tables
    with delegate.stores.engine.connect() as conn:
        return tuple(
            [tuple(row) for row in conn.execute(select(table)).all()]
            for table in (tables.workspaces, tables.user_tokens, tables.token_events)
        )


def authorize_parameters(page: Page) -> dict[str, list[str]]:
    """The authorize URL's parameters, every value of each."""
    return parse_qs(urlsplit(page.location).query, keep_blank_values=True)


def unlimited(delegate: Delegate) -> Delegate:
    """The same Delegate with the per-address start limit lifted, for tests that open many links."""
    from web.ratelimit import StartLimiter

    assert delegate.wsgi is not None
    delegate.wsgi.start_limiter = StartLimiter(limit=1_000_000)
    return delegate
