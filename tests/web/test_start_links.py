"""Install and connect links accept only what Delegate's own links carry; nothing in them reaches a header raw."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from listeners.manifest import user_scopes
from tests.e2e.harness import Delegate, fetch, running_delegate
from tests.web.support import authorize_parameters, state_rows, unlimited

TEAM = "T0SANDBOX1"

# Query-string fragments exactly as a crafted link would carry them (percent-encoded, as a browser sends them).
BAD_VALUES = {
    "crlf": "X%0d%0aSet-Cookie:%20injected=1",
    "lf": "T0SANDBOX1%0aX-Injected:%201",
    "ampersand": "T0SANDBOX1%26redirect_uri%3Dhttps://evil.example/%26user_scope%3Dadmin",
    "percent": "T0SANDBOX1%25",
    "double_encoded": "T0SANDBOX1%2526scope%253Dadmin",
    "hash": "T0SANDBOX1%23fragment",
    "unicode": "T0S%C3%89NDBOX",
    "invalid_utf8": "T0%FF%FE",
    "nul": "T0SANDBOX1%00",
    "oversized": "T" + "A" * 5000,
    "empty": "",
    "lowercase": "t0sandbox1",
    "not_a_team": "U0ALICE001",
}
BAD_SCOPES = {
    "crlf": "chat:write%0d%0aSet-Cookie:%20injected=1",
    "ampersand": "chat:write%26scope%3Dadmin",
    "admin": "admin",
    "im_history": "im:history",
    "known_and_unknown": "chat:write,channels:history",
    "percent": "chat:write%25",
    "hash": "chat:write%23x",
    "unicode": "chat:writ%C3%A9",
    "oversized": ",".join(["chat:write"] * 600),
}


@pytest.fixture(scope="module")
def delegate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delegate]:
    with running_delegate(tmp_path_factory.mktemp("links")) as running:
        yield unlimited(running)


def assert_refused(delegate: Delegate, path: str, expected: str) -> None:
    before = state_rows(delegate)
    page = fetch(delegate.base_url + path)
    assert page.status == 400, (path, page.status, page.headers)
    assert expected in page.body, path
    names = [name.lower() for name, _ in page.header_list]
    assert "set-cookie" not in names and "location" not in names and "x-injected" not in names, page.header_list
    assert "injected" not in page.body and "evil.example" not in page.body
    assert state_rows(delegate) == before  # no state issued for a refused link


def assert_single_parameters(delegate: Delegate, path: str, *, team: str | None) -> dict[str, list[str]]:
    page = fetch(delegate.base_url + path)
    assert page.status == 302, (path, page.body)
    assert [name.lower() for name, _ in page.header_list].count("set-cookie") == 1
    params = authorize_parameters(page)
    expected = {"state", "client_id", "scope", "user_scope", "redirect_uri"} | ({"team"} if team else set())
    assert set(params) == expected, params
    assert all(len(values) == 1 for values in params.values()), params
    assert params["redirect_uri"] == [f"{delegate.base_url}/slack/oauth_redirect"]
    assert params.get("team") == ([team] if team else None)
    return params


@pytest.mark.parametrize("path", ["/slack/install", "/slack/connect"])
@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_a_malformed_team_is_refused_with_no_state(delegate: Delegate, path: str, case: str) -> None:
    assert_refused(delegate, f"{path}?team={BAD_VALUES[case]}", "This link is malformed")


@pytest.mark.parametrize("case", sorted(BAD_SCOPES))
def test_a_scope_outside_the_apps_user_scopes_is_refused(delegate: Delegate, case: str) -> None:
    expected = "This link is malformed" if case == "oversized" else "Delegate only ever asks for these"
    assert_refused(delegate, f"/slack/connect?scopes={BAD_SCOPES[case]}", expected)


def test_the_scope_page_names_the_allowed_scopes(delegate: Delegate) -> None:
    page = fetch(delegate.base_url + "/slack/connect?scopes=admin%3Cscript%3E")
    assert page.status == 400
    for scope in user_scopes():
        assert f"<code>{scope}</code>" in page.body
    assert "admin" not in page.body and "<script>" not in page.body


@pytest.mark.parametrize("path", ["/slack/install", "/slack/connect"])
def test_a_repeated_team_is_malformed(delegate: Delegate, path: str) -> None:
    assert_refused(delegate, f"{path}?team={TEAM}&team=T0OTHER01", "This link is malformed")


def test_repeated_scopes_are_malformed(delegate: Delegate) -> None:
    assert_refused(delegate, "/slack/connect?scopes=chat:write&scopes=admin", "This link is malformed")


@pytest.mark.parametrize("path", ["/slack/install", "/slack/connect"])
def test_too_many_parameters_are_malformed(delegate: Delegate, path: str) -> None:
    assert_refused(delegate, path + "?" + "&".join(f"p{i}=x" for i in range(50)), "This link is malformed")


@pytest.mark.parametrize("path", ["/slack/install", "/slack/connect"])
@pytest.mark.parametrize("team", [TEAM, "E0ORG12345", None])
def test_a_good_link_gives_one_of_each_authorize_parameter(delegate: Delegate, path: str, team: str | None) -> None:
    assert_single_parameters(delegate, path + (f"?team={team}" if team else ""), team=team)


@pytest.mark.parametrize("path", ["/slack/install", "/slack/connect"])
def test_unknown_parameters_are_ignored_and_never_forwarded(delegate: Delegate, path: str) -> None:
    query = f"team={TEAM}&utm_source=x%0d%0aX-Injected:%201&redirect_uri=https://evil.example/&user_scope=admin"
    params = assert_single_parameters(delegate, f"{path}?{query}", team=TEAM)
    assert "admin" not in params["user_scope"][0] and "utm_source" not in params


def test_install_ignores_a_scopes_parameter(delegate: Delegate) -> None:
    params = assert_single_parameters(delegate, "/slack/install?scopes=admin", team=None)
    assert "admin" not in params["scope"][0] + params["user_scope"][0]


def test_connect_asks_for_user_scopes_only_even_when_scopes_are_named(delegate: Delegate) -> None:
    params = assert_single_parameters(delegate, f"/slack/connect?team={TEAM}&scopes=search:read,%20dnd:write,,", team=TEAM)
    assert params["scope"] == [""] and params["user_scope"] == [",".join(user_scopes())]


def test_no_control_character_reaches_a_header_even_from_a_misconfigured_flow(tmp_path: Path) -> None:
    with running_delegate(tmp_path) as delegate:
        assert delegate.wsgi is not None and delegate.wsgi.app.oauth_flow is not None
        generator = delegate.wsgi.app.oauth_flow.settings.authorize_url_generator
        generator.authorization_url = "http://127.0.0.1/authorize\r\nX-Injected: 1"  # an operator's typo, say
        for path in ("/slack/install", "/slack/connect"):
            page = fetch(delegate.base_url + path)
            assert page.status == 500 and "x-injected" not in page.headers, page.header_list
