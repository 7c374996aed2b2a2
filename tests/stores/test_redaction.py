"""No token, refresh token or client secret reaches a log line, even at DEBUG with slack_sdk's request logging."""

from __future__ import annotations

import base64
import dataclasses
import importlib
import logging
import pkgutil
import re

import pytest

import listeners
import stores
from stores import generate_key
from stores.redaction import install_log_redaction, redact, register_secrets
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


ROTATING = "xoxe.xoxp-1-Mi0yLTEx_NjA5-ODk3NTQ.2LTczMzQ_MTE5MjA"
REFRESH = "xoxe-1-My0xLTE0_Nzc3NzIw-ODYzLTI_ZjQ2Yjc4.MGQ1YjE"
LONG_LIVED = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
APP = "xapp-1-A0SBX12AP-1-q8w7_e6r5.t4y3-u2i1"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f"Authorization: Bearer {ROTATING}", ROTATING),
        (f"body_params: {{'refresh_token': '{REFRESH}'}}", REFRESH),
        (f"unlabelled {ROTATING} in a sentence", ROTATING),
        (f"unlabelled {REFRESH}, then more", REFRESH),
        (f"bot {LONG_LIVED}.", LONG_LIVED),
        (f"app token {APP}", APP),
        (f"token_{ROTATING}", ROTATING),  # glued to a word with an underscore
        (
            "Sending a request - url: http://127.0.0.1:4000/sandbox/response/tRB85bT-1vLL_YwDFnMVJ, body: {}",
            "tRB85bT-1vLL_YwDFnMVJ",
        ),
        ("response_url=http%3A%2F%2F127.0.0.1%3A4000%2Fsandbox%2Fresponse%2FtRB85bT-1vLLYw&team_id=T1", "tRB85bT-1vLLYw"),
        ("url: https://hooks.slack.com/commands/T0001/1234567890/AbCdEf_123-x, body", "1234567890/AbCdEf_123-x"),
        ('"response_url":"https:\\/\\/hooks.slack.com\\/actions\\/T0001\\/98765\\/QwErTy"', "98765"),
        ("webhook https://hooks.slack.com/services/T1/B1/abcdef", "B1/abcdef"),
        ("headers: {'Authorization': 'Basic MTExLjIyMjpzM2NyM3R2YWx1ZQ=='}", "MTExLjIyMjpzM2NyM3R2YWx1ZQ=="),
        ("postgresql+psycopg://delegate:hunter2-db@db.internal/delegate", "hunter2-db"),
        ("connecting to ws://127.0.0.1:4000/link/?ticket=0b5e7c9a-41d2-4f7e-9c1e-5a2b3c4d5e6f&app_id=A1", "0b5e7c9a-41d2"),
    ],
)
def test_every_form_of_token_and_webhook_is_redacted_whole(line: str, secret: str) -> None:
    cleaned = redact(line)
    assert "(redacted)" in cleaned
    for part in [secret, *re.split(r"[^A-Za-z0-9]", secret.split("-", 2)[-1])]:
        if len(part) >= 5:
            assert part not in cleaned, cleaned


def test_the_whole_key_ring_is_redacted_when_labelled() -> None:
    first, second = generate_key(), generate_key()
    cleaned = redact(f"TOKEN_ENCRYPTION_KEYS={first},{second} and more")
    assert first not in cleaned and second not in cleaned and cleaned.endswith(" and more")


def test_registered_secrets_are_redacted_wherever_they_appear() -> None:
    client_secret, signing_secret, key = "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "sign-9a8b7c6d5e4f3a2b", generate_key()
    assert client_secret in redact(f"the secret is {client_secret}")  # not registered yet, and not labelled
    register_secrets(client_secret, signing_secret, key, None, "")
    line = f"a={client_secret} b {signing_secret}; c:{key}; encoded {key.replace('=', '%3D')}"
    cleaned = redact(line)
    for secret in (client_secret, signing_secret, key, key.replace("=", "%3D")):
        assert secret not in cleaned
    assert redact("readable text stays readable: Basic Information, status code") == (
        "readable text stays readable: Basic Information, status code"
    )


def test_very_short_values_are_not_registered_so_logs_stay_readable() -> None:
    register_secrets("s", "abc")
    assert redact("status: success, abc") == "status: success, abc"


def test_records_tracebacks_and_stacks_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    logger = logging.getLogger("tests.redaction")
    with caplog.at_level(logging.DEBUG, logger="tests.redaction"):
        try:
            raise RuntimeError(f"refresh failed for {REFRESH}")
        except RuntimeError:
            logger.exception("could not use %s", ROTATING, stack_info=True)
        logger.debug("%s", {"token": LONG_LIVED, "url": "https://hooks.slack.com/commands/T1/2/3abc"})
    text = "\n".join(logging.Formatter().format(record) for record in caplog.records)
    assert "RuntimeError" in text and "Stack (most recent call last)" in text
    for secret in (REFRESH, ROTATING, LONG_LIVED, "3abc"):
        assert secret not in text
    assert base64.b64encode(REFRESH.encode()).decode() not in text


TOKEN_FIELD = re.compile(r"^(token|refresh_token|user_token|bot_token|access_token|secret|client_secret|values)$")
# Fields whose name says token but which hold a column name, not a token.
COLUMN_NAMES = {("Slot", "token"), ("Slot", "refresh")}


def dataclasses_in(package: object) -> list[type]:
    found = []
    for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):  # type: ignore[attr-defined]
        if ".migrations" in module_info.name:
            continue
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == module.__name__:
                found.append(value)
    return found


@pytest.mark.parametrize("cls", dataclasses_in(stores) + dataclasses_in(listeners), ids=lambda c: c.__qualname__)
def test_no_dataclass_in_stores_or_listeners_shows_a_token_in_its_repr(cls: type) -> None:
    for field in dataclasses.fields(cls):
        if TOKEN_FIELD.match(field.name) and (cls.__name__, field.name) not in COLUMN_NAMES:
            assert not field.repr, f"{cls.__qualname__}.{field.name} is in its repr"


def test_a_snapshot_and_a_fresh_token_show_no_token() -> None:
    from stores.rotation import FreshToken
    from stores.token_rows import Snapshot, TokenKey

    snapshot = Snapshot(1, ROTATING, "enc1.cipher", None, "active", ("chat:write",), 3, open_refresh_token=lambda: REFRESH)
    assert snapshot.refresh_token == REFRESH  # decrypted and cached on the instance
    fresh = FreshToken(ROTATING, ("chat:write",), None, TokenKey.of(None, "T1", "U1"))
    for text in (repr(snapshot), str(snapshot), repr(fresh), repr([snapshot, fresh])):
        assert ROTATING not in text and REFRESH not in text and "enc1.cipher" not in text
