"""No token, refresh token or client secret reaches a log line, even at DEBUG with slack_sdk's request logging."""

from __future__ import annotations

import logging

import pytest

from stores.redaction import install_log_redaction, redact
from tests.stores.test_rotation import connect, manager, token_server  # noqa: F401
from tests.support.token_server import CLIENT_SECRET

__all__ = ["manager", "token_server"]


@pytest.mark.parametrize(
    "line",
    [
        "Authorization: Bearer xoxe.xoxp-1-abcdefghij",
        "body_params: {'grant_type': 'refresh_token', 'refresh_token': 'xoxe-1-abcdef123456'}",
        '{"ok": true, "access_token": "xoxb-1-2-abcdef", "refresh_token": "xoxe-1-zzzzzzzz"}',
        "client_secret=s3cr3tvalue&code=123.456.abc",
        "app token xapp-1-A1-123-abcdef",
        "webhook https://hooks.slack.com/services/T1/B1/abcdef",
    ],
)
def test_redact_removes_secrets(line: str) -> None:
    cleaned = redact(line)
    for secret in ("abcdefghij", "abcdef123456", "zzzzzzzz", "s3cr3tvalue", "123.456.abc", "xoxb-1-2-abcdef", "B1/abcdef"):
        assert secret not in cleaned
    assert "(redacted)" in cleaned


def test_debug_logs_of_a_refresh_carry_no_secret(store, manager, token_server, caplog) -> None:  # type: ignore[no-untyped-def]
    install_log_redaction()
    _, state = token_server
    old_access, old_refresh = connect(store, state, stored_expires_in=-5)
    with caplog.at_level(logging.DEBUG):
        fresh = manager.fresh_user_token(enterprise_id=None, team_id="T1", user_id="U1")
    text = caplog.text
    assert "oauth.v2.access" in text  # slack_sdk did log the exchange
    for secret in (old_access, old_refresh, fresh.token, CLIENT_SECRET):
        assert secret not in text
    new_refresh = store.find_installation(enterprise_id=None, team_id="T1", user_id="U1").user_refresh_token
    assert new_refresh not in text
