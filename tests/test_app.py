"""The composition root: logging is configured so that this app's own secrets never reach a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from app import configure_logging
from settings import Settings
from stores import generate_key


@pytest.fixture
def root_level() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


def test_configured_secrets_are_redacted_from_every_log_line(root_level: None, caplog: pytest.LogCaptureFixture) -> None:
    keys = [generate_key(), generate_key()]
    settings = Settings.from_env(
        {
            "SLACK_CLIENT_ID": "123.456",
            "SLACK_CLIENT_SECRET": "c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6",
            "SLACK_SIGNING_SECRET": "5f4e3d2c1b0a99887766554433221100",
            "TOKEN_ENCRYPTION_KEYS": ",".join(keys),
            "LOG_LEVEL": "DEBUG",
        }
    )
    configure_logging(settings)
    assert settings.client_secret and settings.signing_secret
    with caplog.at_level(logging.DEBUG):
        # Unlabelled, as a library might print them: in an exception text, a dict, a URL.
        logging.getLogger("some.library").debug(
            "values %s / %r / https://example.com/?k=%s", settings.client_secret, {"x": settings.signing_secret}, keys[1]
        )
        try:
            raise ValueError(f"bad key {keys[0]}")
        except ValueError:
            logging.getLogger("some.library").exception("failed")
    text = "\n".join(logging.Formatter().format(record) for record in caplog.records)
    assert "values" in text and "ValueError" in text
    for secret in (settings.client_secret, settings.signing_secret, *keys):
        assert secret not in text
