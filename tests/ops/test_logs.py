"""ops.logs: JSON lines that parse, carry the known context, never a secret; text unchanged; context across threads."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ops.logs import TEXT_FORMAT, ContextExecutor, JsonFormatter, _command_name, log_context_middleware
from settings import Settings, SettingsError
from stores import generate_key
from stores.log_context import current, log_context
from stores.redaction import install_log_redaction, register_secrets
from web.wsgi import request_id

ROOT = Path(__file__).resolve().parents[2]

REFRESH_TOKEN = "xoxe-1-My0xLTQxNTg4MzQwNjcxMDQtNjg2NDU3MzA2MzIzNy1hYmNkZWY"
USER_TOKEN = "xoxe.xoxp-1-Mi0yLTQxNTg4MzQwNjcxMDQtNDE1ODgzNDA2NzEwNC0xMjM0NQ"


def record(message: str, *args: Any, exc_info: Any = None, **extra: Any) -> logging.LogRecord:
    """A record made the way a logger makes it (through the record factory, so the redaction runs if installed)."""
    made = logging.getLogger("delegate.test").makeRecord(
        "delegate.test", logging.INFO, __file__, 1, message, args, exc_info, extra=extra or None
    )
    return made


def test_a_json_line_has_time_level_logger_message_and_only_the_known_context() -> None:
    with log_context(fresh=True, request="r-1", team="T1", user="U1"):
        line = JsonFormatter().format(record("posted %s", "hello"))
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "message", "request", "team", "user"}  # no enterprise, no command
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert (entry["level"], entry["logger"], entry["message"]) == ("INFO", "delegate.test", "posted hello")
    assert (entry["request"], entry["team"], entry["user"]) == ("r-1", "T1", "U1")
    assert "\n" not in line


def test_extra_names_a_person_where_there_is_no_context() -> None:
    entry = json.loads(JsonFormatter().format(record("refreshed", team="T9", user="U9", password="not written")))
    assert (entry["team"], entry["user"]) == ("T9", "U9")
    assert "password" not in entry and "not written" not in json.dumps(entry)


def test_exceptions_get_their_type_and_a_scrubbed_traceback_even_past_the_record_factory() -> None:
    secret = generate_key()
    register_secrets(secret)
    try:
        raise ValueError(f"refresh failed with {REFRESH_TOKEN} and key {secret}")
    except ValueError:
        exc_info = sys.exc_info()
    # Made without the record factory (as logging.makeLogRecord or a socket handler would): the formatter scrubs.
    raw = logging.makeLogRecord(
        {"name": "x", "levelno": 40, "levelname": "ERROR", "msg": "token %s", "args": (USER_TOKEN,), "exc_info": exc_info}
    )
    line = JsonFormatter().format(raw)
    entry = json.loads(line)
    assert entry["exc_type"] == "ValueError"
    assert "Traceback" in entry["traceback"] and "raise ValueError" in entry["traceback"]
    for leaked in (REFRESH_TOKEN, USER_TOKEN, secret, REFRESH_TOKEN[8:30], USER_TOKEN[13:40]):
        assert leaked not in line
    assert "(redacted)" in entry["message"] and "(redacted)" in entry["traceback"]


def test_through_the_record_factory_the_message_and_traceback_arrive_scrubbed() -> None:
    install_log_redaction()
    try:
        raise RuntimeError(f"body refresh_token={REFRESH_TOKEN}")
    except RuntimeError:
        made = record('{"refresh_token": "%s"}', REFRESH_TOKEN, exc_info=sys.exc_info())
    assert REFRESH_TOKEN not in made.getMessage()  # the factory ran first
    line = JsonFormatter().format(made)
    assert REFRESH_TOKEN not in line and REFRESH_TOKEN[8:30] not in line
    json.loads(line)


def settings(**env: str) -> Settings:
    return Settings.from_env({"TOKEN_ENCRYPTION_KEYS": generate_key(), **env})


LOGGING_SCRIPT = """
import logging, sys
from ops.logs import configure_logging
from settings import Settings
configure_logging(Settings.from_env())
logging.getLogger("delegate.test").info("plain %s", "line")
logging.getLogger("delegate.test").debug("at debug")
print(len(logging.getLogger().handlers), file=sys.stdout)
"""


def configured_process(**env: str) -> subprocess.CompletedProcess[str]:
    """A fresh Python process (no handler yet, as at start) that configures logging from env and logs two lines."""
    environment = {"PATH": os.environ["PATH"], "TOKEN_ENCRYPTION_KEYS": generate_key(), **env}
    return subprocess.run(
        [sys.executable, "-c", LOGGING_SCRIPT], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_text_stays_the_default_and_unchanged() -> None:
    result = configured_process()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"  # one stderr handler, as logging.basicConfig made before
    assert TEXT_FORMAT == "%(asctime)s %(levelname)s %(name)s: %(message)s"
    [line] = result.stderr.splitlines()  # INFO by default: the debug line is not written
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO delegate\.test: plain line", line), line


def test_log_format_json_writes_one_json_object_per_line_on_stderr() -> None:
    result = configured_process(LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(e["level"], e["logger"], e["message"]) for e in entries] == [
        ("INFO", "delegate.test", "plain line"),
        ("DEBUG", "delegate.test", "at debug"),
    ]


@pytest.mark.parametrize("value", ["JSON", "json", " text "])
def test_log_format_accepts_text_and_json(value: str) -> None:
    assert settings(LOG_FORMAT=value).log_format == value.strip().lower()


def test_a_malformed_log_format_is_refused_with_its_fix() -> None:
    with pytest.raises(SettingsError, match=r"LOG_FORMAT must be text \(the default\) or json, got 'yaml'"):
        settings(LOG_FORMAT="yaml")


def test_work_submitted_to_the_context_executor_carries_the_request_and_person() -> None:
    seen: dict[str, Any] = {}
    with ContextExecutor(max_workers=2) as pool, ThreadPoolExecutor(max_workers=2) as plain:
        with log_context(fresh=True, request="r-7", team="T7", user="U7", command="/post-as-me"):
            carried = pool.submit(lambda: dict(current())).result()
            seen["plain"] = plain.submit(lambda: dict(current())).result()
        assert pool.submit(lambda: dict(current())).result() == {}  # after the request: nothing lingers
    assert carried == {"request": "r-7", "team": "T7", "user": "U7", "command": "/post-as-me"}
    assert seen["plain"] == {}  # what the executor fixes: a plain pool's threads start empty


def test_the_context_is_gone_after_its_block_and_unknown_names_are_refused() -> None:
    with log_context(fresh=True, team="T1"):
        with log_context(user="U1", command=None):
            assert dict(current()) == {"team": "T1", "user": "U1"}
        assert dict(current()) == {"team": "T1"}
    assert dict(contextvars.copy_context().run(current)) == {}
    with pytest.raises(TypeError, match="token"):
        with log_context(token="xoxp-1"):
            pass


class Context(dict):  # type: ignore[type-arg]
    """What the middleware reads of a BoltContext."""

    team_id = "T1"
    enterprise_id = None
    user_id = "U1"


def test_the_bolt_middleware_names_team_user_and_command_until_the_request_ends() -> None:
    seen: dict[str, str] = {}
    with log_context(fresh=True, request="r-2"):
        with log_context(user="U0STALE", command="/stale"):  # whatever an earlier request left is replaced
            assert log_context_middleware(Context(), {"command": "/snooze-me"}, lambda: "response") == "response"  # type: ignore[arg-type]
            seen.update(current())  # what the listeners, run after the middleware chain returned, log with
        assert dict(current()) == {"request": "r-2"}
    assert seen == {"request": "r-2", "team": "T1", "user": "U1", "command": "/snooze-me"}
    with log_context(fresh=True, team="T0", user="U0", command="/old"):
        log_context_middleware(Context(), {"type": "event_callback"}, lambda: None)  # type: ignore[arg-type]
        assert dict(current()) == {"team": "T1", "user": "U1", "command": "event_callback"}


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"command": "/post-as-me"}, "/post-as-me"),
        ({"type": "shortcut", "callback_id": "set_my_status"}, "shortcut:set_my_status"),
        ({"type": "message_action", "callback_id": "reply_as_me"}, "message_action:reply_as_me"),
        ({"type": "view_submission", "view": {"callback_id": "reply_as_me_modal"}}, "view_submission:reply_as_me_modal"),
        ({"type": "block_actions", "actions": [{"action_id": "disconnect"}]}, "block_actions:disconnect"),
        ({"type": "event_callback", "event": {"type": "app_home_opened"}}, "event_callback:app_home_opened"),
        ({"type": "block_actions", "actions": "junk"}, "block_actions"),
        ({}, None),
        ("not a dict", None),
    ],
)
def test_command_names(body: Any, name: str | None) -> None:
    assert _command_name(body) == name


def test_a_request_id_comes_from_a_trusted_proxy_only_when_short_and_safe() -> None:
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    assert request_id({**proxy, "HTTP_X_REQUEST_ID": "4f1c2a9e-77b0"}, {"10.0.0.1"}) == "4f1c2a9e-77b0"
    generated = {
        request_id({**proxy, "HTTP_X_REQUEST_ID": "4f1c2a9e"}, ()),  # not trusted
        request_id({**proxy, "HTTP_X_REQUEST_ID": "a" * 65}, {"10.0.0.1"}),  # too long
        request_id({**proxy, "HTTP_X_REQUEST_ID": 'x" injected\n'}, {"10.0.0.1"}),  # unsafe
        request_id({**proxy, "HTTP_X_SLACK_RETRY_NUM": "1"}, {"10.0.0.1"}),  # Slack's retry headers are no ids
        request_id({}, ()),
    }
    assert len(generated) == 5 and all(re.fullmatch(r"[0-9a-f]{16}", value) for value in generated)
