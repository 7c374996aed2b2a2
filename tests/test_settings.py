"""Settings are read from the environment once and checked with messages that say what to fix."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from app import cli
from settings import FOR_SLACK, Settings, SettingsError, required_for_run
from stores import generate_key


def test_defaults_are_the_embedded_ones() -> None:
    settings = Settings.from_env({})
    assert settings.port == 3000 and settings.log_level == "INFO"
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("data/delegate.sqlite3")
    assert settings.api_url == "https://slack.com/api/"
    assert settings.authorize_url == "https://slack.com/oauth/v2/authorize"
    assert settings.client_id is None and settings.encryption_keys is None
    assert settings.trusted_proxies == ()
    assert required_for_run({}, sandbox=False) == ()  # nothing configured: the built-in sandbox
    assert required_for_run({"SLACK_SIGNING_SECRET": "x"}, sandbox=False) == FOR_SLACK
    assert required_for_run({"SLACK_SIGNING_SECRET": "x"}, sandbox=True) == ()


def test_trusted_proxies_are_a_comma_separated_list() -> None:
    settings = Settings.from_env({"DELEGATE_TRUSTED_PROXIES": " 10.0.0.1, ,10.0.0.2,"})
    assert settings.trusted_proxies == ("10.0.0.1", "10.0.0.2")


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


SLACK_AND_OURS = (
    "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_SIGNING_SECRET", "SLACK_REDIRECT_URI", "SLACK_APP_TOKEN",
    "TOKEN_ENCRYPTION_KEYS", "DATABASE_URL", "PORT", "LOG_LEVEL", "SLACK_API_URL", "SLACK_AUTHORIZE_URL",
)  # fmt: skip
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No Delegate setting from the environment running the tests; the data folder in a temporary place."""
    for name in SLACK_AND_OURS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DELEGATE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SLACK_CLIENT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("SLACK_SIGNING_SECRET", "fedcba9876543210fedcba9876543210"),
        ("SLACK_REDIRECT_URI", "https://delegate.example.com/slack/oauth_redirect"),
        ("SLACK_APP_TOKEN", "xapp-1-A1-1-abcdef"),
    ],
)
def test_a_missing_client_id_beside_other_slack_settings_is_an_error_not_the_sandbox(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with socket.socket() as taken:  # were the sandbox to start, it would fail on this port instead of running
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = CliRunner().invoke(cli, ["run", "--sandbox-port", port, "--port", port])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "SLACK_CLIENT_ID is not set" in result.output and f"{name} is set" in result.output
    assert "sandbox cannot listen" not in result.output  # it never tried to start the sandbox
    assert value not in result.output


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "postgres://delegate:hunter2pw@db.internal/delegate",
        "postgresql://delegate:hunter2pw@db.internal:fivefour/delegate",
        "mysql://delegate:hunter2pw@db.internal/delegate",
        "sqlite:/relative.db",
    ],
)
def test_a_malformed_database_url_is_one_clear_line_without_the_password(url: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"DATABASE_URL": url})
    [line] = [line for line in str(caught.value).splitlines() if "DATABASE_URL" in line]
    assert "for example postgresql+psycopg://" in line
    assert "hunter2pw" not in str(caught.value)


def test_every_problem_is_reported_in_one_round() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {"SLACK_SIGNING_SECRET": "abc", "TOKEN_ENCRYPTION_KEYS": "short", "DATABASE_URL": "nope"}, required=FOR_SLACK
        )
    message = str(caught.value)
    for expected in (
        "TOKEN_ENCRYPTION_KEYS: key #1",  # malformed
        "DATABASE_URL is not a database URL",  # malformed
        "SLACK_CLIENT_ID is not set",  # missing
        "SLACK_CLIENT_SECRET is not set",  # missing
        "manifest.yml",
    ):
        assert expected in message
    assert "SLACK_SIGNING_SECRET is not set" not in message and "TOKEN_ENCRYPTION_KEYS is not set" not in message


@pytest.mark.parametrize(
    "command", [["run"], ["db", "upgrade"], ["tokens", "refresher", "--once"], ["keys", "status"]], ids=" ".join
)
def test_the_real_command_lists_every_problem_and_exits_non_zero_without_a_traceback(
    clean_env: Path, command: list[str]
) -> None:
    env = {
        **os.environ,
        "SLACK_CLIENT_SECRET": "0123456789abcdef0123456789abcdef",
        "TOKEN_ENCRYPTION_KEYS": "not-a-key",
        "DATABASE_URL": "postgres://delegate:hunter2pw@db.internal/delegate",
    }
    result = subprocess.run(
        [sys.executable, str(REPO / "app.py"), *command], env=env, cwd=clean_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert (
        "TOKEN_ENCRYPTION_KEYS: key #1" in result.stderr and "DATABASE_URL names an unknown database kind" in result.stderr
    )
    if command != ["db", "upgrade"]:  # the commands that need a Slack app say what of it is missing, in the same list
        assert "SLACK_CLIENT_ID is not set" in result.stderr
    assert result.stderr.count("Delegate cannot start") == 1
    assert "hunter2pw" not in result.stderr and "0123456789abcdef" not in result.stderr


def test_privacy_and_support_links_are_read_and_checked() -> None:
    settings = Settings.from_env(
        {
            "DELEGATE_PRIVACY_URL": " https://example.com/privacy ",
            "DELEGATE_SUPPORT_URL": "https://help.example.com/?a=1&b=2",
        }
    )
    assert settings.privacy_url == "https://example.com/privacy"
    assert settings.support_url == "https://help.example.com/?a=1&b=2"
    assert Settings.from_env({}).privacy_url is None and Settings.from_env({"DELEGATE_SUPPORT_URL": ""}).support_url is None


@pytest.mark.parametrize(
    "url",
    [
        "policies.example.org/privacy",
        "ftp://example.com/privacy",
        "javascript:alert(1)",
        "https:///no-host",
        "https://example.com/our privacy",
        "https://example.com/a|b",
        'https://example.com/"x',
        "https://admin:hunter2@example.com/privacy",
        "https://[::1/privacy",
        "https://example.com/" + "p" * 500,
    ],
)
def test_a_malformed_privacy_or_support_link_is_named_and_not_echoed(url: str) -> None:
    for name in ("DELEGATE_PRIVACY_URL", "DELEGATE_SUPPORT_URL"):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env({name: url})
        message = str(caught.value)
        assert name in message and "hunter2" not in message and url not in message
