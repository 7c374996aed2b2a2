"""Settings are read from the environment once and checked with messages that say what to fix."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from app import cli
from settings import Settings, SettingsError
from stores import generate_key


def test_defaults_are_the_embedded_ones() -> None:
    settings = Settings.from_env({})
    assert settings.port == 3000 and settings.log_level == "INFO"
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("data/delegate.sqlite3")
    assert settings.api_url == "https://slack.com/api/"
    assert settings.authorize_url == "https://slack.com/oauth/v2/authorize"
    assert set(settings.missing_for_slack()) == {
        "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_SIGNING_SECRET", "TOKEN_ENCRYPTION_KEYS",
    }  # fmt: skip


def test_every_malformed_value_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "PORT": "eighty",
                "LOG_LEVEL": "LOUD",
                "SLACK_API_URL": "slack.com/api",
                "SLACK_APP_TOKEN": "xoxb-not-an-app-token",
                "TOKEN_ENCRYPTION_KEYS": "short",
                "SLACK_REDIRECT_URI": "ftp://x",
            }
        )
    message = str(caught.value)
    for name in ("PORT", "LOG_LEVEL", "SLACK_API_URL", "SLACK_APP_TOKEN", "TOKEN_ENCRYPTION_KEYS", "SLACK_REDIRECT_URI"):
        assert name in message
    assert "xoxb-not-an-app-token" not in message  # a token-looking value is never echoed


def test_secrets_stay_out_of_repr() -> None:
    key = generate_key()
    settings = Settings.from_env(
        {"SLACK_CLIENT_SECRET": "s3cret", "SLACK_SIGNING_SECRET": "sign", "TOKEN_ENCRYPTION_KEYS": key}
    )
    text = repr(settings)
    assert "s3cret" not in text and "sign'" not in text and key not in text


def test_run_against_slack_with_missing_settings_explains_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_CLIENT_SECRET", "SLACK_SIGNING_SECRET", "TOKEN_ENCRYPTION_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_CLIENT_ID", "123.456")
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code != 0
    assert "SLACK_CLIENT_SECRET" in result.output and "manifest.yml" in result.output
    assert "Traceback" not in result.output


def test_run_with_a_malformed_setting_fails_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "99999")
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code != 0 and "PORT must be a TCP port number" in result.output


def test_the_data_folder_is_tightened_at_start(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import os
    import stat

    from ops.wiring import open_stores

    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)
    settings = Settings.from_env(
        {
            "DELEGATE_DATA_DIR": str(data),
            "SLACK_CLIENT_ID": "1.2",
            "SLACK_CLIENT_SECRET": "s",
            "TOKEN_ENCRYPTION_KEYS": generate_key(),
        }
    )
    open_stores(settings, background_refresh=False).close()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "delegate.sqlite3").stat().st_mode) == 0o600


def test_the_sandbox_key_folder_is_owner_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import stat

    from app import sandbox_encryption_key

    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)
    sandbox_encryption_key(Settings.from_env({"DELEGATE_DATA_DIR": str(data)}))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "sandbox-encryption.key").stat().st_mode) == 0o600
