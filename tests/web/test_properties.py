"""Whatever a browser sends to the OAuth pages, Delegate answers with a 4xx or a redirect, never a 5xx or a traceback,
and writes nothing but the one state row a good start link issues."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from listeners.manifest import user_scopes
from tests.e2e.harness import Delegate, fetch, running_delegate
from tests.web.support import authorize_parameters, state_rows, token_tables, unlimited

EXAMPLES = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# Any text a URL can carry once encoded (lone surrogates cannot be encoded at all, so no browser can send them).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
# What a Cookie header can hold: http.client (like a browser) refuses control characters there.
COOKIE_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=300)
START_HEADERS = {"content-type", "location", "set-cookie", "cache-control", "content-length", "date", "server"}


class _Problems(logging.Handler):
    """Collects every log record that is an error or carries a traceback, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture(scope="module")
def delegate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delegate]:
    with running_delegate(tmp_path_factory.mktemp("properties")) as running:
        yield unlimited(running)


@pytest.fixture(scope="module")
def problems() -> Iterator[_Problems]:
    handler = _Problems()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def _query(params: dict[str, str | None]) -> str:
    present = [(name, value) for name, value in params.items() if value is not None]
    return ("?" + urlencode(present)) if present else ""


@EXAMPLES
@given(
    code=st.none() | TEXT | st.just("1234.5678.abcdef"),
    state=st.none() | TEXT | st.just("issued"),
    error=st.none() | TEXT | st.sampled_from(["access_denied", "invalid_client_id", "storage_error"]),
    cookie=st.none() | COOKIE_TEXT | st.just("issued"),
)
def test_the_callback_never_fails_and_never_writes_without_consent(
    delegate: Delegate, problems: _Problems, code: str | None, state: str | None, error: str | None, cookie: str | None
) -> None:
    issued_cookie = None
    if state == "issued" or cookie == "issued":
        _, query, issued_cookie = delegate.start_oauth("/slack/install")
        state = query["state"] if state == "issued" else state
    cookie = issued_cookie if cookie == "issued" else cookie
    problems.records.clear()
    tables, states = token_tables(delegate), state_rows(delegate)
    page = fetch(
        delegate.base_url + "/slack/oauth_redirect" + _query({"code": code, "state": state, "error": error}), cookie=cookie
    )
    assert 200 <= page.status < 500, page.status
    assert "Traceback" not in page.body and not problems.records, [r.getMessage() for r in problems.records]
    assert token_tables(delegate) == tables
    assert states - 1 <= state_rows(delegate) <= states  # at most the one state this callback presented is used up


SCOPE_NAMES = st.sampled_from([*user_scopes(), "admin", "im:history", "commands", ""])


@EXAMPLES
@given(
    path=st.sampled_from(["/slack/install", "/slack/connect"]),
    team=st.none() | TEXT | st.sampled_from(["T0SANDBOX1", "E0ORG12345", "T0SANDBOX1\r\nX-Injected: 1"]),
    scopes=st.none() | TEXT | st.lists(SCOPE_NAMES, max_size=6).map(",".join),
    extra=st.dictionaries(TEXT, TEXT, max_size=3),
)
def test_a_start_link_never_fails_and_writes_at_most_one_state(
    delegate: Delegate, problems: _Problems, path: str, team: str | None, scopes: str | None, extra: dict[str, str]
) -> None:
    problems.records.clear()
    tables, states = token_tables(delegate), state_rows(delegate)
    params: dict[str, str | None] = {**extra, "team": team, "scopes": scopes}
    page = fetch(delegate.base_url + path + _query(params))
    assert page.status in (302, 400), page.status
    assert "Traceback" not in page.body and not problems.records, [r.getMessage() for r in problems.records]
    assert {name.lower() for name, _ in page.header_list} <= START_HEADERS, page.header_list
    assert token_tables(delegate) == tables
    if page.status == 400:
        assert state_rows(delegate) == states
        return
    assert state_rows(delegate) == states + 1
    authorize = authorize_parameters(page)
    assert all(len(values) == 1 for values in authorize.values()), authorize
    assert set(authorize) <= {"state", "client_id", "scope", "user_scope", "redirect_uri", "team"}
    assert authorize.get("team") == ([team] if team is not None else None)
    assert authorize["user_scope"] == [",".join(user_scopes())]
